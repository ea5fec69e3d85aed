"""Sales facts: ``analytics.services.sales_facts_rebuild``, the Celery tasks around it, ``run_jobs`` and the
dashboard selectors that read the facts.

The orders (all times Asia/Shanghai, the group's time zone):

    day 2026-03-07  o-0307   A  a-s1/g1   store_pos     paid        88.00            23:59:59
    day 2026-03-08  o-pos1   A  a-s1/g1   store_pos     paid       300.00    m1      10:00
                    o-pos2   A  a-s1/g1   store_pos     paid       200.00    m1      23:30  refunded 50.00
                    o-pos3   A  a-s1/g1   store_pos     completed  120.00    m2      15:00
                    o-pos4   A  a-s1/g1   store_pos     cancelled   80.00    m3      12:00  (paid 0)
                    o-mini1  A  a-s1/g1   mini_program  paid       150.00    m3      09:00  refunded 150.00
                    o-c1     C  c-s1/gc1  store_pos     paid      1000.00    -       14:00  (another group)
    day 2026-03-09  o-s2     A  a-s2/g2   store_pos     paid       500.00    m2      00:10  (still 03-08 in UTC)
                    o-live   A  -/-       hq_live       paid        99.90    -       20:00
                    o-b-exp  B  b-s3/g3   mini_program  expired     60.00    m1      11:00  (paid 0)
                    o-b-shp  B  b-s3/g3   store_pos     shipped    240.50    m1      11:30  refunded 40.25
    day 2026-03-10  o-0310   A  a-s2/g2   mini_program  paid        66.00    m1      00:00:00

Stores a-s1 (region east) and a-s2 (region west) belong to brand A, b-s3 to brand B; brands A and B are in group
``grp``, brand C in group ``other``.

Facts file a sale under the store and guide attribution credited (``SalesCredit``); orders without credits fall back
to their own store and guide. The rebuild tests below run without attribution (own store and guide). ``run_jobs``
attributes first: o-0310 (mini-program, m1 has no bound guide) then goes to the HQ pool (no store) and its selling
guide g2; every other order keeps its row (POS and livestream credits name the order's own store and guide).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from analytics import selectors, tasks
from analytics.models import SalesFact
from analytics.selectors import SalesRow, SalesSummary
from analytics.services import FactRebuildResult, sales_facts_rebuild
from mall.models import Channel, Order, OrderStatus
from retail_crm.scoping import actor_for
from tests.factories import (
    BrandFactory,
    GuideFactory,
    MemberFactory,
    OrderFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
    UserFactory,
    staff_user,
)

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
D7, D8, D9, D10 = dt.date(2026, 3, 7), dt.date(2026, 3, 8), dt.date(2026, 3, 9), dt.date(2026, 3, 10)

FACT_FIELDS = ("day", "brand__code", "store__code", "guide__code", "channel", "orders", "gmv", "paid_orders",
               "paid_amount", "refunded_amount", "sales_flow", "buyers")

# (day, brand, store, guide, channel, orders, gmv, paid_orders, paid_amount, refunded_amount, sales_flow, buyers)
ROW_0307 = (D7, "A", "a-s1", "g1", "store_pos", 1, Decimal("88.00"), 1, Decimal("88.00"), Decimal("0.00"),
            Decimal("88.00"), 0)
ROW_0308_A_MINI = (D8, "A", "a-s1", "g1", "mini_program", 1, Decimal("150.00"), 1, Decimal("150.00"),
                   Decimal("150.00"), Decimal("0.00"), 1)
ROW_0308_A_POS = (D8, "A", "a-s1", "g1", "store_pos", 4, Decimal("700.00"), 3, Decimal("620.00"), Decimal("50.00"),
                  Decimal("570.00"), 2)
ROW_0308_C_POS = (D8, "C", "c-s1", "gc1", "store_pos", 1, Decimal("1000.00"), 1, Decimal("1000.00"),
                  Decimal("0.00"), Decimal("1000.00"), 0)
ROW_0309_A_LIVE = (D9, "A", None, None, "hq_live", 1, Decimal("99.90"), 1, Decimal("99.90"), Decimal("0.00"),
                   Decimal("99.90"), 0)
ROW_0309_A_POS = (D9, "A", "a-s2", "g2", "store_pos", 1, Decimal("500.00"), 1, Decimal("500.00"), Decimal("0.00"),
                  Decimal("500.00"), 1)
ROW_0309_B_MINI = (D9, "B", "b-s3", "g3", "mini_program", 1, Decimal("60.00"), 0, Decimal("0.00"), Decimal("0.00"),
                   Decimal("0.00"), 0)
ROW_0309_B_POS = (D9, "B", "b-s3", "g3", "store_pos", 1, Decimal("240.50"), 1, Decimal("240.50"),
                  Decimal("40.25"), Decimal("200.25"), 1)
ROW_0310 = (D10, "A", "a-s2", "g2", "mini_program", 1, Decimal("66.00"), 1, Decimal("66.00"), Decimal("0.00"),
            Decimal("66.00"), 1)

# After attribution (run_jobs): o-0310 is an online sale of an unbound member, credited to the HQ pool.
ROW_0310_CREDITED = (D10, "A", None, "g2", "mini_program", 1, Decimal("66.00"), 1, Decimal("66.00"), Decimal("0.00"),
                     Decimal("66.00"), 1)

ROWS_0308 = [ROW_0308_A_MINI, ROW_0308_A_POS, ROW_0308_C_POS]
ROWS_0309 = [ROW_0309_A_LIVE, ROW_0309_A_POS, ROW_0309_B_MINI, ROW_0309_B_POS]
ROWS_ALL = [ROW_0307, *ROWS_0308, *ROWS_0309, ROW_0310]
ROWS_ALL_CREDITED = [ROW_0307, *ROWS_0308, *ROWS_0309, ROW_0310_CREDITED]


def local(day: dt.date, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=SH)


def facts() -> list[tuple]:
    """Every fact row as a tuple of FACT_FIELDS, in a stable order."""
    return [tuple(row) for row in SalesFact.objects.order_by("day", "brand__code", "channel", "store__code")
            .values_list(*FACT_FIELDS)]


def freeze_now(monkeypatch, moment: dt.datetime) -> None:
    """Make django.utils.timezone.now() (and so localdate()/local_today()) return ``moment``."""
    monkeypatch.setattr(timezone, "now", lambda: moment)


@pytest.fixture
def world():
    grp = RetailGroupFactory(code="grp", name="Group")
    other = RetailGroupFactory(code="other", name="Other group")
    brand_a = BrandFactory(group=grp, code="A", name="Brand A")
    brand_b = BrandFactory(group=grp, code="B", name="Brand B")
    brand_c = BrandFactory(group=other, code="C", name="Brand C")
    east = RegionFactory(brand=brand_a, code="a-east", name="A East")
    west = RegionFactory(brand=brand_a, code="a-west", name="A West")
    b_main = RegionFactory(brand=brand_b, code="b-main", name="B Main")
    c_main = RegionFactory(brand=brand_c, code="c-main", name="C Main")
    s1 = StoreFactory(region=east, code="a-s1", name="A Store 1")
    s2 = StoreFactory(region=west, code="a-s2", name="A Store 2")
    s3 = StoreFactory(region=b_main, code="b-s3", name="B Store 3")
    c1 = StoreFactory(region=c_main, code="c-s1", name="C Store 1")
    g1 = GuideFactory(store=s1, code="g1", name="Guide 1")
    g2 = GuideFactory(store=s2, code="g2", name="Guide 2")
    g3 = GuideFactory(store=s3, code="g3", name="Guide 3")
    gc1 = GuideFactory(store=c1, code="gc1", name="Guide C1")
    m1, m2, m3 = (MemberFactory(group=grp, code=code) for code in ("m1", "m2", "m3"))

    def order(no, brand, when, *, store=None, guide=None, channel=Channel.STORE_POS, status=OrderStatus.PAID,
              total="100.00", paid=None, refunded="0.00", member=None):
        paid = total if paid is None else paid
        return OrderFactory(order_no=no, brand=brand, store=store, guide=guide, channel=channel, status=status,
                            ordered_at=when, paid_at=when if Decimal(paid) else None, member=member,
                            total_amount=Decimal(total), paid_amount=Decimal(paid),
                            refunded_amount=Decimal(refunded))

    order("o-0307", brand_a, local(D7, 23, 59, 59), store=s1, guide=g1, total="88.00")
    order("o-pos1", brand_a, local(D8, 10), store=s1, guide=g1, total="300.00", member=m1)
    order("o-pos2", brand_a, local(D8, 23, 30), store=s1, guide=g1, total="200.00", refunded="50.00", member=m1)
    order("o-pos3", brand_a, local(D8, 15), store=s1, guide=g1, status=OrderStatus.COMPLETED, total="120.00",
          member=m2)
    order("o-pos4", brand_a, local(D8, 12), store=s1, guide=g1, status=OrderStatus.CANCELLED, total="80.00",
          paid="0.00", member=m3)
    order("o-mini1", brand_a, local(D8, 9), store=s1, guide=g1, channel=Channel.MINI_PROGRAM, total="150.00",
          refunded="150.00", member=m3)
    order("o-c1", brand_c, local(D8, 14), store=c1, guide=gc1, total="1000.00")
    order("o-s2", brand_a, local(D9, 0, 10), store=s2, guide=g2, total="500.00", member=m2)
    order("o-live", brand_a, local(D9, 20), channel=Channel.HQ_LIVE, total="99.90")
    order("o-b-exp", brand_b, local(D9, 11), store=s3, guide=g3, channel=Channel.MINI_PROGRAM,
          status=OrderStatus.EXPIRED, total="60.00", paid="0.00", member=m1)
    order("o-b-shp", brand_b, local(D9, 11, 30), store=s3, guide=g3, status=OrderStatus.SHIPPED, total="240.50",
          refunded="40.25", member=m1)
    order("o-0310", brand_a, local(D10, 0), store=s2, guide=g2, channel=Channel.MINI_PROGRAM, total="66.00",
          member=m1)
    return SimpleNamespace(grp=grp, other=other, brand_a=brand_a, brand_b=brand_b, brand_c=brand_c, east=east,
                           west=west, s1=s1, s2=s2, s3=s3, g1=g1, g2=g2, g3=g3)


# ---------------------------------------------------------------- sales_facts_rebuild


def test_rebuild_writes_one_row_per_day_brand_store_guide_channel(world):
    result = sales_facts_rebuild(date_from=D8, date_to=D9)

    assert result == FactRebuildResult(date_from=D8, date_to=D9, rows_deleted=0, rows_written=7)
    assert facts() == ROWS_0308 + ROWS_0309


def test_rebuild_puts_an_order_on_its_local_day_not_its_utc_day(world):
    order = Order.objects.get(order_no="o-s2")
    assert order.ordered_at.astimezone(dt.UTC).date() == D8  # 2026-03-08 16:10 UTC

    sales_facts_rebuild(date_from=D9, date_to=D9)

    assert facts() == ROWS_0309
    assert SalesFact.objects.filter(store__code="a-s2", day=D8).count() == 0


def test_rebuild_of_the_last_day_includes_the_order_at_2330_local(world):
    """o-pos2 at 23:30 local is 15:30 UTC the same day; o-0310 at 00:00:00 local belongs to the next day."""
    sales_facts_rebuild(date_from=D8, date_to=D8)

    assert facts() == ROWS_0308


def test_rebuild_range_boundaries_are_local_midnights(world):
    sales_facts_rebuild(date_from=D7, date_to=D10)

    assert facts() == ROWS_ALL


def test_rebuild_twice_gives_the_same_rows(world):
    sales_facts_rebuild(date_from=D7, date_to=D10)
    first = facts()

    second_result = sales_facts_rebuild(date_from=D7, date_to=D10)

    assert second_result == FactRebuildResult(date_from=D7, date_to=D10, rows_deleted=9, rows_written=9)
    assert facts() == first == ROWS_ALL
    assert SalesFact.objects.count() == 9


def test_rebuild_replaces_stale_facts_of_its_range_and_leaves_other_days_alone(world):
    sales_facts_rebuild(date_from=D7, date_to=D10)
    # A stray row inside the range (no such orders) and a hand-made row outside it.
    SalesFact.objects.create(day=D8, brand=world.brand_b, channel=Channel.COMMUNITY, orders=5, gmv=Decimal("9.00"))
    SalesFact.objects.create(day=dt.date(2026, 3, 11), brand=world.brand_b, channel=Channel.COMMUNITY, orders=2,
                             gmv=Decimal("4.00"))
    # Orders change after the first build: one on 03-07 and one on 03-08 disappear.
    Order.objects.filter(order_no__in=["o-0307", "o-mini1"]).delete()

    result = sales_facts_rebuild(date_from=D8, date_to=D8)

    assert result == FactRebuildResult(date_from=D8, date_to=D8, rows_deleted=4, rows_written=2)
    stray_0311 = (dt.date(2026, 3, 11), "B", None, None, "community", 2, Decimal("4.00"), 0, Decimal("0.00"),
                  Decimal("0.00"), Decimal("0.00"), 0)
    # 03-07 keeps its (now stale) row: it lies outside the rebuilt range.
    assert facts() == [ROW_0307, ROW_0308_A_POS, ROW_0308_C_POS, *ROWS_0309, ROW_0310, stray_0311]


def test_rebuild_of_a_day_without_orders_empties_it(world):
    SalesFact.objects.create(day=dt.date(2026, 3, 11), brand=world.brand_a, channel=Channel.STORE_POS, orders=1)

    result = sales_facts_rebuild(date_from=dt.date(2026, 3, 11), date_to=dt.date(2026, 3, 12))

    assert result == FactRebuildResult(date_from=dt.date(2026, 3, 11), date_to=dt.date(2026, 3, 12),
                                       rows_deleted=1, rows_written=0)
    assert facts() == []


def test_rebuild_with_date_to_before_date_from_raises_and_changes_nothing(world):
    sales_facts_rebuild(date_from=D8, date_to=D8)

    with pytest.raises(ValueError, match="date_to is before date_from"):
        sales_facts_rebuild(date_from=D9, date_to=D8)

    assert facts() == ROWS_0308


# ---------------------------------------------------------------- tasks


def test_task_rebuild_range_returns_the_documented_dict(world):
    outcome = tasks.sales_facts_rebuild_range.delay("2026-03-08", "2026-03-09").get(timeout=10)

    assert outcome == {"date_from": "2026-03-08", "date_to": "2026-03-09", "rows_written": 7}
    assert facts() == ROWS_0308 + ROWS_0309


def test_task_rebuild_yesterday_uses_the_local_calendar(world, monkeypatch):
    # 2026-03-09 16:30 UTC is 2026-03-10 00:30 in Shanghai: "yesterday" is 03-09, not 03-08.
    freeze_now(monkeypatch, dt.datetime(2026, 3, 9, 16, 30, tzinfo=dt.UTC))

    outcome = tasks.sales_facts_rebuild_yesterday.delay().get(timeout=10)

    assert outcome == {"date_from": "2026-03-09", "date_to": "2026-03-09", "rows_written": 4}
    assert facts() == ROWS_0309


def test_task_rebuild_today_uses_the_local_calendar(world, monkeypatch):
    freeze_now(monkeypatch, dt.datetime(2026, 3, 9, 16, 30, tzinfo=dt.UTC))

    outcome = tasks.sales_facts_rebuild_today.delay().get(timeout=10)

    assert outcome == {"date_from": "2026-03-10", "date_to": "2026-03-10", "rows_written": 1}
    assert facts() == [ROW_0310]


def test_task_rebuild_today_run_twice_keeps_one_copy(world, monkeypatch):
    freeze_now(monkeypatch, dt.datetime(2026, 3, 10, 12, 0, tzinfo=SH))

    tasks.sales_facts_rebuild_today.delay().get(timeout=10)
    outcome = tasks.sales_facts_rebuild_today.delay().get(timeout=10)

    assert outcome == {"date_from": "2026-03-10", "date_to": "2026-03-10", "rows_written": 1}
    assert facts() == [ROW_0310]


# ---------------------------------------------------------------- run_jobs


def sales_facts_line(out: str) -> str:
    """run_jobs prints one line per job; the facts job's line."""
    return next(line for line in out.splitlines() if line.startswith("analytics.facts:")) + "\n"


