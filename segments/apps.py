from django.apps import AppConfig
from django.utils.translation import pgettext_lazy


class SegmentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "segments"
    # The dashboard's section of the same name already carries the words ("会员分层").
    verbose_name = pgettext_lazy("dashboard section", "Segments")

    def ready(self) -> None:
        from retail_crm import events, hooks

        # Same-day segments: the buyer's RFML row and care line follow each paid or refunded order.
        events.subscribe("order_paid", "segments.handlers.member_segments_after_order",
                         keys=("member_id", "brand_id"))
        events.subscribe("order_refunded", "segments.handlers.member_segments_after_order",
                         keys=("member_id", "brand_id"))

        # A member merge moves the absorbed member's RFML history and care items (current RFML rows are rebuilt
        # by the next run) in the merge's transaction.
        hooks.provide("member_merge", "segments.rfm.rfm_member_merge")
