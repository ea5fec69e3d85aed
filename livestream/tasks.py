"""Celery tasks for live data: thin, take ids, call ``livestream.metrics``; safe to run twice (upserts).

They stay on the default queue rather than ``analytics``: live figures are wanted within minutes while a
stream runs, and a refresh of the sessions live at once is a handful of set-based statements, not a slow
nightly job to keep out of the way.
"""

from __future__ import annotations

from celery import shared_task

from livestream.metrics import live_stats_refresh_recent, live_stats_refresh_settling, session_stats_refresh
from livestream.models import LiveSession


@shared_task(name="livestream.tasks.session_stats_refresh")
def session_stats_refresh_task(session_id: int) -> dict:
    """Recompute one session's figures (e.g. right after it ends)."""
    session = LiveSession.objects.filter(pk=session_id).first()
    if session is None:
        return {"session_id": session_id, "refreshed": 0}
    session_stats_refresh(session=session)
    return {"session_id": session_id, "refreshed": 1}


@shared_task(name="livestream.tasks.live_stats_refresh_recent")
def live_stats_refresh_recent_task() -> dict:
    """Every few minutes: sessions live now or ended in the last two hours."""
    return {"refreshed": live_stats_refresh_recent()}


@shared_task(name="livestream.tasks.live_stats_refresh_settling")
def live_stats_refresh_settling_task() -> dict:
    """Nightly: sessions ended in the last 30 days (late viewer batches, payments and refunds)."""
    return {"refreshed": live_stats_refresh_settling()}
