"""The order life: which status may follow which, and the one function that moves an order.

pending_payment → paid → shipped → completed, with cancelled/expired closing
an unpaid order. Every move is recorded (OrderTransition: from, to, when, by
whom). Callers hold the order's row lock (``order_lock``) while they check
and move, so two requests cannot move one order twice; an illegal move is a
409 the client can branch on.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from mall.errors import MallErrorCode
from mall.models import Order, OrderStatus, OrderTransition
from retail_crm.errors import ApplicationError, ErrorCode

ALLOWED: dict[str, frozenset[str]] = {
    OrderStatus.PENDING_PAYMENT: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED, OrderStatus.EXPIRED}),
    OrderStatus.PAID: frozenset({OrderStatus.SHIPPED, OrderStatus.COMPLETED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.COMPLETED}),
    OrderStatus.COMPLETED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
}

# The timestamp each status stamps on the order.
_STAMP = {OrderStatus.PAID: "paid_at", OrderStatus.SHIPPED: "shipped_at", OrderStatus.COMPLETED: "completed_at",
          OrderStatus.CANCELLED: "closed_at", OrderStatus.EXPIRED: "closed_at"}


def order_lock(order_id: int) -> Order:
    """The order, locked for update until the surrounding transaction ends (404 if there is none)."""
    order = Order.objects.select_for_update().filter(pk=order_id).first()
    if order is None:
        raise ApplicationError(MallErrorCode.ORDER_NOT_FOUND, "No such order.", status=404)
    return order


@transaction.atomic
def order_transition(*, order: Order, to_status: str, by_user=None, by_member=None, by_system: str = "",
                     note: str = "", at: dt.datetime | None = None, extra_fields: tuple[str, ...] = ()
                     ) -> OrderTransition:
    """Move a (locked) order to ``to_status`` and record who did it; 409 if the move is not allowed.

    ``extra_fields`` are other fields of ``order`` the caller changed and wants saved with the move.
    """
    at = at or timezone.now()
    if to_status not in ALLOWED.get(order.status, frozenset()):
        raise ApplicationError(
            ErrorCode.INVALID_TRANSITION,
            f"Order {order.order_no} is {order.status} and cannot become {to_status}.", status=409,
            fields={"status": [order.status]})
    from_status = order.status
    order.status = to_status
    fields = ["status", *extra_fields]
    stamp = _STAMP.get(to_status)
    if stamp and getattr(order, stamp) is None:
        setattr(order, stamp, at)
        fields.append(stamp)
    order.save(update_fields=sorted(set(fields)))
    return OrderTransition.objects.create(order=order, from_status=from_status, to_status=to_status, at=at,
                                          by_user=by_user, by_member=by_member, by_system=by_system, note=note)


def orders_member_merge(*, survivor, absorbed) -> dict[str, int]:
    """A member merge (``member_merge`` hook): the absorbed member's orders become the survivor's."""
    return {"orders": Order.objects.filter(member=absorbed).update(member=survivor)}
