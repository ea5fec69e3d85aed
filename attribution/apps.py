from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AttributionConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "attribution"
    verbose_name = _("Attribution")
