"""Celery tasks for behaviour events: thin wrappers over ``members.events``, safe to run twice.

Registered under ``members.tasks.*`` (``members/tasks.py`` imports this module).
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from members import events


def _summary(result: events.ActivitySummaryResult) -> dict:
    return {"date_from": result.date_from.isoformat(), "date_to": result.date_to.isoformat(),
            "brand_days": result.brand_days, "rows_written": result.rows_written}


@shared_task(name="members.tasks.activity_summarise_range")
def activity_summarise_range(date_from: str, date_to: str, brand_id: int | None = None) -> dict:
    """Rebuild the daily counters of [date_from, date_to] (ISO dates, local days)."""
    result = events.activity_summarise(date_from=dt.date.fromisoformat(date_from),
                                       date_to=dt.date.fromisoformat(date_to), brand_id=brand_id)
    return _summary(result)


@shared_task(name="members.tasks.activity_summarise_yesterday")
def activity_summarise_yesterday() -> dict:
    """Yesterday's counters, plus earlier days that received late (offline-queued) events since then."""
    today = events.local_today()
    yesterday = today - dt.timedelta(days=1)
    since = dt.datetime.combine(yesterday, dt.time.min, tzinfo=timezone.get_default_timezone())
    late = events.late_event_days(received_since=since, before=yesterday)
    for day in late:
        events.activity_summarise(date_from=day, date_to=day)
    out = activity_summarise_range(yesterday.isoformat(), yesterday.isoformat())
    out["late_days"] = [day.isoformat() for day in late]
    return out


@shared_task(name="members.tasks.activity_summarise_today")
def activity_summarise_today() -> dict:
    """Today's counters so far (rebuilt whole each run, so running it often is harmless)."""
    day = events.local_today().isoformat()
    return activity_summarise_range(day, day)


@shared_task(name="members.tasks.events_purge")
def events_purge(days: int = events.DEFAULT_RETENTION_DAYS) -> dict:
    """Delete raw events older than ``days`` (default 180) whose days are summarised."""
    result = events.events_purge(days=days)
    return {"cutoff": result.cutoff.isoformat(), "deleted": result.deleted,
            "unsummarised": [[brand, day.isoformat()] for brand, day in result.unsummarised]}
