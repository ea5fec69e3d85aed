"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

from retail_crm.env import ConfigError, exit_on_config_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "retail_crm.settings")

try:
    application = get_asgi_application()
except ConfigError as exc:
    exit_on_config_error(exc)
