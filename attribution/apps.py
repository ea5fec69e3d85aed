from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AttributionConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "attribution"
    verbose_name = _("Attribution")

    def ready(self) -> None:
        from retail_crm import events, hooks

        # Attribution follows every change of what an order is worth to whom.
        events.subscribe("order_paid", "attribution.handlers.order_attribute", keys=("order_id",))
        events.subscribe("order_refunded", "attribution.handlers.order_attribute", keys=("order_id",))
        events.subscribe("member_merged", "attribution.handlers.merged_orders_attribute", keys=("order_ids",))
        events.subscribe("orders_imported", "attribution.handlers.orders_attribute_range",
                         keys=("brand_id", "date_from", "date_to"))

        # A member merge names the orders whose sales credits must be redone (member_merged carries them); it
        # runs after mall's providers (INSTALLED_APPS order), once the orders have moved.
        hooks.provide("member_merge", "attribution.handlers.merged_orders_to_attribute")
