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
from retail_crm import hooks

#: What follows one order's credits at once when they were written by ``attribute_order`` (not through events).
hooks.declare("order_credits_posted", "order_id: int -> int; the task attribute_order (re)wrote that order's "
                                      "credits; post what follows from them now and say how many entries")


@shared_task(name="analytics.tasks.attribute_order")
def attribute_order(order_id: int) -> dict:
    """Attribute one order and post its commission at once (direct calls, and messages queued for this name).

    Payments, refunds and imports go through events instead: ``attribution.handlers`` records
    ``credits_posted``, which commission follows. This task answers in one go, so it asks the
    ``order_credits_posted`` hook (commission in ``guides`` provides it) rather than waiting for the relay.
    """
    results = attribute_orders(order_ids=[order_id])
    posted = hooks.call_all("order_credits_posted", order_id=order_id)
    return {"order_id": order_id, "rows_written": sum(len(r.rows_written) for r in results),
            "commission_entries": sum(posted)}


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
    """Attribute ``order_id`` (and post its commission) once the current transaction commits."""
    transaction.on_commit(lambda: attribute_order.delay(order_id))
