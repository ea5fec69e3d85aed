"""Celery tasks for large dashboard exports: thin, take a job id, safe to run twice."""

from __future__ import annotations

import logging

from celery import shared_task
from django.contrib.auth import get_user_model
from django.utils import timezone

from analytics import dashboard_pages, exports
from analytics.dashboard_tables import get_table, metric_memo, table_rows
from analytics.filters import parse_filters
from retail_crm.scoping import actor_for

logger = logging.getLogger(__name__)


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
