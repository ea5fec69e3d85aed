"""members.PointsBalance: the balance row kept next to the points ledger, always equal to the ledger's sum.

Every test works its numbers out by hand and also checks the row against SUM(delta) of the ledger, which
stays the truth. The concurrency test runs on PostgreSQL only (SQLite serialises writers on a file lock).
"""

from __future__ import annotations

import datetime as dt
import importlib
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Sum

from mall.refunds import refund_approve, refund_request
from marketing.audiences import audience_count, audience_members
from members.models import PointsBalance, PointsEntry
from members.services import member_merge, points_balance, points_balances_rebuild, points_post
from retail_crm.errors import ApplicationError
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    MemberFactory,
    OrderFactory,
    RetailGroupFactory,
    staff_user,
)
from tests.factories_payments import fake_trade_for_paid, paid_ready_order
from tests.members.test_member_concurrency import run_at_once

NOW = dt.datetime(2030, 3, 20, 12, 0, tzinfo=dt.UTC)
on_postgresql = pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                                   reason="concurrency tests need PostgreSQL (set DATABASE_URL)")


def balance_rows() -> dict[tuple[int, int], int]:
    return {(m, b): n for m, b, n in PointsBalance.objects.values_list("member_id", "brand_id", "balance")}


def ledger_sums() -> dict[tuple[int, int], int]:
    return {(m, b): n for m, b, n in PointsEntry.objects.order_by().values("member_id", "brand_id")
            .annotate(n=Sum("delta")).values_list("member_id", "brand_id", "n")}


@pytest.fixture
def wallet(db):
    group = RetailGroupFactory()
    brand = BrandFactory(group=group)
    member = MemberFactory(group=group)
    BrandMembershipFactory(member=member, brand=brand)
    return SimpleNamespace(group=group, brand=brand, member=member)


# ---------------------------------------------------------------------------- points_post

def test_earn_spend_release_and_an_overdrawing_reversal_keep_the_row_equal_to_the_ledger(wallet):
    m, b = wallet.member, wallet.brand
    bought, cancelled, refunded = (OrderFactory(brand=b, member=m) for _ in range(3))
    key = (m.pk, b.pk)
    assert balance_rows() == {}
    assert points_balance(member=m, brand=b) == 0

    points_post(member=m, brand=b, delta=500, reason="earn", order=bought)
    assert balance_rows() == {key: 500}
    points_post(member=m, brand=b, delta=-300, reason="spend", order=cancelled)
    assert balance_rows() == {key: 200}
    points_post(member=m, brand=b, delta=300, reason="release", order=cancelled)  # the order was cancelled
    assert balance_rows() == {key: 500}
    points_post(member=m, brand=b, delta=-450, reason="spend", order=refunded)
    assert balance_rows() == {key: 50}
    # The bought order is refunded after its 500 points were (mostly) spent: the reversal overdraws.
    points_post(member=m, brand=b, delta=-500, reason="reverse", order=bought, allow_overdraw=True)

    assert balance_rows() == {key: -450} == ledger_sums()
    assert points_balance(member=m, brand=b) == -450
    with pytest.raises(ApplicationError) as exc:
        points_post(member=m, brand=b, delta=-1, reason="spend")
    assert exc.value.message == "Not enough points: balance -450, needed 1."
    assert balance_rows() == {key: -450} == ledger_sums()


def test_a_posting_repeated_for_the_same_order_and_reason_leaves_the_balance_alone(wallet):
    m, b = wallet.member, wallet.brand
    order = OrderFactory(brand=b, member=m)

    first = points_post(member=m, brand=b, delta=120, reason="earn", order=order)
    again = points_post(member=m, brand=b, delta=120, reason="earn", order=order)
    reversed_ = points_post(member=m, brand=b, delta=-120, reason="reverse", order=order, allow_overdraw=True)
    reversed_again = points_post(member=m, brand=b, delta=-120, reason="reverse", order=order, allow_overdraw=True)

    assert (again.pk, reversed_again.pk) == (first.pk, reversed_.pk)
    assert PointsEntry.objects.count() == 2
    # The row stays even at 0: there are entries.
    assert balance_rows() == {(m.pk, b.pk): 0} == ledger_sums()


def test_a_refused_spend_writes_neither_entry_nor_balance(wallet):
    m, b = wallet.member, wallet.brand
    points_post(member=m, brand=b, delta=70, reason="adjust")

    with pytest.raises(ApplicationError):
        points_post(member=m, brand=b, delta=-71, reason="spend")

    assert PointsEntry.objects.count() == 1
    assert balance_rows() == {(m.pk, b.pk): 70}


