"""Server-rendered pages of the guide workbench (``/workbench/``), one module per area; routes in guides/urls.py."""
