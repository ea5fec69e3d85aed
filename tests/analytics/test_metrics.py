"""Dashboard metrics (``analytics.metrics``) on a small hand-made group, expected values worked out by hand.

The group (times Asia/Shanghai). Brand A: region East (stores E1, E2), region West (store W1); brand B: region
North (store N1). Guides ga1 (E1), ga2 (E2), gw (W1), gb (N1). SKUs: A1 (brand A, cost 40), B1 (brand B, cost 60).

Memberships (brand, joined, channel, store) and bindings (guide, from):

    m1  A 2026-01-10 store_card E1, bound to ga1 from 2026-01-10;  B 2026-03-03 guide_qr N1, bound to gb from 03-03
    m2  A 2026-03-05 pay_as_join (online), bound to ga2 from 2026-03-05
    m3  A 2025-06-01 store_card W1, no binding
    m4  A 2026-02-01 guide_qr E1, bound to ga1 from 2026-02-01
    m5  A 2026-04-02 guide_qr E1 (after the period)

Orders of March 2026 (the period) — attribution credits them (store credit; exclusive/selling guide credit):

    o1   A store_pos    E1 ga1 m1  03-02  paid 300, refunded 50 (1 unit back)  2×A1  store E1, excl ga1 250
    o2   A mini_program  -  -  m1  03-02  paid 200                             1×A1  store E1, excl ga1 200
    o3   A store_pos    E2 ga2 m2  03-06  completed 120                        1×A1  store E2, excl ga2 120
    o4   A mini_program E2  -  m2  03-06  pending 80 (unpaid)                  1×A1  no credit: own store E2
    o5   A store_pos    W1 gw  m3  03-09  paid 500                             5×A1  store W1, selling gw 500
    o6   A mini_program  -  -  m3  03-10  paid 400, refunded 400 (no units)    2×A1  no purchase, no store
    o7   B store_pos    N1 gb  m1  03-12  paid 250                             2×B1  store N1, excl gb 250
    o8   B store_pos    N1 gb  -   03-12  paid 90 (no member)                  1×B1  store N1, selling gb 90
    o9   B mini_program  -  -  m4  03-15  paid 150                             1×B1  HQ pool, excl ga1 150 cross-brand
    o10  A mini_program  -  -  m1  03-20  paid 100                             1×A1  store E1, excl ga1 100
    o11  A community     -  -  m2  03-22  paid 60                              1×A1  store E2, excl ga2 60

Last year (March 2025): ly1 A store_pos E1 ga1 m1 2025-03-03 paid 100; ly2 B store_pos N1 gb m3 2025-03-20 paid 300.

Guide work in March 2026: ga1 shares twice (03-02, 03-03), gb once; views of ga1's share: 03-02 m2 product view
×2 and visitor v1 product view, 03-03 v1 material view. A task assigned 03-04 to ga1 (executed 03-05), ga2 (not
executed) and gb (executed 03-04). Care items of 03-10 for ga1: two, one done. WeCom: m1~ga1 added 2026-02-01,
m2~ga2 added 03-06 and removed 03-25, m3~gb added 03-10. Commission of ga1: earned 10.00 on 03-02, reversed 2.00
on 03-03. Mini-program activity: m1/A on 03-05 and 03-06, m2/A on 03-10, m4/B on 03-11 (m4 is no member of B),
m3/A on 02-27 (before the period). Stock: A1 100 units, B1 50 units (no movements).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.utils import timezone

from analytics import metrics
from analytics.facts import facts_rebuild, facts_rebuild_months
from analytics.metrics import Filters, Point
from attribution.services import attribute_all
from guides.models import CommissionEntry, GuideTask, GuideToken, Share, TaskAssignment
from livestream.models import LiveSession, SessionStats
from mall.models import Channel, OrderLine, OrderStatus, Product, Refund, RefundLine, Sku, Stock
from members.models import (
    BehaviourEvent,
    BrandMembership,
    EventKind,
    GuideBinding,
    JoinChannel,
    MemberDailyActivity,
    WeComFriendship,
)
from retail_crm.errors import ApplicationError
from retail_crm.scoping import actor_for
from segments.models import CareItem, RfmClassChange, RfmRun
from tests.factories import (
    BrandFactory,
    GuideFactory,
    MemberFactory,
    OrderFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
    staff_user,
)

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
MARCH = Filters(date_from=dt.date(2026, 3, 1), date_to=dt.date(2026, 3, 31))


def at(day: str, hour: int = 12) -> dt.datetime:
    y, m, d = (int(p) for p in day.split("-"))
    return dt.datetime(y, m, d, hour, tzinfo=SH)


def build_world() -> SimpleNamespace:
    """The group described in the module docstring, attributed and with its facts built for both Marches."""
    grp = RetailGroupFactory(code="grp", name="Group")
    a = BrandFactory(group=grp, code="A", name="Brand A")
    b = BrandFactory(group=grp, code="B", name="Brand B")
    east, west = RegionFactory(brand=a, code="east", name="East"), RegionFactory(brand=a, code="west", name="West")
    north = RegionFactory(brand=b, code="north", name="North")
    e1 = StoreFactory(region=east, code="E1", name="Store E1")
    e2 = StoreFactory(region=east, code="E2", name="Store E2")
    w1 = StoreFactory(region=west, code="W1", name="Store W1")
    n1 = StoreFactory(region=north, code="N1", name="Store N1")
    ga1, ga2 = GuideFactory(store=e1, code="ga1", name="Guide A1"), GuideFactory(store=e2, code="ga2", name="Guide A2")
    gw, gb = GuideFactory(store=w1, code="gw", name="Guide W"), GuideFactory(store=n1, code="gb", name="Guide B")
    m1, m2, m3, m4, m5 = (MemberFactory(group=grp, code=f"m{n}") for n in range(1, 6))

    def join(member, brand, day, channel, store=None):
        BrandMembership.objects.create(member=member, brand=brand, joined_at=at(day, 9), join_channel=channel,
                                       store=store)

    def bind(member, guide, day, reason=GuideBinding.Reason.QR_SCAN):
        GuideBinding.objects.create(member=member, brand=guide.store.brand, guide=guide, store=guide.store,
                                    started_at=at(day, 9), reason=reason)

    join(m1, a, "2026-01-10", JoinChannel.STORE_CARD, e1)
    bind(m1, ga1, "2026-01-10", GuideBinding.Reason.STORE_PURCHASE)
    join(m1, b, "2026-03-03", JoinChannel.GUIDE_QR, n1)
    bind(m1, gb, "2026-03-03")
    join(m2, a, "2026-03-05", JoinChannel.PAY_AS_JOIN)
    bind(m2, ga2, "2026-03-05")
    join(m3, a, "2025-06-01", JoinChannel.STORE_CARD, w1)
    join(m4, a, "2026-02-01", JoinChannel.GUIDE_QR, e1)
    bind(m4, ga1, "2026-02-01")
    join(m5, a, "2026-04-02", JoinChannel.GUIDE_QR, e1)

    sku_a = Sku.objects.create(product=Product.objects.create(brand=a, code="PA", name="Dress", category="dress"),
                               brand=a, code="A1", list_price=Decimal("150.00"), member_price=Decimal("150.00"),
                               cost_price=Decimal("40.00"))
    sku_b = Sku.objects.create(product=Product.objects.create(brand=b, code="PB", name="Shoe", category="shoes"),
                               brand=b, code="B1", list_price=Decimal("125.00"), member_price=Decimal("125.00"),
                               cost_price=Decimal("60.00"))
    Stock.objects.create(sku=sku_a, quantity=100)
    Stock.objects.create(sku=sku_b, quantity=50)

    orders = {}

    def order(no, brand, day, total, *, channel=Channel.STORE_POS, store=None, guide=None, member=None,
              status=OrderStatus.PAID, paid=None, refunded="0.00", units=1):
        paid = total if paid is None else paid
        o = OrderFactory(order_no=no, brand=brand, channel=channel, store=store, guide=guide, member=member,
                         status=status, ordered_at=at(day), paid_at=at(day) if Decimal(paid) else None,
                         total_amount=Decimal(total), paid_amount=Decimal(paid), refunded_amount=Decimal(refunded))
        sku = sku_a if brand == a else sku_b
        OrderLine.objects.create(order=o, brand=brand, sku=sku, quantity=units, list_price=sku.list_price,
                                 unit_price=Decimal(total) / units, amount=Decimal(total),
                                 refunded_amount=Decimal(refunded))
        orders[no] = o
        return o

    mp = Channel.MINI_PROGRAM
    o1 = order("o1", a, "2026-03-02", "300.00", store=e1, guide=ga1, member=m1, refunded="50.00", units=2)
    order("o2", a, "2026-03-02", "200.00", channel=mp, member=m1)
    order("o3", a, "2026-03-06", "120.00", store=e2, guide=ga2, member=m2, status=OrderStatus.COMPLETED)
    order("o4", a, "2026-03-06", "80.00", channel=mp, store=e2, member=m2, status=OrderStatus.PENDING_PAYMENT,
          paid="0.00")
    order("o5", a, "2026-03-09", "500.00", store=w1, guide=gw, member=m3, units=5)
    o6 = order("o6", a, "2026-03-10", "400.00", channel=mp, member=m3, refunded="400.00", units=2)
    order("o7", b, "2026-03-12", "250.00", store=n1, guide=gb, member=m1, units=2)
    order("o8", b, "2026-03-12", "90.00", store=n1, guide=gb)
    order("o9", b, "2026-03-15", "150.00", channel=mp, member=m4)
    order("o10", a, "2026-03-20", "100.00", channel=mp, member=m1)
    order("o11", a, "2026-03-22", "60.00", channel=Channel.COMMUNITY, member=m2)
    order("ly1", a, "2025-03-03", "100.00", store=e1, guide=ga1, member=m1)
    order("ly2", b, "2025-03-20", "300.00", store=n1, guide=gb, member=m3)
    for o, amount, units in ((o1, "50.00", 1), (o6, "400.00", 0)):
        refund = Refund.objects.create(order=o, refund_no=f"R-{o.order_no}", kind=Refund.Kind.RETURN,
                                       status=Refund.Status.REFUNDED, amount=Decimal(amount),
                                       requested_at=o.ordered_at, refunded_at=o.ordered_at)
        RefundLine.objects.create(refund=refund, order_line=o.lines.get(), quantity=units, amount=Decimal(amount))

    token = GuideToken.objects.create(token="tok-ga1", guide=ga1)
    token_b = GuideToken.objects.create(token="tok-gb", guide=gb)
    Share.objects.create(code="s1", group=grp, guide_token=token, guide=ga1, brand=a, target=Share.Target.PRODUCT,
                         created_at=at("2026-03-02", 10))
    Share.objects.create(code="s2", group=grp, guide_token=token, guide=ga1, brand=a, target=Share.Target.MATERIAL,
                         created_at=at("2026-03-03", 10))
    Share.objects.create(code="s3", group=grp, guide_token=token_b, guide=gb, brand=b, target=Share.Target.MALL,
                         created_at=at("2026-03-03", 11))
    for who, kind, when in ((m2, EventKind.PRODUCT_VIEW, at("2026-03-02", 11)),
                            (m2, EventKind.PRODUCT_VIEW, at("2026-03-02", 15)),
                            ("v1", EventKind.PRODUCT_VIEW, at("2026-03-02", 16)),
                            ("v1", EventKind.MATERIAL_VIEW, at("2026-03-03", 12))):
        BehaviourEvent.objects.create(brand=a, member=who if who != "v1" else None,
                                      visitor_id="v1" if who == "v1" else "", kind=kind, occurred_at=when,
                                      share_token="s1", guide=ga1)
    BehaviourEvent.objects.create(brand=a, member=m2, kind=EventKind.PRODUCT_VIEW, occurred_at=at("2026-03-02"))

    task = GuideTask.objects.create(group=grp, title="New season", copy_text="Look!", starts_at=at("2026-03-04", 8),
                                    deadline=at("2026-03-08", 8), status=GuideTask.Status.PUBLISHED)
    for guide, executed in ((ga1, at("2026-03-05")), (ga2, None), (gb, at("2026-03-04", 15))):
        assignment = TaskAssignment.objects.create(task=task, guide=guide, executed_at=executed)
        TaskAssignment.objects.filter(pk=assignment.pk).update(assigned_at=at("2026-03-04", 9))
    for member, done in ((m1, at("2026-03-10", 18)), (m4, None)):
        CareItem.objects.create(day=dt.date(2026, 3, 10), guide=ga1, member=member, brand=a,
                                kind=CareItem.Kind.CARE, reason="r", suggested_action="s", done_at=done)
    WeComFriendship.objects.create(member=m1, guide=ga1, added_at=at("2026-02-01"), source="api")
    WeComFriendship.objects.create(member=m2, guide=ga2, added_at=at("2026-03-06"), removed_at=at("2026-03-25"),
                                   source="api")
    WeComFriendship.objects.create(member=m3, guide=gb, added_at=at("2026-03-10"), source="api")
    for kind, amount, day in ((CommissionEntry.Kind.EARN, "10.00", "2026-03-02"),
                              (CommissionEntry.Kind.REVERSAL, "-2.00", "2026-03-03")):
        entry = CommissionEntry.objects.create(guide=ga1, brand=a, kind=kind, amount=Decimal(amount),
                                               available_at=at("2026-03-20"))
        CommissionEntry.objects.filter(pk=entry.pk).update(created_at=at(day))
    for member, brand, day in ((m1, a, "2026-03-05"), (m1, a, "2026-03-06"), (m2, a, "2026-03-10"),
                               (m4, b, "2026-03-11"), (m3, a, "2026-02-27")):
        MemberDailyActivity.objects.create(member=member, brand=brand, day=dt.date.fromisoformat(day),
                                           product_views=1)

    attribute_all()
    facts_rebuild(date_from=dt.date(2025, 3, 1), date_to=dt.date(2025, 3, 31))
    facts_rebuild(date_from=dt.date(2026, 3, 1), date_to=dt.date(2026, 3, 31))
    users = SimpleNamespace(
        hq=staff_user("hq", group=grp), op_a=staff_user("brand_operator", brand=a),
        op_b=staff_user("brand_operator", brand=b), rm_east=staff_user("region_manager", region=east),
        rm_west=staff_user("region_manager", region=west), sm_e1=staff_user("store_manager", store=e1),
        g_ga1=staff_user("guide", guide=ga1))
    return SimpleNamespace(grp=grp, a=a, b=b, east=east, west=west, north=north, e1=e1, e2=e2, w1=w1, n1=n1,
                           ga1=ga1, ga2=ga2, gw=gw, gb=gb, m1=m1, m2=m2, m3=m3, m4=m4, m5=m5, orders=orders,
                           sku_a=sku_a, sku_b=sku_b, users=users)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once per module inside a transaction rolled back at the end; each test runs in a savepoint."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


def actor(user):
    return actor_for(user)


def D(value: str) -> Decimal:
    return Decimal(value)


# ---------------------------------------------------------------- sales metrics


def test_gmv_counts_every_order_placed(world):
    metric = metrics.gmv(actor=actor(world.users.hq), filters=MARCH)

    # 300 + 200 + 120 + 80 + 500 + 400 + 250 + 90 + 150 + 100 + 60
    assert metric.value == D("2250.00")
    assert metric.unit == "cny"
    assert metric.last_year.value == D("400.00")  # ly1 100 + ly2 300
    assert len(metric.trend) == 31
    assert metric.trend[1] == Point(period=dt.date(2026, 3, 2), value=D("500.00"))  # o1 300 + o2 200
    assert metric.trend[5] == Point(period=dt.date(2026, 3, 6), value=D("200.00"))  # o3 120 + o4 80 (unpaid)
    assert metric.trend[0].value == D("0.00")


def test_sales_flow_is_paid_minus_refunded(world):
    metric = metrics.sales_flow(actor=actor(world.users.hq), filters=MARCH)

    # paid: every order but o4 = 2250 − 80 = 2170; refunded: o1 50 + o6 400 = 450
    assert metric.value == D("1720.00")
    assert metric.last_year.value == D("400.00")
    assert metric.trend[9].value == D("0.00")  # o6 paid 400, refunded 400


def test_unpaid_and_refund_ratios(world):
    hq = actor(world.users.hq)

    unpaid = metrics.unpaid_ratio(actor=hq, filters=MARCH)
    refund = metrics.refund_ratio(actor=hq, filters=MARCH)

    assert (unpaid.numerator, unpaid.denominator, unpaid.value) == (D("80.00"), D("2250.00"), D("0.0356"))  # .03555
    assert (refund.numerator, refund.denominator, refund.value) == (D("450.00"), D("2170.00"), D("0.2074"))  # .20737
    assert unpaid.last_year.value == D("0.0000")
    assert unpaid.trend[5].value == D("0.4000")  # 03-06: o4 80 of 200


def test_average_order_value(world):
    metric = metrics.average_order_value(actor=actor(world.users.hq), filters=MARCH)

    assert (metric.numerator, metric.denominator, metric.value) == (D("1720.00"), 10, D("172.00"))  # 1720 / 10
    assert metric.last_year.value == D("200.00")  # 400 / 2
    assert metric.trend[0].value is None  # no paid order on 03-01


def test_private_domain_share(world):
    metric = metrics.private_domain_share(actor=actor(world.users.hq), filters=MARCH)

    # mini-program o2 200 + o6 0 + o9 150 + o10 100, community o11 60 = 510 of 1720
    assert (metric.numerator, metric.value) == (D("510.00"), D("0.2965"))
    assert metric.last_year.value == D("0.0000")


def test_card_opening_rate(world):
    metric = metrics.card_opening_rate(actor=actor(world.users.hq), filters=MARCH)

    # paid POS orders o1 o3 o5 o7 o8; with a member: all but o8
    assert (metric.numerator, metric.denominator, metric.value) == (4, 5, D("0.8000"))


def test_sales_metrics_for_a_brand_filter_and_a_channel_filter(world):
    hq = actor(world.users.hq)

    brand_b = metrics.sales_flow(actor=hq, filters=Filters(MARCH.date_from, MARCH.date_to, brand_id=world.b.pk))
    online = metrics.sales_flow(actor=hq, filters=Filters(MARCH.date_from, MARCH.date_to,
                                                          channel=Channel.MINI_PROGRAM))

    assert brand_b.value == D("490.00")  # o7 250 + o8 90 + o9 150
    assert brand_b.last_year.value == D("300.00")
    assert online.value == D("450.00")  # o2 200 + o6 0 + o9 150 + o10 100


def test_region_manager_sees_only_credited_sales_of_their_region(world):
    east = actor(world.users.rm_east)

    flow = metrics.sales_flow(actor=east, filters=MARCH)
    unpaid = metrics.unpaid_ratio(actor=east, filters=MARCH)

    # credited to E1: o1 250, o2 200, o10 100; to E2: o3 120, o11 60
    assert flow.value == D("730.00")
    # GMV: o1 300, o2 200, o10 100, o3 120, o11 60 and the unpaid o4 80 (its own store E2)
    assert (unpaid.numerator, unpaid.denominator, unpaid.value) == (D("80.00"), D("860.00"), D("0.0930"))
    assert flow.last_year.value == D("100.00")  # ly1 at E1


def test_store_filter(world):
    flow = metrics.sales_flow(actor=actor(world.users.hq),
                              filters=Filters(MARCH.date_from, MARCH.date_to, store_id=world.w1.pk))

    assert flow.value == D("500.00")  # o5; o6 (no purchase) has no store


def test_long_periods_get_a_monthly_trend(world):
    metric = metrics.gmv(actor=actor(world.users.hq),
                         filters=Filters(dt.date(2025, 12, 1), dt.date(2026, 3, 31)))

    assert [(p.period, p.value) for p in metric.trend] == [
        (dt.date(2025, 12, 1), D("0.00")), (dt.date(2026, 1, 1), D("0.00")), (dt.date(2026, 2, 1), D("0.00")),
        (dt.date(2026, 3, 1), D("2250.00"))]


def test_store_monthly_private_domain_sales(world):
    metric = metrics.store_monthly_private_domain_sales(actor=actor(world.users.hq), filters=MARCH)
    rows = metrics.store_month_rows(actor=actor(world.users.hq), filters=MARCH)

    # E1: o2 200 + o10 100 = 300; E2: o11 60; o9 went to the HQ pool → (300 + 60) / 2 store-months
    assert (metric.numerator, metric.denominator, metric.value) == (D("360.00"), 2, D("180.00"))
    assert [(r.store_code, r.month, r.private_domain_sales, r.sales_flow) for r in rows] == [
        ("E1", dt.date(2026, 3, 1), D("300.00"), D("550.00")),
        ("E2", dt.date(2026, 3, 1), D("60.00"), D("180.00")),
        ("N1", dt.date(2026, 3, 1), D("0.00"), D("340.00")),
        ("W1", dt.date(2026, 3, 1), D("0.00"), D("500.00")),
    ]


def test_ranking_by_brand_region_and_store(world):
    hq = actor(world.users.hq)

    brands = metrics.ranking(actor=hq, filters=MARCH, level="brand")
    regions = metrics.ranking(actor=hq, filters=MARCH, level="region")
    stores = metrics.ranking(actor=hq, filters=MARCH, level="store")

    assert [(r.code, r.sales_flow, r.sales_flow_last_year, r.growth) for r in brands] == [
        ("A", D("1230.00"), D("100.00"), D("11.3000")),  # (1230 − 100) / 100
        ("B", D("490.00"), D("300.00"), D("0.6333")),  # (490 − 300) / 300
    ]
    assert brands[0].gmv == D("1760.00")  # 2250 − B's 490
    assert brands[0].private_domain_sales == D("360.00")  # o2 200 + o10 100 + o11 60
    assert brands[0].refund_ratio == D("0.2679")  # 450 / (2170 − B paid 490 = 1680)
    assert [(r.code, r.sales_flow) for r in regions] == [("east", D("730.00")), ("west", D("500.00")),
                                                         ("north", D("340.00"))]
    assert [(r.code, r.sales_flow, r.paid_orders, r.average_order_value) for r in stores] == [
        ("E1", D("550.00"), 3, D("183.33")), ("W1", D("500.00"), 1, D("500.00")),
        ("N1", D("340.00"), 2, D("170.00")), ("E2", D("180.00"), 2, D("90.00"))]


def test_ranking_for_a_region_manager_never_shows_another_region(world):
    stores = metrics.ranking(actor=actor(world.users.rm_east), filters=MARCH, level="store")
    regions = metrics.ranking(actor=actor(world.users.rm_east), filters=MARCH, level="region")

    assert [r.code for r in stores] == ["E1", "E2"]
    assert [r.code for r in regions] == ["east"]


def test_rankings_of_the_start_of_a_month_read_the_month_to_date_rows(world):
    """03-01..03-10 is no whole month: the month-to-date rows through 03-10 answer."""
    early = Filters(dt.date(2026, 3, 1), dt.date(2026, 3, 10))
    hq = actor(world.users.hq)

    stores = metrics.ranking(actor=hq, filters=early, level="store")
    guides = metrics.guide_kpis(actor=hq, filters=early)

    # W1: o5 500; E1: o1 250 + o2 200 (o10 is on 03-20); E2: o3 120
    assert [(r.code, r.sales_flow) for r in stores] == [("W1", D("500.00")), ("E1", D("450.00")),
                                                        ("E2", D("120.00"))]
    # gb's shares and task (03-03, 03-04) put it on the list with no sales
    assert [(r.guide_code, r.sales, r.shares) for r in guides] == [
        ("gw", D("500.00"), 0), ("ga1", D("450.00"), 2), ("ga2", D("120.00"), 0), ("gb", D("0.00"), 1)]


def test_rankings_of_days_inside_a_month_take_the_days_before_away(world):
    """03-05..03-20: month to date through 03-20 less month to date through 03-04."""
    middle = Filters(dt.date(2026, 3, 5), dt.date(2026, 3, 20))
    hq = actor(world.users.hq)

    stores = metrics.ranking(actor=hq, filters=middle, level="store")
    regions = metrics.ranking(actor=hq, filters=middle, level="region")
    guides = metrics.guide_kpis(actor=hq, filters=middle)

    # W1: o5 500; N1: o7 250 + o8 90; E2: o3 120 (o4 unpaid); E1: o10 100 (o1, o2 are on 03-02)
    assert [(r.code, r.sales_flow, r.paid_orders) for r in stores] == [
        ("W1", D("500.00"), 1), ("N1", D("340.00"), 2), ("E2", D("120.00"), 1), ("E1", D("100.00"), 1)]
    assert [(r.code, r.sales_flow) for r in regions] == [("west", D("500.00")), ("north", D("340.00")),
                                                         ("east", D("220.00"))]
    # ga1: o9 150 (cross-brand) + o10 100, both online; its shares and commission (03-02, 03-03) fall before
    assert [(r.guide_code, r.sales, r.online_sales, r.cross_brand_sales, r.shares, r.commission,
             r.wecom_friends_added) for r in guides] == [
        ("gw", D("500.00"), D("0.00"), D("0.00"), 0, D("0.00"), 0),
        ("gb", D("340.00"), D("0.00"), D("0.00"), 0, D("0.00"), 1),  # m3~gb added 03-10
        ("ga1", D("250.00"), D("250.00"), D("150.00"), 0, D("0.00"), 0),
        ("ga2", D("120.00"), D("0.00"), D("0.00"), 0, D("0.00"), 1),  # m2~ga2 added 03-06
    ]


def test_rankings_of_a_period_cutting_two_months(world):
    """03-10..04-05: March less month to date through 03-09, plus April to date through 04-05 (no April sales).

    Stores and guides busy only before 03-10 (W1 and gw: o5 on 03-09) have nothing in the period and are left out.
    """
    cut = Filters(dt.date(2026, 3, 10), dt.date(2026, 4, 5))
    hq = actor(world.users.hq)

    stores = metrics.ranking(actor=hq, filters=cut, level="store")
    regions = metrics.ranking(actor=hq, filters=cut, level="region")
    guides = metrics.guide_kpis(actor=hq, filters=cut)
    by_execution = metrics.guide_kpis(actor=hq, filters=cut, order_by="task_execution_rate")

    # N1: o7 250 + o8 90; E1: o10 100; E2: o11 60 (community); o6 (03-10) was refunded whole and has no store
    assert [(r.code, r.sales_flow, r.private_domain_sales) for r in stores] == [
        ("N1", D("340.00"), D("0.00")), ("E1", D("100.00"), D("100.00")), ("E2", D("60.00"), D("60.00"))]
    assert [(r.code, r.sales_flow) for r in regions] == [("north", D("340.00")), ("east", D("160.00"))]
    assert [(r.guide_code, r.sales, r.offline_sales, r.tasks_assigned) for r in guides] == [
        ("gb", D("340.00"), D("340.00"), 0), ("ga1", D("250.00"), D("0.00"), 0), ("ga2", D("60.00"), D("0.00"), 0)]
    # no task was assigned in the period (03-04): every rate is empty and ties go by guide id
    assert sorted(r.guide_code for r in by_execution) == ["ga1", "ga2", "gb"]
    assert {r.task_execution_rate for r in by_execution} == {None}


def test_month_to_date_rankings_for_a_region_manager_never_show_another_region(world):
    """The month-to-date rollups go through the same scoping: 03-05..03-20 for the East manager."""
    middle = Filters(dt.date(2026, 3, 5), dt.date(2026, 3, 20))
    rm_east = actor(world.users.rm_east)

    stores = metrics.ranking(actor=rm_east, filters=middle, level="store")
    guides = metrics.guide_kpis(actor=rm_east, filters=middle)

    assert [(r.code, r.sales_flow) for r in stores] == [("E2", D("120.00")), ("E1", D("100.00"))]
    assert [(r.guide_code, r.sales) for r in guides] == [("ga1", D("250.00")), ("ga2", D("120.00"))]


def test_ranking_rejects_an_unknown_level(world):
    with pytest.raises(ValueError, match="unknown ranking level 'city'"):
        metrics.ranking(actor=actor(world.users.hq), filters=MARCH, level="city")


# ---------------------------------------------------------------- member-level rates


def test_monthly_repurchase_rate_and_purchase_frequency(world):
    hq = actor(world.users.hq)

    rate = metrics.monthly_repurchase_rate(actor=hq, filters=MARCH)
    frequency = metrics.purchase_frequency(actor=hq, filters=MARCH)

    # purchases with a member: m1 o1 o2 o7 o10 (4), m2 o3 o11 (2), m3 o5, m4 o9; o6 is no purchase, o8 no member
    assert (rate.numerator, rate.denominator, rate.value) == (2, 4, D("0.5000"))
    assert (frequency.numerator, frequency.denominator, frequency.value) == (8, 4, D("2.00"))
    assert rate.trend == (Point(period=dt.date(2026, 3, 1), value=D("0.5000"), numerator=2, denominator=4),)
    # March 2025: m1 ly1, m3 ly2
    assert (rate.last_year.value, frequency.last_year.value) == (D("0.0000"), D("1.00"))


def test_repurchase_rate_of_one_brand_counts_that_brands_purchases(world):
    rate = metrics.monthly_repurchase_rate(actor=actor(world.users.op_a), filters=MARCH)

    assert (rate.numerator, rate.denominator, rate.value) == (2, 3, D("0.6667"))  # m1 (3), m2 (2), m3 (1)


def test_member_rates_of_a_period_that_is_no_calendar_month_count_only_its_days(world):
    """Issue 24: 03-15..03-31 is one window: March's purchases before the 15th do not count."""
    hq, period = actor(world.users.hq), Filters(dt.date(2026, 3, 15), dt.date(2026, 3, 31))
    rate = metrics.monthly_repurchase_rate(actor=hq, filters=period)
    frequency = metrics.purchase_frequency(actor=hq, filters=period)
    cross = metrics.cross_purchase_rate(actor=hq, filters=period)

    # in the window: m4 o9 (03-15), m1 o10 (03-20), m2 o11 (03-22): three buyers, one purchase each, all online
    assert (rate.numerator, rate.denominator, rate.value, rate.basis) == (0, 3, D("0.0000"), "period")
    assert (frequency.numerator, frequency.denominator, frequency.value) == (3, 3, D("1.00"))
    assert (cross.numerator, cross.denominator, cross.value) == (0, 3, D("0.0000"))
    assert rate.trend == ()  # no calendar month lies wholly inside the period
    # 2025-03-15..03-31: m3 ly2 (03-20)
    assert (rate.last_year.numerator, rate.last_year.denominator, rate.last_year.basis) == (0, 1, "period")
    # the whole month keeps the monthly definition
    assert metrics.monthly_repurchase_rate(actor=hq, filters=MARCH).basis == "month"


