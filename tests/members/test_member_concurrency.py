"""members.services under real concurrency: binding, spending and earning from many threads at once.

PostgreSQL only (SQLite serialises writers on a file lock and proves nothing). Each thread waits on a
barrier so the calls really overlap, and closes its own database connection when done.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.db import connection

from members.models import GuideBinding, Member, PointsEntry
from members.services import binding_bind, member_get_or_create, points_balance, points_post
from retail_crm.errors import ApplicationError
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    GuideFactory,
    MemberFactory,
    OrderFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
)

pytestmark = [
    pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                       reason="concurrency tests need PostgreSQL (set DATABASE_URL)"),
    pytest.mark.django_db(transaction=True),
]


def run_at_once(calls):
    """Run each zero-argument callable in its own thread, all released together.

    Returns one ("ok", value) or ("error", ApplicationError) per call, in the order given; any other
    exception fails the test.
    """
    barrier = threading.Barrier(len(calls))

    def worker(call):
        try:
            barrier.wait(timeout=10)
            try:
                return "ok", call()
            except ApplicationError as exc:
                return "error", exc
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(worker, call) for call in calls]
        return [f.result(timeout=60) for f in futures]


def test_ten_guides_scanning_one_unbound_member_at_once_bind_exactly_one():
    group = RetailGroupFactory()
    brand = BrandFactory(group=group)
    region = RegionFactory(brand=brand)
    stores = [StoreFactory(region=region) for _ in range(2)]
    guides = [GuideFactory(store=stores[i % 2]) for i in range(10)]
    member = MemberFactory(group=group)

    results = run_at_once([
        (lambda g=g: binding_bind(member=member, brand=brand, guide=g, reason="qr_scan")) for g in guides])

    assert [kind for kind, _ in results] == ["ok"] * 10
    outcomes = [outcome for _, outcome in results]
    winners = [o for o in outcomes if o.changed]
    assert len(winners) == 1
    assert sorted(o.rule for o in outcomes) == ["new"] + ["protected"] * 9
    open_rows = GuideBinding.objects.filter(member=member, brand=brand, ended_at__isnull=True)
    assert [(b.pk, b.guide_id) for b in open_rows] == [(winners[0].binding.pk, winners[0].binding.guide_id)]
    assert GuideBinding.objects.count() == 1
    # Every loser was told about the winner's binding.
    assert {o.binding.pk for o in outcomes} == {winners[0].binding.pk}


def test_ten_spends_of_thirty_from_one_hundred_points_let_exactly_three_through():
    group = RetailGroupFactory()
    brand = BrandFactory(group=group)
    member = MemberFactory(group=group)
    BrandMembershipFactory(member=member, brand=brand)
    points_post(member=member, brand=brand, delta=100, reason="earn")

    results = run_at_once([
        (lambda: points_post(member=member, brand=brand, delta=-30, reason="spend")) for _ in range(10)])

    assert sorted(kind for kind, _ in results) == ["error"] * 7 + ["ok"] * 3
    assert {(e.code, e.status) for kind, e in results if kind == "error"} == {("insufficient_points", 409)}
    assert points_balance(member=member, brand=brand) == 10
    assert sorted(PointsEntry.objects.values_list("delta", flat=True)) == [-30, -30, -30, 100]


def test_concurrent_spends_cannot_overdraw_a_brand_the_member_has_no_membership_row_in():
    """Points of a brand can be earned without a membership row (points_post does not require one);
    the ledger must still never go below zero."""
    group = RetailGroupFactory()
    brand = BrandFactory(group=group)
    member = MemberFactory(group=group)
    points_post(member=member, brand=brand, delta=100, reason="earn")

    results = run_at_once([
        (lambda: points_post(member=member, brand=brand, delta=-30, reason="spend")) for _ in range(10)])

    assert sorted(kind for kind, _ in results) == ["error"] * 7 + ["ok"] * 3
    assert points_balance(member=member, brand=brand) == 10


def test_eight_redelivered_earn_events_for_one_order_post_one_entry():
    group = RetailGroupFactory()
    brand = BrandFactory(group=group)
    member = MemberFactory(group=group)
    BrandMembershipFactory(member=member, brand=brand)
    order = OrderFactory(brand=brand, member=member)

    results = run_at_once([
        (lambda: points_post(member=member, brand=brand, delta=100, reason="earn", order=order))
        for _ in range(8)])

    assert [kind for kind, _ in results] == ["ok"] * 8
    entry = PointsEntry.objects.get()
    assert {value.pk for _, value in results} == {entry.pk}
    assert (entry.delta, entry.reason, entry.order_id) == (100, "earn", order.pk)
    assert points_balance(member=member, brand=brand) == 100


def test_the_same_new_person_arriving_eight_times_at_once_becomes_one_member():
    group = RetailGroupFactory()

    results = run_at_once([
        (lambda: member_get_or_create(group=group, phone="138 1234 5678", openid="wx-open-1")) for _ in range(8)])

    assert [kind for kind, _ in results] == ["ok"] * 8
    member = Member.objects.get()
    assert (member.phone, member.openid) == ("+8613812345678", "wx-open-1")
    assert {value[0].pk for _, value in results} == {member.pk}
    assert sorted(value[1] for _, value in results) == [False] * 7 + [True]


def test_ten_different_new_people_arriving_at_once_become_ten_members():
    """Payment-is-membership during a livestream: many first-time buyers register in the same second."""
    group = RetailGroupFactory()
    phones = [f"+86138000000{i:02d}" for i in range(10)]

    results = run_at_once([(lambda p=p: member_get_or_create(group=group, phone=p)) for p in phones])

    assert [kind for kind, _ in results] == ["ok"] * 10
    assert [value[1] for _, value in results] == [True] * 10
    assert sorted(Member.objects.values_list("phone", flat=True)) == phones
    assert Member.objects.values("code").distinct().count() == 10
