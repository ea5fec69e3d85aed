from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LivestreamConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "livestream"
    verbose_name = _("Livestream")
