"""The jobs ``run_jobs`` runs once, in order (the demo and operators use it).

The same services run nightly from the beat schedule (retail_crm/schedule.py);
each is idempotent, so running them again only recomputes the same rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Max, Min
from django.utils import timezone


def _n(value: int) -> str:
    """A count for people: 2,233,669."""
    return f"{value:,}"


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[str | None], str]


def _facts(brand_code: str | None) -> str:
    """Every dashboard fact table, from the first order or membership to today (analytics.facts)."""
    from analytics.facts import facts_rebuild
    from mall.models import Order
    from members.models import BrandMembership
    from retail_crm.models import Brand

    orders, memberships = Order.objects.all(), BrandMembership.objects.all()
    brand_id = None
    if brand_code:
        brand_id = Brand.objects.get(code=brand_code).pk
        orders, memberships = orders.filter(brand_id=brand_id), memberships.filter(brand_id=brand_id)
    bounds = orders.aggregate(first=Min("ordered_at"), last=Max("ordered_at"))
    if bounds["first"] is None:
        return "no orders"
    tz = timezone.get_default_timezone()
    first_joined = memberships.aggregate(first=Min("joined_at"))["first"]
    date_from = timezone.localtime(min(bounds["first"], first_joined or bounds["first"]), tz).date()
    date_to = max(timezone.localtime(bounds["last"], tz).date(), timezone.localdate())
    result = facts_rebuild(date_from=date_from, date_to=date_to, brand_id=brand_id)
    total = sum(result.rows_written.values())
    return (f"{_n(result.rows_written.get('sales', 0))} sales fact rows for {date_from}..{date_to} "
            f"({_n(total)} rows in all fact tables)")


def _brands(brand_code: str | None):
    from retail_crm.models import Brand

    brands = Brand.objects.filter(is_active=True).order_by("code")
    return brands.filter(code=brand_code) if brand_code else brands


def _activity(brand_code: str | None) -> str:
    from members.events import activity_summarise
    from members.models import BehaviourEvent

    events = BehaviourEvent.objects.all()
    brand_id = _brand_id(brand_code)
    if brand_id is not None:
        events = events.filter(brand_id=brand_id)
    bounds = events.aggregate(first=Min("occurred_at"), last=Max("occurred_at"))
    if bounds["first"] is None:
        return "no events"
    tz = timezone.get_default_timezone()
    date_from, date_to = (timezone.localtime(bounds[k], tz).date() for k in ("first", "last"))
    result = activity_summarise(date_from=date_from, date_to=date_to, brand_id=brand_id)
    return (f"daily activity for {date_from}..{date_to}: {_n(result.brand_days)} brand-days, "
            f"{_n(result.rows_written)} rows written, {_n(result.rows_deleted)} replaced")


def _tags(brand_code: str | None) -> str:
    from members.tags import brand_tags_recompute

    out = []
    for brand in _brands(brand_code):
        result = brand_tags_recompute(brand)
        out.append(f"{brand.code} {_n(result.created)} added, {_n(result.updated)} updated, "
                   f"{_n(result.deleted)} removed")
    return "rule tags: " + ("; ".join(out) or "no active brand")


def _behaviour_tags(brand_code: str | None) -> str:
    from members.behaviour_tags import brand_behaviour_tags_recompute

    out = []
    for brand in _brands(brand_code):
        result = brand_behaviour_tags_recompute(brand)
        if result.rules:
            out.append(f"{brand.code} {_n(result.created)} added, {_n(result.updated)} updated, "
                       f"{_n(result.deleted)} removed")
    return "behaviour tags: " + ("; ".join(out) or "no brand with a behaviour rule")


def _brand_id(brand_code: str | None) -> int | None:
    return _brands(brand_code).values_list("pk", flat=True).first() if brand_code else None


def _attribution(brand_code: str | None) -> str:
    from attribution.services import attribute_all

    result = attribute_all(brand_id=_brand_id(brand_code))
    return f"{_n(result.orders)} orders, {_n(result.rows_written)} credit rows written"


def _live_stats(brand_code: str | None) -> str:
    from livestream.metrics import session_stats_refresh_all

    return f"figures of {_n(session_stats_refresh_all(brand_id=_brand_id(brand_code)))} live sessions"


def _rfm(brand_code: str | None) -> str:
    from segments.rfm import rfm_recompute

    out = []
    for brand in _brands(brand_code):
        run = rfm_recompute(brand=brand)
        cycle = "no purchase cycle yet" if run.cycle_days is None else f"cycle {run.cycle_days:.1f} days"
        out.append(f"{brand.code} {_n(run.members)} classified, {_n(run.lapsed)} lapsed, {cycle}")
    return "; ".join(out) or "no active brand"


def _care_lists(brand_code: str | None) -> str:
    from segments.care import care_list_build

    today = timezone.localdate()
    total = sum(care_list_build(brand=brand, day=today) for brand in _brands(brand_code))
    return f"{_n(total)} care items for {today}"


def _commission(brand_code: str | None) -> str:
    from guides.commission import commission_build_for_range
    from retail_crm.demo.commission_life import demo_commission_rules, demo_office_shares, demo_withdrawals

    rules = demo_commission_rules()  # demo group only: brands without rules get the demo's
    demo_office_shares()  # the demo brand operator's share link, once
    result = commission_build_for_range(brand_id=_brand_id(brand_code))
    withdrawals = demo_withdrawals()  # demo guide only, once
    return (f"{_n(result.entries_written)} entries from {_n(result.credits_considered)} credits without one, "
            f"{_n(result.staff_entries_written)} office-staff share entries; demo: {_n(rules)} rules, "
            f"{_n(withdrawals)} withdrawals")


JOBS: list[Job] = [
    Job("members.activity", _activity),
    Job("analytics.attribution", _attribution),
    Job("livestream.stats", _live_stats),
    Job("guides.commission", _commission),  # after attribution: commission is posted from its credits
    Job("members.tags", _tags),
    Job("members.behaviour_tags", _behaviour_tags),
    Job("analytics.rfm", _rfm),  # segments.rfm and .care: the names operators know from before the move
    Job("analytics.care_lists", _care_lists),
    Job("analytics.facts", _facts),  # last: its facts read credits, care lists and activity
]


def run_all(*, brand_code: str | None = None, on_done: Callable[[str, str, float], None] | None = None) -> None:
    for job in JOBS:
        started = time.monotonic()
        outcome = job.run(brand_code)
        if on_done:
            on_done(job.name, outcome, time.monotonic() - started)
