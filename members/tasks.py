"""Celery tasks of the members app: thin wrappers over ``members.events`` (behaviour events and daily
counters), ``members.tags`` (rule tags) and ``members.behaviour_tags``, taking ids, safe to run twice.

Enqueue the member tag task after an order is paid or refunded with
``transaction.on_commit(lambda: tags_recompute_member.delay(member_id, brand_id))``.
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from members import behaviour_tags, events, tags
from members.models import Member
from retail_crm.models import Brand

# ---------------------------------------------------------------------------- behaviour events


def _activity_summary(result: events.ActivitySummaryResult) -> dict:
    return {"date_from": result.date_from.isoformat(), "date_to": result.date_to.isoformat(),
            "brand_days": result.brand_days, "rows_written": result.rows_written}


@shared_task(name="members.tasks.activity_summarise_range")
def activity_summarise_range(date_from: str, date_to: str, brand_id: int | None = None) -> dict:
    """Rebuild the daily counters of [date_from, date_to] (ISO dates, local days)."""
    result = events.activity_summarise(date_from=dt.date.fromisoformat(date_from),
                                       date_to=dt.date.fromisoformat(date_to), brand_id=brand_id)
    return _activity_summary(result)


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


# ---------------------------------------------------------------------------- rule tags


def _tags_summary(result: tags.TagRecomputeResult) -> dict:
    return {"created": result.created, "updated": result.updated, "deleted": result.deleted,
            "members": result.members, "rules": result.rules}


def _as_of(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


@shared_task(name="members.tasks.tags_recompute_member")
def tags_recompute_member(member_id: int, brand_id: int, as_of: str | None = None) -> dict:
    """Recompute one member's rule tags of one brand (after an order or refund); follows merges."""
    member = Member.objects.filter(pk=member_id).first()
    brand = Brand.objects.filter(pk=brand_id).first()
    if member is None or brand is None:
        # Deleted since the task was queued: nothing left to tag.
        return {"skipped": "member not found" if member is None else "brand not found"}
    while member.merged_into_id is not None:
        member = Member.objects.get(pk=member.merged_into_id)
    return _tags_summary(tags.member_tags_recompute(member, brand, as_of=_as_of(as_of)))


@shared_task(name="members.tasks.tags_recompute_brand")
def tags_recompute_brand(brand_id: int, as_of: str | None = None) -> dict:
    """Recompute every rule tag of one brand (nightly)."""
    brand = Brand.objects.filter(pk=brand_id).first()
    if brand is None:
        return {"skipped": "brand not found"}
    return _tags_summary(tags.brand_tags_recompute(brand, as_of=_as_of(as_of)))


@shared_task(name="members.tasks.tags_recompute_all_brands")
def tags_recompute_all_brands() -> dict:
    """Nightly entry point: one brand task per active brand, so brands run (and fail) independently."""
    brand_ids = list(Brand.objects.filter(is_active=True).values_list("pk", flat=True))
    for brand_id in brand_ids:
        tags_recompute_brand.delay(brand_id)
    return {"brands": len(brand_ids)}


# ---------------------------------------------------------------------------- behaviour tags


def _behaviour_summary(result: behaviour_tags.BehaviourTagResult) -> dict:
    return {"created": result.created, "updated": result.updated, "deleted": result.deleted,
            "members": result.members, "rules": result.rules}


def _today(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


@shared_task(name="members.tasks.behaviour_tags_recompute_brand")
def behaviour_tags_recompute_brand(brand_id: int, today: str | None = None) -> dict:
    """Re-evaluate every behaviour rule of one brand as of the local day ``today`` (ISO; default today)."""
    brand = Brand.objects.filter(pk=brand_id).first()
    if brand is None:
        return {"skipped": "brand not found"}
    return _behaviour_summary(behaviour_tags.brand_behaviour_tags_recompute(brand, today=_today(today)))


@shared_task(name="members.tasks.behaviour_tags_recompute_all_brands")
def behaviour_tags_recompute_all_brands(today: str | None = None) -> dict:
    """Nightly entry point: one task per active brand, so windows that passed overnight drop their tags even
    when the member sent nothing new (and a brand whose rules were switched off or deleted loses theirs)."""
    brand_ids = list(Brand.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True))
    for brand_id in brand_ids:
        behaviour_tags_recompute_brand.delay(brand_id, today)
    return {"brands": len(brand_ids)}
