"""Event subscribers of the segments app (subscribed in ``SegmentsConfig.ready``); each is safe to run twice.

Same-day segments: a payment or a refund moves the buyer's RFML row (class, lifecycle stage, care dates)
against the last run's thresholds, and their line on today's care list with it, within the seconds the
outbox relay takes. The nightly run stays the full recompute.
"""

from __future__ import annotations

from members.models import Member
from retail_crm.models import Brand
from segments.care import member_care_update
from segments.rfm import local_today, member_rfm_update


def member_segments_after_order(*, member_id: int | None, brand_id: int) -> None:
    """A member's order was paid or refunded: their RFML row and today's care line of that brand follow it
    (follows merges; nothing without a run of the brand yet)."""
    if member_id is None:
        return
    member = Member.objects.filter(pk=member_id).only("pk", "merged_into_id").first()
    brand = Brand.objects.filter(pk=brand_id).first()
    if member is None or brand is None:
        return
    while member.merged_into_id is not None:
        member = Member.objects.only("pk", "merged_into_id").get(pk=member.merged_into_id)
    today = local_today()
    if member_rfm_update(member_id=member.pk, brand=brand, as_of=today) is not None:
        member_care_update(member_id=member.pk, brand=brand, day=today)