def test_balances_are_per_brand(wallet):
    other = BrandFactory(group=wallet.group)
    points_post(member=wallet.member, brand=wallet.brand, delta=40, reason="adjust")
    points_post(member=wallet.member, brand=other, delta=15, reason="adjust")

    assert balance_rows() == {(wallet.member.pk, wallet.brand.pk): 40, (wallet.member.pk, other.pk): 15}
    assert points_balance(member=wallet.member, brand=other) == 15


@pytest.mark.urls("tests.urls_payments")
def test_a_refund_through_the_mall_reverses_and_releases_on_the_balance(db, settings,
                                                                        django_capture_on_commit_callbacks):
    """The worked example of tests/factories_payments: 2,000 opening, 1,000 spent on the order, 437 earned."""
    settings.PAYMENT_PROVIDER = "fake"
    cache.clear()
    example = paid_ready_order(status="paid")
    fake_trade_for_paid(example)
    m, b = example.member, example.brand
    assert points_balance(member=m, brand=b) == 1437
    points_post(member=m, brand=b, delta=-1437, reason="adjust")  # the member gives everything away

    refund = refund_request(order=example.order, member=m, reason="changed my mind")
    assert refund.amount == Decimal("437.00")
    with django_capture_on_commit_callbacks(execute=True):
        refund_approve(refund=refund, user=staff_user("brand_operator", brand=b))

    # 0 − 437 (the earned points, already gone: overdrawn) + 1,000 (spent on the order, returned) = 563.
    assert sorted(PointsEntry.objects.filter(refund=refund).values_list("reason", "delta")) == [
        ("release", 1000), ("reverse", -437)]
    assert balance_rows() == {(m.pk, b.pk): 563} == ledger_sums()
    cache.clear()


# ---------------------------------------------------------------------------- merge

def test_a_merge_recomputes_both_members_balances_from_the_ledger(wallet):
    brand_a, brand_b = wallet.brand, BrandFactory(group=wallet.group)
    survivor, absorbed, bystander = wallet.member, MemberFactory(group=wallet.group), MemberFactory(group=wallet.group)
    points_post(member=survivor, brand=brand_a, delta=100, reason="earn")
    points_post(member=absorbed, brand=brand_a, delta=50, reason="earn")
    points_post(member=absorbed, brand=brand_a, delta=-20, reason="spend")
    points_post(member=absorbed, brand=brand_b, delta=30, reason="adjust")
    points_post(member=bystander, brand=brand_a, delta=7, reason="adjust")

    member_merge(survivor=survivor, absorbed=absorbed, reason="same phone")

    # Brand A: 100 + (50 − 20) = 130; brand B: 30 moved over; the absorbed member keeps no row.
    assert balance_rows() == {(survivor.pk, brand_a.pk): 130, (survivor.pk, brand_b.pk): 30,
                              (bystander.pk, brand_a.pk): 7} == ledger_sums()


# ---------------------------------------------------------------------------- rebuild and migration

@pytest.fixture
def hand_made(wallet):
    """Entries written straight into the ledger (as bulk loads do), and balance rows that are wrong."""
    brand_a, brand_b = wallet.brand, BrandFactory(group=wallet.group)
    m1, m2, m3 = wallet.member, MemberFactory(group=wallet.group), MemberFactory(group=wallet.group)
    for member, brand, delta in ((m1, brand_a, 300), (m1, brand_a, -120), (m1, brand_b, 5),
                                 (m2, brand_a, 40), (m2, brand_a, -40), (m3, brand_b, -60)):
        PointsEntry.objects.create(member=member, brand=brand, delta=delta, reason="adjust")
    PointsBalance.objects.create(member=m1, brand=brand_a, balance=999)   # stale
    PointsBalance.objects.create(member=m3, brand=brand_a, balance=12)    # no entries behind it
    PointsBalance.objects.create(member=m3, brand=brand_b, balance=-1)    # stale
    return SimpleNamespace(a=brand_a, b=brand_b, m1=m1, m2=m2, m3=m3)


def test_rebuilding_one_brand_rewrites_only_its_rows(hand_made):
    h = hand_made

    written = points_balances_rebuild(brand_id=h.a.pk)

    # m1: 300 − 120 = 180; m2: 40 − 40 = 0 (kept: it has entries); m3's row without entries is gone.
    assert written == 2
    assert balance_rows() == {(h.m1.pk, h.a.pk): 180, (h.m2.pk, h.a.pk): 0, (h.m3.pk, h.b.pk): -1}


