"""Celery tasks of the mall: thin, take ids or nothing, call a service; safe to run twice."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="mall.tasks.orders_expire")
def orders_expire() -> dict:
    from mall.checkout import orders_expire as expire

    return {"expired": expire()}


@shared_task(name="mall.tasks.payments_reconcile")
def payments_reconcile() -> dict:
    """Every few minutes: ask the provider about payments whose notification never came."""
    from mall.payments.services import payments_reconcile as reconcile

    result = reconcile(older_than_minutes=5)
    return {"checked": result.checked, "paid": result.paid, "closed": result.closed, "failed": result.failed,
            "refunds_retried": result.refunds_retried, "refunds_failed": result.refunds_failed}


@shared_task(name="mall.tasks.idempotency_purge")
def idempotency_purge() -> dict:
    """Daily: drop Idempotency-Key records past their 24 hours."""
    from retail_crm.idempotency import idempotency_purge as purge

    return {"deleted": purge()}


@shared_task(name="mall.tasks.refund_execute", bind=True, max_retries=8)
def refund_execute(self, refund_id: int) -> dict:
    """Pay an approved refund back (automatic refunds of stray payments); retried while the provider is down."""
    from mall.errors import MallErrorCode
    from mall.models import Refund
    from mall.refunds import refund_execute as execute
    from retail_crm.errors import ApplicationError

    refund = Refund.objects.filter(pk=refund_id).first()
    if refund is None:
        return {"refund_id": refund_id, "status": "missing"}
    try:
        refund = execute(refund=refund)
    except ApplicationError as exc:
        if exc.code == MallErrorCode.PROVIDER_UNAVAILABLE:
            raise self.retry(countdown=min(60 * 2 ** self.request.retries, 3600)) from None
        return {"refund_id": refund_id, "status": "error", "code": exc.code}
    return {"refund_id": refund_id, "status": refund.status}


@shared_task(name="mall.tasks.orders_auto_receive")
def orders_auto_receive() -> dict:
    """Complete shipped orders the member never confirmed (the return window starts at delivery)."""
    from mall.fulfilment import orders_auto_receive as receive

    return {"completed": receive()}
