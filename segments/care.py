"""The care calendar (DOMAIN.md "Consumption cycle") and each guide's daily care list.

The consumption cycle itself is measured by the RFML run (``segments.rfm``:
``RfmRun.cycle_days`` for the brand, ``MemberRfm.cycle_days`` and
``next_expected_on`` per member), so the list reads the figures of the latest
run. For a member whose last purchase was ``d`` days before the list's day,
with the brand's cycle ``C`` (the settings override, else the measured cycle
rounded to whole days):

* care     1 ≤ d ≤ care_days: thank-you and fit check, no marketing;
* market   C − marketing_offset_days ≤ d < lapse point (⌈lapse_factor × C⌉);
* winback  d ≥ lapse point, or the member's purchases all lie before the RFML window (lapsed).

The list goes to the member's CURRENT bound guide for the brand; members
without a bound guide are left to automated campaigns. Important-class
members (``important_*``) are flagged for a personal call.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from members.models import BrandMembership, GuideBinding
from members.services import binding_record_service
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.locks import job_lock, job_lock_shared
from retail_crm.models import Brand, Guide
from retail_crm.scoping import scoped
from segments.care_text import CareReason, care_action_text, care_reason_text
from segments.models import CareItem, MemberRfm
from segments.rfm import rfm_latest_run, segmentation_settings_for, whole_days


@dataclass(frozen=True)
class CareCalendar:
    """A brand's care-calendar parameters in whole days (cycle None: no cycle measured yet)."""

    cycle_days: int | None
    care_days: int
    marketing_day: int | None
    lapse_day: int | None


def care_calendar_for(brand: Brand) -> CareCalendar:
    """The brand's calendar from its settings and the cycle of its latest RFML run."""
    config = segmentation_settings_for(brand)
    cycle = config.cycle_days
    if cycle is None:
        run = rfm_latest_run(brand)
        if run is not None and run.cycle_days is not None:
            cycle = whole_days(run.cycle_days)
    if not cycle:
        return CareCalendar(cycle_days=None, care_days=config.care_days, marketing_day=None, lapse_day=None)
    return CareCalendar(cycle_days=cycle, care_days=config.care_days,
                        marketing_day=max(cycle - config.marketing_offset_days, 0),
                        lapse_day=math.ceil(Decimal(config.lapse_factor) * cycle))


@dataclass(frozen=True)
class CareDecision:
    """Which list and why, as a code and its parameters; the words are rendered when read."""

    kind: str
    reason_code: str
    reason_params: dict
    important: bool

    @property
    def reason(self) -> str:
        return care_reason_text(reason_code=self.reason_code, params=self.reason_params)

    @property
    def suggested_action(self) -> str:
        return care_action_text(reason_code=self.reason_code, important=self.important)


def care_decide(*, days_since: int, lapsed: bool, important: bool, calendar: CareCalendar) -> CareDecision | None:
    """Which list (if any) a member belongs on today, with the reason (and so the suggested action)."""
    cycle = calendar.cycle_days
    if lapsed or (cycle and days_since >= calendar.lapse_day):
        if cycle:
            return CareDecision(CareItem.Kind.WINBACK, CareReason.LAPSED, {"days": days_since, "cycle": cycle},
                                important)
        return CareDecision(CareItem.Kind.WINBACK, CareReason.NO_PURCHASE_IN_WINDOW, {"days": days_since},
                            important)
    if 1 <= days_since <= calendar.care_days:
        return CareDecision(CareItem.Kind.CARE, CareReason.CARE_PERIOD,
                            {"days": days_since, "care": calendar.care_days}, important)
    if cycle and days_since >= calendar.marketing_day and days_since > calendar.care_days:
        return CareDecision(CareItem.Kind.MARKET, CareReason.DUE, {"days": days_since, "cycle": cycle}, important)
    return None


@transaction.atomic
def care_list_build(*, brand: Brand, day: dt.date) -> int:
    """Build the brand's care lists for ``day`` (one per bound guide); returns the number of open items written.

    Idempotent per (day, guide, member, brand): a rebuild replaces the day's
    undone items and keeps the done ones (a done member is not listed again).
    Reads the latest RFML figures and the current bindings in two queries and
    writes in bulk.
    """
    job_lock(f"analytics.care.{brand.pk}")  # the lock's name from before the move to segments
    calendar = care_calendar_for(brand)
    guide_of = dict(GuideBinding.objects.filter(brand=brand, ended_at__isnull=True)
                    .values_list("member_id", "guide_id"))
    # A rebuild replaces the day's undone list items; items a campaign or a journey handed over stay, and like
    # the done ones they keep the member off the rebuilt list.
    (CareItem.objects.filter(brand=brand, day=day, done_at__isnull=True)
     .exclude(reason_code__in=[CareReason.CAMPAIGN, CareReason.JOURNEY]).delete())
    done = set(CareItem.objects.filter(brand=brand, day=day).values_list("guide_id", "member_id"))
    items = []
    rows = (MemberRfm.objects.filter(brand=brand, last_purchase_on__isnull=False, member_id__in=list(guide_of))
            if len(guide_of) < 5000 else MemberRfm.objects.filter(brand=brand, last_purchase_on__isnull=False))
    for member_id, segment, stage, last in rows.values_list(*_CARE_FIGURES).iterator(chunk_size=20000):
        guide_id = guide_of.get(member_id)
        if guide_id is None or (guide_id, member_id) in done:
            continue
        item = _care_item(brand=brand, day=day, guide_id=guide_id, member_id=member_id, segment=segment,
                          stage=stage, last_purchase_on=last, calendar=calendar)
        if item is not None:
            items.append(item)
    CareItem.objects.bulk_create(items, batch_size=5000)
    return len(items)


