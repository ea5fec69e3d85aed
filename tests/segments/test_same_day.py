"""Same-day segments: a payment or a refund moves the buyer's RFML row against the last run's thresholds.

The brand (time zone Asia/Shanghai) has its nightly run as of 2025-06-30 over five members, window
(2024-06-30, 2025-06-30], cycle override 30 days, care 15 days, marketing from day 30 − 5 = 25:

    A  2025-06-20 300.00                    R 10  F 1  M 300.00
    B  2025-05-11 100.00, 2025-06-10 100.00 R 20  F 2  M 200.00
    C  2025-05-31 500.00                    R 30  F 1  M 500.00
    D  2025-04-01  50.00                    R 90  F 1  M  50.00
    X  2025-06-25  80.00                    R  5  F 1  M  80.00

Medians: R 20 (5, 10, 20, 30, 90), F 1 (1, 1, 1, 1, 2), M 200.00. X is recent (5 < 20), not frequent
(1 = 1 is not high), not valuable (80 ≤ 200): general_develop, a new member (one purchase).

"Today" is 2025-07-01 (the handler's local date is pinned): X pays 400.00 at 10:00.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction

from members.models import MemberTag, TagSource
from retail_crm import events
from retail_crm.models import EventDelivery
from segments import handlers
from segments.care import member_care_update
from segments.care_text import CareReason
from segments.handlers import member_segments_after_order
from segments.models import CareItem, MemberRfm, RfmClassChange, RfmRun, SegmentationSettings
from segments.rfm import (
    load_purchases,
    member_rfm_update,
    rfm_compute,
    rfm_recompute,
    rfm_thresholds_of,
    segmentation_settings_for,
)
from tests.factories import (
    BrandFactory,
    GuideBindingFactory,
    GuideFactory,
    MemberFactory,
    OrderFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
    staff_user,
)

pytestmark = pytest.mark.django_db

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
RUN_DAY = dt.date(2025, 6, 30)
TODAY = dt.date(2025, 7, 1)
FIELDS = ("recency_days", "frequency", "monetary", "lifetime_days", "purchases_total", "first_purchase_on",
          "last_purchase_on", "segment", "lifecycle_stage", "cycle_days", "next_expected_on")
HANDLER = "segments.handlers.member_segments_after_order"


def local(text: str) -> dt.datetime:
    """A local (Shanghai) moment: "2025-06-20" (noon) or "2025-07-01 10:00"."""
    if len(text) == 10:
        text += " 12:00"
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def buy(member, brand, when: str, paid: str):
    return OrderFactory(brand=brand, member=member, ordered_at=local(when), total_amount=Decimal(paid),
                        paid_amount=Decimal(paid))


def row_of(member, brand) -> dict:
    row = MemberRfm.objects.get(member=member, brand=brand)
    return {name: getattr(row, name) for name in FIELDS}


def full_run_row(member, brand, run: RfmRun, as_of: dt.date) -> dict | None:
    """What a full run over every member of the brand, with ``run``'s thresholds, gives for ``member``."""
    figures = rfm_compute(arrays=load_purchases(brand=brand, as_of=as_of), as_of=as_of,
                          window_days=run.window_days,
                          mature_after_days=segmentation_settings_for(brand).mature_after_days,
                          thresholds=rfm_thresholds_of(run)).members.frame()
    if member.pk not in figures.index:
        return None
    f = figures.loc[member.pk]
    day = lambda n: None if n < 0 else dt.date(1970, 1, 1) + dt.timedelta(days=int(n))  # noqa: E731
    return {"recency_days": None if f.recency_days < 0 else int(f.recency_days), "frequency": int(f.frequency),
            "monetary": Decimal(int(f.cents)) / 100, "lifetime_days": int(f.lifetime_days),
            "purchases_total": int(f.purchases_total), "first_purchase_on": day(f.first_day),
            "last_purchase_on": day(f.last_day), "segment": f.segment, "lifecycle_stage": f.lifecycle_stage,
            "cycle_days": None if f.cycle2 < 0 else Decimal(int(f.cycle2)) / 2, "next_expected_on": day(f.next_day)}