def test_cross_purchase_rate(world):
    metric = metrics.cross_purchase_rate(actor=actor(world.users.hq), filters=MARCH)

    # m1: POS o1 o7 and mini-program o2 o10; m2: POS o3 and community o11; m3 POS only; m4 online only
    assert (metric.numerator, metric.denominator, metric.value) == (2, 4, D("0.5000"))
    assert metric.last_year.value == D("0.0000")


def test_cross_brand_guided_share(world):
    hq = actor(world.users.hq)

    group = metrics.cross_brand_guided_share(actor=hq, filters=MARCH)
    brand_a = metrics.cross_brand_guided_share(actor=hq, filters=Filters(MARCH.date_from, MARCH.date_to,
                                                                         brand_id=world.a.pk))

    # guide credits: ga1 250 + 200 + 150 (o9, brand B order) + 100, ga2 120 + 60, gw 500, gb 250 + 90 = 1720
    assert (group.numerator, group.denominator, group.value) == (D("150.00"), D("1720.00"), D("0.0872"))
    # brand A's guides: ga1 700 + ga2 180 + gw 500 = 1380
    assert (brand_a.numerator, brand_a.denominator, brand_a.value) == (D("150.00"), D("1380.00"), D("0.1087"))


def test_wecom_friend_rate_of_store_buyers(world):
    metric = metrics.wecom_friend_rate(actor=actor(world.users.hq), filters=MARCH)

    # store buyers (member, brand): m1/A (friend of ga1: yes), m2/A (removed 03-25: no),
    # m3/A (friend of gb, a brand B guide: no), m1/B (no brand B friend: no)
    assert (metric.numerator, metric.denominator, metric.value) == (1, 4, D("0.2500"))