def test_run_jobs_builds_facts_from_the_first_order_to_the_last(world, monkeypatch, capsys):
    freeze_now(monkeypatch, dt.datetime(2026, 3, 10, 12, 0, tzinfo=SH))

    call_command("run_jobs")

    out = sales_facts_line(capsys.readouterr().out)
    assert out.startswith("analytics.facts: 9 sales fact rows for 2026-03-07..2026-03-10 (")
    assert out.endswith("s)\n")
    assert facts() == ROWS_ALL_CREDITED


def test_run_jobs_extends_the_range_to_today(world, monkeypatch, capsys):
    freeze_now(monkeypatch, dt.datetime(2026, 3, 15, 12, 0, tzinfo=SH))
    SalesFact.objects.create(day=dt.date(2026, 3, 14), brand=world.brand_a, channel=Channel.STORE_POS, orders=3)

    call_command("run_jobs")

    line = sales_facts_line(capsys.readouterr().out)
    assert line.startswith("analytics.facts: 9 sales fact rows for 2026-03-07..2026-03-15 (")
    assert facts() == ROWS_ALL_CREDITED


def test_run_jobs_without_orders_says_so(db, capsys):
    call_command("run_jobs")

    assert sales_facts_line(capsys.readouterr().out).startswith("analytics.facts: no orders (")
    assert facts() == []