def rfml_tags(member) -> list[str]:
    return sorted(MemberTag.objects.filter(member=member, source=TagSource.RFML)
                  .values_list("tag_value__code", flat=True))


def changes_of(member) -> list[tuple]:
    return list(RfmClassChange.objects.filter(member=member).order_by("pk").values_list(
        "from_segment", "to_segment", "from_stage", "to_stage", "changed_on", "run_id"))


@pytest.fixture
def today(monkeypatch):
    monkeypatch.setattr(handlers, "local_today", lambda: TODAY)
    return TODAY


@pytest.fixture
def world(today):
    brand = BrandFactory(group=RetailGroupFactory(), code="womens")
    SegmentationSettings.objects.create(brand=brand, cycle_days=30, care_days=15, marketing_offset_days=5)
    members = {code: MemberFactory(group=brand.group, code=code) for code in "ABCDX"}
    buy(members["A"], brand, "2025-06-20", "300.00")
    buy(members["B"], brand, "2025-05-11", "100.00")
    buy(members["B"], brand, "2025-06-10", "100.00")
    buy(members["C"], brand, "2025-05-31", "500.00")
    buy(members["D"], brand, "2025-04-01", "50.00")
    buy(members["X"], brand, "2025-06-25", "80.00")
    run = rfm_recompute(brand=brand, as_of=RUN_DAY)
    return brand, members, run


def test_the_run_keeps_the_thresholds_it_judged_against(world):
    _brand, _members, run = world
    assert (run.median_recency_days, run.median_frequency, run.median_monetary) == (
        Decimal("20.00"), Decimal("1.00"), Decimal("200.00"))
    assert run.median_monetary_half_cents == 40000
    thresholds = rfm_thresholds_of(run)
    assert (thresholds.twice_median_recency, thresholds.twice_median_frequency, thresholds.twice_median_cents,
            thresholds.cycle_used) == (40, 2, 40000, 30)


def test_a_big_order_moves_the_member_into_an_important_class_as_the_full_run_would(world):
    brand, members, run = world
    x = members["X"]
    assert MemberRfm.objects.get(member=x).segment == "general_develop"
    buy(x, brand, "2025-07-01 10:00", "400.00")

    member_segments_after_order(member_id=x.pk, brand_id=brand.pk)

    # Hand-worked as of 2025-07-01: purchases 06-25 80.00 and 07-01 400.00 → R 0 (< 20), F 2 (> 1),
    # M 480.00 (> 200.00): important_value; two purchases 6 days apart: growing, own cycle 6 days;
    # next purchase expected 07-01 + 30 (the brand's cycle) = 07-31.
    assert row_of(x, brand) == {
        "recency_days": 0, "frequency": 2, "monetary": Decimal("480.00"), "lifetime_days": 6,
        "purchases_total": 2, "first_purchase_on": dt.date(2025, 6, 25), "last_purchase_on": TODAY,
        "segment": "important_value", "lifecycle_stage": "growing", "cycle_days": Decimal("6.00"),
        "next_expected_on": dt.date(2025, 7, 31)}
    assert row_of(x, brand) == full_run_row(x, brand, run, TODAY)
    # The change is filed in the run's history, dated today, under the run whose thresholds judged it.
    assert changes_of(x)[-1] == ("general_develop", "important_value", "new", "growing", TODAY, run.pk)
    assert MemberRfm.objects.get(member=x).run_id == run.pk
    assert rfml_tags(x) == ["important_value"]
    # Nobody else moved: A's row is still the run's (recency as of 06-30).
    assert row_of(members["A"], brand)["recency_days"] == 10


