"""The guide workbench's staff API (``/api/v1/guides/…``): one module per topic, routes in ``urls.py``."""
