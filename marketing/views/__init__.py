"""Server-rendered marketing pages under ``/hq/marketing/`` (routes in ``marketing/urls.py``)."""