def test_a_full_refund_moves_the_member_back(world):
    brand, members, run = world
    x = members["X"]
    order = buy(x, brand, "2025-07-01 10:00", "400.00")
    member_segments_after_order(member_id=x.pk, brand_id=brand.pk)
    order.refunded_amount = Decimal("400.00")
    order.save(update_fields=["refunded_amount"])

    member_segments_after_order(member_id=x.pk, brand_id=brand.pk)

    # Net 0 is no purchase: back to 06-25 80.00 alone, now 6 days ago → R 6 (< 20), F 1, M 80.00:
    # general_develop, new, no own cycle; expected 06-25 + 30 = 07-25.
    assert row_of(x, brand) == {
        "recency_days": 6, "frequency": 1, "monetary": Decimal("80.00"), "lifetime_days": 0,
        "purchases_total": 1, "first_purchase_on": dt.date(2025, 6, 25), "last_purchase_on": dt.date(2025, 6, 25),
        "segment": "general_develop", "lifecycle_stage": "new", "cycle_days": None,
        "next_expected_on": dt.date(2025, 7, 25)}
    assert row_of(x, brand) == full_run_row(x, brand, run, TODAY)
    assert changes_of(x)[-2:] == [("general_develop", "important_value", "new", "growing", TODAY, run.pk),
                                  ("important_value", "general_develop", "growing", "new", TODAY, run.pk)]
    assert rfml_tags(x) == ["general_develop"]


def test_a_partial_refund_crossing_the_median_and_a_first_buyer(world):
    brand, members, run = world
    b, newcomer = members["B"], MemberFactory(group=brand.group, code="N")
    # B at the run: R 20 (not < 20), F 2 (> 1), M 200.00 (not > 200.00): general_retain, growing.
    assert MemberRfm.objects.get(member=b).segment == "general_retain"
    # Today B pays 250.00 and gets 125.00 back: R 0, F 3, M 325.00 > 200.00 → important_value.
    order = buy(b, brand, "2025-07-01 09:00", "250.00")
    order.refunded_amount = Decimal("125.00")
    order.save(update_fields=["refunded_amount"])
    # A first purchase ever: R 0, F 1, M 199.99 (not > 200.00) → general_develop, new.
    buy(newcomer, brand, "2025-07-01 11:00", "199.99")

    for member in (b, newcomer):
        member_segments_after_order(member_id=member.pk, brand_id=brand.pk)

    assert (row_of(b, brand)["segment"], row_of(b, brand)["lifecycle_stage"],
            row_of(b, brand)["monetary"]) == ("important_value", "growing", Decimal("325.00"))
    assert row_of(b, brand) == full_run_row(b, brand, run, TODAY)
    assert row_of(newcomer, brand) == full_run_row(newcomer, brand, run, TODAY)
    assert row_of(newcomer, brand)["segment"] == "general_develop"
    assert changes_of(newcomer) == [("", "general_develop", "", "new", TODAY, run.pk)]


def test_delivered_twice_changes_nothing_more(world):
    brand, members, run = world
    x = members["X"]
    buy(x, brand, "2025-07-01 10:00", "400.00")
    member_segments_after_order(member_id=x.pk, brand_id=brand.pk)
    first, history, tags = row_of(x, brand), changes_of(x), list(MemberTag.objects.filter(member=x).values_list(
        "pk", flat=True))

    member_segments_after_order(member_id=x.pk, brand_id=brand.pk)

    assert row_of(x, brand) == first
    assert changes_of(x) == history  # one change, not two
    assert list(MemberTag.objects.filter(member=x).values_list("pk", flat=True)) == tags


def test_through_the_outbox_each_delivery_runs_once(world):
    brand, members, _run = world
    x = members["X"]
    order = buy(x, brand, "2025-07-01 10:00", "400.00")
    event = events.record("order_paid", order_id=order.pk, member_id=x.pk, brand_id=brand.pk)

    assert events.deliver(event_id=event.pk, handler=HANDLER) is True
    assert events.deliver(event_id=event.pk, handler=HANDLER) is False
    assert MemberRfm.objects.get(member=x).segment == "important_value"
    assert len(changes_of(x)) == 2  # the run's ("" → general_develop) and today's


