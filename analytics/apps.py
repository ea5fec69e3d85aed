from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnalyticsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "analytics"
    verbose_name = _("Analytics")

    def ready(self) -> None:
        from retail_crm import events, hooks

        # Attribution follows every change of what an order is worth to whom.
        events.subscribe("order_paid", "analytics.handlers.order_attribute", keys=("order_id",))
        events.subscribe("order_refunded", "analytics.handlers.order_attribute", keys=("order_id",))
        events.subscribe("member_merged", "analytics.handlers.merged_orders_attribute", keys=("order_ids",))
        events.subscribe("orders_imported", "analytics.handlers.orders_attribute_range",
                         keys=("brand_id", "date_from", "date_to"))

        # A member merge names the orders whose sales credits must be redone (member_merged carries them).
        hooks.provide("member_merge", "analytics.handlers.merged_orders_to_attribute")
