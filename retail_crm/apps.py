from axes.apps import AppConfig as _AxesAppConfig
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RetailCrmConfig(AppConfig):
    default = True  # this module also holds AxesConfig
    default_auto_field = "django.db.models.BigAutoField"
    name = "retail_crm"
    verbose_name = _("Organisation")

    def ready(self) -> None:
        # Connects the login signal that remembers a temporary password in the session.
        from retail_crm import (
            checks,  # noqa: F401  (registers the deployment checks)
            passwords,  # noqa: F401
        )


class AxesConfig(_AxesAppConfig):
    """django-axes under a name in the viewer's language (its own config has no translated name)."""

    verbose_name = _("Login protection")
