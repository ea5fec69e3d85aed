"""livestream.metrics.live_totals: the API's live summary and the dashboard's livestream summary add up the same
sessions the same way (held sessions, live hours, viewers, buyers, GMV, paid sales), cancelled ones left out."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from analytics import metrics
from livestream.metrics import live_summary, live_totals, sessions_planned_between
from livestream.models import SessionStats
from livestream.services import session_cancel, session_end, session_start
from tests.livestream.test_livestream_schedule import MONDAY, at, make_org, plan

pytestmark = pytest.mark.django_db
D = Decimal


def held(org, start, end, *, viewers, buyers, gmv, **kw):
    session = plan(org, start, end, **kw)
    session_start(session, start)
    session_end(session, end)
    SessionStats.objects.create(session=session, viewers=viewers, views=viewers + 3, buyers=buyers, orders=buyers,
                                gmv=D(gmv), paid_sales=D(gmv) - 10, new_members=1)
    return session


def test_the_api_and_the_dashboard_add_up_the_same_sessions():
    org = make_org()
    held(org, at(19), at(21, minute=15), viewers=300, buyers=12, gmv="2400.00")
    held(org, at(19, day=2), at(20, day=2), viewers=80, buyers=3, gmv="390.50", store=org.store_b)
    held(org, at(10, day=3), at(12, day=3), viewers=1000, buyers=41, gmv="8800.00", kind="hq_central")
    plan(org, at(19, day=4), at(20, day=4))  # planned, no figures stored yet
    cancelled = held(org, at(19, day=5), at(20, day=5), viewers=5, buyers=1, gmv="99.00")
    cancelled.status = "cancelled"
    cancelled.save(update_fields=["status"])
    session_cancel(plan(org, at(19, day=6), at(20, day=6)))
    sunday = MONDAY + dt.timedelta(days=6)

    api = live_summary(actor=org.hq, period="week", date_from=MONDAY, date_to=sunday)
    dashboard = metrics.livestream_summary(actor=org.hq, filters=metrics.Filters(date_from=MONDAY, date_to=sunday))

    [week] = api.brands
    assert (week.planned, week.held, week.cancelled, week.live_hours, week.viewers, week.buyers, week.gmv,
            week.paid_sales, week.conversion) == (4, 3, 2, D("5.25"), 1380, 56, D("11590.50"), D("11560.50"),
                                                  D("0.0406"))
    total = dashboard.total
    assert (total.sessions, total.hours, total.viewers, total.buyers, total.gmv, total.paid_sales,
            total.conversion) == (week.held, week.live_hours, week.viewers, week.buyers, week.gmv, week.paid_sales,
                                  week.conversion)
    by_store = {row.store_id: row for row in api.stores}
    assert [(r.id, r.figures.sessions, r.figures.hours, r.figures.gmv) for r in dashboard.by_store] == [
        (org.store_a.pk, by_store[org.store_a.pk].held, by_store[org.store_a.pk].live_hours,
         by_store[org.store_a.pk].gmv),
        (org.store_b.pk, by_store[org.store_b.pk].held, by_store[org.store_b.pk].live_hours,
         by_store[org.store_b.pk].gmv)]


def test_totals_without_sessions_are_zero():
    org = make_org()
    [(group, totals)] = live_totals(sessions=sessions_planned_between(actor=org.hq, date_from=MONDAY,
                                                                      date_to=MONDAY))

    assert group == {}
    assert (totals.planned, totals.held, totals.cancelled, totals.live_hours, totals.viewers, totals.gmv,
            totals.paid_sales, totals.conversion) == (0, 0, 0, D("0.00"), 0, D("0.00"), D("0.00"), D("0.0000"))