def test_wecom_friend_rate_is_judged_at_the_end_of_the_period(world):
    """A period ending 03-20 is one window judged at its end: m2 (removed 03-25) is still a friend then."""
    metric = metrics.wecom_friend_rate(actor=actor(world.users.hq),
                                       filters=Filters(dt.date(2026, 3, 1), dt.date(2026, 3, 20)))

    # store buyers m1/A (o1), m2/A (o3), m3/A (o5), m1/B (o7); friends on 03-20: m1~ga1, m2~ga2
    assert (metric.numerator, metric.denominator, metric.basis) == (2, 4, "period")


def test_member_rates_of_a_guide_are_counted_live_the_same_way(world):
    own = actor(world.users.g_ga1)

    rate = metrics.monthly_repurchase_rate(actor=own, filters=MARCH)
    cross = metrics.cross_purchase_rate(actor=own, filters=MARCH)
    wecom = metrics.wecom_friend_rate(actor=own, filters=MARCH)

    # purchases credited to ga1: o1, o2, o10 (m1, brand A) and o9 (m4, brand B)
    assert (rate.numerator, rate.denominator) == (1, 2)
    assert (cross.numerator, cross.denominator) == (1, 2)  # m1: POS o1 and online o2, o10
    assert (wecom.numerator, wecom.denominator) == (1, 1)  # m1/A bought at the POS and is ga1's friend