def test_no_run_yet_nothing_is_written(today, caplog):
    brand = BrandFactory(group=RetailGroupFactory(), code="fresh")
    member = MemberFactory(group=brand.group)
    buy(member, brand, "2025-07-01 10:00", "400.00")

    with caplog.at_level(logging.INFO, logger="segments.rfm"):
        member_segments_after_order(member_id=member.pk, brand_id=brand.pk)

    assert not MemberRfm.objects.filter(brand=brand).exists()
    assert not RfmClassChange.objects.filter(brand=brand).exists()
    assert not MemberTag.objects.filter(member=member).exists()
    assert f"same-day RFML of member {member.pk} skipped: brand fresh has no RFML run" in caplog.text


def test_an_order_without_a_member_or_of_a_merged_member(world):
    brand, members, run = world
    member_segments_after_order(member_id=None, brand_id=brand.pk)  # a guest order: nothing to do
    x, absorbed = members["X"], MemberFactory(group=brand.group, code="old")
    absorbed.merged_into = x
    absorbed.save(update_fields=["merged_into"])
    buy(x, brand, "2025-07-01 10:00", "400.00")

    member_segments_after_order(member_id=absorbed.pk, brand_id=brand.pk)  # the event names the old record

    assert MemberRfm.objects.get(member=x).segment == "important_value"
    assert not MemberRfm.objects.filter(member=absorbed).exists()


def test_class_transitions_count_a_member_moved_the_same_day_once(world):
    """Same-day changes are filed under the run they were judged against (X has two changes under it): the
    transitions from that run to the next take each member's last one, once."""
    from analytics import metrics
    from retail_crm.scoping import actor_for

    brand, members, run = world
    buy(members["X"], brand, "2025-07-01 10:00", "400.00")
    member_segments_after_order(member_id=members["X"].pk, brand_id=brand.pk)
    following = rfm_recompute(brand=brand, as_of=TODAY)
    hq = actor_for(staff_user("hq", group=brand.group))

    moves = metrics.segment_transitions(actor=hq, brand_id=brand.pk, from_run_id=run.pk, to_run_id=following.pk)

    assert sum(t.members for t in moves) == 5
    # Run as of 07-01 (medians R 21, F 1, M 300.00): X (R 0, F 2, M 480.00) stays important_value; X is the only
    # member who was important_value after the first run and its same-day update.
    assert [(t.from_segment, t.to_segment, t.members) for t in moves if t.from_segment == "important_value"] == [
        ("important_value", "important_value", 1)]


# ---------------------------------------------------------------------------- today's care line

@pytest.fixture
def bound(world):
    """X bound to a guide; today's list built from the run's rows: X is in the care period (6 days)."""
    from segments.care import care_list_build

    brand, members, run = world
    guide = GuideFactory(store=StoreFactory(region=RegionFactory(brand=brand)))
    GuideBindingFactory(member=members["X"], guide=guide)
    GuideBindingFactory(member=members["C"], guide=guide)
    assert care_list_build(brand=brand, day=TODAY) == 2  # X: day 6 of care; C: day 31 ≥ 25 → market
    return brand, members, run, guide


def lines(member) -> list[tuple]:
    return list(CareItem.objects.filter(member=member, day=TODAY).values_list("kind", "reason_code", "done_at"))


