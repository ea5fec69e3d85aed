"""Domain-event subscribers of the marketing app (subscribed in ``MarketingConfig.ready``)."""

from __future__ import annotations

from marketing import journeys
from marketing.tracking import order_conversion_record


def order_campaign_attribute(*, order_id: int) -> None:
    """``order_paid``: carry the order to the campaign whose link its buyer clicked last within the window."""
    order_conversion_record(order_id=order_id)


def journeys_order_created(*, order_id: int) -> None:
    """``order_created``: the buyer enters the brand's unpaid-order journeys."""
    journeys.journeys_order_created(order_id=order_id)


def journeys_cart_item_added(*, member_id: int, brand_id: int, sku_id: int, at: str) -> None:
    """``cart_item_added``: the member enters the brand's abandoned-cart journeys."""
    journeys.journeys_cart_item_added(member_id=member_id, brand_id=brand_id, sku_id=sku_id, at=at)


def journeys_try_on_recorded(*, event_id: int, member_id: int, brand_id: int, product_code: str, at: str) -> None:
    """``try_on_recorded``: the member enters the brand's try-on journeys."""
    journeys.journeys_try_on_recorded(event_id=event_id, member_id=member_id, brand_id=brand_id,
                                      product_code=product_code, at=at)


def journeys_member_joined(*, member_id: int, brand_id: int) -> None:
    """``member_joined``: the new member enters the brand's welcome journeys."""
    journeys.journeys_member_joined(member_id=member_id, brand_id=brand_id)


def journeys_behaviour_recorded(*, brand_id: int, member_ids: list[int]) -> None:
    """``behaviour_recorded``: members who now meet a product-views or favourite trigger enter its journey."""
    journeys.journeys_behaviour_recorded(brand_id=brand_id, member_ids=member_ids)


def journeys_rfml_class_changed(*, member_id: int, brand_id: int, to_segment: str, on: str) -> None:
    """``rfml_class_changed``: the member enters the brand's journeys on the RFML class they moved into."""
    journeys.journeys_rfml_class_changed(member_id=member_id, brand_id=brand_id, to_segment=to_segment, on=on)


def journeys_order_paid(*, order_id: int) -> None:
    """``order_paid``: members on a journey of the brand convert (and stop, when it exits on conversion)."""
    journeys.journeys_order_paid(order_id=order_id)