def test_member_online_rate(world):
    metric = metrics.member_online_rate(actor=actor(world.users.hq), filters=MARCH)

    # memberships by 03-31: m1/A, m1/B, m2/A, m3/A, m4/A = 5 (m5 joins in April)
    # active in March: m1/A, m2/A (m4's activity is on brand B, where m4 is no member; m3's is in February)
    assert (metric.numerator, metric.denominator, metric.value) == (2, 5, D("0.4000"))


def test_member_growth_by_join_channel(world):
    growth = metrics.member_growth(actor=actor(world.users.hq), filters=MARCH)

    assert growth.members.value == 5
    assert growth.members.last_year.value == 0  # m3 joined in June 2025
    assert growth.new_members.value == 2  # m1/B 03-03, m2/A 03-05
    assert [(c.join_channel, c.new_members, c.new_members_last_year) for c in growth.by_join_channel] == [
        ("guide_qr", 1, 0), ("pay_as_join", 1, 0)]
    assert growth.members.trend[1] == Point(period=dt.date(2026, 3, 2), value=3)  # m1/A, m3/A, m4/A
    assert growth.members.trend[4] == Point(period=dt.date(2026, 3, 5), value=5)
    assert growth.new_members.trend[2] == Point(period=dt.date(2026, 3, 3), value=1)


