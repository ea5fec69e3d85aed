"""Celery tasks for attribution: thin, take ids or dates, call the service; safe to run twice.

The services only ever write the difference between the wanted and the booked
credits, so a task delivered twice (acks_late, a retried payment notification,
an overlapping sweep) writes nothing the second time.
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from attribution.services import attribute_orders, attribute_range, attribute_sweep


@shared_task(name="analytics.tasks.attribute_order")
def attribute_order(order_id: int) -> dict:
    """Attribute one order (after payment, refund or import update)."""
    results = attribute_orders(order_ids=[order_id])
    # Commission follows the credits just written (idempotent: one entry per credit row and kind).
    from guides.commission import commission_post_for_credits
    from mall.models import Order

    order = Order.objects.filter(pk=order_id).first()
    posted = len(commission_post_for_credits(order=order)) if order is not None else 0
    return {"order_id": order_id, "rows_written": sum(len(r.rows_written) for r in results),
            "commission_entries": posted}


@shared_task(name="analytics.tasks.attribute_sweep")
def attribute_sweep_task(since: str | None = None) -> dict:
    """Nightly: attribute whatever was paid or changed since ``since`` (ISO datetime; default: 2 days ago)."""
    moment = dt.datetime.fromisoformat(since) if since else timezone.now() - dt.timedelta(days=2)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_default_timezone())
    result = attribute_sweep(since=moment)
    return {"since": moment.isoformat(), "orders": result.orders, "rows_written": result.rows_written}


@shared_task(name="analytics.tasks.attribute_range")
def attribute_range_task(brand_id: int, date_from: str, date_to: str) -> dict:
    """Re-run one brand over local order days [date_from, date_to] (ISO dates), e.g. after a rule change."""
    result = attribute_range(brand_id=brand_id, date_from=dt.date.fromisoformat(date_from),
                             date_to=dt.date.fromisoformat(date_to))
    return {"brand_id": brand_id, "date_from": date_from, "date_to": date_to, "orders": result.orders,
            "rows_written": result.rows_written}


def attribution_enqueue_on_commit(order_id: int) -> None:
    """Attribute ``order_id`` once the current transaction commits (payment, refund and import code call this)."""
    transaction.on_commit(lambda: attribute_order.delay(order_id))