def test_run_jobs_with_an_unknown_brand_raises_and_writes_nothing(world):
    with pytest.raises(CommandError, match="unknown brand 'UNKNOWN'"):
        call_command("run_jobs", "--brand", "UNKNOWN")

    assert facts() == []


def test_run_jobs_for_one_brand_rebuilds_only_that_brands_facts(world, monkeypatch, capsys):
    """The range comes from brand B's orders and only brand B's facts are replaced."""
    freeze_now(monkeypatch, dt.datetime(2026, 3, 10, 12, 0, tzinfo=SH))

    call_command("run_jobs", "--brand", "B")

    line = sales_facts_line(capsys.readouterr().out)
    assert line.startswith("analytics.facts: 2 sales fact rows for 2026-03-09..2026-03-10 (")
    assert facts() == [ROW_0309_B_MINI, ROW_0309_B_POS]


def test_run_jobs_for_one_brand_leaves_other_brands_facts_alone(world, monkeypatch):
    freeze_now(monkeypatch, dt.datetime(2026, 3, 10, 12, 0, tzinfo=SH))
    sales_facts_rebuild(date_from=D7, date_to=D10)
    SalesFact.objects.filter(brand__code="B").delete()

    call_command("run_jobs", "--brand", "B")

    assert facts() == ROWS_ALL