def test_member_growth_for_a_region_counts_memberships_joined_there(world):
    growth = metrics.member_growth(actor=actor(world.users.rm_east), filters=MARCH)

    assert growth.members.value == 2  # m1/A and m4/A joined at E1; m2 joined online
    assert growth.new_members.value == 0


# ---------------------------------------------------------------- guides


def test_guide_kpis(world):
    rows = metrics.guide_kpis(actor=actor(world.users.hq), filters=MARCH)

    assert [(r.guide_code, r.sales, r.online_sales, r.offline_sales, r.cross_brand_sales) for r in rows] == [
        ("ga1", D("700.00"), D("450.00"), D("250.00"), D("150.00")),
        ("gw", D("500.00"), D("0.00"), D("500.00"), D("0.00")),
        ("gb", D("340.00"), D("0.00"), D("340.00"), D("0.00")),
        ("ga2", D("180.00"), D("60.00"), D("120.00"), D("0.00")),
    ]
    ga1 = rows[0]
    assert (ga1.shares, ga1.share_pv, ga1.share_uv, ga1.material_pv, ga1.material_uv) == (2, 4, 3, 1, 1)
    assert (ga1.tasks_assigned, ga1.tasks_executed, ga1.task_execution_rate) == (1, 1, D("1.0000"))
    assert (ga1.members_served, ga1.new_members, ga1.wecom_friends_added, ga1.commission) == (2, 0, 0, D("8.00"))
    ga2 = rows[3]
    assert (ga2.members_served, ga2.new_members, ga2.wecom_friends_added, ga2.task_execution_rate) == (
        1, 1, 1, D("0.0000"))
    gb = rows[2]
    assert (gb.shares, gb.members_served, gb.new_members, gb.wecom_friends_added) == (1, 1, 1, 1)


