from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MarketingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "marketing"
    verbose_name = _("Marketing")

    def ready(self) -> None:
        from retail_crm import events

        # A paid order whose buyer clicked a campaign's link within its window counts for that campaign.
        events.subscribe("order_paid", "marketing.handlers.order_campaign_attribute", keys=("order_id",))