# What a member's care line is decided from: their MemberRfm row's class, stage and last purchase.
_CARE_FIGURES = ("member_id", "segment", "lifecycle_stage", "last_purchase_on")


def _care_item(*, brand: Brand, day: dt.date, guide_id: int, member_id: int, segment: str, stage: str,
               last_purchase_on: dt.date, calendar: CareCalendar) -> CareItem | None:
    """The unsaved care-list line of ``day`` for a member bound to ``guide_id`` (None: not listed)."""
    days_since = (day - last_purchase_on).days
    if days_since < 1:
        return None
    important = segment.startswith("important_")
    decision = care_decide(days_since=days_since, lapsed=stage == "lapsed", important=important,
                           calendar=calendar)
    if decision is None:
        return None
    return CareItem(day=day, guide_id=guide_id, member_id=member_id, brand=brand, kind=decision.kind, reason="",
                    suggested_action="", reason_code=decision.reason_code, reason_params=decision.reason_params,
                    important=important)


@transaction.atomic
def member_care_update(*, member_id: int, brand: Brand, day: dt.date) -> CareItem | None:
    """Same-day: the member's line on the brand's care list of ``day`` follows their RFML row as it is now.

    After a payment (or a refund) the row has moved (``member_rfm_update``); the line is decided again
    exactly as ``care_list_build`` decides it: an undone line the list put there is replaced (a member who
    just bought leaves the marketing or win-back list; a refund can put them back), a done one or one a
    campaign or a journey handed to the guide stays and keeps the member off. At most one line per (day, guide, member,
    brand), as the build. Before the day's list is built nothing is written: the build will read the row.
    Returns the line written, if any.
    """
    job_lock_shared(f"analytics.care.{brand.pk}")  # the build (exclusive) does not interleave with this
    if not CareItem.objects.filter(brand=brand, day=day).exists():
        return None
    (CareItem.objects.filter(brand=brand, day=day, member_id=member_id, done_at__isnull=True)
     .exclude(reason_code__in=[CareReason.CAMPAIGN, CareReason.JOURNEY]).delete())
    guide_id = (GuideBinding.objects.filter(brand=brand, member_id=member_id, ended_at__isnull=True)
                .values_list("guide_id", flat=True).first())
    if guide_id is None or CareItem.objects.filter(brand=brand, day=day, member_id=member_id,
                                                   guide_id=guide_id).exists():
        return None
    row = (MemberRfm.objects.filter(brand=brand, member_id=member_id, last_purchase_on__isnull=False)
           .values_list(*_CARE_FIGURES).first())
    if row is None:
        return None
    _member, segment, stage, last = row
    item = _care_item(brand=brand, day=day, guide_id=guide_id, member_id=member_id, segment=segment, stage=stage,
                      last_purchase_on=last, calendar=care_calendar_for(brand))
    if item is not None:
        item.save()
    return item


@transaction.atomic
def care_item_done(*, item: CareItem, user, outcome: str = "") -> CareItem:
    """Mark a care item done by ``user``; the contact counts as service on the member's binding.

    Items outside the user's scope are refused as not found. Marking a done item
    again changes nothing (the first contact is kept).
    """
    if not scoped(CareItem.objects.filter(pk=item.pk), user).exists():
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such care item.", status=404)
    if len(outcome) > 200:
        raise ApplicationError(ErrorCode.INVALID, "The outcome is too long.",
                               fields={"outcome": ["At most 200 characters."]})
    item = CareItem.objects.select_for_update().select_related("member", "brand", "guide").get(pk=item.pk)
    if item.done_at is not None:
        return item
    now = timezone.now()
    item.done_at, item.done_by, item.outcome = now, user, outcome
    item.save(update_fields=["done_at", "done_by", "outcome"])
    binding_record_service(member=item.member, brand=item.brand, guide=item.guide, at=now)
    return item


def care_task_owner(*, member, brand: Brand) -> Guide | None:
    """Who gets a personal task for ``member``: the bound guide while they still work here, else the manager
    of the store the member joined at (the oldest active one), else nobody."""
    binding = (GuideBinding.objects.filter(member=member, brand=brand, ended_at__isnull=True)
               .select_related("guide").first())
    if binding is not None and binding.guide.left_at is None:
        return binding.guide
    store_id = (BrandMembership.objects.filter(member=member, brand=brand).values_list("store_id", flat=True)
                .first())
    if store_id is None:
        return None
    return (Guide.objects.filter(store_id=store_id, role=Guide.Role.STORE_MANAGER, left_at__isnull=True)
            .order_by("pk").first())


def care_task_add(*, member, brand: Brand, day: dt.date, reason: str, action: str, source: str) -> CareItem | None:
    """Put ``member`` on the list of :func:`care_task_owner` for ``day`` with ``reason`` and a suggested
    ``action``, flagged for a personal call when the member is in an important RFML class; None when nobody
    can take it. One item per guide, member, brand and day: a member already on that day's list stays there
    with the reason the list gave, and that item is returned."""
    owner = care_task_owner(member=member, brand=brand)
    if owner is None:
        return None
    segment = MemberRfm.objects.filter(member=member, brand=brand).values_list("segment", flat=True).first() or ""
    item, _ = CareItem.objects.get_or_create(
        day=day, guide=owner, member=member, brand=brand,
        defaults={"kind": CareItem.Kind.MARKET, "reason_code": CareReason.JOURNEY,
                  "reason_params": {"source": source}, "reason": reason[:200], "suggested_action": action[:200],
                  "important": segment.startswith("important_")})
    return item