def test_guide_kpis_filtered_by_channel_count_that_channels_sales_and_all_guide_work(world):
    mini = Filters(dt.date(2026, 3, 1), dt.date(2026, 3, 31), channel="mini_program")
    rows = metrics.guide_kpis(actor=actor(world.users.hq), filters=mini)

    # ga1: o2 200 + o9 150 (brand B, cross-brand) + o10 100, all mini-program; the others sold in no mini-program
    # order but worked (gb shared and won m1 for B, ga2 won m2 and was assigned the task); gw only sold at W1's
    # till and is left out; ties at 0 go by guide id (ga2 was created before gb)
    assert [(r.guide_code, r.sales, r.online_sales, r.cross_brand_sales, r.shares, r.new_members,
             r.tasks_assigned, r.commission) for r in rows] == [
        ("ga1", D("450.00"), D("450.00"), D("150.00"), 2, 0, 1, D("8.00")),
        ("ga2", D("0.00"), D("0.00"), D("0.00"), 0, 1, 1, D("0.00")),
        ("gb", D("0.00"), D("0.00"), D("0.00"), 1, 1, 1, D("0.00")),
    ]


def test_guide_kpis_ordered_by_shares_and_limited(world):
    rows = metrics.guide_kpis(actor=actor(world.users.hq), filters=MARCH, order_by="shares", limit=2)

    assert [(r.guide_code, r.shares) for r in rows] == [("ga1", 2), ("gb", 1)]


