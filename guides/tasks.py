"""Celery tasks for guides: thin, safe to run twice (the commission build writes only what is missing)."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from guides.commission import commission_build_for_range
from guides.handlers import order_commission_post as commission_post


@shared_task(name="guides.tasks.commission_build_recent")
def commission_build_recent(hours: int = 48) -> dict:
    """Nightly after the attribution sweep: commission for credit rows written in the last ``hours`` that lack
    it, and office-staff shares brought up to date.

    Commission follows each attributed order through ``credits_posted``; the sweep and range re-runs write
    credits without it (a refund of an old order included, hence written-since rather than order days).
    """
    since = timezone.now() - dt.timedelta(hours=hours)
    result = commission_build_for_range(booked_since=since)
    return {"booked_since": since.isoformat(), "entries_written": result.entries_written,
            "staff_entries_written": result.staff_entries_written}


@shared_task(name="mall.tasks.order_commission_post")
def order_commission_post(order_id: int) -> dict:
    """Post the commission an order's sales credits call for (idempotent).

    Nothing queues this any more: commission follows ``credits_posted`` (``guides.handlers``). It keeps the
    name it had in ``mall`` so messages queued before the change still find a task and run.
    """
    return {"order_id": order_id, "posted": commission_post(order_id=order_id)}
