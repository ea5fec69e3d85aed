"""livestream scheduling under real concurrency: many schedulers booking one store or one guide at once.

PostgreSQL only (SQLite serialises writers on a file lock and proves nothing). Reuses the barrier helper
of the member concurrency tests so the calls really overlap.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from livestream.models import LiveSession
from livestream.services import session_schedule
from retail_crm.scoping import actor_for
from tests.factories import BrandFactory, GuideFactory, RegionFactory, StoreFactory, staff_user
from tests.members.test_member_concurrency import run_at_once

pytestmark = [
    pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                       reason="concurrency tests need PostgreSQL (set DATABASE_URL)"),
    pytest.mark.django_db(transaction=True),
]

SH = ZoneInfo("Asia/Shanghai")


def at(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2024, 3, 4, hour, minute, tzinfo=SH)


def test_ten_overlapping_sessions_for_one_store_at_once_exactly_one_is_booked():
    brand = BrandFactory()
    store = StoreFactory(region=RegionFactory(brand=brand))
    hq = actor_for(staff_user("hq", group=brand.group))

    def book(i):
        # Every slot overlaps every other one: all start between 19:00 and 19:45 and last two hours.
        return lambda: session_schedule(brand=brand, kind="store", title=f"slot {i}", planned_start=at(19, 5 * i),
                                        planned_end=at(21, 5 * i), host_store=store, actor=hq)

    results = run_at_once([book(i) for i in range(10)])
    outcomes = sorted(kind for kind, _ in results)
    assert outcomes == ["error"] * 9 + ["ok"]
    assert {(e.status, e.code) for kind, e in results if kind == "error"} == {(409, "store_busy")}
    booked = [value for kind, value in results if kind == "ok"]
    assert list(LiveSession.objects.values_list("pk", flat=True)) == [booked[0].pk]


def test_one_guide_booked_by_two_stores_at_once_hosts_only_one():
    # The same guide is put on two different stores' sessions at once (data says the guide works in
    # each store at the time each scheduler read it); the guide lock makes only one of them succeed.
    brand = BrandFactory()
    region = RegionFactory(brand=brand)
    store_a, store_b = StoreFactory(region=region), StoreFactory(region=region)
    guide = GuideFactory(store=store_a)
    hq = actor_for(staff_user("hq", group=brand.group))
    guide_b_view = GuideFactory.build(pk=guide.pk, code=guide.code, store=store_b)

    calls = [
        lambda: session_schedule(brand=brand, kind="store", title="A", planned_start=at(19), planned_end=at(21),
                                 host_store=store_a, host_guide=guide, actor=hq),
        lambda: session_schedule(brand=brand, kind="store", title="B", planned_start=at(20), planned_end=at(22),
                                 host_store=store_b, host_guide=guide_b_view, actor=hq),
    ]
    results = run_at_once(calls)
    assert sorted(kind for kind, _ in results) == ["error", "ok"]
    assert [(e.status, e.code) for kind, e in results if kind == "error"] == [(409, "guide_busy")]
    assert LiveSession.objects.filter(host_guide=guide).count() == 1
