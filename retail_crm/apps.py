from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RetailCrmConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "retail_crm"
    verbose_name = _("Organisation")

    def ready(self) -> None:
        from retail_crm import checks  # noqa: F401  (registers the deployment checks)
