"""segments.rfm: RFML classes, lifecycle stages, the consumption cycle, history and the rfml tag.

Every figure below is worked out by hand from the orders each test writes; the
group's time zone is Asia/Shanghai (UTC+8), so a local date is the date of
``ordered_at + 8 h``.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from mall.models import OrderStatus
from members.models import MemberTag, TagGroup, TagSource
from segments.models import MemberRfm, RfmClassChange, RfmRun, SegmentationSettings
from segments.rfm import rfm_recompute
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
AS_OF = dt.date(2025, 6, 30)


def local(text: str) -> dt.datetime:
    """A moment written as local (Shanghai) time: "2025-06-20" (noon) or "2025-06-20 23:30"."""
    if len(text) == 10:
        text += " 12:00"
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def buy(member, brand, when: str, paid: str, refunded: str = "0.00", status=OrderStatus.PAID):
    return OrderFactory(brand=brand, member=member, ordered_at=local(when), total_amount=Decimal(paid),
                        paid_amount=Decimal(paid) if status != OrderStatus.PENDING_PAYMENT else Decimal("0.00"),
                        refunded_amount=Decimal(refunded), status=status)


def rfm_of(member, brand) -> tuple:
    row = MemberRfm.objects.get(member=member, brand=brand)
    return (row.recency_days, row.frequency, row.monetary, row.lifetime_days, row.purchases_total,
            row.first_purchase_on, row.last_purchase_on, row.segment, row.lifecycle_stage)


def rfml_tags(member) -> list[str]:
    return sorted(MemberTag.objects.filter(member=member, source=TagSource.RFML)
                  .values_list("tag_value__code", flat=True))


@pytest.fixture
def brand():
    return BrandFactory(group=RetailGroupFactory(), code="womens")


# ---------------------------------------------------------------------------- an odd number of members

@pytest.fixture
def five(brand):
    """Five classified members and one lapsed one; window (2024-06-30, 2025-06-30] for as_of 2025-06-30.

    A  2024-01-10 50 (before the window), 2025-03-01 300, 2025-05-01 200, 2025-06-20 100
       → R 10, F 3, M 600.00, lifetime 2025-06-20 − 2024-01-10 = 527 days, 4 purchases ever (mature);
       A's order of another brand and A's order on 2025-07-01 00:10 (after as_of) do not count.
    B  2025-06-10 paid 500, refunded 100 → R 20, F 1, M 400.00 (refund subtracted), new.
    C  2025-04-01 150, 2025-05-31 150 → R 30, F 2, M 300.00, lifetime 60 (growing).
    D  2025-04-01 1000 → R 90, F 1, M 1000.00, new; its fully refunded order (2025-06-25, net 0) and
       its unpaid order (2025-06-28) are not purchases.
    E  2024-06-30 23:30 local (15:30 UTC, outside the window) 80 and 2024-07-01 00:30 local
       (2024-06-30 16:30 UTC: a UTC date would put it outside too) 50 → R 364, F 1, M 50.00,
       lifetime 1 day, 2 purchases ever (growing).
    L  2024-03-01 200 only → lapsed: no class, lifetime 0.
    A walk-in order (no member) is ignored.

    Medians over A–E: R of (10, 20, 30, 90, 364) = 30, F of (1, 1, 1, 2, 3) = 1,
    M of (50, 300, 400, 600, 1000) = 400.
    A: 10 < 30 recent, 3 > 1 high, 600 > 400 high          → important_value
    B: 20 < 30 recent, 1 = median not high, 400 = median not high → general_develop
    C: 30 = median NOT recent, 2 > 1 high, 300 low          → general_retain
    D: 90 not recent, 1 not high, 1000 > 400 high           → important_winback
    E: 364 not recent, 1 not high, 50 low                   → general_winback
    """
    m = SimpleNamespace(**{name: MemberFactory(group=brand.group, code=name) for name in "ABCDEL"})
    other = BrandFactory(group=brand.group, code="mens")
    buy(m.A, brand, "2024-01-10", "50.00")
    buy(m.A, brand, "2025-03-01", "300.00")
    buy(m.A, brand, "2025-05-01", "200.00")
    buy(m.A, brand, "2025-06-20", "100.00")
    buy(m.A, other, "2025-06-21", "999.00")
    buy(m.A, brand, "2025-07-01 00:10", "700.00")
    buy(m.B, brand, "2025-06-10", "500.00", refunded="100.00")
    buy(m.C, brand, "2025-04-01", "150.00")
    buy(m.C, brand, "2025-05-31", "150.00")
    buy(m.D, brand, "2025-04-01", "1000.00")
    buy(m.D, brand, "2025-06-25", "80.00", refunded="80.00")
    buy(m.D, brand, "2025-06-28", "90.00", status=OrderStatus.PENDING_PAYMENT)
    buy(m.E, brand, "2024-06-30 23:30", "80.00")
    buy(m.E, brand, "2024-07-01 00:30", "50.00")
    buy(m.L, brand, "2024-03-01", "200.00")
    buy(None, brand, "2025-06-29", "60.00")
    return m


def test_rfm_classes_values_and_stages_with_ties_at_the_median(brand, five):
    run = rfm_recompute(brand=brand, as_of=AS_OF)

    m = five
    d = dt.date
    assert rfm_of(m.A, brand) == (10, 3, Decimal("600.00"), 527, 4, d(2024, 1, 10), d(2025, 6, 20),
                                  "important_value", "mature")
    assert rfm_of(m.B, brand) == (20, 1, Decimal("400.00"), 0, 1, d(2025, 6, 10), d(2025, 6, 10),
                                  "general_develop", "new")
    assert rfm_of(m.C, brand) == (30, 2, Decimal("300.00"), 60, 2, d(2025, 4, 1), d(2025, 5, 31),
                                  "general_retain", "growing")
    assert rfm_of(m.D, brand) == (90, 1, Decimal("1000.00"), 0, 1, d(2025, 4, 1), d(2025, 4, 1),
                                  "important_winback", "new")
    assert rfm_of(m.E, brand) == (364, 1, Decimal("50.00"), 1, 2, d(2024, 6, 30), d(2024, 7, 1),
                                  "general_winback", "growing")
    assert rfm_of(m.L, brand) == (None, 0, Decimal("0.00"), 0, 1, d(2024, 3, 1), d(2024, 3, 1), "", "lapsed")
    assert MemberRfm.objects.filter(brand=brand).count() == 6

    run.refresh_from_db()
    assert (run.as_of, run.window_days) == (AS_OF, 365)
    assert (run.median_recency_days, run.median_frequency, run.median_monetary) == (
        Decimal("30.00"), Decimal("1.00"), Decimal("400.00"))
    assert (run.members, run.lapsed) == (5, 1)
    assert run.counts == {"important_value": 1, "important_develop": 0, "important_retain": 0,
                          "important_winback": 1, "general_value": 0, "general_develop": 1,
                          "general_retain": 1, "general_winback": 1}
    assert run.stage_counts == {"new": 2, "growing": 2, "mature": 1, "lapsed": 1}


def test_consumption_cycle_of_the_run(brand, five):
    """Gaps between consecutive purchase dates up to as_of:
    A 2024-01-10 → 2025-03-01 416, → 05-01 61, → 06-20 50: own cycle median(50, 61, 416) = 61;
    C 60; E 1; B, D and L bought once. Brand cycle = median(1, 60, 61) = 60.
    Next expected purchase = last purchase + 60: A 2025-08-19, B 2025-08-09, L 2024-04-30.
    """
    run = rfm_recompute(brand=brand, as_of=AS_OF)

    assert run.cycle_days == Decimal("60.00")
    rows = {r.member.code: (r.cycle_days, r.next_expected_on) for r in
            MemberRfm.objects.filter(brand=brand).select_related("member")}
    assert rows == {
        "A": (Decimal("61.00"), dt.date(2025, 8, 19)),
        "B": (None, dt.date(2025, 8, 9)),
        "C": (Decimal("60.00"), dt.date(2025, 7, 30)),
        "D": (None, dt.date(2025, 5, 31)),
        "E": (Decimal("1.00"), dt.date(2024, 8, 30)),
        "L": (None, dt.date(2024, 4, 30)),
    }


def test_consumption_cycle_worked_example_and_override(brand):
    """P 2025-01-01, 01-31, 03-16: gaps 30, 44 → 37.
    Q 2025-01-01, 02-15, 02-15 (two orders, one trip), 04-01: distinct-date gaps 45, 45 → 45.
    R 2025-01-01, 03-02: gap 60 → 60.   S one purchase: no cycle.
    Brand cycle = median(37, 45, 60) = 45; with an even count, adding T (gaps 40, 50, 60, 70 → 55)
    gives median(37, 45, 55, 60) = (45 + 55) / 2 = 50.
    A per-brand override of 30 replaces the measured cycle for next_expected_on (P: 2025-03-16 + 30).
    """
    p, q, r, s, t = (MemberFactory(group=brand.group, code=c) for c in "PQRST")
    for day in ("2025-01-01", "2025-01-31", "2025-03-16"):
        buy(p, brand, day, "10.00")
    for day in ("2025-01-01", "2025-02-15", "2025-02-15", "2025-04-01"):
        buy(q, brand, day, "10.00")
    for day in ("2025-01-01", "2025-03-02"):
        buy(r, brand, day, "10.00")
    buy(s, brand, "2025-02-01", "10.00")

    run = rfm_recompute(brand=brand, as_of=AS_OF)
    assert run.cycle_days == Decimal("45.00")
    assert MemberRfm.objects.get(member=p).cycle_days == Decimal("37.00")
    assert MemberRfm.objects.get(member=q).cycle_days == Decimal("45.00")
    assert MemberRfm.objects.get(member=p).next_expected_on == dt.date(2025, 4, 30)

    # T: 2024-10-01, +40 = 2024-11-10, +50 = 2024-12-30, +60 = 2025-02-28, +70 = 2025-05-09.
    for day in ("2024-10-01", "2024-11-10", "2024-12-30", "2025-02-28", "2025-05-09"):
        buy(t, brand, day, "10.00")
    run = rfm_recompute(brand=brand, as_of=AS_OF)
    assert MemberRfm.objects.get(member=t).cycle_days == Decimal("55.00")
    assert run.cycle_days == Decimal("50.00")

    SegmentationSettings.objects.create(brand=brand, cycle_days=30)
    run = rfm_recompute(brand=brand, as_of=AS_OF)
    assert run.cycle_days == Decimal("30")
    assert MemberRfm.objects.get(member=p).next_expected_on == dt.date(2025, 4, 15)


def test_even_member_count_uses_the_mean_of_the_two_middle_values(brand):
    """Four members, as_of 2025-06-30:
    P orders of 125.00 at 5, 30, 60, 90 days before → R 5, F 4, M 500.00
    Q 150.00 + 150.00 at 10 and 50 days before   → R 10, F 2, M 300.00
    S 100.01 + 100.00 at 20 and 60 days before   → R 20, F 2, M 200.01
    T four of 25.00 at 40, 100, 150, 200 before  → R 40, F 4, M 100.00
    Medians: R (5, 10, 20, 40) → (10 + 20) / 2 = 15; F (2, 2, 4, 4) → 3;
    M (100.00, 200.01, 300.00, 500.00) → (200.01 + 300.00) / 2 = 250.005, shown as 250.01.
    P recent, high, high → important_value; Q recent (10 < 15), F 2 < 3, M 300 > 250.005 → important_develop;
    S not recent (20), F low, M 200.01 low → general_winback; T not recent, F 4 > 3 high, M low → general_retain.
    """
    ago = lambda n: (AS_OF - dt.timedelta(days=n)).isoformat()  # noqa: E731
    p, q, s, t = (MemberFactory(group=brand.group, code=c) for c in "PQST")
    for n in (5, 30, 60, 90):
        buy(p, brand, ago(n), "125.00")
    buy(q, brand, ago(10), "150.00")
    buy(q, brand, ago(50), "150.00")
    buy(s, brand, ago(20), "100.01")
    buy(s, brand, ago(60), "100.00")
    for n in (40, 100, 150, 200):
        buy(t, brand, ago(n), "25.00")

    run = rfm_recompute(brand=brand, as_of=AS_OF)

    assert (run.median_recency_days, run.median_frequency, run.median_monetary) == (
        Decimal("15.00"), Decimal("3.00"), Decimal("250.01"))
    got = {r.member.code: (r.recency_days, r.frequency, r.monetary, r.segment)
           for r in MemberRfm.objects.filter(brand=brand).select_related("member")}
    assert got == {
        "P": (5, 4, Decimal("500.00"), "important_value"),
        "Q": (10, 2, Decimal("300.00"), "important_develop"),
        "S": (20, 2, Decimal("200.01"), "general_winback"),
        "T": (40, 4, Decimal("100.00"), "general_retain"),
    }


def test_window_days_argument_changes_who_is_classified(brand, five):
    """With an 80-day window, (2025-04-11, 2025-06-30]: A (06-20, 05-01), B (06-10), C (05-31, not 04-01)
    are in; D (04-01) and E join L as lapsed. A: R 10, F 2, M 300; B: R 20, F 1, M 400; C: R 30, F 1, M 150.
    Medians R 20, F 1, M 300: A recent, high F, M 300 = median not high → general_value;
    B 20 not recent, F low, 400 > 300 → important_winback; C not recent, low, low → general_winback.
    """
    run = rfm_recompute(brand=brand, as_of=AS_OF, window_days=80)

    assert (run.window_days, run.members, run.lapsed) == (80, 3, 3)
    got = {r.member.code: (r.recency_days, r.frequency, r.monetary, r.segment, r.lifecycle_stage)
           for r in MemberRfm.objects.filter(brand=brand).select_related("member")}
    assert got == {
        "A": (10, 2, Decimal("300.00"), "general_value", "mature"),
        "B": (20, 1, Decimal("400.00"), "important_winback", "new"),
        "C": (30, 1, Decimal("150.00"), "general_winback", "growing"),
        "D": (None, 0, Decimal("0.00"), "", "lapsed"),
        "E": (None, 0, Decimal("0.00"), "", "lapsed"),
        "L": (None, 0, Decimal("0.00"), "", "lapsed"),
    }


# ---------------------------------------------------------------------------- history and tags

@pytest.fixture
def trio(brand):
    """Run 1 as of 2025-06-30:
    X 2025-05-15, 06-01, 06-29 (200 each) → R 1, F 3, M 600, lifetime 45 (growing)
    Y 2025-05-01 100                      → R 60, F 1, M 100 (new)
    Z 2025-05-31 200                      → R 30, F 1, M 200 (new)
    Medians R 30, F 1, M 200 → X important_value; Y general_winback; Z (R = 30 tie, M = 200 tie) general_winback.
    """
    x, y, z = (MemberFactory(group=brand.group, code=c) for c in "XYZ")
    for day in ("2025-05-15", "2025-06-01", "2025-06-29"):
        buy(x, brand, day, "200.00")
    buy(y, brand, "2025-05-01", "100.00")
    buy(z, brand, "2025-05-31", "200.00")
    return SimpleNamespace(x=x, y=y, z=z)


def changes(run) -> list[tuple]:
    return sorted((c.member.code, c.from_segment, c.to_segment, c.from_stage, c.to_stage, c.changed_on)
                  for c in RfmClassChange.objects.filter(run=run).select_related("member"))


def test_class_change_history_across_two_runs_and_the_tag_follows(brand, trio):
    """Run 2 as of 2025-09-30 after Y buys 2025-09-25 (100) and Z 2025-09-20 (50):
    X R 93 (06-29 → 09-30), F 3, M 600; Y R 5, F 2, M 200, lifetime 147 (growing);
    Z R 10, F 2, M 250, lifetime 112 (growing).
    Medians R (5, 10, 93) = 10, F (2, 2, 3) = 2, M (200, 250, 600) = 250.
    X not recent, F 3 > 2, M 600 > 250 → important_retain (the path important_value → important_retain);
    Y recent, F 2 = median, M 200 low → general_develop; Z R 10 = median, F 2, M 250 = median → general_winback.
    """
    run1 = rfm_recompute(brand=brand, as_of=AS_OF)
    d1 = AS_OF
    assert changes(run1) == [("X", "", "important_value", "", "growing", d1),
                             ("Y", "", "general_winback", "", "new", d1),
                             ("Z", "", "general_winback", "", "new", d1)]
    assert rfml_tags(trio.x) == ["important_value"]
    group = TagGroup.objects.get(brand=brand, code="rfml")
    assert (group.name, group.group_id, group.values.count()) == ("RFML", brand.group_id, 8)
    first_tag = MemberTag.objects.get(member=trio.y)

    buy(trio.y, brand, "2025-09-25", "100.00")
    buy(trio.z, brand, "2025-09-20", "50.00")
    d2 = dt.date(2025, 9, 30)
    run2 = rfm_recompute(brand=brand, as_of=d2)

    assert changes(run2) == [("X", "important_value", "important_retain", "growing", "growing", d2),
                             ("Y", "general_winback", "general_develop", "new", "growing", d2),
                             ("Z", "general_winback", "general_winback", "new", "growing", d2)]
    assert rfml_tags(trio.x) == ["important_retain"]
    assert rfml_tags(trio.y) == ["general_develop"]
    assert rfml_tags(trio.z) == ["general_winback"]
    assert MemberTag.objects.filter(pk=first_tag.pk).exists() is False  # Y's old tag was replaced
    z_tag = MemberTag.objects.get(member=trio.z)

    # The same run again: nothing changed, so no history rows and the unchanged tag is left as it was.
    run3 = rfm_recompute(brand=brand, as_of=d2)
    assert changes(run3) == []
    # A member row points at the run that last set its class or stage.
    assert MemberRfm.objects.get(member=trio.x).run == run2
    assert MemberTag.objects.get(member=trio.z) == z_tag
    assert MemberTag.objects.get(member=trio.z).assigned_at == z_tag.assigned_at
    assert RfmClassChange.objects.filter(member=trio.x).order_by("changed_on").values_list(
        "to_segment", flat=True)[::1] == ["important_value", "important_retain"]
    assert RfmRun.objects.filter(brand=brand).count() == 3


def test_lapsed_member_loses_the_tag_and_member_without_purchases_is_removed(brand, trio):
    """After run 1, Z's only order is fully refunded and Y's last purchase (2025-05-01) falls out of a 30-day
    window as of 2025-06-30 ((2025-05-31, 2025-06-30]). Run 2: X alone is classified (R 1, F 2 (06-01, 06-29),
    M 400; its own medians → R 1 = median not recent, F 2 = median, M 400 = median → general_winback);
    Y is lapsed (tag removed, history general_winback → '' / new → lapsed); Z has no purchase left, so its row
    and tag go and its history ends with '' / ''.
    """
    rfm_recompute(brand=brand, as_of=AS_OF)
    order = trio.z.orders.get()
    order.refunded_amount = order.paid_amount
    order.save()

    run2 = rfm_recompute(brand=brand, as_of=AS_OF, window_days=30)

    assert changes(run2) == [("X", "important_value", "general_winback", "growing", "growing", AS_OF),
                             ("Y", "general_winback", "", "new", "lapsed", AS_OF),
                             ("Z", "general_winback", "", "new", "", AS_OF)]
    assert rfml_tags(trio.x) == ["general_winback"]
    assert rfml_tags(trio.y) == []
    assert rfml_tags(trio.z) == []
    assert MemberRfm.objects.filter(member=trio.z).exists() is False
    assert rfm_of(trio.y, brand)[7:] == ("", "lapsed")
    assert (run2.members, run2.lapsed) == (1, 1)


def test_rfm_of_a_brand_without_purchases_stores_an_empty_run(brand):
    run = rfm_recompute(brand=brand, as_of=AS_OF)

    assert (run.members, run.lapsed, run.median_recency_days, run.cycle_days) == (0, 0, None, None)
    assert set(run.counts.values()) == {0}
    assert MemberRfm.objects.count() == 0


# ---------------------------------------------------------------------------- command

def test_recompute_rfml_command(brand, five, capsys):
    call_command("recompute_rfml", "--brand", "womens", "--as-of", "2025-06-30", "--window-days", "365")

    out = capsys.readouterr().out
    assert out.startswith("RFML womens as of 2025-06-30 (window 365 days): 5 classified, 1 lapsed; "
                          "medians R=30.00 F=1.00 M=400.00; cycle 60.00 days; important_value=1 ")
    assert MemberRfm.objects.get(member=five.A).segment == "important_value"


@pytest.mark.parametrize("args, message", [
    (["--brand", "nope"], "--brand nope: no such brand"),
    (["--brand", "womens", "--as-of", "30/06/2025"], "--as-of '30/06/2025': expected a date as YYYY-MM-DD"),
    (["--brand", "womens", "--window-days", "0"], "--window-days 0: must be between 1 and 3660"),
])
def test_recompute_rfml_command_refuses_bad_arguments(brand, args, message):
    with pytest.raises(CommandError, match="^" + message.replace("(", r"\(") + "$"):
        call_command("recompute_rfml", *args)
    assert RfmRun.objects.count() == 0


# ---------------------------------------------------------------------------- staff API

@pytest.fixture
def org(brand, five):
    region = RegionFactory(brand=brand, code="east")
    store = StoreFactory(region=region, code="s1")
    guide = GuideFactory(store=store, code="g1")
    other_guide = GuideFactory(store=store, code="g2")
    GuideBindingFactory(member=five.A, guide=guide)
    GuideBindingFactory(member=five.D, guide=guide)
    GuideBindingFactory(member=five.B, guide=other_guide)
    far = BrandFactory(group=brand.group, code="far")
    return SimpleNamespace(brand=brand, store=store, guide=guide, far=far,
                           hq=staff_user("hq", group=brand.group), guide_user=staff_user("guide", guide=guide),
                           far_operator=staff_user("brand_operator", brand=far))


def test_latest_run_api(api_client, org):
    rfm_recompute(brand=org.brand, as_of=AS_OF - dt.timedelta(days=1))
    run = rfm_recompute(brand=org.brand, as_of=AS_OF)
    api_client.force_authenticate(org.hq)

    response = api_client.get("/api/v1/analytics/rfm/runs/latest/", {"brand": "womens"})

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == run.pk
    assert {k: body[k] for k in ("brand", "as_of", "window_days", "median_recency_days", "median_frequency",
                                 "median_monetary", "members", "lapsed", "cycle_days")} == {
        "brand": "womens", "as_of": "2025-06-30", "window_days": 365, "median_recency_days": "30.00",
        "median_frequency": "1.00", "median_monetary": "400.00", "members": 5, "lapsed": 1, "cycle_days": "60.00"}
    assert body["counts"]["important_value"] == 1
    assert body["stage_counts"] == {"new": 2, "growing": 2, "mature": 1, "lapsed": 1}


def test_latest_run_api_errors(api_client, org):
    url = "/api/v1/analytics/rfm/runs/latest/"
    assert api_client.get(url, {"brand": "womens"}).status_code == 401
    api_client.force_authenticate(org.hq)
    response = api_client.get(url)
    assert (response.status_code, response.json()["error"]["fields"]) == (400, {"brand": ["该字段是必填项。"]})
    response = api_client.get(url, {"brand": "nope"})
    assert (response.status_code, response.json()["error"]["fields"]) == (400, {"brand": ["No brand 'nope'."]})
    assert api_client.get(url, {"brand": "womens"}).status_code == 404  # no run yet
    api_client.force_authenticate(org.far_operator)
    assert api_client.get(url, {"brand": "womens"}).status_code == 404  # outside scope


def test_members_of_a_class_api_is_scoped_and_paginated(api_client, org):
    rfm_recompute(brand=org.brand, as_of=AS_OF)
    url = "/api/v1/analytics/rfm/members/"
    api_client.force_authenticate(org.hq)

    response = api_client.get(url, {"brand": "womens", "segment": "important_value"})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["results"] == [{
        "member_code": "A", "recency_days": 10, "frequency": 3, "monetary": "600.00", "lifetime_days": 527,
        "purchases_total": 4, "first_purchase_on": "2024-01-10", "last_purchase_on": "2025-06-20",
        "segment": "important_value", "lifecycle_stage": "mature", "cycle_days": "61.00",
        "next_expected_on": "2025-08-19"}]
    page = api_client.get(url, {"brand": "womens", "page_size": 4}).json()
    assert (page["count"], [r["member_code"] for r in page["results"]]) == (6, ["A", "B", "C", "D"])
    assert [r["member_code"] for r in api_client.get(url, {"brand": "womens", "stage": "lapsed"}).json()[
        "results"]] == ["L"]

    # A guide sees only the members bound to them: A and D.
    api_client.force_authenticate(org.guide_user)
    assert [r["member_code"] for r in api_client.get(url, {"brand": "womens"}).json()["results"]] == ["A", "D"]


def test_members_of_a_class_api_errors(api_client, org):
    url = "/api/v1/analytics/rfm/members/"
    assert api_client.get(url, {"brand": "womens"}).status_code == 401
    api_client.force_authenticate(org.hq)
    response = api_client.get(url, {"brand": "womens", "segment": "vip"})
    assert (response.status_code, response.json()["error"]["fields"]) == (
        400, {"segment": ["“vip” 不是合法选项。"]})
    assert api_client.get(url, {"brand": "nope"}).status_code == 400
    api_client.force_authenticate(org.far_operator)
    assert api_client.get(url, {"brand": "womens"}).status_code == 404


def test_recompute_tasks(brand, five, monkeypatch):
    from segments import tasks as rfm_tasks

    monkeypatch.setattr(rfm_tasks, "local_today", lambda: AS_OF)
    BrandFactory(group=brand.group, code="closed", is_active=False)
    ids = rfm_tasks.rfm_recompute_all.delay().get()

    mens = five.A.orders.exclude(brand=brand).get().brand  # the fixture's second brand, active too
    assert ids == [brand.pk, mens.pk]
    run = RfmRun.objects.get(brand=brand)
    assert (run.brand_id, run.as_of, run.members) == (brand.pk, AS_OF, 5)
    result = rfm_tasks.rfm_recompute_brand.delay(brand.pk, "2025-06-30").get()
    assert (result["members"], result["lapsed"]) == (5, 1)
    assert RfmClassChange.objects.filter(brand=brand).count() == 6  # the second run changed nothing


def test_merge_hook_moves_history_and_care_items(brand, trio):
    """X is absorbed into Y: X's history moves to Y, X's current row goes (the next run recomputes Y), X's care
    item of a day on which Y already has one with the same guide is dropped, the other one moves."""
    from segments.models import CareItem
    from segments.rfm import rfm_member_merge

    rfm_recompute(brand=brand, as_of=AS_OF)
    guide = GuideFactory(store=StoreFactory(region=RegionFactory(brand=brand)))
    for member, day in ((trio.x, AS_OF), (trio.x, AS_OF - dt.timedelta(days=1)), (trio.y, AS_OF)):
        CareItem.objects.create(day=day, guide=guide, member=member, brand=brand, kind="care", reason="r",
                                suggested_action="a")

    moved = rfm_member_merge(survivor=trio.y, absorbed=trio.x)

    assert moved == {"rfm_changes": 1, "care_items": 1}
    assert MemberRfm.objects.filter(member=trio.x).exists() is False
    assert sorted(RfmClassChange.objects.filter(member=trio.y).values_list("to_segment", flat=True)) == [
        "general_winback", "important_value"]
    assert sorted(CareItem.objects.filter(member=trio.y).values_list("day", flat=True)) == [
        AS_OF - dt.timedelta(days=1), AS_OF]
    assert CareItem.objects.filter(member=trio.x).count() == 0
