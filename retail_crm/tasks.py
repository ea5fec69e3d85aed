"""Celery tasks of the core: the outbox relay and one event delivery (thin: they call retail_crm.events)."""

from __future__ import annotations

from celery import shared_task

from retail_crm import events


@shared_task(name="retail_crm.events.relay", ignore_result=True)
def events_relay() -> dict:
    """Hand due outbox rows to their subscribers (after each recording commit, and every few seconds)."""
    result = events.relay()
    return {"relayed": result.relayed, "deliveries": result.deliveries, "done": result.done}


@shared_task(name="retail_crm.events.deliver", ignore_result=True)
def event_deliver(event_id: int, handler: str) -> bool:
    """Run one subscriber for one event, once (a repeat finds its delivery row and does nothing)."""
    return events.deliver(event_id=event_id, handler=handler)


@shared_task(name="retail_crm.events.purge")
def events_purge(days: int = 7) -> dict:
    """Remove events every subscriber handled more than ``days`` ago (with their delivery rows)."""
    return {"deleted": events.purge(days=days)}
