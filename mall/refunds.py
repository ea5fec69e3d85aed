"""Refunds and 7-day no-reason returns: requested by the member (or staff), decided by staff, paid back.

A request reserves what it asks for: per line, the amount still refundable is
the line's amount minus what was refunded and what open (requested or
approved) refunds already ask for, so two requests can never together exceed
what was paid. Approval re-checks that under the order's row lock, asks the
provider to pay the money back (outside the lock: the provider is idempotent
by refund number, so a retried approval cannot pay twice), then books the
refund: order and line refunded amounts (CHECK ``refunded ≤ paid`` as the
backstop), points reversed and spent points returned in proportion, returned
units back in stock, and attribution re-run (negative credits, then
commission reversals) once the booking commits.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Sum, Value, When
from django.utils import timezone

from mall.errors import MallErrorCode
from mall.models import (
    PAID_STATUSES,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    Refund,
    RefundLine,
    Stock,
    StockMovement,
)
from mall.orders import order_lock
from mall.payments.provider import PaymentProvider, ProviderError, RefundOrder, get_payment_provider, to_fen
from mall.payments.services import STRAY_REFUND_PREFIX, order_money_event_record, order_payment
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.scoping import actor_for, in_scope

logger = logging.getLogger(__name__)

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
OPEN_STATUSES = (Refund.Status.REQUESTED, Refund.Status.APPROVED)


@dataclass(frozen=True)
class RefundLineRequest:
    """Part of one order line to refund. ``amount`` None: all that is left; ``quantity``: units coming back."""

    order_line_id: int
    amount: Decimal | None = None
    quantity: int = 0


@dataclass(frozen=True)
class LineRoom:
    """What is still refundable on one line: money and units."""

    line: OrderLine
    amount_left: Decimal
    units_left: int


def is_stray(refund: Refund) -> bool:
    """A refund of a payment the order never counted (paid after close or paid twice): no lines, no bookings."""
    return refund.refund_no.startswith(STRAY_REFUND_PREFIX)


def _exceeds(message: str, fields: dict | None = None) -> ApplicationError:
    return ApplicationError(MallErrorCode.REFUND_EXCEEDS_PAID, message, status=409, fields=fields)


def _line_room(order: Order, *, exclude_refund_id: int | None = None,
               statuses: tuple[str, ...] = OPEN_STATUSES) -> dict[int, LineRoom]:
    """Per line of the order: amount and units not yet refunded or asked for by a refund in ``statuses``."""
    asked = (RefundLine.objects.filter(refund__order=order)
             .exclude(refund_id=exclude_refund_id)
             .values("order_line_id")
             .annotate(amount=Sum("amount", filter=Q(refund__status__in=statuses)),
                       units=Sum("quantity", filter=Q(refund__status__in=(*statuses, Refund.Status.REFUNDED)))))
    asked_by_line = {row["order_line_id"]: row for row in asked}
    room = {}
    for line in order.lines.order_by("pk"):
        row = asked_by_line.get(line.pk, {})
        asked_amount = row.get("amount") or ZERO
        room[line.pk] = LineRoom(line=line, amount_left=line.amount - line.refunded_amount - asked_amount,
                                 units_left=line.quantity - (row.get("units") or 0))
    return room


def _new_refund_no(at: dt.datetime) -> str:
    return f"RF{timezone.localtime(at):%y%m%d%H%M%S}{secrets.token_hex(4).upper()}"


@transaction.atomic
def refund_request(*, order: Order, member=None, user=None, lines: list[RefundLineRequest] | None = None,
                   kind: str = Refund.Kind.REFUND, reason: str = "", at: dt.datetime | None = None) -> Refund:
    """Ask for (part of) a paid order's money back; ``lines`` None means everything still refundable.

    409 for an order that is not paid, a return outside the return window or
    before delivery, and an amount above what is left on a line
    (``refund_exceeds_paid``); 404 for another member's order.
    """
    at = at or timezone.now()
    if member is not None and order.member_id != member.pk:
        raise ApplicationError(MallErrorCode.ORDER_NOT_FOUND, "No such order.", status=404)
    if kind not in Refund.Kind.values:
        raise ApplicationError(ErrorCode.INVALID, "Unknown refund kind.",
                               fields={"kind": [f"One of {Refund.Kind.values}."]})
    order = order_lock(order.pk)
    if order.status not in PAID_STATUSES:
        raise ApplicationError(MallErrorCode.ORDER_NOT_REFUNDABLE,
                               f"Order {order.order_no} is {order.status}: only paid orders can be refunded.",
                               status=409, fields={"status": [order.status]})
    if kind == Refund.Kind.RETURN:
        if order.delivered_at is None:
            raise ApplicationError(MallErrorCode.NOT_DELIVERED, "Goods can be returned once delivered.",
                                   status=409)
        from mall.checkout import mall_settings_for

        days = mall_settings_for(order.brand_id).return_days
        if at > order.delivered_at + dt.timedelta(days=days):
            raise ApplicationError(MallErrorCode.RETURN_WINDOW_CLOSED,
                                   f"No-reason returns are accepted for {days} days after delivery.", status=409)
    room = _line_room(order)
    # Units come back to stock for a return, and for a refund before shipping (they never left the warehouse).
    units_come_back = kind == Refund.Kind.RETURN or order.status == OrderStatus.PAID
    if lines is None:
        wanted = [(r.line, r.amount_left, r.units_left if units_come_back else 0)
                  for r in room.values() if r.amount_left > 0]
        if not wanted:
            raise _exceeds(f"Nothing is left to refund on order {order.order_no}.")
    else:
        wanted, seen, errors = [], set(), []
        for index, item in enumerate(lines, start=1):
            if item.order_line_id not in room or item.order_line_id in seen:
                errors.append(f"Line {index}: not a line of this order, or given twice.")
                continue
            seen.add(item.order_line_id)
            left = room[item.order_line_id]
            amount = left.amount_left if item.amount is None else item.amount
            if amount <= 0 or amount != amount.quantize(CENT) or item.quantity < 0:
                errors.append(f"Line {index}: the amount must be positive with at most 2 decimals, "
                              "units 0 or more.")
                continue
            if amount > left.amount_left:
                raise _exceeds(f"Line {index}: at most {left.amount_left} can still be refunded.",
                               fields={"lines": [f"Line {index}: at most {left.amount_left}."]})
            if item.quantity > left.units_left:
                raise _exceeds(f"Line {index}: at most {left.units_left} units can come back.",
                               fields={"lines": [f"Line {index}: at most {left.units_left} units."]})
            wanted.append((left.line, amount, item.quantity))
        if errors or not wanted:
            raise ApplicationError(ErrorCode.INVALID, "Invalid refund lines.",
                                   fields={"lines": errors or ["At least one line is required."]})
    total = sum((amount for _, amount, _ in wanted), ZERO)
    refund = Refund.objects.create(order=order, refund_no=_new_refund_no(at), kind=kind, amount=total,
                                   reason=reason[:200], requested_at=at, requested_by_member=member,
                                   requested_by_user=user)
    RefundLine.objects.bulk_create([RefundLine(refund=refund, order_line=line, amount=amount, quantity=units)
                                    for line, amount, units in wanted])
    return refund


def _check_staff(refund: Refund, user) -> None:
    actor = actor_for(user)
    if actor.role == "guide":
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "Guides cannot decide refunds.", status=403)
    if not in_scope(refund, actor):
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such refund.", status=404)


def _check_within_paid(order: Order, refund: Refund) -> None:
    """Under the order lock: this refund plus other approved ones stays within what was paid, per line too."""
    others = (Refund.objects.filter(order=order, status=Refund.Status.APPROVED).exclude(pk=refund.pk)
              .exclude(refund_no__startswith=STRAY_REFUND_PREFIX).aggregate(total=Sum("amount"))["total"] or ZERO)
    if order.refunded_amount + others + refund.amount > order.paid_amount:
        left = order.paid_amount - order.refunded_amount - others
        raise _exceeds(f"Only {left} of order {order.order_no} can still be refunded.")
    room = _line_room(order, exclude_refund_id=refund.pk, statuses=(Refund.Status.APPROVED,))
    for refund_line in refund.lines.all():
        left = room[refund_line.order_line_id]
        if refund_line.amount > left.amount_left or refund_line.quantity > left.units_left:
            raise _exceeds(f"Only {left.amount_left} of line {refund_line.order_line_id} can still be refunded.")


def refund_approve(*, refund: Refund, user, provider: PaymentProvider | None = None) -> Refund:
    """Staff in scope approve a requested refund; the provider pays it back and it is booked.

    Approving an approved refund again retries the payout (after a provider
    outage); an already refunded one is returned unchanged.
    """
    _check_staff(refund, user)
    with transaction.atomic():
        order = order_lock(refund.order_id)
        refund = Refund.objects.select_for_update().get(pk=refund.pk)
        if refund.status == Refund.Status.REFUNDED:
            return refund
        if refund.status not in OPEN_STATUSES:
            raise ApplicationError(MallErrorCode.INVALID_REFUND_STATE, f"This refund is {refund.status}.",
                                   status=409, fields={"status": [refund.status]})
        if refund.status == Refund.Status.REQUESTED:
            _check_within_paid(order, refund)
            refund.status, refund.decided_by, refund.decided_at = Refund.Status.APPROVED, user, timezone.now()
            refund.save(update_fields=["status", "decided_by", "decided_at"])
    return refund_execute(refund=refund, provider=provider)


@transaction.atomic
def refund_reject(*, refund: Refund, user, note: str = "") -> Refund:
    """Staff in scope turn down a requested refund (409 once it is decided)."""
    _check_staff(refund, user)
    order_lock(refund.order_id)
    refund = Refund.objects.select_for_update().get(pk=refund.pk)
    if refund.status != Refund.Status.REQUESTED:
        raise ApplicationError(MallErrorCode.INVALID_REFUND_STATE, f"This refund is {refund.status}.",
                               status=409, fields={"status": [refund.status]})
    refund.status, refund.decided_by, refund.decided_at = Refund.Status.REJECTED, user, timezone.now()
    refund.decision_note = note[:200]
    refund.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    return refund


def _payment_of(refund: Refund) -> Payment | None:
    if is_stray(refund):
        return Payment.objects.filter(out_trade_no=refund.refund_no[len(STRAY_REFUND_PREFIX):]).first()
    return order_payment(refund.order)


def _fail(refund: Refund, note: str) -> Refund:
    Refund.objects.filter(pk=refund.pk, status=Refund.Status.APPROVED).update(status=Refund.Status.FAILED,
                                                                             decision_note=note[:200])
    refund.refresh_from_db()
    return refund


def refund_execute(*, refund: Refund, provider: PaymentProvider | None = None) -> Refund:
    """Pay an approved refund back through the provider and book it (safe to repeat).

    A provider outage leaves the refund approved (503; approving again or the
    task's retry tries again); a refusal marks it failed (409 ``refund_failed``).
    """
    refund = Refund.objects.select_related("order").get(pk=refund.pk)
    if refund.status == Refund.Status.REFUNDED:
        return refund
    if refund.status != Refund.Status.APPROVED:
        raise ApplicationError(MallErrorCode.INVALID_REFUND_STATE, f"This refund is {refund.status}.", status=409)
    payment = _payment_of(refund)
    if payment is None:
        _fail(refund, "no paid payment to refund")
        raise ApplicationError(MallErrorCode.REFUND_FAILED, "The order has no payment to refund.", status=409)
    try:
        provider = provider or get_payment_provider()
        outcome = provider.refund(RefundOrder(out_refund_no=refund.refund_no, out_trade_no=payment.out_trade_no,
                                              transaction_id=payment.transaction_id,
                                              refund_fen=to_fen(refund.amount), total_fen=to_fen(payment.amount),
                                              reason=refund.reason))
    except ProviderError as exc:
        if exc.retryable:
            raise ApplicationError(MallErrorCode.PROVIDER_UNAVAILABLE,
                                   "The payment service is unavailable; the refund stays approved, try again.",
                                   status=503) from None
        _fail(refund, f"provider refused: {exc.code} {exc.message}")
        raise ApplicationError(MallErrorCode.REFUND_FAILED, f"The payment service refused: {exc.message}",
                               status=409) from None
    except Exception as exc:  # ImproperlyConfigured and the like: a deployment fault, the refund stays approved
        logger.error("refund %s: provider unavailable: %s", refund.refund_no, exc)
        raise ApplicationError(MallErrorCode.PROVIDER_UNAVAILABLE, "The payment service is unavailable.",
                               status=503) from None
    if not outcome.accepted:
        _fail(refund, f"provider status {outcome.status}")
        raise ApplicationError(MallErrorCode.REFUND_FAILED, f"The payment service answered {outcome.status}.",
                               status=409)
    return _refund_book(refund_id=refund.pk, provider_refund_id=outcome.refund_id)


@transaction.atomic
def _refund_book(*, refund_id: int, provider_refund_id: str) -> Refund:
    """Record a refund the provider accepted: once, under the order lock."""
    at = timezone.now()
    refund = Refund.objects.only("order_id").get(pk=refund_id)
    order = order_lock(refund.order_id)
    refund = Refund.objects.select_for_update().get(pk=refund_id)
    if refund.status == Refund.Status.REFUNDED:
        return refund
    refund.status, refund.provider_refund_id, refund.refunded_at = Refund.Status.REFUNDED, provider_refund_id, at
    refund.save(update_fields=["status", "provider_refund_id", "refunded_at"])
    if is_stray(refund):
        return refund  # the order never counted this money: its amounts, points and stock stay as they are
    lines = list(refund.lines.select_related("order_line").order_by("order_line_id"))
    # New totals are computed here, not with F(): every writer of these amounts holds the order lock we
    # hold, and SQLite would add decimals as floats (100 + 249.96 = 349.96000000000004 > 349.96).
    order.refunded_amount += refund.amount
    for rl in lines:
        rl.order_line.refunded_amount += rl.amount
    try:
        with transaction.atomic():
            order.save(update_fields=["refunded_amount"])
            OrderLine.objects.bulk_update([rl.order_line for rl in lines], ["refunded_amount"])
    except IntegrityError:  # the CHECK backstop: only reachable if something bypassed the checks above
        raise _exceeds(f"Refund {refund.refund_no} would refund more than was paid.") from None
    _points_for_refund(order=order, refund=refund)
    _stock_back(order=order, refund=refund, lines=lines)
    order_money_event_record(order=order, event="order_refunded")
    return refund


def _points_for_refund(*, order: Order, refund: Refund) -> None:
    """Reverse earned points and return spent ones in proportion to the share of the order now refunded.

    Cumulative: after each refund the totals reversed/returned are floor(points × refunded ÷ paid), so
    several partial refunds add up to exactly all the points once the order is fully refunded. A reversal
    may take the balance below zero (the member spent the points meanwhile); the ledger keeps the debt.
    """
    if not order.member_id or order.paid_amount <= 0:
        return
    from members.models import PointsEntry

    reason = PointsEntry.Reason
    sums = PointsEntry.objects.filter(order=order).aggregate(
        earned=Sum("delta", filter=Q(reason=reason.EARN, refund__isnull=True)),
        spent=Sum("delta", filter=Q(reason=reason.SPEND, refund__isnull=True)),
        reversed=Sum("delta", filter=Q(reason=reason.REVERSE, refund__isnull=False)),
        released=Sum("delta", filter=Q(reason=reason.RELEASE, refund__isnull=False)))
    def due(points: int) -> int:
        # Multiply before dividing: points × 40 ÷ 437 must not come out as 39.999… and floor to 39.
        return int((points * order.refunded_amount / order.paid_amount).to_integral_value(rounding=ROUND_FLOOR))

    reverse_now = due(sums["earned"] or 0) - (-(sums["reversed"] or 0))
    release_now = due(-(sums["spent"] or 0)) - (sums["released"] or 0)
    from members.services import points_post

    # Once per (refund, reason): a booking that somehow ran twice cannot move points twice. Earned points the
    # member already spent are still taken back (the balance may go below zero until they earn again).
    if reverse_now > 0:
        points_post(member=order.member, brand=order.brand, delta=-reverse_now, reason=reason.REVERSE, order=order,
                    refund=refund, note=refund.refund_no, allow_overdraw=True)
    if release_now > 0:
        points_post(member=order.member, brand=order.brand, delta=release_now, reason=reason.RELEASE, order=order,
                    refund=refund, note=refund.refund_no)


def _stock_back(*, order: Order, refund: Refund, lines: list[RefundLine]) -> None:
    """Units coming back go back on sale: F() increments in SKU order, one movement row each."""
    units: dict[int, int] = {}
    for rl in lines:
        if rl.quantity and rl.order_line.sku_id:
            units[rl.order_line.sku_id] = units.get(rl.order_line.sku_id, 0) + rl.quantity
    if not units:
        return
    skus = sorted(units)
    Stock.objects.bulk_create([Stock(sku_id=pk, quantity=0) for pk in skus], ignore_conflicts=True)
    Stock.objects.filter(sku_id__in=skus).update(
        quantity=F("quantity") + Case(*[When(sku_id=pk, then=Value(units[pk])) for pk in skus]))
    StockMovement.objects.bulk_create([
        StockMovement(sku_id=pk, delta=units[pk], reason=StockMovement.Reason.RETURN, order=order,
                      by=refund.decided_by, note=refund.refund_no) for pk in skus])