def test_guide_kpis_for_a_region_manager_and_for_a_guide(world):
    east = metrics.guide_kpis(actor=actor(world.users.rm_east), filters=MARCH)
    own = metrics.guide_kpis(actor=actor(world.users.g_ga1), filters=MARCH)

    assert [r.guide_code for r in east] == ["ga1", "ga2"]
    assert [r.guide_code for r in own] == ["ga1"]


def test_task_execution_rate_and_care_list_completion(world):
    hq = actor(world.users.hq)

    tasks = metrics.task_execution_rate(actor=hq, filters=MARCH)
    care = metrics.care_list_completion(actor=hq, filters=MARCH)
    east_tasks = metrics.task_execution_rate(actor=actor(world.users.rm_east), filters=MARCH)

    assert (tasks.numerator, tasks.denominator, tasks.value) == (2, 3, D("0.6667"))  # ga1 and gb of 3
    assert (care.numerator, care.denominator, care.value) == (1, 2, D("0.5000"))
    assert (east_tasks.numerator, east_tasks.denominator, east_tasks.value) == (1, 2, D("0.5000"))  # ga1, ga2


# ---------------------------------------------------------------- core indicators


def test_core_indicators(world):
    core = metrics.core_indicators(actor=actor(world.users.hq), filters=MARCH)

    assert core.sales_revenue.value == D("1720.00")
    # cost of goods: A1 at 40: o1 2 units − 1 returned, o2, o3, o5 5 units, o6 2 units (refund without
    # returned units), o10, o11 = 1 + 1 + 1 + 5 + 2 + 1 + 1 = 12 units = 480; B1 at 60: o7 2, o8, o9 = 240
    assert core.cost_of_goods.value == D("720.00")
    assert core.operating_profit.value == D("1000.00")  # 1720 − 720
    assert core.operating_profit.last_year.value == D("300.00")  # 400 − ly1 40 − ly2 60
    # stock at cost every day: A1 100 × 40 + B1 50 × 60 = 7000; cost of goods of non-POS orders:
    # o2 40 + o6 80 + o9 60 + o10 40 + o11 40 = 260 over 31 days = 8.387…/day → 7000 / 8.387… = 834.6 days
    turnover = core.inventory_turnover_days
    assert (turnover.numerator, turnover.denominator, turnover.value) == (D("7000.00"), D("8.39"), D("834.6"))
    assert turnover.last_year.value is None  # no online orders in March 2025


def test_inventory_turnover_is_brand_level_only(world):
    east = metrics.inventory_turnover_days(actor=actor(world.users.rm_east), filters=MARCH)
    brand_b = metrics.inventory_turnover_days(actor=actor(world.users.op_b), filters=MARCH)

    assert east.value is None
    # B: stock 3000 at cost; online cost of goods o9 60 / 31 days → 3000 / 1.935… = 1550.0
    assert (brand_b.numerator, brand_b.value) == (D("3000.00"), D("1550.0"))


# ---------------------------------------------------------------- segments and livestream


def test_segment_sizes_sales_and_transitions(world):
    a = world.a
    now = timezone.now()
    run1 = RfmRun.objects.create(brand=a, as_of=dt.date(2026, 3, 10), window_days=365, started_at=now,
                                 counts={"important_value": 1, "general_develop": 2})
    run2 = RfmRun.objects.create(brand=a, as_of=dt.date(2026, 3, 20), window_days=365, started_at=now,
                                 counts={"important_value": 2, "general_develop": 1})
    from segments.models import MemberRfm

    for member, run, frm, to in ((world.m1, run1, "", "important_value"), (world.m2, run1, "", "general_develop"),
                                 (world.m3, run1, "", "general_develop"), (world.m2, run2, "general_develop",
                                                                            "important_value")):
        RfmClassChange.objects.create(member=member, brand=a, run=run, from_segment=frm, to_segment=to,
                                      changed_on=run.as_of)
    for member, segment in ((world.m1, "important_value"), (world.m2, "important_value"),
                            (world.m3, "general_develop")):
        MemberRfm.objects.create(member=member, brand=a, segment=segment, lifecycle_stage="growing")
    # Sales per class are rolled up per month with the class the buyers have when the month is built.
    facts_rebuild_months(months=[dt.date(2026, 3, 1)], tables=("segment_month",))
    hq = actor(world.users.hq)

    sizes = metrics.segment_sizes(actor=hq, filters=MARCH)
    sales = {s.segment: s for s in metrics.segment_sales(actor=hq, filters=MARCH)}
    moves = metrics.segment_transitions(actor=hq, brand_id=a.pk, from_run_id=run1.pk, to_run_id=run2.pk)

    assert [(s.run_id, s.segment, s.members) for s in sizes if s.members] == [
        (run1.pk, "important_value", 1), (run1.pk, "general_develop", 2),
        (run2.pk, "important_value", 2), (run2.pk, "general_develop", 1)]
    # members: the latest run's counts; important value bought: m1 (A: o1 250, o2 200, o10 100), m2 (o3 120, o11 60)
    assert (sales["important_value"].members, sales["important_value"].buyers, sales["important_value"].purchases,
            sales["important_value"].sales_flow) == (2, 2, 5, D("730.00"))
    assert (sales["general_develop"].members, sales["general_develop"].sales_flow) == (1, D("500.00"))  # m3 o5
    assert [(t.from_segment, t.to_segment, t.members) for t in moves] == [
        ("important_value", "important_value", 1), ("general_develop", "important_value", 1),
        ("general_develop", "general_develop", 1)]
    east = {s.segment: s for s in metrics.segment_sales(actor=actor(world.users.rm_east), filters=MARCH)}
    # East: members who joined at E1/E2 (m1; m2 joined online, m3 at W1); purchases credited to E1/E2 (m1, m2)
    assert (east["important_value"].members, east["important_value"].buyers, east["important_value"].purchases,
            east["important_value"].sales_flow) == (1, 2, 5, D("730.00"))
    assert (east["general_develop"].members, east["general_develop"].sales_flow) == (0, D("0.00"))
    with pytest.raises(ApplicationError) as refused:
        metrics.segment_transitions(actor=actor(world.users.op_b), brand_id=a.pk, from_run_id=run1.pk,
                                    to_run_id=run2.pk)
    assert refused.value.status == 404
    with pytest.raises(ApplicationError) as backwards:
        metrics.segment_transitions(actor=hq, brand_id=a.pk, from_run_id=run2.pk, to_run_id=run1.pk)
    assert backwards.value.status == 400


