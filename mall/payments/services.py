"""Paying an order: prepay, the provider's signed notification, and reconciliation of missed notifications.

The paid path (:func:`_apply_paid`) is the one place an order becomes paid. It
runs under the order's row lock, so however many times and however
concurrently the provider delivers a notification (or reconciliation finds
the same payment), the order is paid once, the coupon used once, points
earned once (the ledger's unique key is the backstop) and attribution and
commission enqueued once. Money that arrives for an order that can no longer
take it (expired or cancelled meanwhile, or already paid by another payment)
is never lost and never resurrects the order: it is refunded automatically.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from dataclasses import dataclass
from decimal import ROUND_FLOOR
from enum import StrEnum

from django.db import transaction
from django.utils import timezone

from mall.errors import MallErrorCode
from mall.models import Coupon, CouponStatus, Order, OrderStatus, Payment, PaymentNotification, Refund
from mall.orders import order_lock, order_transition
from mall.payments.provider import (
    PaymentNotice,
    PaymentProvider,
    PrepayParams,
    ProviderError,
    SignatureInvalid,
    TradeState,
    get_payment_provider,
    to_fen,
)
from retail_crm import events
from retail_crm.errors import ApplicationError

logger = logging.getLogger(__name__)

# Refunds of money the order never counted (paid after close, paid twice) are numbered after the payment,
# which makes them once-only per payment through Refund.refund_no's unique key.
STRAY_REFUND_PREFIX = "RP"


class NotifyOutcome(StrEnum):
    """What a delivery (or a reconciliation) did; recorded on PaymentNotification.outcome."""

    PAID = "paid"
    DUPLICATE = "duplicate"
    PAID_AFTER_CLOSE = "paid_after_close"
    PAID_TWICE = "paid_twice"
    NOT_SUCCESS = "not_success"
    BAD_SIGNATURE = "bad_signature"
    MALFORMED = "malformed"
    UNKNOWN_TRADE_NO = "unknown_trade_no"
    AMOUNT_MISMATCH = "amount_mismatch"
    TRANSACTION_CONFLICT = "transaction_conflict"
    ERROR = "error"


# Outcomes after which the provider must stop redelivering (we have what it told us).
ACKNOWLEDGED = frozenset({NotifyOutcome.PAID, NotifyOutcome.DUPLICATE, NotifyOutcome.PAID_AFTER_CLOSE,
                          NotifyOutcome.PAID_TWICE, NotifyOutcome.NOT_SUCCESS})


@dataclass(frozen=True)
class PrepareResult:
    payment: Payment
    params: PrepayParams


@dataclass(frozen=True)
class NotifyResult:
    outcome: NotifyOutcome
    notification: PaymentNotification
    order_id: int | None = None

    @property
    def acknowledged(self) -> bool:
        return self.outcome in ACKNOWLEDGED


def stray_refund_no(payment: Payment) -> str:
    return f"{STRAY_REFUND_PREFIX}{payment.out_trade_no}"[:40]


def _new_out_trade_no(order: Order) -> str:
    # WeChat: 6–32 characters of [0-9A-Za-z_-|*]; unique per merchant.
    return f"P{order.pk:010d}{secrets.token_hex(5)}"


def _provider_unavailable() -> ApplicationError:
    return ApplicationError(MallErrorCode.PROVIDER_UNAVAILABLE,
                            "The payment service is unavailable; try again in a moment.", status=503)


# ---------------------------------------------------------------------------- prepay

def payment_prepare(*, order: Order, member, provider: PaymentProvider | None = None) -> PrepareResult:
    """Prepay parameters for the member's own pending order (404 for another's; 409 once not payable).

    One open Payment per order and amount is reused, so a member tapping "pay"
    twice gets the same trade number (WeChat answers the same prepay id) and
    cannot be charged twice for it.
    """
    now = timezone.now()
    if order.member_id != member.pk:
        raise ApplicationError(MallErrorCode.ORDER_NOT_FOUND, "No such order.", status=404)
    if not member.openid:
        raise ApplicationError(MallErrorCode.PAYER_UNKNOWN,
                               "Log in through the mini-program before paying.", status=409)
    try:
        provider = provider or get_payment_provider()
    except Exception as exc:  # ImproperlyConfigured: a deployment fault, not the member's
        logger.error("payment provider not configured: %s", exc)
        raise _provider_unavailable() from None
    with transaction.atomic():
        order = order_lock(order.pk)
        if order.status != OrderStatus.PENDING_PAYMENT:
            raise ApplicationError(MallErrorCode.ORDER_NOT_PAYABLE,
                                   f"Order {order.order_no} is {order.status} and cannot be paid.", status=409,
                                   fields={"status": [order.status]})
        if order.expires_at is not None and order.expires_at <= now:
            raise ApplicationError(MallErrorCode.ORDER_EXPIRED,
                                   f"Order {order.order_no} was due by {order.expires_at.isoformat()}.", status=409)
        if order.total_amount <= 0:
            raise ApplicationError(MallErrorCode.ORDER_NOT_PAYABLE, "Nothing to pay.", status=409)
        payment = (Payment.objects.filter(order=order, status=Payment.Status.CREATED, amount=order.total_amount,
                                          provider=provider.name).order_by("pk").first())
        if payment is None:
            payment = Payment.objects.create(order=order, provider=provider.name, amount=order.total_amount,
                                             out_trade_no=_new_out_trade_no(order))
    # The provider call happens outside the lock: a slow provider must not hold up the order's notification.
    try:
        params = provider.create_prepay(order, payment, openid=member.openid)
    except ProviderError as exc:
        logger.warning("prepay failed for %s: %s", payment.out_trade_no, exc.code or exc.message)
        raise _provider_unavailable() from None
    if payment.prepay_id != params.prepay_id:
        Payment.objects.filter(pk=payment.pk).update(prepay_id=params.prepay_id)
        payment.prepay_id = params.prepay_id
    return PrepareResult(payment=payment, params=params)


# ---------------------------------------------------------------------------- the paid path

def _points_earned(order: Order) -> int:
    from mall.checkout import mall_settings_for

    rate = mall_settings_for(order.brand_id).points_per_yuan
    return int((order.paid_amount * rate).to_integral_value(rounding=ROUND_FLOOR))


def order_money_event_record(*, order: Order, event: str) -> None:
    """Record that money moved on ``order`` (``order_paid`` or ``order_refunded``) in the current transaction.

    What follows (attribution, then commission; the buyer's rule tags) is subscribed by the apps that do it
    (``retail_crm.events``): it runs after the commit, and a broker outage delays it without losing it.
    """
    events.record(event, order_id=order.pk, member_id=order.member_id, brand_id=order.brand_id)


def _refund_stray_payment(*, order: Order, payment: Payment, why: str, at: dt.datetime) -> Refund:
    """Start giving back a payment the order cannot take; once per payment (refund number from the payment)."""
    refund, _ = Refund.objects.get_or_create(
        refund_no=stray_refund_no(payment),
        defaults={"order": order, "kind": Refund.Kind.REFUND, "status": Refund.Status.APPROVED,
                  "amount": payment.amount, "reason": why[:200], "requested_at": at, "decided_at": at,
                  "decision_note": f"automatic: payment {payment.out_trade_no}"})

    def execute():
        from mall.tasks import refund_execute

        refund_execute.delay(refund.pk)

    # robust: a provider hiccup in the follow-up must not turn the acknowledged notification into a 500;
    # reconciliation retries refunds left approved.
    transaction.on_commit(execute, robust=True)
    return refund


def _apply_paid(notice: PaymentNotice, *, source: str, at: dt.datetime) -> tuple[NotifyOutcome, int | None]:
    """Apply a verified "paid" statement. Returns the outcome and the order id (None if unknown)."""
    payment = Payment.objects.filter(out_trade_no=notice.out_trade_no).only("pk", "order_id", "amount").first()
    if payment is None:
        return NotifyOutcome.UNKNOWN_TRADE_NO, None
    with transaction.atomic():
        order = order_lock(payment.order_id)
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if notice.amount_fen != to_fen(payment.amount):
            return NotifyOutcome.AMOUNT_MISMATCH, order.pk
        if payment.status == Payment.Status.PAID:
            if payment.transaction_id == notice.transaction_id:
                return NotifyOutcome.DUPLICATE, order.pk
            return NotifyOutcome.TRANSACTION_CONFLICT, order.pk
        if Payment.objects.filter(transaction_id=notice.transaction_id).exclude(pk=payment.pk).exists():
            return NotifyOutcome.TRANSACTION_CONFLICT, order.pk
        payment.status, payment.transaction_id = Payment.Status.PAID, notice.transaction_id
        payment.paid_at = notice.success_time or at
        payment.save(update_fields=["status", "transaction_id", "paid_at"])

        if order.status != OrderStatus.PENDING_PAYMENT or payment.amount != order.total_amount:
            closed = order.status in (OrderStatus.EXPIRED, OrderStatus.CANCELLED)
            outcome = NotifyOutcome.PAID_AFTER_CLOSE if closed else NotifyOutcome.PAID_TWICE
            _refund_stray_payment(order=order, payment=payment, at=at,
                                  why=f"Paid after the order was {order.status}" if closed
                                  else "Order already paid by another payment")
            logger.warning("payment %s for order %s: %s, refunding", payment.out_trade_no, order.order_no, outcome)
            return outcome, order.pk

        order.paid_amount = order.total_amount
        order_transition(order=order, to_status=OrderStatus.PAID, by_system=source, at=at,
                         note=f"payment {payment.out_trade_no} / {notice.transaction_id}"[:200],
                         extra_fields=("paid_amount",))
        Coupon.objects.filter(used_order=order, status=CouponStatus.LOCKED).update(status=CouponStatus.USED,
                                                                                   used_at=at)
        if order.member_id:
            points = _points_earned(order)
            if points > 0:
                from members.models import PointsEntry
                from members.services import points_post

                points_post(member=order.member, brand=order.brand, delta=points, reason=PointsEntry.Reason.EARN,
                            order=order, note=order.order_no)
        order_money_event_record(order=order, event="order_paid")
        return NotifyOutcome.PAID, order.pk


def _record(*, provider_name: str, outcome: NotifyOutcome, body: str, verified: bool,
            notice: PaymentNotice | None = None) -> PaymentNotification:
    return PaymentNotification.objects.create(
        provider=provider_name, outcome=outcome, verified=verified, body=body,
        out_trade_no=(notice.out_trade_no if notice else "")[:40],
        transaction_id=(notice.transaction_id if notice else "")[:64])


def payment_notify(*, provider: PaymentProvider, headers, body: bytes) -> NotifyResult:
    """Handle one delivery of the provider's payment notification; every delivery is recorded.

    A bad signature, an unknown trade number or a wrong amount changes nothing
    but the audit row. The outcome says whether to acknowledge (so the provider
    stops redelivering) or refuse.
    """
    at = timezone.now()
    # Kept for the audit as text; PostgreSQL text cannot hold NUL, so it is spelled out.
    text = body.decode("utf-8", errors="replace").replace("\x00", "\\u0000")
    try:
        notice = provider.parse_and_verify_notification(headers, body)
    except SignatureInvalid as exc:
        logger.warning("payment notification refused: %s", exc)
        return NotifyResult(NotifyOutcome.BAD_SIGNATURE,
                            _record(provider_name=provider.name, outcome=NotifyOutcome.BAD_SIGNATURE, body=text,
                                    verified=False))
    except ValueError as exc:
        logger.warning("payment notification unreadable: %s", exc)
        return NotifyResult(NotifyOutcome.MALFORMED,
                            _record(provider_name=provider.name, outcome=NotifyOutcome.MALFORMED, body=text,
                                    verified=True))
    order_id = None
    try:
        if not notice.paid:
            outcome = NotifyOutcome.NOT_SUCCESS
        else:
            outcome, order_id = _apply_paid(notice, source=f"notify:{provider.name}", at=at)
    except Exception:
        _record(provider_name=provider.name, outcome=NotifyOutcome.ERROR, body=text, verified=True, notice=notice)
        raise
    return NotifyResult(outcome, _record(provider_name=provider.name, outcome=outcome, body=text, verified=True,
                                         notice=notice), order_id)


# ---------------------------------------------------------------------------- reconciliation

@dataclass
class ReconcileResult:
    checked: int = 0
    paid: int = 0
    closed: int = 0
    failed: int = 0
    refunds_retried: int = 0
    refunds_failed: int = 0


def payments_reconcile(*, older_than_minutes: int = 5, provider: PaymentProvider | None = None,
                       now: dt.datetime | None = None, limit: int = 500) -> ReconcileResult:
    """Ask the provider about payments still ``created`` after a while: apply those it says are paid.

    The notification may have been lost (our outage, a network fault). A trade
    the provider reports paid goes through exactly the notification's paid path;
    an unpaid trade of an order that has closed is marked closed so it is not
    asked about again. Refunds left approved for as long (the provider was down
    when they were approved or refunded automatically) are paid out again; the
    provider is idempotent by refund number.
    """
    now = now or timezone.now()
    provider = provider or get_payment_provider()
    result = ReconcileResult()
    due = list(Payment.objects.filter(status=Payment.Status.CREATED, provider=provider.name,
                                      created_at__lte=now - dt.timedelta(minutes=older_than_minutes))
               .select_related("order").order_by("created_at")[:limit])
    for payment in due:
        result.checked += 1
        try:
            notice = provider.query(payment.out_trade_no)
        except ProviderError as exc:
            if exc.code == "ORDER_NOT_EXIST" and payment.order.status != OrderStatus.PENDING_PAYMENT:
                # Prepay never reached the provider and the order is gone: nothing can arrive for it.
                Payment.objects.filter(pk=payment.pk, status=Payment.Status.CREATED).update(
                    status=Payment.Status.CLOSED)
                result.closed += 1
            else:
                result.failed += 1
            continue
        if notice.paid:
            outcome, _ = _apply_paid(notice, source="reconcile", at=now)
            _record(provider_name=provider.name, outcome=outcome, verified=True, notice=notice,
                    body=json.dumps({"source": "reconcile", "transaction": notice.raw}, ensure_ascii=False,
                                    default=str))
            result.paid += outcome == NotifyOutcome.PAID
        elif notice.trade_state in (TradeState.NOTPAY, TradeState.CLOSED) and \
                payment.order.status != OrderStatus.PENDING_PAYMENT:
            Payment.objects.filter(pk=payment.pk, status=Payment.Status.CREATED).update(status=Payment.Status.CLOSED)
            result.closed += 1
    _refunds_retry(result=result, before=now - dt.timedelta(minutes=older_than_minutes), provider=provider,
                   limit=limit)
    return result


def _refunds_retry(*, result: ReconcileResult, before: dt.datetime, provider: PaymentProvider, limit: int) -> None:
    from mall.refunds import refund_execute  # refunds builds on this module

    stuck = list(Refund.objects.filter(status=Refund.Status.APPROVED, decided_at__lte=before)
                 .order_by("decided_at").values_list("pk", flat=True)[:limit])
    for pk in stuck:
        try:
            refund_execute(refund=Refund(pk=pk), provider=provider)
        except ApplicationError as exc:
            logger.warning("refund %s still not paid out: %s", pk, exc.code)
            result.refunds_failed += 1
        else:
            result.refunds_retried += 1


def order_payment(order: Order) -> Payment | None:
    """The payment that paid the order (not a stray one that is being given back)."""
    stray = set(Refund.objects.filter(order=order, refund_no__startswith=STRAY_REFUND_PREFIX)
                .values_list("refund_no", flat=True))
    for payment in order.payments.filter(status=Payment.Status.PAID).order_by("paid_at", "pk"):
        if stray_refund_no(payment) not in stray:
            return payment
    return None


__all__ = ["NotifyOutcome", "NotifyResult", "PrepareResult", "ReconcileResult",
           "order_payment", "payment_notify", "payment_prepare", "payments_reconcile", "stray_refund_no"]