# ---------------------------------------------------------------- selectors


@pytest.fixture
def built(world):
    sales_facts_rebuild(date_from=D7, date_to=D10)
    return world


def actor(role: str, **scope):
    return actor_for(staff_user(role, **scope))


def test_sales_summary_for_hq_covers_the_whole_group_only(built):
    summary = selectors.sales_summary(actor=actor("hq", group=built.grp), date_from=D8, date_to=D9)

    assert summary == SalesSummary(orders=9, gmv=Decimal("1750.40"), paid_orders=7, sales_flow=Decimal("1370.15"),
                                   refunded_amount=Decimal("240.25"))
    assert summary.average_order_value == Decimal("195.74")  # 1370.15 / 7 = 195.7357…


def test_sales_summary_for_a_brand_operator_covers_the_brand_only(built):
    summary = selectors.sales_summary(actor=actor("brand_operator", brand=built.brand_a), date_from=D8, date_to=D9)

    assert summary == SalesSummary(orders=7, gmv=Decimal("1449.90"), paid_orders=6, sales_flow=Decimal("1169.90"),
                                   refunded_amount=Decimal("200.00"))
    assert summary.average_order_value == Decimal("194.98")  # 1169.90 / 6 = 194.9833…


def test_sales_summary_for_the_other_brand(built):
    summary = selectors.sales_summary(actor=actor("brand_operator", brand=built.brand_b), date_from=D8, date_to=D9)

    assert summary == SalesSummary(orders=2, gmv=Decimal("300.50"), paid_orders=1, sales_flow=Decimal("200.25"),
                                   refunded_amount=Decimal("40.25"))
    assert summary.average_order_value == Decimal("200.25")


