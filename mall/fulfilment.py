"""The rest of the order life after payment: shipped by the warehouse, received by the member, completed.

paid → shipped (staff, with the carrier's tracking number) → completed when the
member confirms receipt, or automatically ``AUTO_RECEIPT_DAYS`` after shipping
if they never do. ``delivered_at`` starts the 7-day no-reason return window.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from mall.models import Order, OrderStatus
from mall.orders import order_lock, order_transition
from retail_crm.errors import ApplicationError, ErrorCode

AUTO_RECEIPT_DAYS = 10  # WeChat mini-program malls commonly confirm receipt automatically after 7–15 days


@transaction.atomic
def order_ship(*, order: Order, by_user, tracking_no: str = "", at: dt.datetime | None = None) -> Order:
    """The warehouse shipped a paid order (409 unless it is paid)."""
    order = order_lock(order.pk)
    note = f"tracking {tracking_no}"[:200] if tracking_no else ""
    order_transition(order=order, to_status=OrderStatus.SHIPPED, by_user=by_user, note=note, at=at)
    return order


@transaction.atomic
def order_confirm_receipt(*, order: Order, by_member=None, by_system: str = "", at: dt.datetime | None = None
                          ) -> Order:
    """The member received a shipped order: delivered now, order completed (409 unless shipped)."""
    at = at or timezone.now()
    order = order_lock(order.pk)
    if order.status != OrderStatus.SHIPPED:
        raise ApplicationError(ErrorCode.INVALID_TRANSITION,
                               f"Order {order.order_no} is {order.status}; only a shipped order can be received.",
                               status=409, fields={"status": [order.status]})
    order.delivered_at = order.delivered_at or at
    order_transition(order=order, to_status=OrderStatus.COMPLETED, by_member=by_member, by_system=by_system, at=at,
                     extra_fields=("delivered_at",))
    return order


def orders_auto_receive(*, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """Complete shipped orders nobody confirmed within AUTO_RECEIPT_DAYS; returns how many."""
    now = now or timezone.now()
    due = list(Order.objects.filter(status=OrderStatus.SHIPPED,
                                    shipped_at__lte=now - dt.timedelta(days=AUTO_RECEIPT_DAYS))
               .order_by("shipped_at").values_list("pk", flat=True)[:limit])
    done = 0
    for pk in due:
        with transaction.atomic():
            order = Order.objects.select_for_update(skip_locked=True).filter(pk=pk, status=OrderStatus.SHIPPED).first()
            if order is None:
                continue
            order_confirm_receipt(order=order, by_system="auto_receipt", at=now)
            done += 1
    return done