def test_a_payment_takes_the_member_off_todays_list_and_a_refund_puts_them_back_once(bound):
    brand, members, _run, _guide = bound
    x = members["X"]
    assert lines(x) == [(CareItem.Kind.CARE, CareReason.CARE_PERIOD, None)]
    order = buy(x, brand, "2025-07-01 10:00", "400.00")

    member_segments_after_order(member_id=x.pk, brand_id=brand.pk)
    assert lines(x) == []  # bought today: day 0, on no list (as the build decides)

    order.refunded_amount = Decimal("400.00")
    order.save(update_fields=["refunded_amount"])
    member_segments_after_order(member_id=x.pk, brand_id=brand.pk)
    member_segments_after_order(member_id=x.pk, brand_id=brand.pk)  # delivered twice
    assert lines(x) == [(CareItem.Kind.CARE, CareReason.CARE_PERIOD, None)]

    # The day's rebuild gives the same list: one line each, no duplicates.
    from segments.care import care_list_build

    assert care_list_build(brand=brand, day=TODAY) == 2
    assert lines(x) == [(CareItem.Kind.CARE, CareReason.CARE_PERIOD, None)]
    assert lines(members["C"]) == [(CareItem.Kind.MARKET, CareReason.DUE, None)]


def test_a_done_line_stays_and_a_list_not_built_yet_is_left_to_the_build(bound):
    brand, members, _run, _guide = bound
    c = members["C"]
    CareItem.objects.filter(member=c).update(done_at=local("2025-07-01 09:00"), outcome="called")
    buy(c, brand, "2025-07-01 10:00", "100.00")

    member_segments_after_order(member_id=c.pk, brand_id=brand.pk)

    assert [(kind, done is not None) for kind, _code, done in lines(c)] == [(CareItem.Kind.MARKET, True)]
    # Tomorrow's list does not exist yet: the same-day update writes no line of it.
    assert member_care_update(member_id=c.pk, brand=brand, day=TODAY + dt.timedelta(days=1)) is None
    assert not CareItem.objects.filter(day=TODAY + dt.timedelta(days=1)).exists()


@pytest.mark.parametrize("handed_by", [CareReason.CAMPAIGN, CareReason.JOURNEY])
def test_a_line_a_campaign_or_journey_handed_over_stays_after_a_payment(bound, handed_by):
    brand, members, _run, _guide = bound
    c = members["C"]
    CareItem.objects.filter(member=c).update(reason_code=handed_by)
    buy(c, brand, "2025-07-01 10:00", "100.00")

    member_segments_after_order(member_id=c.pk, brand_id=brand.pk)

    # The guide's task stays theirs to do; the list adds no second line for the member.
    assert lines(c) == [(CareItem.Kind.MARKET, handed_by, None)]


def test_as_of_is_never_before_the_runs_day(world):
    brand, members, run = world
    update = member_rfm_update(member_id=members["A"].pk, brand=brand, as_of=RUN_DAY - dt.timedelta(days=3))
    assert update.as_of == RUN_DAY and not update.changed
    assert row_of(members["A"], brand) == full_run_row(members["A"], brand, run, RUN_DAY)


# ---------------------------------------------------------------------------- PostgreSQL, the real relay

pg_only = pytest.mark.skipif(django_settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                             reason="PostgreSQL: the outbox relay after a real commit")


@pg_only
@pytest.mark.django_db(transaction=True)
def test_a_committed_payment_reaches_the_row_through_the_relay(world):
    """The order's payment commits with its outbox row; the relay (kicked on commit, eager Celery in tests)
    delivers the subscriber, which updates the row once."""
    brand, members, run = world
    x = members["X"]

    with transaction.atomic():
        order = buy(x, brand, "2025-07-01 10:00", "400.00")
        event = events.record("order_paid", order_id=order.pk, member_id=x.pk, brand_id=brand.pk)
    events.relay()  # whatever the kick left (nothing, when every handler ran)

    assert connection.vendor == "postgresql"
    assert EventDelivery.objects.filter(event=event, handler=HANDLER).count() == 1
    assert row_of(x, brand)["segment"] == "important_value"
    assert row_of(x, brand) == full_run_row(x, brand, run, TODAY)
    assert changes_of(x)[-1] == ("general_develop", "important_value", "new", "growing", TODAY, run.pk)
