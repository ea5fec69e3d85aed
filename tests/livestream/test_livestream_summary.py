"""livestream.selectors.brand_week_summary: sessions planned vs held and hours per store, worked out by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest

from livestream.selectors import StoreWeekSummary, brand_week_summary
from livestream.services import session_cancel, session_end, session_schedule, session_start
from retail_crm.errors import ApplicationError
from retail_crm.scoping import actor_for
from tests.factories import BrandFactory, staff_user
from tests.livestream.test_livestream_schedule import MONDAY, at, make_org, plan

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def org():
    return make_org()


def test_week_summary_per_store(org):
    a1 = plan(org, at(19), at(21))  # held 19:02–21:17 = 2.25 h live
    session_start(a1, at(19, minute=2))
    session_end(a1, at(21, minute=17))
    plan(org, at(10, day=1), at(11, day=1, minute=30))  # still planned, 1.5 h
    session_cancel(plan(org, at(10, day=2), at(11, day=2)))  # cancelled: no planned hours
    b1 = plan(org, at(19), at(20), store=org.store_b)  # held 19:00–19:40 = 0.67 h live
    session_start(b1, at(19))
    session_end(b1, at(19, minute=40))
    plan(org, at(10, day=7), at(12, day=7))  # next week
    plan(org, at(19, day=3), at(21, day=3), kind="hq_central")  # not a store session
    session_schedule(brand=BrandFactory(group=org.brand.group), kind="hq_central", title="other brand",
                     planned_start=at(19), planned_end=at(21), actor=org.hq)

    expected_a = StoreWeekSummary(store_id=org.store_a.pk, planned=2, held=1, cancelled=1,
                                  planned_hours=D("3.50"), live_hours=D("2.25"))
    expected_b = StoreWeekSummary(store_id=org.store_b.pk, planned=1, held=1, cancelled=0,
                                  planned_hours=D("1.00"), live_hours=D("0.67"))
    assert brand_week_summary(actor=org.hq, brand=org.brand, week_start=MONDAY) == sorted(
        [expected_a, expected_b], key=lambda r: r.store_id)

    manager_b = actor_for(staff_user("store_manager", store=org.store_b))
    assert brand_week_summary(actor=manager_b, brand=org.brand, week_start=MONDAY) == [expected_b]

    other_op = actor_for(staff_user("brand_operator", brand=BrandFactory(group=org.brand.group)))
    with pytest.raises(ApplicationError) as e:
        brand_week_summary(actor=other_op, brand=org.brand, week_start=MONDAY)
    assert (e.value.status, e.value.message) == (404, "No such brand.")
