"""Issue 24: member rates over exactly the chosen period, and each guided order counted once.

A hand-made group (times Asia/Shanghai). Brand X: region XE with stores X1 (guide gx1) and X2 (guide gx2);
brand Y: region YN with store Y1 (guide gy). Members p1 and p4 are bound to gx1, p2 to gx2 (since
2025-01-01); p3 to nobody. The period is 2026-11-04..2026-12-03 (30 days cutting two months; last year
2025-11-04..2025-12-03). Orders, all paid, net = total (POS orders at the store with its guide):

    a1  X mini_program    p1  2026-11-02  100  before the period (November 1–3 must not count)
    c1  X store_pos X1 gx1  p3  2026-11-03   80  before the period
    c2  X store_pos X1 gx1  p3  2026-11-04   90  the period's first day
    d1  Y store_pos Y1 gy   p4  2026-11-10  300  exclusive gx1 (brand X: cross-brand) + selling gy
    b1  X mini_program    p2  2026-11-15  150  online in November …
    a2  X store_pos X1 gx1  p1  2026-11-20  200
    e1  X store_pos X1 gx2  p1  2026-11-25  100  exclusive gx1 + selling gx2 (same brand)
    b2  X store_pos X2 gx2  p2  2026-12-02  120  … offline in December: p2 is a cross buyer of the period
    d2  Y store_pos Y1 gy   p4  2026-12-03   50  the period's last day (exclusive gx1 + selling gy)
    c3  X mini_program    p3  2026-12-04   60  after the period
    l1  X store_pos X1 gx1  p1  2025-11-10   70  last year
    l2  X mini_program    p1  2025-11-20   30  last year

In the period: buyers p1 (a2, e1), p2 (b1, b2), p3 (c2), p4 (d1, d2): 4 buyers, 7 purchases, 3 with two or more,
1 online and offline (p2; p1's online a1 lies before the period). Calendar months pooled (the old reading) would
have given cross 1/7 (p1 in November, p2 missed).

Guided orders of the period, each counted once: a2 200, b1 150, b2 120, c2 90, d1 300 (cross), d2 50 (cross),
e1 100 = 1010, of which 350 cross-brand (0.3465); summing both credits of d1, d2 and e1 would make it 350/1460.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction
from django.urls import reverse

from analytics import metrics
from analytics.facts import facts_rebuild, facts_rebuild_windows
from analytics.metrics import Filters
from analytics.models import MemberWindowFact
from mall.models import Channel
from retail_crm.scoping import actor_for
from tests.analytics.test_dashboard_consistency import check_overview
from tests.dashboard_data import PASSWORD, local
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

PERIOD = Filters(dt.date(2026, 11, 4), dt.date(2026, 12, 3))
PARAMS = {"from": "2026-11-04", "to": "2026-12-03"}
D = Decimal


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once per module inside a transaction rolled back at the end; each test runs in a savepoint."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


def build_world() -> dict:
    grp = RetailGroupFactory(code="grp", name="Group")
    x, y = BrandFactory(group=grp, code="X", name="X"), BrandFactory(group=grp, code="Y", name="Y")
    xe, yn = RegionFactory(brand=x, code="xe", name="XE"), RegionFactory(brand=y, code="yn", name="YN")
    x1, x2 = StoreFactory(region=xe, code="X1", name="X1"), StoreFactory(region=xe, code="X2", name="X2")
    y1 = StoreFactory(region=yn, code="Y1", name="Y1")
    gx1, gx2 = GuideFactory(store=x1, code="gx1", name="gx1"), GuideFactory(store=x2, code="gx2", name="gx2")
    gy = GuideFactory(store=y1, code="gy", name="gy")
    p1, p2, p3, p4 = (MemberFactory(group=grp, code=code) for code in ("p1", "p2", "p3", "p4"))
    for member, guide in ((p1, gx1), (p2, gx2), (p4, gx1)):
        GuideBindingFactory(member=member, guide=guide, started_at=local("2025-01-01"))

    def order(no, brand, day, total, member, *, store=None, guide=None, channel=Channel.STORE_POS):
        OrderFactory(order_no=no, brand=brand, store=store, guide=guide, channel=channel, member=member,
                     ordered_at=local(day), paid_at=local(day), total_amount=D(total), paid_amount=D(total))

    mp = Channel.MINI_PROGRAM
    order("a1", x, "2026-11-02", "100.00", p1, channel=mp)
    order("c1", x, "2026-11-03", "80.00", p3, store=x1, guide=gx1)
    order("c2", x, "2026-11-04", "90.00", p3, store=x1, guide=gx1)
    order("d1", y, "2026-11-10", "300.00", p4, store=y1, guide=gy)
    order("b1", x, "2026-11-15", "150.00", p2, channel=mp)
    order("a2", x, "2026-11-20", "200.00", p1, store=x1, guide=gx1)
    order("e1", x, "2026-11-25", "100.00", p1, store=x1, guide=gx2)
    order("b2", x, "2026-12-02", "120.00", p2, store=x2, guide=gx2)
    order("d2", y, "2026-12-03", "50.00", p4, store=y1, guide=gy)
    order("c3", x, "2026-12-04", "60.00", p3, channel=mp)
    order("l1", x, "2025-11-10", "70.00", p1, store=x1, guide=gx1)
    order("l2", x, "2025-11-20", "30.00", p1, channel=mp)

    from attribution.services import attribute_all

    attribute_all()
    facts_rebuild(date_from=dt.date(2025, 11, 1), date_to=dt.date(2025, 12, 31))
    facts_rebuild(date_from=dt.date(2026, 11, 1), date_to=dt.date(2026, 12, 31))
    users = {"hq": staff_user("hq", group=grp, username="hq"),
             "op_x": staff_user("brand_operator", brand=x, username="op_x"),
             "op_y": staff_user("brand_operator", brand=y, username="op_y"),
             "rm_xe": staff_user("region_manager", region=xe, username="rm_xe"),
             "sm_x1": staff_user("store_manager", store=x1, username="sm_x1")}
    for user in users.values():
        user.set_password(PASSWORD)
        user.save()
    return {"x": x, "y": y, "x1": x1, "x2": x2, "users": users}


def rates(user, filters: Filters = PERIOD) -> dict[str, tuple]:
    who = actor_for(user)
    out = {}
    for name in ("monthly_repurchase_rate", "purchase_frequency", "cross_purchase_rate"):
        m = getattr(metrics, name)(actor=who, filters=filters)
        out[name] = (m.numerator, m.denominator, m.value, m.basis)
    return out


def test_member_rates_read_exactly_the_period(world):
    MemberWindowFact.objects.all().delete()  # counted live first, then from the window's facts: the same
    for built in (False, True):
        if built:
            assert facts_rebuild_windows(ends=[], periods=[(PERIOD.date_from, PERIOD.date_to)]) > 0
        hq = rates(world["users"]["hq"])
        assert hq == {"monthly_repurchase_rate": (3, 4, D("0.7500"), "period"),
                      "purchase_frequency": (7, 4, D("1.75"), "period"),
                      "cross_purchase_rate": (1, 4, D("0.2500"), "period")}, built
        # brand X: a2 e1 (p1), b1 b2 (p2), c2 (p3); brand Y: d1 d2 (p4)
        assert rates(world["users"]["op_x"]) == {"monthly_repurchase_rate": (2, 3, D("0.6667"), "period"),
                                                 "purchase_frequency": (5, 3, D("1.67"), "period"),
                                                 "cross_purchase_rate": (1, 3, D("0.3333"), "period")}, built
        assert rates(world["users"]["op_y"]) == {"monthly_repurchase_rate": (1, 1, D("1.0000"), "period"),
                                                 "purchase_frequency": (2, 1, D("2.00"), "period"),
                                                 "cross_purchase_rate": (0, 1, D("0.0000"), "period")}, built
        # store X1 (credited store of the POS orders a2, e1, c2): p1 twice, p3 once; b1 is filed at X2 (bound guide)
        assert rates(world["users"]["sm_x1"])["monthly_repurchase_rate"] == (1, 2, D("0.5000"), "period"), built


def test_last_year_and_a_calendar_month_keep_their_own_days(world):
    hq = actor_for(world["users"]["hq"])
    cross = metrics.cross_purchase_rate(actor=hq, filters=PERIOD)
    # 2025-11-04..2025-12-03: p1 bought offline (l1) and online (l2)
    assert (cross.last_year.numerator, cross.last_year.denominator, cross.last_year.basis) == (1, 1, "period")

    november = metrics.cross_purchase_rate(actor=hq, filters=Filters(dt.date(2026, 11, 1), dt.date(2026, 11, 30)))
    # November as a month: p1 (a1 online, a2 e1 offline) crosses; p2 (b1), p3 (c1 c2), p4 (d1) do not
    assert (november.numerator, november.denominator, november.value, november.basis) == (1, 4, D("0.2500"), "month")
    december = metrics.monthly_repurchase_rate(actor=hq, filters=Filters(dt.date(2026, 12, 1), dt.date(2026, 12, 31)))
    assert (december.numerator, december.denominator, december.basis) == (0, 3, "month")  # p2 b2, p4 d2, p3 c3


def test_cross_brand_guided_share_counts_each_guided_order_once(world):
    def share(user, **filters):
        m = metrics.cross_brand_guided_share(actor=actor_for(user), filters=Filters(PERIOD.date_from,
                                                                                    PERIOD.date_to, **filters))
        return m.numerator, m.denominator, m.value

    users = world["users"]
    assert share(users["hq"]) == (D("350.00"), D("1010.00"), D("0.3465"))
    # brand X's guides are credited on every guided order (gx1 on d1, d2 across brands): the same orders
    assert share(users["op_x"]) == (D("350.00"), D("1010.00"), D("0.3465"))
    assert share(users["rm_xe"]) == (D("350.00"), D("1010.00"), D("0.3465"))
    # brand Y's guide gy sells Y's own orders d1, d2: not cross-brand in Y's view
    assert share(users["op_y"]) == (D("0.00"), D("350.00"), D("0.0000"))
    # store X1 (gx1): a2 200, c2 90, d1 300 ×, d2 50 ×, e1 100 (gx2 at X2 is outside the view)
    assert share(users["sm_x1"]) == (D("350.00"), D("740.00"), D("0.4730"))
    assert share(users["hq"], store_id=world["x2"].pk) == (D("0.00"), D("370.00"), D("0.0000"))  # b1 b2 e1
    assert share(users["hq"], channel=Channel.MINI_PROGRAM) == (D("0.00"), D("150.00"), D("0.0000"))  # b1


def test_page_export_and_api_agree_and_say_which_definition(client, world):
    for username, extra in (("hq", {}), ("hq", {"brand": "X"}), ("op_y", {}), ("rm_xe", {}),
                             ("rm_xe", {"store": "X1"})):
        check_overview(client, username, {**PARAMS, **extra})

    client.logout()
    assert client.login(username="hq", password=PASSWORD)
    response = client.get(reverse("hq:overview"), PARAMS, HTTP_ACCEPT_LANGUAGE="en")
    cards = {card["key"]: card for card in response.context["metrics"]}
    assert cards["monthly_repurchase_rate"]["label"] == "Repurchase rate in the period"
    assert cards["monthly_repurchase_rate"]["value"] == D("0.7500")
    assert cards["cross_purchase_rate"]["label"] == "Online-offline cross purchase rate in the period"
    assert "counted once" in cards["cross_brand_guided_share"]["help"]
    html = response.content.decode()
    assert "Repurchase rate in the period" in html and "an order is cross-brand if any credited guide" in html
    body = client.get("/api/v1/analytics/metrics/overview/", PARAMS).json()
    assert (body["monthly_repurchase_rate"]["basis"], body["monthly_repurchase_rate"]["value"]) == ("period", "0.7500")
    assert body["cross_brand_guided_share"]["value"] == "0.3465"
    month = client.get("/api/v1/analytics/metrics/overview/", {"from": "2026-11-01", "to": "2026-11-30"}).json()
    assert month["cross_purchase_rate"]["basis"] == "month"


def test_the_period_label_in_chinese(client, world):
    assert client.login(username="hq", password=PASSWORD)
    response = client.get(reverse("hq:overview"), PARAMS, HTTP_ACCEPT_LANGUAGE="zh-hans")
    labels = {card["key"]: card["label"] for card in response.context["metrics"]}
    assert labels["monthly_repurchase_rate"] == "区间复购率"
    month = client.get(reverse("hq:overview"), {"from": "2026-11-01", "to": "2026-11-30"},
                       HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert {c["key"]: c["label"] for c in month.context["metrics"]}["monthly_repurchase_rate"] == "单月会员复购率"
