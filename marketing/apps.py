from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MarketingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "marketing"
    verbose_name = _("Marketing")

    def ready(self) -> None:
        from retail_crm import events, hooks

        # A paid order whose buyer clicked a campaign's link within its window counts for that campaign.
        events.subscribe("order_paid", "marketing.handlers.order_campaign_attribute", keys=("order_id",))
        # Journeys: members enter on what they do, and convert (and stop) when they pay.
        events.subscribe("order_paid", "marketing.handlers.journeys_order_paid", keys=("order_id",))
        events.subscribe("order_created", "marketing.handlers.journeys_order_created", keys=("order_id",))
        events.subscribe("cart_item_added", "marketing.handlers.journeys_cart_item_added",
                         keys=("member_id", "brand_id", "sku_id", "at"))
        events.subscribe("try_on_recorded", "marketing.handlers.journeys_try_on_recorded",
                         keys=("event_id", "member_id", "brand_id", "product_code", "at"))
        events.subscribe("member_joined", "marketing.handlers.journeys_member_joined", keys=("member_id", "brand_id"))
        events.subscribe("behaviour_recorded", "marketing.handlers.journeys_behaviour_recorded",
                         keys=("brand_id", "member_ids"))
        events.subscribe("rfml_class_changed", "marketing.handlers.journeys_rfml_class_changed",
                         keys=("member_id", "brand_id", "to_segment", "on"))
        # The member pages (workbench and admin) show where a member stands on the brand's journeys.
        hooks.provide("member_journeys", "marketing.selectors.member_journeys_of_brands")
