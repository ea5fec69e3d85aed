"""Event subscribers of attribution (subscribed in ``AttributionConfig.ready``); each is safe to run twice.

Attribution writes only the difference between the wanted and the booked credits, so a repeated delivery
writes nothing. Each handler that (re)wrote an order's credits records ``credits_posted`` for it, which is
what commission follows. ``merged_orders_to_attribute`` answers members' ``member_merge`` hook (inside the
merge's transaction) with the orders ``merged_orders_attribute`` then re-credits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from attribution.services import attribute_orders, attribute_range
from mall.models import Order
from members.services import MergeMoved
from retail_crm import events


def order_attribute(*, order_id: int) -> None:
    """After a payment or a refund: credit the order's sale to its store and guides."""
    attribute_orders(order_ids=[order_id])
    events.record("credits_posted", order_id=order_id)


def merged_orders_to_attribute(*, survivor, absorbed) -> MergeMoved:
    """The ``member_merge`` hook: the orders whose sales credits name the absorbed member (now the survivor's).

    The credits stay as booked (append-only history; the tombstone resolves to the survivor); these orders go
    out with ``member_merged`` and :func:`merged_orders_attribute` re-credits them after the commit. Runs after
    mall's answer (INSTALLED_APPS order), so the orders have already moved.
    """
    order_ids = sorted(Order.objects.filter(member=survivor, credits__member=absorbed)
                       .values_list("pk", flat=True).distinct())
    return MergeMoved(counts={}, order_ids=tuple(order_ids))


def merged_orders_attribute(*, order_ids: Iterable[int]) -> None:
    """After a member merge: re-credit the orders that moved to the surviving member."""
    order_ids = sorted(set(order_ids or ()))
    if not order_ids:
        return
    attribute_orders(order_ids=order_ids)
    for order_id in order_ids:
        events.record("credits_posted", order_id=order_id)


def orders_attribute_range(*, brand_id: int, date_from: str, date_to: str) -> None:
    """After an import: attribute the brand's imported local days (one set-based run)."""
    attribute_range(brand_id=brand_id, date_from=dt.date.fromisoformat(date_from),
                    date_to=dt.date.fromisoformat(date_to))
