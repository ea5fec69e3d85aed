from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MembersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "members"
    verbose_name = _("Members")

    def ready(self) -> None:
        from retail_crm import events

        # A buyer's rule tags (sizes, colours, discount preference…) follow each paid or refunded order.
        events.subscribe("order_paid", "members.handlers.member_tags_after_order", keys=("member_id", "brand_id"))
        events.subscribe("order_refunded", "members.handlers.member_tags_after_order",
                         keys=("member_id", "brand_id"))
        events.subscribe("orders_imported", "members.handlers.brand_tags_after_import", keys=("brand_id",))
        # Behaviour tags follow a member's new events (the nightly run removes those whose window has passed).
        events.subscribe("behaviour_recorded", "members.handlers.behaviour_tags_after_events",
                         keys=("brand_id", "member_ids"))
