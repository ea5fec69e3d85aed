"""segments.rfm.rfm_backfill_monthly and the segments page's class sizes for a region (issue 23 point 7).

Hand-made brand B (window 365 days), today 2026-03-15, so the two month-end cut-offs are 2026-01-31 and
2026-02-28. Net purchases (store: east e1 for m1, m2; west w1 for m3, m4):

    m1  2026-01-10 100
    m2  2026-01-20 500, 2026-02-20 500
    m3  2026-02-25  50
    m4  2025-12-01 300

Cut-off 01-31: m1, m2, m4. Recency 21, 11, 61 (median 21: recent = below it: m2); frequency 1, 1, 1 (median 1:
nobody high); monetary 100, 500, 300 (median 300: m2 high). Classes: m1 general win-back, m2 important
develop, m4 general win-back; all "new" (one purchase).
Cut-off 02-28: m1, m2, m3, m4. Recency 49, 8, 3, 89 (median 28.5: m2, m3 recent); frequency 1, 2, 1, 1
(median 1: m2 high); monetary 100, 1000, 50, 300 (median 200: m2, m4 high). Classes: m1 general win-back
(unchanged), m2 important value, m3 general develop, m4 important win-back; m2 "growing" (two purchases).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.test import Client
from django.utils import timezone

from analytics import metrics
from analytics.dashboard_tables import REGISTRY
from mall.models import Channel
from members.models import MemberTag, TagSource
from retail_crm.scoping import actor_for
from segments.models import MemberRfm, RfmClassChange, RfmRun
from segments.rfm import month_ends, rfm_backfill_monthly, rfm_recompute
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    MemberFactory,
    OrderFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
    staff_user,
)

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 3, 15)


def at(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(12, 0)), timezone.get_default_timezone())


@pytest.fixture
def world():
    grp = RetailGroupFactory(code="g")
    brand = BrandFactory(group=grp, code="B")
    east, west = RegionFactory(brand=brand, code="east"), RegionFactory(brand=brand, code="west")
    e1 = StoreFactory(region=east, brand=brand, code="e1")
    w1 = StoreFactory(region=west, brand=brand, code="w1")
    m = {name: MemberFactory(group=grp, code=name, name=name) for name in ("m1", "m2", "m3", "m4")}
    for name, store in (("m1", e1), ("m2", e1), ("m3", w1), ("m4", w1)):
        BrandMembershipFactory(member=m[name], brand=brand, store=store, joined_at=at(dt.date(2025, 11, 1)))
    for name, day, amount in (("m1", dt.date(2026, 1, 10), "100"), ("m2", dt.date(2026, 1, 20), "500"),
                              ("m2", dt.date(2026, 2, 20), "500"), ("m3", dt.date(2026, 2, 25), "50"),
                              ("m4", dt.date(2025, 12, 1), "300")):
        OrderFactory(brand=brand, member=m[name], channel=Channel.STORE_POS, store=e1, ordered_at=at(day),
                     paid_at=at(day), total_amount=Decimal(amount), paid_amount=Decimal(amount),
                     refunded_amount=Decimal("0"))
    return SimpleNamespace(grp=grp, brand=brand, east=east, west=west, e1=e1, w1=w1, m=m)


def test_month_ends_are_the_last_days_of_the_whole_months_before_today():
    assert month_ends(today=TODAY, months=3) == [dt.date(2025, 12, 31), dt.date(2026, 1, 31), dt.date(2026, 2, 28)]
    assert month_ends(today=dt.date(2026, 3, 1), months=1) == [dt.date(2026, 2, 28)]


def test_backfill_stores_one_run_per_month_end_with_its_classes_and_changes(world):
    runs = rfm_backfill_monthly(brand=world.brand, months=2, today=TODAY)

    assert [(r.as_of, r.members, r.counts) for r in runs] == [
        (dt.date(2026, 1, 31), 3, {"important_value": 0, "important_develop": 1, "important_retain": 0,
                                   "important_winback": 0, "general_value": 0, "general_develop": 0,
                                   "general_retain": 0, "general_winback": 2}),
        (dt.date(2026, 2, 28), 4, {"important_value": 1, "important_develop": 0, "important_retain": 0,
                                   "important_winback": 1, "general_value": 0, "general_develop": 1,
                                   "general_retain": 0, "general_winback": 1})]
    changes = sorted((c.run_id, c.member.code, c.from_segment, c.to_segment, c.from_stage, c.to_stage)
                     for c in RfmClassChange.objects.select_related("member"))
    r1, r2 = runs[0].pk, runs[1].pk
    assert changes == [
        (r1, "m1", "", "general_winback", "", "new"), (r1, "m2", "", "important_develop", "", "new"),
        (r1, "m4", "", "general_winback", "", "new"),
        (r2, "m2", "important_develop", "important_value", "new", "growing"),
        (r2, "m3", "", "general_develop", "", "new"),
        (r2, "m4", "general_winback", "important_winback", "new", "new")]
    # The member rows and the RFML tags end as of the last cut-off.
    # Each member row points at the run of the member's latest class change (as rfm_recompute keeps them).
    assert sorted(MemberRfm.objects.values_list("member__code", "segment", "lifecycle_stage", "run_id")) == [
        ("m1", "general_winback", "new", r1), ("m2", "important_value", "growing", r2),
        ("m3", "general_develop", "new", r2), ("m4", "important_winback", "new", r2)]
    tags = MemberTag.objects.filter(source=TagSource.RFML).select_related("tag_value")
    assert sorted((t.member.code, t.tag_value.code, t.reason_code, t.reason_params) for t in tags) == [
        ("m1", "general_winback", "rfml_class", {"as_of": "2026-02-28"}),
        ("m2", "important_value", "rfml_class", {"as_of": "2026-02-28"}),
        ("m3", "general_develop", "rfml_class", {"as_of": "2026-02-28"}),
        ("m4", "important_winback", "rfml_class", {"as_of": "2026-02-28"})]


def test_transitions_between_two_backfilled_runs_are_not_empty(world):
    run1, run2 = rfm_backfill_monthly(brand=world.brand, months=2, today=TODAY)
    hq = actor_for(staff_user("hq", group=world.grp))

    moves = metrics.segment_transitions(actor=hq, brand_id=world.brand.pk, from_run_id=run1.pk, to_run_id=run2.pk)

    assert [(t.from_segment, t.to_segment, t.members) for t in moves] == [
        ("", "general_develop", 1),  # m3: first purchase in February
        ("important_develop", "important_value", 1),  # m2
        ("general_winback", "important_winback", 1),  # m4
        ("general_winback", "general_winback", 1),  # m1 stayed
    ]


def test_the_next_run_continues_the_backfilled_history(world):
    rfm_backfill_monthly(brand=world.brand, months=2, today=TODAY)
    # As of 03-15 nobody bought again: recency 64, 23, 18, 104 (median 43.5: m2, m3 recent), frequency and
    # monetary as on 02-28: the same classes, so no class change is stored, and no second set of tags.
    run = rfm_recompute(brand=world.brand, as_of=TODAY)

    assert RfmClassChange.objects.filter(run=run).count() == 0
    assert run.counts == RfmRun.objects.get(as_of=dt.date(2026, 2, 28)).counts
    assert MemberTag.objects.filter(source=TagSource.RFML).count() == 4


def test_a_brand_with_runs_is_not_backfilled(world):
    rfm_recompute(brand=world.brand, as_of=TODAY)

    assert rfm_backfill_monthly(brand=world.brand, months=2, today=TODAY) == []
    assert RfmRun.objects.count() == 1


def test_a_regional_manager_sees_the_class_sizes_of_the_region_per_run(world):
    run1, run2 = rfm_backfill_monthly(brand=world.brand, months=2, today=TODAY)
    east = actor_for(staff_user("region_manager", brand=world.brand, region=world.east))
    west = actor_for(staff_user("region_manager", brand=world.brand, region=world.west))
    period = metrics.parse_filters({"from": "2026-01-01", "to": "2026-03-15"}, actor=east, today=TODAY)

    def sizes(actor):
        return [(s.run_id, s.segment, s.members) for s in metrics.segment_sizes(actor=actor, filters=period)
                if s.members]

    # East holds m1 and m2 (joined at e1): 01-31 m1 general win-back, m2 important develop; 02-28 m2 moved.
    assert sizes(east) == [(run1.pk, "important_develop", 1), (run1.pk, "general_winback", 1),
                           (run2.pk, "important_value", 1), (run2.pk, "general_winback", 1)]
    # West holds m3 (from February) and m4.
    assert sizes(west) == [(run1.pk, "general_winback", 1),
                           (run2.pk, "important_winback", 1), (run2.pk, "general_develop", 1)]


def test_the_segments_page_shows_the_region_class_sizes(world):
    rfm_backfill_monthly(brand=world.brand, months=2, today=TODAY)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(staff_user("region_manager", brand=world.brand, region=world.east))

    response = client.get("/hq/segments/", {"from": "2026-01-01", "to": "2026-03-15"})

    assert response.status_code == 200
    table = REGISTRY["segment_sizes"]
    shown = [column for column in table.columns if column.page]  # the page shows labels, not class codes
    rows = [{column.key: value for column, (value, _kind) in zip(shown, row["cells"], strict=True)}
            for row in response.context["tables"]["segment_sizes"]["rows"]]
    assert sorted((str(r["as_of"]), r["segment_label"], int(r["members"])) for r in rows if int(r["members"])) == [
        ("2026-01-31", "General win-back", 1), ("2026-01-31", "Important develop", 1),
        ("2026-02-28", "General win-back", 1), ("2026-02-28", "Important value", 1)]
