"""Celery tasks of the marketing app: thin, they call the services."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from marketing.group_sends import wecom_results_poll
from marketing.services import deliveries_dispatch


@shared_task(name="marketing.tasks.deliveries_dispatch")
def deliveries_dispatch_task() -> dict:
    """Send due messages (every minute), each channel at most its provider's rate for that minute.

    For WeCom the rate counts group sends (one per guide and campaign step), not members.
    """
    per_minute = {channel: int(rate * 60) for channel, rate in settings.MARKETING_SEND_RATES.items()}
    result = deliveries_dispatch(limits=per_minute)
    return {"sent": result.sent, "failed": result.failed, "retried": result.retried, "deferred": result.deferred}


@shared_task(name="marketing.tasks.wecom_results_poll")
def wecom_results_poll_task() -> dict:
    """Record what became of open WeCom group sends (each member sent or failed, with the reason)."""
    result = wecom_results_poll()
    return {"sent": result.sent, "failed": result.failed, "closed": result.closed}
