"""WSGI entry point (gunicorn retail_crm.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from retail_crm.env import ConfigError, exit_on_config_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "retail_crm.settings")

try:
    application = get_wsgi_application()
except ConfigError as exc:
    exit_on_config_error(exc)
