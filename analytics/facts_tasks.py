"""Celery tasks that build the dashboard's daily facts (``analytics.facts``): thin, safe to run twice.

Beat (retail_crm/schedule.py) runs ``facts_rebuild_nightly`` once a night for yesterday and
every day changed late (refunds, tasks executed, care items done), and
``facts_rebuild_today`` hourly; ``facts_rebuild_range`` rebuilds any range on demand
(after re-attributing history or importing old POS orders).
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from analytics.facts import FactsRebuildResult, facts_rebuild, facts_rebuild_changed
from analytics.services import local_today


def _summary(result: FactsRebuildResult) -> dict:
    return {"date_from": result.date_from.isoformat(), "date_to": result.date_to.isoformat(), "days": result.days,
            "rows_written": dict(sorted(result.rows_written.items())), "duration_ms": result.duration_ms}


@shared_task(name="analytics.facts_rebuild_range")
def facts_rebuild_range(date_from: str, date_to: str, brand_id: int | None = None) -> dict:
    """Every fact table for the local days [date_from, date_to] (ISO dates), one brand or all."""
    return _summary(facts_rebuild(date_from=dt.date.fromisoformat(date_from), date_to=dt.date.fromisoformat(date_to),
                                  brand_id=brand_id))


@shared_task(name="analytics.facts_rebuild_nightly")
def facts_rebuild_nightly() -> dict:
    """Yesterday, and every earlier day something changed in since yesterday's local midnight."""
    yesterday = local_today() - dt.timedelta(days=1)
    since = dt.datetime.combine(yesterday, dt.time.min, tzinfo=timezone.get_default_timezone())
    return _summary(facts_rebuild_changed(since=since))


@shared_task(name="analytics.facts_rebuild_today")
def facts_rebuild_today() -> dict:
    """Today so far (hourly), so the dashboard is never more than an hour behind."""
    today = local_today()
    return _summary(facts_rebuild(date_from=today, date_to=today))
