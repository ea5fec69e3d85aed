"""livestream.metrics: a session's figures from a known event stream and its orders (every figure worked out
by hand below), SessionStats upserts, the per store / brand summaries, and the staff API (scope, 400/401/404).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from rest_framework.test import APIClient

from livestream.metrics import (
    LiveSummaryRow,
    SessionFigures,
    live_stats_refresh_recent,
    live_summary,
    session_figures,
    session_stats_refresh,
    session_stats_refresh_all,
)
from livestream.models import LiveSession, SessionStats, ViewerEvent
from mall.models import Channel, OrderStatus
from members.models import JoinChannel
from retail_crm.errors import ApplicationError
from retail_crm.scoping import actor_for
from tests.factories import BrandFactory, BrandMembershipFactory, MemberFactory, OrderFactory, staff_user
from tests.livestream.test_livestream_schedule import make_org, plan

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
D = Decimal


def t(hour: int, minute: int = 0, second: int = 0, day: int = 4, month: int = 3) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, minute, second, tzinfo=SH)


@pytest.fixture
def org():
    return make_org()


def events(session, *stream):
    """(viewer, kind, "HH:MM[:SS]") triples, stored as they are (outside the window too)."""
    rows = []
    for viewer, kind, when in stream:
        parts = [int(p) for p in when.split(":")]
        rows.append(ViewerEvent(session=session, viewer_id=viewer, kind=kind, occurred_at=t(*parts)))
    ViewerEvent.objects.bulk_create(rows)


def ended(org, start, end, *, planned=(t(19), t(21)), **kw):
    session = plan(org, *planned, **kw)
    LiveSession.objects.filter(pk=session.pk).update(status="ended", actual_start=start, actual_end=end)
    session.refresh_from_db()
    return session


# The known stream. The session was planned 19:00–21:00, ran 19:05–20:00: the run is 3,300 s.
#
# viewer  events                                       presence in the run            watch   joins
# M-A     join 19:00 (lobby), leave 19:20,             19:05–19:20, 19:30–19:40      900+600    2
#         join 19:30, leave 19:40
# b       join 19:10, join 19:15 (re-join, no leave),  19:10–19:25 (the re-join        900      2
#         leave 19:25, leave 19:50 (stray: ignored)    continues the presence)
# c       join 19:20, never leaves                     19:20–20:00 (until the end)    2400      1
# d       join 18:50, leave 19:00 (lobby only)         none: left before the start       –      –
# e       join 20:10, leave 20:20 (after the end)      none                              –      –
# M-F     join 19:40, leave 19:45, join 19:45          19:40–19:45, 19:45–19:55       300+600    2
#         (reconnect at the same instant), leave 19:55
# g       join 19:58, leave 20:30                      19:58–20:00 (clipped)           120      1
# h       join 19:03 (lobby), leave 19:16              19:05–19:16 (clipped)           660      1
#
# UV = A, b, c, F, g, h = 6; PV = 2+2+1+2+1+1 = 9; watch = 1500+900+2400+900+120+660 = 6,480 s,
# average 6480 / 6 = 1,080.00 s.
# Peak: 19:05 A,h = 2; 19:10 +b = 3; 19:15 b re-joins: still 3 (4 if double-counted); 19:16 h leaves = 2;
# 19:20 A leaves, c joins = 2; 19:25 = 1; 19:30 = 2; 19:40 A leaves, F joins = 2; 19:45 F reconnects = 2;
# 19:55 = 1; 19:58 = 2; 20:00 = 0. Peak = 3.
# Likes at 19:04 (before the start) and 20:05 (after the end) do not count: likes = 3. Comments at exactly
# 19:05 and exactly 20:00 count (the run is closed at both ends): comments = 3. Shares = 1. Product clicks
# 19:20 and 19:21 count, 20:01 does not: 2.
STREAM = [
    ("M-A", "join", "19:00"), ("M-A", "leave", "19:20"), ("M-A", "join", "19:30"), ("M-A", "leave", "19:40"),
    ("b", "join", "19:10"), ("b", "join", "19:15"), ("b", "leave", "19:25"), ("b", "leave", "19:50"),
    ("c", "join", "19:20"),
    ("d", "join", "18:50"), ("d", "leave", "19:00"),
    ("e", "join", "20:10"), ("e", "leave", "20:20"),
    ("M-F", "join", "19:40"), ("M-F", "leave", "19:45"), ("M-F", "join", "19:45"), ("M-F", "leave", "19:55"),
    ("g", "join", "19:58"), ("g", "leave", "20:30"),
    ("h", "join", "19:03"), ("h", "leave", "19:16"),
    ("M-A", "like", "19:10"), ("c", "like", "19:30"), ("c", "like", "19:50"), ("d", "like", "19:04"),
    ("e", "like", "20:05"),
    ("b", "comment", "19:05"), ("c", "comment", "20:00"), ("M-F", "comment", "19:30"),
    ("c", "share", "19:40"),
    ("M-A", "product_click", "19:20"), ("b", "product_click", "19:21"), ("c", "product_click", "20:01"),
]


def sell(org, session, *, member, status=OrderStatus.PAID, total="0.00", paid="0.00", refunded="0.00"):
    return OrderFactory(brand=org.brand, member=member, channel=Channel.STORE_LIVE, store=org.store_a,
                        live_session=session, status=status, ordered_at=t(19, 30), total_amount=D(total),
                        paid_amount=D(paid), refunded_amount=D(refunded),
                        paid_at=t(19, 31) if D(paid) else None)


@pytest.fixture
def known(org):
    session = ended(org, t(19, 5), t(20))
    other = ended(org, t(19), t(20), store=org.store_b)
    events(session, *STREAM)
    events(other, ("x", "join", "19:10"), ("x", "like", "19:11"))
    group = org.brand.group
    ann, fay, xia = (MemberFactory(group=group, code=c) for c in ("M-A", "M-F", "M-X"))
    # Orders (the session's): GMV counts all six = 300 + 200 + 100 + 80 + 60 + 120 = 860.00.
    sell(org, session, member=ann, total="300.00", paid="300.00")  # purchase, net 300
    sell(org, session, member=ann, total="200.00", paid="200.00", refunded="50.00")  # purchase, net 150
    sell(org, session, member=xia, total="100.00", paid="100.00", refunded="100.00")  # refunded: no purchase
    sell(org, session, member=fay, status=OrderStatus.PENDING_PAYMENT, total="80.00")  # GMV only
    sell(org, session, member=fay, status=OrderStatus.CANCELLED, total="60.00")  # GMV only
    sell(org, session, member=fay, total="120.00", paid="120.00")  # purchase, net 120
    # Purchases: 3, net 300 + 150 + 120 = 570.00; buyers A and F = 2; conversion 2 / 6 = 0.3333.
    sell(org, other, member=xia, total="999.00", paid="999.00")  # another session's
    OrderFactory(brand=org.brand, member=ann, total_amount=D("50.00"), paid_amount=D("50.00"))  # no session
    # New members through the session: 2 (one joined through the other session, one at a store).
    for member, live in ((ann, session), (fay, session), (xia, other), (MemberFactory(group=group), None)):
        BrandMembershipFactory(member=member, brand=org.brand, join_channel=JoinChannel.LIVESTREAM
                               if live else JoinChannel.STORE_CARD, live_session=live)
    return type("Known", (), dict(session=session, other=other))


EXPECTED = dict(viewers=6, views=9, peak_concurrent=3, watch_seconds=6480, avg_watch_seconds=D("1080.00"),
                likes=3, comments=3, shares=1, product_clicks=2, orders=6, gmv=D("860.00"), paid_orders=3,
                paid_sales=D("570.00"), buyers=2, conversion=D("0.3333"), new_members=2)


def test_session_figures_from_a_known_stream(known):
    assert session_figures(session=known.session) == SessionFigures(session_id=known.session.pk, **EXPECTED)


def test_the_other_session_is_computed_on_its_own(known):
    # x joined 19:10 and never left; the run 19:00–20:00: 50 minutes; its order: one buyer, not a member join.
    assert session_figures(session=known.other) == SessionFigures(
        session_id=known.other.pk, viewers=1, views=1, peak_concurrent=1, watch_seconds=3000,
        avg_watch_seconds=D("3000.00"), likes=1, orders=1, gmv=D("999.00"), paid_orders=1, paid_sales=D("999.00"),
        buyers=1, conversion=D("1.0000"), new_members=1)


def stored(session) -> dict:
    stats = SessionStats.objects.get(session=session)
    return {name: getattr(stats, name) for name in EXPECTED}


def test_refresh_stores_the_figures_and_is_idempotent(known):
    session_stats_refresh(session=known.session)
    first = SessionStats.objects.get(session=known.session).computed_at
    assert stored(known.session) == EXPECTED
    session_stats_refresh(session=known.session)
    assert SessionStats.objects.count() == 1
    assert stored(known.session) == EXPECTED
    assert SessionStats.objects.get(session=known.session).computed_at >= first
    # A new viewer later: the row is replaced, not added to. i joins 19:50 and stays: +600 s.
    events(known.session, ("i", "join", "19:50"))
    session_stats_refresh(session=known.session)
    assert stored(known.session) == {**EXPECTED, "viewers": 7, "views": 10, "watch_seconds": 7080,
                                     "avg_watch_seconds": D("1011.43"), "conversion": D("0.2857")}


def test_refresh_all_covers_every_begun_session_once(org, known):
    plan(org, t(10, day=20), t(11, day=20))  # not begun (as of 2024-03-10)
    cancelled = plan(org, t(10, day=5), t(11, day=5), store=org.store_b)
    LiveSession.objects.filter(pk=cancelled.pk).update(status="cancelled")
    assert session_stats_refresh_all(as_of=t(12, day=10)) == 2
    assert sorted(SessionStats.objects.values_list("session_id", flat=True)) == sorted(
        [known.session.pk, known.other.pk])
    assert stored(known.session) == EXPECTED


def test_a_live_session_counts_up_to_now(org):
    session = plan(org, t(19), t(21))
    LiveSession.objects.filter(pk=session.pk).update(status="live", actual_start=t(19, 5))
    session.refresh_from_db()
    events(session, ("a", "join", "19:10"), ("b", "join", "19:00"), ("b", "leave", "19:20"), ("c", "join", "19:40"))
    # As of 19:30: a 19:10–19:30 = 1200 s, b 19:05–19:20 = 900 s; c has not joined yet (19:40 > now).
    figures = session_figures(session=session, as_of=t(19, 30))
    assert (figures.viewers, figures.views, figures.peak_concurrent, figures.watch_seconds) == (2, 2, 2, 2100)
    assert live_stats_refresh_recent(as_of=t(19, 30)) == 1
    assert SessionStats.objects.get(session=session).watch_seconds == 2100


def test_a_session_that_never_started_runs_over_its_planned_time(org):
    session = plan(org, t(19), t(21))
    events(session, ("a", "join", "18:30"), ("a", "like", "18:59"), ("a", "like", "20:59"))
    figures = session_figures(session=session)
    # a present 19:00–21:00 (no leave) = 7200 s; the like before 19:00 is outside the run.
    assert (figures.viewers, figures.watch_seconds, figures.likes, figures.peak_concurrent) == (1, 7200, 1, 1)


def test_a_session_without_events_or_orders_is_all_zero(org):
    session = ended(org, t(19), t(20))
    assert session_figures(session=session) == SessionFigures(session_id=session.pk)


def test_recent_refresh_skips_old_and_future_sessions(org, known):
    plan(org, t(10, day=20), t(11, day=20))
    # as of 21:30 on the day: the known sessions ended at 20:00, within the last two hours.
    assert live_stats_refresh_recent(as_of=t(21, 30)) == 2
    assert live_stats_refresh_recent(as_of=t(22, 30, day=5)) == 0


# ---------------------------------------------------------------------------- summaries

@pytest.fixture
def weeks(org, known):
    """Week of Mon 4 March: the known session (store A, 19:05–20:00 = 0.92 h, stats as above) and the other
    (store B, 19:00–20:00 = 1.00 h); a planned store-A session on Thursday; a cancelled store-B one;
    an HQ central session (ended, 2 h, 10 viewers, 1 buyer, 500.00). Week of Mon 11 March: a store-A
    session ended 20:00–21:30 (1.50 h) with 4 viewers, 2 buyers, 300.00 net, GMV 400.00."""
    plan(org, t(10, day=7), t(11, day=7))
    cancelled = plan(org, t(10, day=8), t(11, day=8), store=org.store_b)
    LiveSession.objects.filter(pk=cancelled.pk).update(status="cancelled")
    hq = ended(org, t(20, day=9), t(22, day=9), planned=(t(20, day=9), t(22, day=9)), kind="hq_central",
               title="HQ")
    next_week = ended(org, t(20, day=12), t(21, 30, day=12), planned=(t(20, day=12), t(21, day=12)))
    session_stats_refresh(session=known.session)
    session_stats_refresh(session=known.other)
    SessionStats.objects.create(session=hq, viewers=10, views=12, buyers=1, orders=1, gmv=D("500.00"),
                                paid_sales=D("500.00"), new_members=3)
    SessionStats.objects.create(session=next_week, viewers=4, views=4, buyers=2, orders=3, gmv=D("400.00"),
                                paid_sales=D("300.00"))
    return type("Weeks", (), dict(hq=hq, next_week=next_week))


def row(org, start, *, store=None, **kw):
    values = dict(planned=0, held=0, cancelled=0, live_hours=D("0.00"), viewers=0, views=0, buyers=0, orders=0,
                  gmv=D("0.00"), paid_sales=D("0.00"), conversion=D("0.0000"), new_members=0)
    values.update(kw)
    return LiveSummaryRow(period_start=start, brand_id=org.brand.pk, store_id=store.pk if store else None, **values)


MON4, MON11 = dt.date(2024, 3, 4), dt.date(2024, 3, 11)


def test_week_summary_per_brand_and_store(org, weeks):
    summary = live_summary(actor=org.hq, period="week", date_from=dt.date(2024, 3, 1), date_to=dt.date(2024, 3, 17))
    # Store A, week of 4 March: known (held, 55 min) + the Thursday one (planned): 6 viewers, 2 buyers.
    store_a_4 = row(org, MON4, store=org.store_a, planned=2, held=1, live_hours=D("0.92"), viewers=6, views=9,
                    buyers=2, orders=6, gmv=D("860.00"), paid_sales=D("570.00"), conversion=D("0.3333"),
                    new_members=2)
    # Store B: other (held, 1 h, 1 viewer, 1 buyer) + a cancelled one.
    store_b_4 = row(org, MON4, store=org.store_b, planned=1, held=1, cancelled=1, live_hours=D("1.00"), viewers=1,
                    views=1, buyers=1, orders=1, gmv=D("999.00"), paid_sales=D("999.00"), conversion=D("1.0000"),
                    new_members=1)
    store_a_11 = row(org, MON11, store=org.store_a, planned=1, held=1, live_hours=D("1.50"), viewers=4, views=4,
                     buyers=2, orders=3, gmv=D("400.00"), paid_sales=D("300.00"), conversion=D("0.5000"))
    # The brand adds the HQ central session: week of 4 March 0.92 + 1.00 + 2.00 = 3.92 h; viewers 6 + 1 + 10
    # = 17; buyers 2 + 1 + 1 = 4; conversion 4 / 17 = 0.2353.
    brand_4 = row(org, MON4, planned=4, held=3, cancelled=1, live_hours=D("3.92"), viewers=17, views=22, buyers=4,
                  orders=8, gmv=D("2359.00"), paid_sales=D("2069.00"), conversion=D("0.2353"), new_members=6)
    brand_11 = row(org, MON11, planned=1, held=1, live_hours=D("1.50"), viewers=4, views=4, buyers=2, orders=3,
                   gmv=D("400.00"), paid_sales=D("300.00"), conversion=D("0.5000"))
    assert summary.brands == [brand_4, brand_11]
    assert summary.stores == sorted([store_a_4, store_b_4], key=lambda r: r.store_id) + [store_a_11]

    # The store manager of B sees only B's sessions: the brand row is B's too.
    manager_b = actor_for(staff_user("store_manager", store=org.store_b))
    mine = live_summary(actor=manager_b, period="week", date_from=dt.date(2024, 3, 1),
                        date_to=dt.date(2024, 3, 17))
    assert mine.stores == [store_b_4]
    assert mine.brands == [row(org, MON4, **{k: getattr(store_b_4, k) for k in (
        "planned", "held", "cancelled", "live_hours", "viewers", "views", "buyers", "orders", "gmv", "paid_sales",
        "conversion", "new_members")})]


def test_month_summary_and_store_filter(org, weeks):
    summary = live_summary(actor=org.hq, period="month", date_from=dt.date(2024, 3, 1),
                           date_to=dt.date(2024, 3, 31), store=org.store_a)
    march_a = row(org, dt.date(2024, 3, 1), store=org.store_a, planned=3, held=2, live_hours=D("2.42"), viewers=10,
                  views=13, buyers=4, orders=9, gmv=D("1260.00"), paid_sales=D("870.00"), conversion=D("0.4000"),
                  new_members=2)
    assert summary.stores == [march_a]
    assert summary.brands == [row(org, dt.date(2024, 3, 1), **{k: getattr(march_a, k) for k in (
        "planned", "held", "cancelled", "live_hours", "viewers", "views", "buyers", "orders", "gmv", "paid_sales",
        "conversion", "new_members")})]


def test_week_boundaries_are_local(org):
    # Sunday 10 March 23:30 Shanghai is Sunday 15:30 UTC: still the week of 4 March.
    plan(org, t(23, 30, day=10), t(23, 50, day=10))
    summary = live_summary(actor=org.hq, period="week", date_from=MON4, date_to=dt.date(2024, 3, 10))
    assert [(r.period_start, r.planned) for r in summary.brands] == [(MON4, 1)]


def test_summary_default_range_ends_at_date_to(org):
    # Twelve weeks back to a Monday; twelve months back to the first.
    week = live_summary(actor=org.hq, date_to=dt.date(2024, 3, 13))
    assert (week.period, week.date_from, week.date_to) == ("week", dt.date(2023, 12, 25), dt.date(2024, 3, 13))
    month = live_summary(actor=org.hq, period="month", date_to=dt.date(2024, 3, 13))
    assert (month.date_from, month.date_to) == (dt.date(2023, 4, 1), dt.date(2024, 3, 13))


@pytest.mark.parametrize(("kwargs", "status", "fields"), [
    ({"period": "day"}, 400, {"period": ['"day" is not a valid choice (week or month).']}),
    ({"date_from": dt.date(2024, 3, 2), "date_to": dt.date(2024, 3, 1)}, 400,
     {"date_to": ["Must not be before date_from."]}),
    ({"date_from": dt.date(2021, 12, 31), "date_to": dt.date(2024, 1, 1)}, 400,  # 732 days, both ends counted
     {"date_from": ["At most 731 days at a time."]}),
    ({"date_from": dt.date(1, 1, 1), "date_to": dt.date(1, 1, 2)}, 400,
     {"date_to": ["Must lie between 2000-01-01 and 2099-12-31."]}),
    ({"date_from": dt.date(1999, 12, 31), "date_to": dt.date(2000, 1, 2)}, 400,
     {"date_from": ["Must lie between 2000-01-01 and 2099-12-31."]}),
    ({"date_from": dt.date(9999, 12, 30), "date_to": dt.date(9999, 12, 31)}, 400,
     {"date_to": ["Must lie between 2000-01-01 and 2099-12-31."]}),
    ({"date_from": dt.date(2099, 12, 30), "date_to": dt.date(9999, 12, 31)}, 400,
     {"date_to": ["Must lie between 2000-01-01 and 2099-12-31."]}),
])
def test_summary_refuses_bad_input(org, kwargs, status, fields):
    with pytest.raises(ApplicationError) as e:
        live_summary(actor=org.hq, **kwargs)
    assert (e.value.status, e.value.fields) == (status, fields)


def test_summary_outside_scope_is_404(org):
    manager_b = actor_for(staff_user("store_manager", store=org.store_b))
    with pytest.raises(ApplicationError) as e:
        live_summary(actor=manager_b, store=org.store_a)
    assert (e.value.status, e.value.message) == (404, "No such store.")
    other_op = actor_for(staff_user("brand_operator", brand=BrandFactory(group=org.brand.group)))
    with pytest.raises(ApplicationError) as e:
        live_summary(actor=other_op, brand=org.brand)
    assert (e.value.status, e.value.message) == (404, "No such brand.")


# ---------------------------------------------------------------------------- staff API

@pytest.fixture
def api():
    return APIClient(HTTP_ACCEPT_LANGUAGE="en")


def stats_url(session) -> str:
    return f"/api/v1/livestream/sessions/{session.pk}/stats/"


def test_stats_api_computes_once_then_reads_the_stored_row(org, known, api):
    api.force_authenticate(staff_user("store_manager", store=org.store_a))
    response = api.get(stats_url(known.session))
    assert response.status_code == 200
    body = response.json()
    assert body["session"]["id"] == known.session.pk
    assert body["session"]["host_store"] == org.store_a.code
    assert {k: body[k] for k in EXPECTED} == {
        "viewers": 6, "views": 9, "peak_concurrent": 3, "watch_seconds": 6480, "avg_watch_seconds": "1080.00",
        "likes": 3, "comments": 3, "shares": 1, "product_clicks": 2, "orders": 6, "gmv": "860.00",
        "paid_orders": 3, "paid_sales": "570.00", "buyers": 2, "conversion": "0.3333", "new_members": 2}
    assert SessionStats.objects.filter(session=known.session).count() == 1
    # The stored row is what the API reads from then on (the refresh job keeps it current).
    SessionStats.objects.filter(session=known.session).update(viewers=99)
    assert api.get(stats_url(known.session)).json()["viewers"] == 99


def test_stats_api_scope_and_auth(org, known, api):
    assert api.get(stats_url(known.session)).status_code == 401
    api.force_authenticate(staff_user("store_manager", store=org.store_b))
    response = api.get(stats_url(known.session))
    assert response.status_code == 404
    assert response.json()["error"] == {"code": "not_found", "message": "No such session."}
    assert SessionStats.objects.count() == 0  # nothing computed for an outsider
    assert api.get("/api/v1/livestream/sessions/999999/stats/").status_code == 404


def test_summary_api(org, weeks, api):
    api.force_authenticate(staff_user("brand_operator", brand=org.brand))
    response = api.get("/api/v1/livestream/summary/", {"brand": org.brand.code, "period": "week",
                                                       "date_from": "2024-03-01", "date_to": "2024-03-17"})
    assert response.status_code == 200
    body = response.json()
    assert (body["period"], body["date_from"], body["date_to"]) == ("week", "2024-03-01", "2024-03-17")
    assert body["brands"][0] == {
        "period_start": "2024-03-04", "brand": org.brand.code, "store": None, "planned": 4, "held": 3,
        "cancelled": 1, "live_hours": "3.92", "viewers": 17, "views": 22, "buyers": 4, "orders": 8,
        "gmv": "2359.00", "paid_sales": "2069.00", "conversion": "0.2353", "new_members": 6}
    assert [(r["period_start"], r["store"], r["held"]) for r in body["stores"]] == [
        ("2024-03-04", "SA", 1), ("2024-03-04", "SB", 1), ("2024-03-11", "SA", 1)]


@pytest.mark.parametrize(("query", "status", "fields"), [
    ({"period": "day"}, 400, {"period": ['"day" is not a valid choice.']}),
    ({"date_from": "yesterday"}, 400, None),
    ({"date_from": "2024-03-02", "date_to": "2024-03-01"}, 400, {"date_to": ["Must not be before date_from."]}),
    ({"date_to": "9999-12-31"}, 400, {"date_to": ["Must lie between 2000-01-01 and 2099-12-31."]}),
    ({"store": "SA"}, 404, None),
    ({"brand": "NOPE"}, 404, None),
])
def test_summary_api_bad_input(org, api, query, status, fields):
    api.force_authenticate(staff_user("store_manager", store=org.store_b))
    response = api.get("/api/v1/livestream/summary/", query)
    assert response.status_code == status
    if fields is not None:
        assert response.json()["error"]["fields"] == fields


def test_summary_api_needs_staff(api):
    assert api.get("/api/v1/livestream/summary/").status_code == 401


# ---------------------------------------------------------------------------- tasks and the job

def test_tasks_take_ids_and_are_safe_to_run_twice(known):
    from livestream.tasks import session_stats_refresh_task

    for _ in range(2):
        assert session_stats_refresh_task.delay(known.session.pk).get() == {"session_id": known.session.pk,
                                                                              "refreshed": 1}
    assert SessionStats.objects.count() == 1
    assert stored(known.session) == EXPECTED
    assert session_stats_refresh_task.delay(999999).get() == {"session_id": 999999, "refreshed": 0}


def test_settling_refresh_covers_sessions_ended_in_the_last_30_days(known):
    from livestream.metrics import live_stats_refresh_settling

    assert live_stats_refresh_settling(as_of=t(3, 50, day=2, month=4)) == 2  # 29 days after
    assert live_stats_refresh_settling(as_of=t(3, 50, day=6, month=4)) == 0  # 33 days after


def test_run_jobs_refreshes_live_figures(known):
    from retail_crm.jobs import JOBS

    job = next(j for j in JOBS if j.name == "livestream.stats")
    assert job.run(None) == "figures of 2 live sessions"
    assert stored(known.session) == EXPECTED
