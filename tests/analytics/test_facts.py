"""Fact builders (``analytics.facts``) and their Celery tasks, on the group of tests/analytics/test_metrics.py.

That module's docstring lists the orders, credits, guide work and memberships; the build there covers March 2025
and March 2026.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.utils import timezone

from analytics import tasks as facts_tasks
from analytics.facts import (
    facts_days_changed,
    facts_rebuild,
    facts_rebuild_changed,
    facts_rebuild_months,
    sales_facts_rebuild,
)
from analytics.models import (
    BrandSalesFact,
    EngagementFact,
    FactBuild,
    GuideMonthFact,
    GuideMonthToDateFact,
    GuideRegionFact,
    GuideSalesFact,
    InventorySnapshot,
    MemberCountFact,
    MemberGrowthFact,
    MemberMonthFact,
    PurchaseFact,
    SalesFact,
    SegmentMonthFact,
    StoreMonthFact,
    StoreMonthToDateFact,
)
from guides.models import TaskAssignment
from mall.models import Order, Refund, StockMovement
from segments.models import CareItem
from tests.analytics.test_metrics import build_world

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
D = Decimal
MARCH_2 = dt.date(2026, 3, 2)

TABLES = {
    "sales": (SalesFact, ("day", "brand__code", "store__code", "guide__code", "channel", "orders", "gmv",
                          "paid_orders", "paid_amount", "refunded_amount", "sales_flow", "buyers", "unpaid_orders",
                          "unpaid_amount", "refunded_orders", "member_paid_orders", "cost_of_goods")),
    "brand_sales": (BrandSalesFact, ("day", "brand__code", "channel", "orders", "gmv", "sales_flow", "buyers",
                                     "cost_of_goods")),
    "guide_sales": (GuideSalesFact, ("day", "brand__code", "guide__code", "store__code", "channel", "kind",
                                     "cross_brand", "amount", "orders")),
    "purchases": (PurchaseFact, ("order__order_no", "day", "brand__code", "store__code", "guide__code",
                                 "member__code", "channel", "offline", "net_amount")),
    "engagement": (EngagementFact, ("day", "brand__code", "store__code", "guide__code", "shares", "share_pv",
                                    "share_uv", "material_pv", "material_uv", "tasks_assigned", "tasks_executed",
                                    "care_items", "care_items_done", "wecom_friends_added", "new_members",
                                    "commission")),
    "member_growth": (MemberGrowthFact, ("day", "brand__code", "store__code", "join_channel", "new_members")),
    "member_count": (MemberCountFact, ("day", "brand__code", "store__code", "members")),
    "inventory": (InventorySnapshot, ("day", "brand__code", "units", "value_at_cost", "skus_in_stock")),
    "guide_region": (GuideRegionFact, ("day", "brand__code", "region__code", "guide_sales", "cross_brand_sales",
                                       "tasks_assigned", "tasks_executed", "care_items", "care_items_done")),
    "store_month": (StoreMonthFact, ("month", "brand__code", "region__code", "store__code", "channel", "orders",
                                     "gmv", "paid_orders", "paid_amount", "refunded_amount", "sales_flow")),
    "guide_month": (GuideMonthFact, ("month", "brand__code", "region__code", "store__code", "guide__code",
                                     "online_sales", "offline_sales", "sales", "cross_brand_sales", "shares",
                                     "share_pv", "share_uv", "material_pv", "material_uv", "tasks_assigned",
                                     "tasks_executed", "care_items", "care_items_done", "wecom_friends_added",
                                     "new_members", "commission")),
    "store_month_to_date": (StoreMonthToDateFact, ("day", "brand__code", "region__code", "store__code", "channel",
                                                   "orders", "gmv", "paid_orders", "paid_amount", "refunded_amount",
                                                   "sales_flow")),
    "guide_month_to_date": (GuideMonthToDateFact, ("day", "brand__code", "region__code", "store__code",
                                                   "guide__code", "online_sales", "offline_sales", "sales",
                                                   "cross_brand_sales", "shares", "share_pv", "share_uv",
                                                   "material_pv", "material_uv", "tasks_assigned", "tasks_executed",
                                                   "care_items", "care_items_done", "wecom_friends_added",
                                                   "new_members", "commission")),
    "member_month": (MemberMonthFact, ("month", "level", "group__code", "brand__code", "region__code",
                                       "store__code", "channel", "buyers", "repeat_buyers", "purchases",
                                       "cross_buyers", "store_buyers", "wecom_store_buyers", "active_members",
                                       "members")),
    "segment_month": (SegmentMonthFact, ("month", "level", "brand__code", "region__code", "store__code", "segment",
                                         "buyers", "purchases", "sales_flow")),
}


def rows(table: str, **where) -> list[tuple]:
    model, fields = TABLES[table]
    return sorted((tuple(r) for r in model.objects.filter(**where).values_list(*fields)),
                  key=lambda r: tuple("" if v is None else str(v) for v in r))


def snapshot() -> dict[str, list[tuple]]:
    return {table: rows(table) for table in TABLES}


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


def test_sales_facts_file_orders_under_their_credited_store_and_guide(world):
    assert rows("sales", day=MARCH_2) == [
        # o1 POS at E1 by ga1 (exclusive credit to ga1); o2 mini-program: credited to E1 / ga1 through m1's binding
        (MARCH_2, "A", "E1", "ga1", "mini_program", 1, D("200.00"), 1, D("200.00"), D("0.00"), D("200.00"), 1, 0,
         D("0.00"), 0, 1, D("40.00")),
        (MARCH_2, "A", "E1", "ga1", "store_pos", 1, D("300.00"), 1, D("300.00"), D("50.00"), D("250.00"), 1, 0,
         D("0.00"), 1, 1, D("40.00")),  # 2 units × 40 − 1 returned
    ]
    day = dt.date(2026, 3, 15)
    # o9: brand B order of m4 (no B binding): HQ pool (no store), exclusive credit to ga1 of brand A
    assert rows("sales", day=day) == [(day, "B", None, "ga1", "mini_program", 1, D("150.00"), 1, D("150.00"),
                                       D("0.00"), D("150.00"), 1, 0, D("0.00"), 0, 1, D("60.00"))]


def test_orders_without_credits_keep_their_own_store(world):
    day = dt.date(2026, 3, 6)
    assert rows("sales", day=day) == [
        # o4 unpaid: its own store E2, no guide
        (day, "A", "E2", None, "mini_program", 1, D("80.00"), 0, D("0.00"), D("0.00"), D("0.00"), 0, 1, D("80.00"),
         0, 0, D("0.00")),
        (day, "A", "E2", "ga2", "store_pos", 1, D("120.00"), 1, D("120.00"), D("0.00"), D("120.00"), 1, 0,
         D("0.00"), 0, 1, D("40.00")),
    ]
    day = dt.date(2026, 3, 10)
    # o6 paid and fully refunded: no purchase, no credit; its own (empty) store; the goods were kept (no units back)
    assert rows("sales", day=day) == [(day, "A", None, None, "mini_program", 1, D("400.00"), 1, D("400.00"),
                                       D("400.00"), D("0.00"), 1, 0, D("0.00"), 1, 1, D("80.00"))]


def test_brand_rollup_adds_up_the_full_grain(world):
    day = dt.date(2026, 3, 12)
    assert rows("brand_sales", day=day) == [(day, "B", "store_pos", 2, D("340.00"), D("340.00"), 1, D("180.00"))]


def test_guide_sales_credit_both_guides_and_mark_cross_brand(world):
    assert rows("guide_sales", day=dt.date(2026, 3, 15)) == [
        (dt.date(2026, 3, 15), "B", "ga1", "E1", "mini_program", "exclusive", True, D("150.00"), 1)]
    assert rows("guide_sales", day=dt.date(2026, 3, 12)) == [
        (dt.date(2026, 3, 12), "B", "gb", "N1", "store_pos", "exclusive", False, D("250.00"), 1),
        (dt.date(2026, 3, 12), "B", "gb", "N1", "store_pos", "selling", False, D("90.00"), 1)]


def test_purchase_facts_hold_one_row_per_purchase(world):
    march = rows("purchases", day__gte=dt.date(2026, 3, 1))
    assert [r[0] for r in march] == ["o1", "o10", "o11", "o2", "o3", "o5", "o7", "o8", "o9"]  # not o4, not o6
    assert rows("purchases", order__order_no="o11") == [
        ("o11", dt.date(2026, 3, 22), "A", "E2", "ga2", "m2", "community", False, D("60.00"))]
    assert rows("purchases", order__order_no="o8") == [
        ("o8", dt.date(2026, 3, 12), "B", "N1", "gb", None, "store_pos", True, D("90.00"))]


def test_engagement_facts_per_guide_and_day(world):
    assert rows("engagement", day=MARCH_2) == [
        # shares 1; views of s1: m2 twice, v1 once (UV 2); commission earned 10.00
        (MARCH_2, "A", "E1", "ga1", 1, 3, 2, 0, 0, 0, 0, 0, 0, 0, 0, D("10.00"))]
    day = dt.date(2026, 3, 4)
    assert rows("engagement", day=day) == [
        (day, "A", "E1", "ga1", 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, D("0.00")),
        (day, "A", "E2", "ga2", 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, D("0.00")),
        (day, "B", "N1", "gb", 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, D("0.00"))]
    day = dt.date(2026, 3, 3)
    assert rows("engagement", day=day) == [
        (day, "A", "E1", "ga1", 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, D("-2.00")),
        (day, "B", "N1", "gb", 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, D("0.00"))]  # m1 bound by QR scan


def test_member_growth_and_counts(world):
    assert rows("member_growth", day__gte=dt.date(2026, 3, 1)) == [
        (dt.date(2026, 3, 3), "B", "N1", "guide_qr", 1), (dt.date(2026, 3, 5), "A", None, "pay_as_join", 1)]
    assert rows("member_count", day=dt.date(2026, 3, 31)) == [
        (dt.date(2026, 3, 31), "A", None, 1), (dt.date(2026, 3, 31), "A", "E1", 2),
        (dt.date(2026, 3, 31), "A", "W1", 1), (dt.date(2026, 3, 31), "B", "N1", 1)]


def test_inventory_snapshot_rolls_the_stock_back_through_later_movements(world):
    StockMovement.objects.create(sku=world.sku_a, delta=-10, reason=StockMovement.Reason.RESERVE)
    StockMovement.objects.filter(sku=world.sku_a).update(at=dt.datetime(2026, 3, 20, 12, tzinfo=SH))
    world.sku_a.stock.quantity = 90
    world.sku_a.stock.save()

    facts_rebuild(date_from=dt.date(2026, 3, 19), date_to=dt.date(2026, 3, 20), tables=("inventory",))

    # A1 at cost 40: 100 units on 03-19 (before the reservation), 90 on 03-20; B1 50 × 60 both days
    assert rows("inventory", day__in=[dt.date(2026, 3, 19), dt.date(2026, 3, 20)]) == [
        (dt.date(2026, 3, 19), "A", 100, D("4000.00"), 1), (dt.date(2026, 3, 19), "B", 50, D("3000.00"), 1),
        (dt.date(2026, 3, 20), "A", 90, D("3600.00"), 1), (dt.date(2026, 3, 20), "B", 50, D("3000.00"), 1)]


def test_rebuild_is_idempotent(world):
    before = snapshot()

    result = facts_rebuild(date_from=dt.date(2026, 3, 1), date_to=dt.date(2026, 3, 31))

    assert snapshot() == before
    assert result.days == 31
    day_tables = [t for t in TABLES if "month" not in t]
    assert {t: result.rows_written[t] for t in day_tables} == {
        table: len(before[table]) - len(rows(table, day__lt=dt.date(2026, 3, 1))) for table in day_tables}
    assert result.rows_written["purchases"] == 9
    assert {t: result.rows_deleted[t] for t in day_tables} == {t: result.rows_written[t] for t in day_tables}
    month_tables = [t for t in TABLES if "month" in t and not t.endswith("to_date")]
    assert {t: result.rows_written[t] for t in month_tables} == {
        table: len(rows(table, month=dt.date(2026, 3, 1))) for table in month_tables}
    assert {t: result.rows_written[t] for t in TABLES if t.endswith("to_date")} == {
        table: len(rows(table, day__gte=dt.date(2026, 3, 1))) for table in TABLES if table.endswith("to_date")}


def test_rebuild_of_one_brand_replaces_only_that_brands_rows(world):
    before = snapshot()
    SalesFact.objects.filter(brand=world.a, day__gte=dt.date(2026, 3, 1)).delete()
    PurchaseFact.objects.filter(brand=world.b).update(net_amount=D("1.00"))  # brand B's rows must stay as they are

    facts_rebuild(date_from=dt.date(2026, 3, 1), date_to=dt.date(2026, 3, 31), brand_id=world.a.pk)

    assert rows("sales") == before["sales"]
    assert {r[-1] for r in rows("purchases", brand=world.b)} == {D("1.00")}


def test_sales_facts_rebuild_builds_the_sales_tables_only(world):
    EngagementFact.objects.all().delete()

    result = sales_facts_rebuild(date_from=MARCH_2, date_to=MARCH_2)

    assert (result.rows_deleted, result.rows_written) == (2, 2)
    assert EngagementFact.objects.count() == 0


def test_rebuild_refuses_a_reversed_range_or_an_unknown_table(world):
    with pytest.raises(ValueError, match="date_to is before date_from"):
        facts_rebuild(date_from=MARCH_2, date_to=dt.date(2026, 3, 1))
    with pytest.raises(ValueError, match="unknown fact tables"):
        facts_rebuild(date_from=MARCH_2, date_to=MARCH_2, tables=("sales", "weather"))


def test_a_build_is_recorded(world):
    FactBuild.objects.all().delete()

    facts_rebuild(date_from=MARCH_2, date_to=MARCH_2)

    build = FactBuild.objects.get()
    assert (build.day, build.brand_id, build.rows["sales"], build.rows["purchases"]) == (MARCH_2, None, 2, 2)


def test_days_changed_finds_late_refunds_tasks_and_care(world, monkeypatch):
    now = dt.datetime(2026, 4, 2, 1, 0, tzinfo=SH)
    monkeypatch.setattr(timezone, "now", lambda: now)
    since = dt.datetime(2026, 4, 1, 0, 0, tzinfo=SH)
    o5 = Order.objects.get(order_no="o5")
    Refund.objects.create(order=o5, refund_no="R-late", kind=Refund.Kind.REFUND, status=Refund.Status.REFUNDED,
                          amount=D("10.00"), requested_at=dt.datetime(2026, 3, 30, 9, tzinfo=SH),
                          refunded_at=dt.datetime(2026, 4, 1, 10, tzinfo=SH))
    TaskAssignment.objects.filter(guide=world.ga2).update(executed_at=dt.datetime(2026, 4, 1, 9, tzinfo=SH))
    CareItem.objects.filter(done_at__isnull=True).update(done_at=dt.datetime(2026, 4, 1, 11, tzinfo=SH))

    days = facts_days_changed(since=since)

    assert days == [dt.date(2026, 3, 4), dt.date(2026, 3, 9), dt.date(2026, 3, 10), dt.date(2026, 4, 1),
                    dt.date(2026, 4, 2)]


def test_rebuild_changed_picks_up_a_late_refund(world, monkeypatch):
    now = dt.datetime(2026, 4, 2, 3, 10, tzinfo=SH)
    monkeypatch.setattr(timezone, "now", lambda: now)
    o5 = Order.objects.get(order_no="o5")
    Refund.objects.create(order=o5, refund_no="R-late2", kind=Refund.Kind.REFUND, status=Refund.Status.REFUNDED,
                          amount=D("100.00"), requested_at=dt.datetime(2026, 3, 31, 9, tzinfo=SH),
                          refunded_at=dt.datetime(2026, 4, 1, 10, tzinfo=SH))
    Order.objects.filter(pk=o5.pk).update(refunded_amount=D("100.00"))

    outcome = facts_tasks.facts_rebuild_nightly.delay().get(timeout=30)

    assert outcome["date_from"] == "2026-03-09"
    assert outcome["days"] == 3  # 03-09 (the refund), 04-01 (yesterday), 04-02 (today so far)
    assert SalesFact.objects.get(day=dt.date(2026, 3, 9)).sales_flow == D("400.00")


def test_tasks_rebuild_a_range_and_today(world, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: dt.datetime(2026, 3, 2, 20, 0, tzinfo=SH))
    before = rows("sales", day=MARCH_2)
    SalesFact.objects.filter(day=MARCH_2).delete()

    today = facts_tasks.facts_rebuild_today.delay().get(timeout=30)
    ranged = facts_tasks.facts_rebuild_range.delay("2026-03-01", "2026-03-02", world.a.pk).get(timeout=30)

    assert (today["date_from"], today["days"], today["rows_written"]["sales"]) == ("2026-03-02", 1, 2)
    assert (ranged["days"], ranged["rows_written"]["sales"]) == (2, 2)
    assert rows("sales", day=MARCH_2) == before


def test_rebuild_changed_with_nothing_to_do(world, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: dt.datetime(2026, 3, 2, 20, 0, tzinfo=SH))

    result = facts_rebuild_changed(since=dt.datetime(2026, 3, 5, tzinfo=SH))

    assert result.days == 0


# ---------------------------------------------------------------- month-to-date rollups


def test_store_month_to_date_rows_sum_the_month_through_each_day(world):
    day = dt.date(2026, 3, 6)
    assert rows("store_month_to_date", day=dt.date(2026, 3, 1)) == []  # nothing sold on 03-01
    # o1, o2 (03-02) at E1; o3 and the unpaid o4 (03-06) at E2
    assert rows("store_month_to_date", day=day) == [
        (day, "A", "east", "E1", "mini_program", 1, D("200.00"), 1, D("200.00"), D("0.00"), D("200.00")),
        (day, "A", "east", "E1", "store_pos", 1, D("300.00"), 1, D("300.00"), D("50.00"), D("250.00")),
        (day, "A", "east", "E2", "mini_program", 1, D("80.00"), 0, D("0.00"), D("0.00"), D("0.00")),
        (day, "A", "east", "E2", "store_pos", 1, D("120.00"), 1, D("120.00"), D("0.00"), D("120.00")),
    ]


def test_guide_month_to_date_rows_carry_sales_and_work(world):
    day = dt.date(2026, 3, 3)
    # ga1: o1 250 offline + o2 200 online, shares on 03-02 and 03-03 (4 share views by 3 visitor-days, 1 material
    # view), commission 10.00 − 2.00; gb: one share, m1 joined brand B through gb on 03-03
    assert [r[3:] for r in rows("guide_month_to_date", day=day)] == [
        ("E1", "ga1", D("200.00"), D("250.00"), D("450.00"), D("0.00"), 2, 4, 3, 1, 1, 0, 0, 0, 0, 0, 0,
         D("8.00")),
        ("N1", "gb", D("0.00"), D("0.00"), D("0.00"), D("0.00"), 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, D("0.00")),
    ]


def test_month_to_date_rows_of_the_last_day_are_the_month_rollup(world):
    for to_date, month_table in (("store_month_to_date", "store_month"), ("guide_month_to_date", "guide_month")):
        for month, last in ((dt.date(2026, 3, 1), dt.date(2026, 3, 31)), (dt.date(2025, 3, 1), dt.date(2025, 3, 31))):
            whole = [r[1:] for r in rows(month_table, month=month)]
            assert whole
            assert [r[1:] for r in rows(to_date, day=last)] == whole


def test_month_to_date_rebuild_from_a_changed_day_keeps_the_days_before(world):
    before = rows("store_month_to_date", day__lt=dt.date(2026, 3, 20))
    SalesFact.objects.filter(day=dt.date(2026, 3, 20)).delete()  # o10: E1 mini_program 100 on 03-20

    written = facts_rebuild_months(months=[dt.date(2026, 3, 1)], tables=("store_month_to_date",),
                                   since=[dt.date(2026, 3, 25), dt.date(2026, 3, 20)])

    assert rows("store_month_to_date", day__lt=dt.date(2026, 3, 20)) == before
    assert written["store_month_to_date"] == len(rows("store_month_to_date", day__gte=dt.date(2026, 3, 20)))
    e1_online = rows("store_month_to_date", day=dt.date(2026, 3, 31), store__code="E1", channel="mini_program")
    assert [r[-1] for r in e1_online] == [D("200.00")]  # o2 only: o10's day is gone
