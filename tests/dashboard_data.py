"""A small hand-made group for the HQ dashboard tests (pages, exports, consistency, browser).

Group ``grp`` (all times Asia/Shanghai, March 2026 and March 2025 for last year's comparison):

    brand WA  region East: store E1 (guides E1-G1, E1-G2), store E2 (guide E2-G1)
              region West: store W1 (guide W1-G1)
    brand WB  region North: store N1 (guide N1-G1)

Orders (member, channel, status, total, paid, refunded; day):

    2026-03-02  WA E1 E1-G1  m1  store_pos     paid       300.00          refunded  50.00
    2026-03-02  WA E1 E1-G1  m1  mini_program  paid       200.00
    2026-03-05  WA E1 E1-G2  m2  store_pos     completed  120.00
    2026-03-05  WA E1 E1-G2  m2  mini_program  pending     80.00  paid 0   (unpaid)
    2026-03-09  WA E2 E2-G1  m3  store_pos     paid       500.00
    2026-03-10  WA W1 W1-G1  m4  mini_program  paid       400.00
    2026-03-12  WB N1 N1-G1  m1  store_pos     paid       250.00
    2026-03-12  WB N1 N1-G1  -   store_pos     paid        90.00          (not a member)
    2025-03-03  WA E1 E1-G1  m1  store_pos     paid       100.00          (last year)
    2025-03-20  WB N1 N1-G1  m2  store_pos     paid       300.00          (last year)

Members m1, m2 and m4 are bound to WA guides E1-G1, E1-G2 and W1-G1 since 2025-01-01 (m3 to nobody), so
attribution files every order under its own store and guide: mini-program orders go to the bound guide's store.

Livestream (brand WA): HQ central session 2026-03-06 20:00–22:00 (100 viewers, 5 buyers, GMV 1000.00, paid
900.00) and store session at E1 2026-03-08 19:00–20:30 (20 viewers, 2 buyers, GMV 300.00, paid 300.00).
Phase-1 targets of WA: 4 sessions and 6 hours a month; E1 is in phase 1 since 2026-03-01.

Logins (password ``pw-123456``): ``hq`` (group), ``op_wa`` (brand WA), ``rm_east`` (WA East),
``sm_e1`` (store manager E1), ``guide_e1`` (guide E1-G1).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from livestream.models import LivePhase, LivePhaseTarget, LiveSession, SessionStats, StoreLivePhase
from mall.models import Channel, OrderStatus
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

SH = ZoneInfo("Asia/Shanghai")
PASSWORD = "pw-123456"
PERIOD = {"from": "2026-03-01", "to": "2026-03-31"}
DATE_FROM, DATE_TO = dt.date(2026, 3, 1), dt.date(2026, 3, 31)


def local(day: str, hour: int = 12) -> dt.datetime:
    y, m, d = (int(part) for part in day.split("-"))
    return dt.datetime(y, m, d, hour, tzinfo=SH)


def build_dashboard_world() -> SimpleNamespace:
    grp = RetailGroupFactory(code="grp", name="Group")
    wa = BrandFactory(group=grp, code="WA", name="雅致女装")
    wb = BrandFactory(group=grp, code="WB", name="动力运动")
    east = RegionFactory(brand=wa, code="east", name="华东")
    west = RegionFactory(brand=wa, code="west", name="华西")
    north = RegionFactory(brand=wb, code="north", name="华北")
    e1 = StoreFactory(region=east, code="E1", name="上海一店")
    e2 = StoreFactory(region=east, code="E2", name="上海二店")
    w1 = StoreFactory(region=west, code="W1", name="成都一店")
    n1 = StoreFactory(region=north, code="N1", name="北京一店")
    e1g1 = GuideFactory(store=e1, code="E1-G1", name="王芳")
    e1g2 = GuideFactory(store=e1, code="E1-G2", name="李娜")
    e2g1 = GuideFactory(store=e2, code="E2-G1", name="张伟")
    w1g1 = GuideFactory(store=w1, code="W1-G1", name="刘洋")
    n1g1 = GuideFactory(store=n1, code="N1-G1", name="陈静")
    m1, m2, m3, m4 = (MemberFactory(group=grp, code=code) for code in ("m1", "m2", "m3", "m4"))
    since = local("2025-01-01")
    for member, guide in ((m1, e1g1), (m2, e1g2), (m4, w1g1)):
        GuideBindingFactory(member=member, guide=guide, started_at=since)

    def order(no, brand, day, *, store, guide, member, channel=Channel.STORE_POS, status=OrderStatus.PAID,
              total="100.00", paid=None, refunded="0.00"):
        paid = total if paid is None else paid
        when = local(day)
        return OrderFactory(order_no=no, brand=brand, store=store, guide=guide, channel=channel, status=status,
                            ordered_at=when, paid_at=when if Decimal(paid) else None, member=member,
                            total_amount=Decimal(total), paid_amount=Decimal(paid), refunded_amount=Decimal(refunded))

    order("o1", wa, "2026-03-02", store=e1, guide=e1g1, member=m1, total="300.00", refunded="50.00")
    order("o2", wa, "2026-03-02", store=e1, guide=e1g1, member=m1, channel=Channel.MINI_PROGRAM, total="200.00")
    order("o3", wa, "2026-03-05", store=e1, guide=e1g2, member=m2, status=OrderStatus.COMPLETED, total="120.00")
    order("o4", wa, "2026-03-05", store=e1, guide=e1g2, member=m2, channel=Channel.MINI_PROGRAM,
          status=OrderStatus.PENDING_PAYMENT, total="80.00", paid="0.00")
    order("o5", wa, "2026-03-09", store=e2, guide=e2g1, member=m3, total="500.00")
    order("o6", wa, "2026-03-10", store=w1, guide=w1g1, member=m4, channel=Channel.MINI_PROGRAM, total="400.00")
    order("o7", wb, "2026-03-12", store=n1, guide=n1g1, member=m1, total="250.00")
    order("o8", wb, "2026-03-12", store=n1, guide=n1g1, member=None, total="90.00")
    order("ly1", wa, "2025-03-03", store=e1, guide=e1g1, member=m1, total="100.00")
    order("ly2", wb, "2025-03-20", store=n1, guide=n1g1, member=m2, total="300.00")

    # 1+N livestream: an HQ central session and a store session at E1, both ended, with their figures.
    central = LiveSession.objects.create(
        brand=wa, kind=LiveSession.Kind.HQ_CENTRAL, title="春季新品发布", status=LiveSession.Status.ENDED,
        planned_start=local("2026-03-06", 20), planned_end=local("2026-03-06", 22),
        actual_start=local("2026-03-06", 20), actual_end=local("2026-03-06", 22))
    store_live = LiveSession.objects.create(
        brand=wa, kind=LiveSession.Kind.STORE, title="上海一店直播", host_store=e1, host_guide=e1g1, follows=central,
        status=LiveSession.Status.ENDED, planned_start=local("2026-03-08", 19), planned_end=local("2026-03-08", 21),
        actual_start=local("2026-03-08", 19), actual_end=local("2026-03-08", 20) + dt.timedelta(minutes=30))
    SessionStats.objects.create(session=central, viewers=100, views=150, orders=6, gmv=Decimal("1000.00"),
                                paid_orders=5, paid_sales=Decimal("900.00"), buyers=5, conversion=Decimal("0.0500"))
    SessionStats.objects.create(session=store_live, viewers=20, views=25, orders=2, gmv=Decimal("300.00"),
                                paid_orders=2, paid_sales=Decimal("300.00"), buyers=2, conversion=Decimal("0.1000"))

    # Store livestream programme: WA's phase-1 targets (4 sessions, 6 hours a month); E1 in phase 1 since March.
    LivePhaseTarget.objects.create(brand=wa, phase=LivePhase.DURATION, sessions_per_month=4,
                                   hours_per_month=Decimal("6.0"))
    StoreLivePhase.objects.create(store=e1, phase=LivePhase.DURATION, since=dt.date(2026, 3, 1))

    users = SimpleNamespace(
        hq=staff_user("hq", group=grp, username="hq"),
        op_wa=staff_user("brand_operator", brand=wa, username="op_wa"),
        rm_east=staff_user("region_manager", region=east, username="rm_east"),
        sm_e1=staff_user("store_manager", store=e1, username="sm_e1"),
        guide_e1=staff_user("guide", guide=e1g1, username="guide_e1"),
    )
    return SimpleNamespace(grp=grp, wa=wa, wb=wb, east=east, west=west, north=north, e1=e1, e2=e2, w1=w1, n1=n1,
                           e1g1=e1g1, e1g2=e1g2, e2g1=e2g1, w1g1=w1g1, n1g1=n1g1, m1=m1, m2=m2, m3=m3, m4=m4,
                           users=users)


def build_facts() -> None:
    """Attribute the orders, classify brand WA's members twice (RFML runs as of 15 and 31 March 2026), then
    build every fact table the dashboard reads, for both years of the data set."""
    from analytics.facts import facts_rebuild
    from attribution.services import attribute_all
    from retail_crm.models import Brand
    from segments.rfm import rfm_recompute

    attribute_all()
    wa = Brand.objects.get(code="WA")
    rfm_recompute(brand=wa, as_of=dt.date(2026, 3, 15))
    rfm_recompute(brand=wa, as_of=dt.date(2026, 3, 31))
    facts_rebuild(date_from=dt.date(2025, 3, 1), date_to=dt.date(2025, 3, 31))
    facts_rebuild(date_from=DATE_FROM, date_to=DATE_TO)
