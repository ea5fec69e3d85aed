"""Withdrawals under real concurrency (PostgreSQL, real threads released together by a barrier).

Twenty simultaneous requests for the whole available balance make exactly one withdrawal; twenty with the same
request key make one and all get it back; requests racing a rejection and posting for an office sharer keep the
ledger exact.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from guides.models import CommissionEntry, WithdrawalRequest
from guides.withdrawals import commission_balance, withdrawal_reject, withdrawal_request
from tests.factories import GuideFactory, StoreFactory, staff_user
from tests.members.test_member_concurrency import run_at_once

pytestmark = [
    pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                       reason="concurrency tests need PostgreSQL (set DATABASE_URL)"),
    pytest.mark.django_db(transaction=True),
]
D = Decimal


def earned(guide, amount):
    CommissionEntry.objects.create(guide=guide, brand=guide.store.brand, kind="earn", amount=D(amount),
                                   available_at=timezone.now() - dt.timedelta(days=1))


def test_twenty_simultaneous_requests_for_the_whole_balance_make_exactly_one():
    guide = GuideFactory(store=StoreFactory())
    earned(guide, "123.45")
    earned(guide, "76.55")

    results = run_at_once([lambda i=i: withdrawal_request(guide=guide, amount=D("200.00"), request_key=f"tap-{i}")
                           for i in range(20)])

    assert sorted(kind for kind, _ in results) == ["error"] * 19 + ["ok"]
    assert {(value.code, value.status) for kind, value in results if kind == "error"} == {
        ("insufficient_balance", 409)}
    assert list(WithdrawalRequest.objects.values_list("amount", "status")) == [(D("200.00"), "requested")]
    assert list(CommissionEntry.objects.filter(kind="withdrawal").values_list("amount", flat=True)) == [
        D("-200.00")]
    balance = commission_balance(guide=guide)
    assert (balance.available, balance.withdrawn) == (D("0.00"), D("200.00"))


def test_twenty_simultaneous_requests_with_one_key_make_one_and_all_see_it():
    guide = GuideFactory(store=StoreFactory())
    earned(guide, "50.00")

    results = run_at_once([lambda: withdrawal_request(guide=guide, amount=D("10.00"), request_key="same")] * 20)

    assert [kind for kind, _ in results] == ["ok"] * 20
    assert sorted(r.created for _, r in results) == [False] * 19 + [True]
    assert len({r.withdrawal.pk for _, r in results}) == 1
    assert WithdrawalRequest.objects.count() == 1
    assert commission_balance(guide=guide).available == D("40.00")


def test_small_requests_racing_never_take_more_than_the_balance():
    guide = GuideFactory(store=StoreFactory())
    earned(guide, "70.00")

    results = run_at_once([lambda i=i: withdrawal_request(guide=guide, amount=D("15.00"), request_key=f"k{i}")
                           for i in range(10)])

    assert sorted(kind for kind, _ in results) == ["error"] * 6 + ["ok"] * 4  # 4 × 15.00 = 60.00 ≤ 70.00
    assert commission_balance(guide=guide).available == D("10.00")


def test_requests_racing_a_rejection_keep_the_ledger_exact():
    store = StoreFactory()
    guide = GuideFactory(store=store)
    manager = staff_user("store_manager", store=store)
    earned(guide, "100.00")
    held = withdrawal_request(guide=guide, amount=D("100.00"), request_key="first").withdrawal

    calls = [lambda: withdrawal_reject(withdrawal=held, user=manager)]
    calls += [lambda i=i: withdrawal_request(guide=guide, amount=D("100.00"), request_key=f"again-{i}")
              for i in range(5)]
    results = run_at_once(calls)

    assert results[0][0] == "ok"
    made = [value for kind, value in results[1:] if kind == "ok"]
    assert len(made) <= 1  # one request may get in after the money came back, never more
    balance = commission_balance(guide=guide)
    assert balance.available == D("100.00") - D("100.00") * len(made)
    assert WithdrawalRequest.objects.filter(status="requested").count() == len(made)