def test_consumption_cycles(world):
    RfmRun.objects.create(brand=world.a, as_of=dt.date(2026, 3, 20), window_days=365, started_at=timezone.now(),
                          cycle_days=D("45.50"))

    rows = metrics.consumption_cycles(actor=actor(world.users.hq), filters=MARCH)

    assert [(r.brand_code, r.as_of, r.cycle_days) for r in rows] == [("A", dt.date(2026, 3, 20), D("45.50")),
                                                                     ("B", None, None)]


def test_livestream_summary(world):
    def session(kind, store, day, hours, viewers, buyers, gmv, status=LiveSession.Status.ENDED):
        start = at(day, 19)
        s = LiveSession.objects.create(brand=world.a, kind=kind, title="t", host_store=store, status=status,
                                       planned_start=start, planned_end=start + dt.timedelta(hours=hours),
                                       actual_start=start if status == LiveSession.Status.ENDED else None,
                                       actual_end=start + dt.timedelta(hours=hours)
                                       if status == LiveSession.Status.ENDED else None)
        SessionStats.objects.create(session=s, viewers=viewers, buyers=buyers, gmv=D(gmv), paid_sales=D(gmv))
        return s

    session(LiveSession.Kind.HQ_CENTRAL, None, "2026-03-05", 2, 1000, 50, "5000.00")
    session(LiveSession.Kind.STORE, world.e1, "2026-03-06", 1.5, 200, 10, "800.00")
    session(LiveSession.Kind.STORE, world.w1, "2026-03-07", 1, 100, 0, "0.00", status=LiveSession.Status.CANCELLED)

    summary = metrics.livestream_summary(actor=actor(world.users.hq), filters=MARCH)
    east = metrics.livestream_summary(actor=actor(world.users.rm_east), filters=MARCH)

    assert (summary.total.sessions, summary.total.hours, summary.total.viewers, summary.total.buyers,
            summary.total.conversion, summary.total.gmv) == (2, D("3.50"), 1200, 60, D("0.0500"), D("5800.00"))
    assert (summary.central.sessions, summary.central.conversion) == (1, D("0.0500"))  # 50 / 1000
    assert (summary.store.sessions, summary.store.hours, summary.store.conversion) == (1, D("1.50"), D("0.0500"))
    assert [(r.code, r.figures.gmv) for r in summary.by_store] == [("E1", D("800.00"))]
    assert [(r.code, r.figures.sessions) for r in summary.by_brand] == [("A", 2)]
    assert summary.total_last_year.sessions == 0
    assert (east.total.sessions, east.central.sessions) == (1, 0)  # HQ central sessions have no host store


# ---------------------------------------------------------------- filters and bundles


def test_overview_bundles_the_same_numbers(world):
    hq = actor(world.users.hq)

    page = metrics.overview(actor=hq, filters=MARCH)

    assert page.gmv == metrics.gmv(actor=hq, filters=MARCH)
    assert page.private_domain_share == metrics.private_domain_share(actor=hq, filters=MARCH)
    assert page.monthly_repurchase_rate.value == D("0.5000")
    assert page.member_growth.members.value == 5
    assert page.card_opening_rate.value == D("0.8000")


def test_last_year_of_29_february_is_28_february():
    filters = Filters(date_from=dt.date(2024, 2, 29), date_to=dt.date(2024, 3, 31))

    assert filters.last_year() == Filters(date_from=dt.date(2023, 2, 28), date_to=dt.date(2023, 3, 31))


def test_parse_filters(world):
    hq = actor(world.users.hq)

    parsed = metrics.parse_filters({"from": "2026-03-01", "to": "2026-03-31", "brand": "A", "region": "east",
                                    "store": "E1", "channel": "store_pos"}, actor=hq)
    default = metrics.parse_filters({}, actor=hq, today=dt.date(2026, 3, 31))

    assert parsed == Filters(dt.date(2026, 3, 1), dt.date(2026, 3, 31), brand_id=world.a.pk,
                             region_id=world.east.pk, store_id=world.e1.pk, channel="store_pos")
    assert default == Filters(dt.date(2026, 3, 2), dt.date(2026, 3, 31))
    assert metrics.filters_as_query(parsed) == {"from": "2026-03-01", "to": "2026-03-31", "brand": "A",
                                                "store": "E1", "channel": "store_pos"}


@pytest.mark.parametrize(("params", "fields"), [
    ({"from": "2026-13-01"}, {"from"}),
    ({"from": "2026-03-31", "to": "2026-03-01"}, {"from"}),
    ({"from": "2024-01-01", "to": "2026-03-01"}, {"to"}),
    ({"channel": "fax"}, {"channel"}),
    ({"brand": "NOPE"}, {"brand"}),
    ({"brand": "B", "region": "east"}, {"region"}),
    ({"region": "north", "store": "E1"}, {"store"}),
    ({"store": "x" * 40}, {"store"}),
])
def test_parse_filters_rejects_bad_input_with_field_messages(world, params, fields):
    with pytest.raises(ApplicationError) as refused:
        metrics.parse_filters(params, actor=actor(world.users.hq), today=dt.date(2026, 3, 31))

    assert refused.value.status == 400
    assert set(refused.value.fields) == fields


def test_parse_filters_answers_404_for_a_store_outside_the_scope(world):
    with pytest.raises(ApplicationError) as refused:
        metrics.parse_filters({"store": "W1"}, actor=actor(world.users.rm_east))

    assert refused.value.status == 404
