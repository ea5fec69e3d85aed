"""Domain-event subscribers of the marketing app (subscribed in ``MarketingConfig.ready``)."""

from __future__ import annotations

from marketing.tracking import order_conversion_record


def order_campaign_attribute(*, order_id: int) -> None:
    """``order_paid``: carry the order to the campaign whose link its buyer clicked last within the window."""
    order_conversion_record(order_id=order_id)