def test_sales_summary_for_a_region_manager_leaves_out_storeless_sales(built):
    summary = selectors.sales_summary(actor=actor("region_manager", region=built.east), date_from=D7, date_to=D10)

    assert summary == SalesSummary(orders=6, gmv=Decimal("938.00"), paid_orders=5, sales_flow=Decimal("658.00"),
                                   refunded_amount=Decimal("200.00"))
    assert summary.average_order_value == Decimal("131.60")


def test_sales_summary_honours_the_period(built):
    summary = selectors.sales_summary(actor=actor("hq", group=built.grp), date_from=D8, date_to=D8)

    assert summary == SalesSummary(orders=5, gmv=Decimal("850.00"), paid_orders=4, sales_flow=Decimal("570.00"),
                                   refunded_amount=Decimal("200.00"))
    assert summary.average_order_value == Decimal("142.50")


def test_sales_summary_without_facts_or_without_a_role_is_zero(built):
    empty = SalesSummary(orders=0, gmv=Decimal("0.00"), paid_orders=0, sales_flow=Decimal("0.00"),
                         refunded_amount=Decimal("0.00"))

    no_days = selectors.sales_summary(actor=actor("hq", group=built.grp), date_from=dt.date(2026, 4, 1),
                                      date_to=dt.date(2026, 4, 30))
    no_role = selectors.sales_summary(actor=actor_for(UserFactory()), date_from=D7, date_to=D10)

    assert no_days == empty
    assert no_role == empty
    assert no_days.average_order_value is None


