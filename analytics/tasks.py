"""Celery tasks for analytics: thin wrappers over services, taking ids or ISO dates, safe to run twice.

Beat (retail_crm/schedule.py) runs ``facts_rebuild_nightly`` once a night for yesterday and
every day changed late (refunds, tasks executed, care items done), and
``facts_rebuild_today`` hourly; ``facts_rebuild_range`` rebuilds any range on demand
(after re-attributing history or importing old POS orders). ``export_table`` writes one large
dashboard export for its job (``analytics.exports``).
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.contrib.auth import get_user_model
from django.utils import timezone

from analytics import dashboard_pages, exports
from analytics.dashboard_tables import get_table, metric_memo, table_rows
from analytics.facts import FactsRebuildResult, facts_rebuild, facts_rebuild_changed
from analytics.filters import parse_filters
from analytics.services import local_today, sales_facts_rebuild
from retail_crm.scoping import actor_for

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------- sales facts


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


# ---------------------------------------------------------------------------- the dashboard's daily facts


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


# ---------------------------------------------------------------------------- large exports


@shared_task(name="analytics.tasks.export_table", acks_late=True, reject_on_worker_lost=True)
def export_table(job_id: str) -> dict:
    """Write one export file for its job. The scope is the requesting user's scope *now*, and the filters
    are validated again, so a job never shows more than the user could see when it runs. Running it twice
    rewrites the same file."""
    job = exports.job_load(job_id)
    if job is None:
        return {"job": job_id, "state": "missing"}
    if job.state == "done" and job.file_path.exists():
        return {"job": job_id, "state": "done", "rows": job.rows}
    job.state = "running"
    exports.job_save(job)
    try:
        user = get_user_model().objects.filter(pk=job.user_id, is_active=True).first()
        actor = actor_for(user)
        table = get_table(job.table)
        _form, query = parse_filters(job.params, actor=actor)
        if user is None or not actor.is_staff_member or table is None or query is None:
            raise ValueError("the export's user, table or filters are no longer valid")
        if table.extra_params:
            query, _runs, errors = dashboard_pages.segment_runs(actor=actor, query=query, params=job.params)
            if errors:
                raise ValueError("the export's RFML runs are no longer valid")
        with metric_memo():
            job.rows = exports.write_export(table, table_rows(table, actor, query, None), job.format, job.file_path)
        job.state = "done"
    except Exception as error:  # the status page must say it failed rather than poll forever
        logger.exception("export %s failed", job_id)
        job.state, job.error = "failed", str(error)[:300]
    job.finished_at = timezone.now().isoformat()
    exports.job_save(job)
    return {"job": job_id, "state": job.state, "rows": job.rows}


@shared_task(name="analytics.tasks.exports_purge")
def exports_purge() -> int:
    """Daily: delete export files and their job state after a week."""
    return exports.purge_old_exports()
