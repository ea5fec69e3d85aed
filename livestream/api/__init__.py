"""The livestream API (``/api/v1/livestream/…`` for staff, ``/api/v1/mp/live/…`` for the mini-program): one
module per topic, routes in ``urls.py``."""
