from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GuidesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "guides"
    verbose_name = _("Guides")

    def ready(self) -> None:
        from retail_crm import events

        # Commission follows the sales credits attribution wrote.
        events.subscribe("credits_posted", "guides.handlers.order_commission_post", keys=("order_id",))