def test_rebuilding_some_members_rewrites_only_their_rows(hand_made):
    h = hand_made

    written = points_balances_rebuild(member_ids=[h.m3.pk])

    assert written == 1
    assert balance_rows() == {(h.m1.pk, h.a.pk): 999, (h.m3.pk, h.b.pk): -60}


def test_rebuilding_no_members_rewrites_nothing(hand_made):
    h = hand_made
    before = balance_rows()

    assert points_balances_rebuild(member_ids=[]) == 0
    assert points_balances_rebuild(brand_id=h.a.pk, member_ids=[]) == 0
    assert balance_rows() == before and len(before) == 3


def test_rebuilding_everything_gives_the_ledger_sums(hand_made):
    h = hand_made

    assert points_balances_rebuild() == 4
    assert balance_rows() == {(h.m1.pk, h.a.pk): 180, (h.m1.pk, h.b.pk): 5, (h.m2.pk, h.a.pk): 0,
                              (h.m3.pk, h.b.pk): -60} == ledger_sums()


def test_the_data_migration_builds_a_row_per_member_and_brand_with_entries(hand_made):
    h = hand_made
    PointsBalance.objects.all().delete()  # as before the migration: the table is new and empty
    migration = importlib.import_module("members.migrations.0010_points_balance")

    migration.balances_from_ledger(None, SimpleNamespace(connection=connection))

    assert balance_rows() == {(h.m1.pk, h.a.pk): 180, (h.m1.pk, h.b.pk): 5, (h.m2.pk, h.a.pk): 0,
                              (h.m3.pk, h.b.pk): -60}


# ---------------------------------------------------------------------------- audiences

def test_points_audiences_match_the_ledger_sums(db):
    """Members of the brand by points, from the balance rows, against the same question asked of the ledger."""
    group = RetailGroupFactory()
    brand, other = BrandFactory(group=group), BrandFactory(group=group)
    # Balances: none 0, zero 0, minus −20, hundred 100, hundred_one 101, five_hundred 500, rich 499, elsewhere 0.
    deltas = {"none": [], "zero": [50, -50], "minus": [-20], "hundred": [100], "hundred_one": [60, 41],
              "five_hundred": [500], "rich": [2000, -1501], "elsewhere": []}
    for code, entries in deltas.items():
        person = MemberFactory(group=group, code=code)
        BrandMembershipFactory(member=person, brand=brand)
        for delta in entries:
            points_post(member=person, brand=brand, delta=delta, reason="adjust", allow_overdraw=True)
        if code == "elsewhere":
            points_post(member=person, brand=other, delta=900, reason="adjust")  # another brand's points
    outsider = MemberFactory(group=group, code="outsider")  # points in the brand, but not a member of it
    points_post(member=outsider, brand=brand, delta=700, reason="adjust")
    sums = {code: sum(entries) for code, entries in deltas.items()}

    def from_ledger(low, high):
        return {code for code, total in sums.items()
                if (low is None or total >= low) and (high is None or total <= high)}

    cases = {(None, 100): {"none", "zero", "minus", "hundred", "elsewhere"},
             (500, None): {"five_hundred"},
             (0, 0): {"none", "zero", "elsewhere"},
             (-100, 99): {"none", "zero", "minus", "elsewhere"},
             (101, 499): {"hundred_one", "rich"},
             (None, -1): {"minus"},
             (1, None): {"hundred", "hundred_one", "five_hundred", "rich"}}
    for (low, high), expected in cases.items():
        points = {key: value for key, value in (("min", low), ("max", high)) if value is not None}
        members = audience_members(brand=brand, definition={"points": points}, at=NOW)
        assert set(members.values_list("code", flat=True)) == expected == from_ledger(low, high), points
        assert audience_count(brand=brand, definition={"points": points}, at=NOW) == len(expected)


# ---------------------------------------------------------------------------- concurrency (PostgreSQL)

@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_posts_of_one_point_end_at_exactly_twenty():
    group = RetailGroupFactory()
    brand = BrandFactory(group=group)
    member = MemberFactory(group=group)

    # No balance row yet: the first posts race to create it, the rest add to it.
    results = run_at_once([
        (lambda: points_post(member=member, brand=brand, delta=1, reason="adjust")) for _ in range(20)])

    assert [kind for kind, _ in results] == ["ok"] * 20
    assert PointsEntry.objects.count() == 20
    assert balance_rows() == {(member.pk, brand.pk): 20} == ledger_sums()
