"""Celery tasks for analytics: thin wrappers over services, safe to run twice."""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from analytics.services import local_today, sales_facts_rebuild


@shared_task(name="analytics.tasks.sales_facts_rebuild_range")
def sales_facts_rebuild_range(date_from: str, date_to: str) -> dict:
    result = sales_facts_rebuild(date_from=dt.date.fromisoformat(date_from), date_to=dt.date.fromisoformat(date_to))
    return {"date_from": date_from, "date_to": date_to, "rows_written": result.rows_written}


@shared_task(name="analytics.tasks.sales_facts_rebuild_yesterday")
def sales_facts_rebuild_yesterday() -> dict:
    day = (local_today() - dt.timedelta(days=1)).isoformat()
    return sales_facts_rebuild_range(day, day)


@shared_task(name="analytics.tasks.sales_facts_rebuild_today")
def sales_facts_rebuild_today() -> dict:
    day = local_today().isoformat()
    return sales_facts_rebuild_range(day, day)


# Each area keeps its tasks in its own module; importing them here registers them with Celery.
from analytics import export_tasks, facts_tasks  # noqa: E402,F401
