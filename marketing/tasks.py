"""Celery tasks of the marketing app: thin, they call the services."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from marketing.campaigns import campaign_run_resolve, campaigns_start_due
from marketing.group_sends import wecom_results_poll
from marketing.journeys import journeys_advance, journeys_daily
from marketing.services import deliveries_dispatch


@shared_task(name="marketing.tasks.deliveries_dispatch")
def deliveries_dispatch_task() -> dict:
    """Send due messages (every minute), each channel at most its provider's rate for that minute.

    For WeCom the rate counts group sends (one per guide and campaign step), not members.
    """
    per_minute = {channel: int(rate * 60) for channel, rate in settings.MARKETING_SEND_RATES.items()}
    result = deliveries_dispatch(limits=per_minute)
    return {"sent": result.sent, "failed": result.failed, "retried": result.retried, "deferred": result.deferred,
            "held": result.held}


@shared_task(name="marketing.tasks.campaign_run_resolve")
def campaign_run_resolve_task(run_id: int) -> dict:
    """Resolve one campaign run: recipients recorded, messages queued (safe to run twice)."""
    run = campaign_run_resolve(run_id=run_id)
    return {"run": run.pk, "status": run.status}


@shared_task(name="marketing.tasks.campaigns_start_due")
def campaigns_start_due_task() -> dict:
    """Start campaign runs that are due (scheduled and recurring), resume resolves whose task was lost."""
    result = campaigns_start_due()
    return {"started": result.started, "resumed": result.resumed, "failed": result.failed}


@shared_task(name="marketing.tasks.wecom_results_poll")
def wecom_results_poll_task() -> dict:
    """Record what became of open WeCom group sends (each member sent or failed, with the reason)."""
    result = wecom_results_poll()
    return {"sent": result.sent, "failed": result.failed, "closed": result.closed}


@shared_task(name="marketing.tasks.journeys_advance")
def journeys_advance_task() -> dict:
    """Run due journey steps (every minute, and kicked after members enter): safe to run twice."""
    result = journeys_advance()
    return {"advanced": result.advanced, "actions": result.actions, "failed": result.failed}


@shared_task(name="marketing.tasks.journeys_daily")
def journeys_daily_task() -> dict:
    """Enrol members reaching the day's triggers (birthdays, the cycle's marketing day and lapse point)."""
    result = journeys_daily()
    return {"journeys": result.journeys, "entered": result.entered}