def test_sales_by_brand_for_hq(built):
    rows = selectors.sales_by(actor=actor("hq", group=built.grp), date_from=D8, date_to=D9, dimension="brand")

    assert rows == [SalesRow(key="A", label="Brand A", paid_orders=6, sales_flow=Decimal("1169.90")),
                    SalesRow(key="B", label="Brand B", paid_orders=1, sales_flow=Decimal("200.25"))]


def test_sales_by_brand_for_a_brand_operator(built):
    rows = selectors.sales_by(actor=actor("brand_operator", brand=built.brand_b), date_from=D8, date_to=D9,
                              dimension="brand")

    assert rows == [SalesRow(key="B", label="Brand B", paid_orders=1, sales_flow=Decimal("200.25"))]


def test_sales_by_store_skips_storeless_sales_and_honours_the_limit(built):
    hq = actor("hq", group=built.grp)

    rows = selectors.sales_by(actor=hq, date_from=D8, date_to=D9, dimension="store")
    top_two = selectors.sales_by(actor=hq, date_from=D8, date_to=D9, dimension="store", limit=2)

    assert rows == [SalesRow(key="a-s1", label="A Store 1", paid_orders=4, sales_flow=Decimal("570.00")),
                    SalesRow(key="a-s2", label="A Store 2", paid_orders=1, sales_flow=Decimal("500.00")),
                    SalesRow(key="b-s3", label="B Store 3", paid_orders=1, sales_flow=Decimal("200.25"))]
    assert top_two == rows[:2]


def test_sales_by_guide_for_a_brand_operator(built):
    rows = selectors.sales_by(actor=actor("brand_operator", brand=built.brand_a), date_from=D7, date_to=D10,
                              dimension="guide")

    assert rows == [SalesRow(key="g1", label="Guide 1", paid_orders=5, sales_flow=Decimal("658.00")),
                    SalesRow(key="g2", label="Guide 2", paid_orders=2, sales_flow=Decimal("566.00"))]


def test_sales_by_channel_for_hq(built):
    rows = selectors.sales_by(actor=actor("hq", group=built.grp), date_from=D8, date_to=D9, dimension="channel")

    assert rows == [SalesRow(key="store_pos", label="store_pos", paid_orders=5, sales_flow=Decimal("1270.25")),
                    SalesRow(key="hq_live", label="hq_live", paid_orders=1, sales_flow=Decimal("99.90")),
                    SalesRow(key="mini_program", label="mini_program", paid_orders=1, sales_flow=Decimal("0.00"))]


def test_sales_by_rejects_an_unknown_dimension(built):
    with pytest.raises(ValueError, match="unknown dimension 'city'"):
        selectors.sales_by(actor=actor("hq", group=built.grp), date_from=D8, date_to=D9, dimension="city")
