"""Celery tasks for member tags: thin wrappers over ``members.tags``, taking ids, safe to run twice.

Registered under ``members.tasks.*`` (``members/tasks.py`` imports this module). Enqueue the member
task after an order is paid or refunded with
``transaction.on_commit(lambda: tags_recompute_member.delay(member_id, brand_id))``.
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from members import tags
from members.models import Member
from retail_crm.models import Brand


def _summary(result: tags.TagRecomputeResult) -> dict:
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
    return _summary(tags.member_tags_recompute(member, brand, as_of=_as_of(as_of)))


@shared_task(name="members.tasks.tags_recompute_brand")
def tags_recompute_brand(brand_id: int, as_of: str | None = None) -> dict:
    """Recompute every rule tag of one brand (nightly)."""
    brand = Brand.objects.filter(pk=brand_id).first()
    if brand is None:
        return {"skipped": "brand not found"}
    return _summary(tags.brand_tags_recompute(brand, as_of=_as_of(as_of)))


@shared_task(name="members.tasks.tags_recompute_all_brands")
def tags_recompute_all_brands() -> dict:
    """Nightly entry point: one brand task per active brand, so brands run (and fail) independently."""
    brand_ids = list(Brand.objects.filter(is_active=True).values_list("pk", flat=True))
    for brand_id in brand_ids:
        tags_recompute_brand.delay(brand_id)
    return {"brands": len(brand_ids)}
