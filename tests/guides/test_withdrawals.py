"""guides.withdrawals: balance arithmetic (pending / available / withdrawn), withdrawal requests (over the
balance, double taps, bad amounts), and decisions (who may, transitions, rejection returns the money)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import timezone

from guides.models import CommissionEntry, WithdrawalRequest
from guides.withdrawals import (
    commission_balance,
    commission_owner_for,
    withdrawal_approve,
    withdrawal_mark_paid,
    withdrawal_reject,
    withdrawal_request,
)
from retail_crm.errors import ApplicationError
from tests.factories import BrandFactory, GuideFactory, RegionFactory, StoreFactory, staff_user

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def org():
    brand = BrandFactory()
    region = RegionFactory(brand=brand)
    store, other_store = StoreFactory(region=region), StoreFactory(region=region)
    guide = GuideFactory(store=store)
    manager_guide = GuideFactory(store=store, role="store_manager")
    return SimpleNamespace(
        brand=brand, region=region, store=store, guide=guide, manager_guide=manager_guide,
        guide_user=staff_user("guide", guide=guide),
        manager=staff_user("store_manager", store=store, guide=manager_guide),
        other_manager=staff_user("store_manager", store=other_store),
        colleague=staff_user("guide", guide=GuideFactory(store=store)),
        region_manager=staff_user("region_manager", region=region),
        operator=staff_user("brand_operator", brand=brand),
        foreign_operator=staff_user("brand_operator", brand=BrandFactory(group=brand.group)),
    )


def entry(owner, kind, amount, *, due_in_days=0, brand=None, **extra):
    """A ledger row for a guide (or, with ``staff_user=…`` in extra, an office staff user) due in N days."""
    owner_fields = {"guide": owner} if owner is not None else {}
    brand = brand or (owner.store.brand if owner is not None else extra.pop("brand_of_staff"))
    return CommissionEntry.objects.create(**owner_fields, brand=brand, kind=kind, amount=D(amount),
                                          available_at=timezone.now() + dt.timedelta(days=due_in_days), **extra)


def numbers(**owner):
    b = commission_balance(**owner)
    return (b.pending, b.available, b.withdrawn, b.in_review, b.paid_out)


def code_of(call) -> tuple[str, int, dict]:
    with pytest.raises(ApplicationError) as info:
        call()
    return info.value.code, info.value.status, info.value.fields


@pytest.fixture
def ledger(org):
    """100.00 due yesterday, 12.34 due a month ago, 40.00 due in 3 days, a refund reversal of −10.00."""
    entry(org.guide, "earn", "100.00", due_in_days=-1)
    entry(org.guide, "earn", "12.34", due_in_days=-30)
    entry(org.guide, "earn", "40.00", due_in_days=3)
    entry(org.guide, "reversal", "-10.00", due_in_days=5)
    entry(org.colleague.staff_profile.guide, "earn", "999.00", due_in_days=-1)  # someone else's money
    return org


# ---------------------------------------------------------------------------- balance

def test_balance_splits_pending_available_and_withdrawn_exactly(ledger):
    guide = ledger.guide
    # pending: the 40.00 not yet due; available: 100.00 + 12.34 − 10.00 (a reversal counts at once) = 102.34.
    assert numbers(guide=guide) == (D("40.00"), D("102.34"), D("0.00"), D("0.00"), D("0.00"))

    first = withdrawal_request(guide=guide, amount=D("30.00"), request_key="k1").withdrawal
    assert numbers(guide=guide) == (D("40.00"), D("72.34"), D("30.00"), D("30.00"), D("0.00"))

    withdrawal_reject(withdrawal=first, user=ledger.manager)
    assert numbers(guide=guide) == (D("40.00"), D("102.34"), D("0.00"), D("0.00"), D("0.00"))

    second = withdrawal_request(guide=guide, amount=D("50.00"), request_key="k2").withdrawal
    withdrawal_approve(withdrawal=second, user=ledger.manager)
    assert numbers(guide=guide) == (D("40.00"), D("52.34"), D("50.00"), D("50.00"), D("0.00"))
    withdrawal_mark_paid(withdrawal=second, user=ledger.manager)
    balance = commission_balance(guide=guide)
    assert numbers(guide=guide) == (D("40.00"), D("52.34"), D("50.00"), D("0.00"), D("50.00"))
    # Σ earn + Σ reversal = 152.34 − 10.00 = 142.34 = pending 40.00 + available 52.34 + withdrawn 50.00.
    assert balance.total == D("92.34")

    # Four days on, the 40.00 is out of its return window.
    later = commission_balance(guide=guide, at=timezone.now() + dt.timedelta(days=4))
    assert (later.pending, later.available) == (D("0.00"), D("92.34"))


def test_a_refund_in_the_return_window_makes_available_negative_and_blocks_withdrawing(org):
    entry(org.guide, "earn", "20.00", due_in_days=6)
    entry(org.guide, "reversal", "-5.00", due_in_days=6)

    assert numbers(guide=org.guide) == (D("20.00"), D("-5.00"), D("0.00"), D("0.00"), D("0.00"))
    assert code_of(lambda: withdrawal_request(guide=org.guide, amount=D("0.01"), request_key="k")) == (
        "insufficient_balance", 409, {"amount": ["At most 0.00."]})


def test_an_empty_ledger_is_all_zero(org):
    assert numbers(guide=org.guide) == (D("0.00"),) * 5


# ---------------------------------------------------------------------------- requests

def test_more_than_available_is_refused_and_nothing_is_written(ledger):
    assert code_of(lambda: withdrawal_request(guide=ledger.guide, amount=D("102.35"), request_key="k")) == (
        "insufficient_balance", 409, {"amount": ["At most 102.34."]})
    assert (WithdrawalRequest.objects.count(), CommissionEntry.objects.filter(kind="withdrawal").count()) == (0, 0)

    made = withdrawal_request(guide=ledger.guide, amount=D("102.34"), request_key="all").withdrawal
    assert (made.amount, made.status, made.brand_id) == (D("102.34"), "requested", ledger.brand.pk)
    assert list(made.entries.values_list("kind", "amount", "guide_id")) == [
        ("withdrawal", D("-102.34"), ledger.guide.pk)]
    assert commission_balance(guide=ledger.guide).available == D("0.00")


@pytest.mark.parametrize(("amount", "field_message"), [
    (D("0"), "Must be more than 0.00."), (D("-1.00"), "Must be more than 0.00."),
    (D("1.234"), "At most two decimal places."), ("abc", "Enter a number."), (D("NaN"), "Enter a number."),
])
def test_bad_amounts_are_400_with_a_field_message(ledger, amount, field_message):
    assert code_of(lambda: withdrawal_request(guide=ledger.guide, amount=amount, request_key="k")) == (
        "invalid_amount", 400, {"amount": [field_message]})


@pytest.mark.parametrize("key", ["", "   ", "x" * 101, "a\nb"])
def test_a_missing_or_odd_request_key_is_400(ledger, key):
    assert code_of(lambda: withdrawal_request(guide=ledger.guide, amount=D("1.00"), request_key=key)) == (
        "invalid_request_key", 400, {"request_key": ["Invalid request key."]})


def test_a_double_tap_with_the_same_key_makes_one_request(ledger):
    first = withdrawal_request(guide=ledger.guide, amount=D("60.00"), request_key="form-1")
    again = withdrawal_request(guide=ledger.guide, amount=D("60.00"), request_key="form-1")

    assert (first.created, again.created, again.withdrawal.pk) == (True, False, first.withdrawal.pk)
    assert WithdrawalRequest.objects.count() == 1
    assert commission_balance(guide=ledger.guide).available == D("42.34")
    # The same key for another amount is a conflict, not a second request.
    assert code_of(lambda: withdrawal_request(guide=ledger.guide, amount=D("1.00"), request_key="form-1")) == (
        "request_key_reused", 409, {"request_key": ["Already used for another amount."]})
    # Keys are per person: a colleague's form with the same key is their own request.
    colleague = ledger.colleague.staff_profile.guide
    theirs = withdrawal_request(guide=colleague, amount=D("1.00"), request_key="form-1")
    assert theirs.created and theirs.withdrawal.pk != first.withdrawal.pk


# ---------------------------------------------------------------------------- decisions

def test_nobody_decides_their_own_withdrawal(ledger):
    entry(ledger.manager_guide, "earn", "80.00", due_in_days=-1)
    own = withdrawal_request(guide=ledger.manager_guide, amount=D("80.00"), request_key="m").withdrawal
    guides = withdrawal_request(guide=ledger.guide, amount=D("10.00"), request_key="g").withdrawal

    assert code_of(lambda: withdrawal_approve(withdrawal=own, user=ledger.manager)) == (
        "own_withdrawal", 403, {})
    # A guide decides nothing, not even their own request; a colleague's is outside their scope.
    assert code_of(lambda: withdrawal_approve(withdrawal=guides, user=ledger.guide_user)) == ("not_approver", 403, {})
    assert code_of(lambda: withdrawal_approve(withdrawal=guides, user=ledger.colleague)) == ("not_found", 404, {})
    assert set(WithdrawalRequest.objects.values_list("status", flat=True)) == {"requested"}

    done = withdrawal_approve(withdrawal=own, user=ledger.region_manager, note="ok")
    assert (done.status, done.decided_by_id, done.note) == ("approved", ledger.region_manager.pk, "ok")
    assert done.decided_at is not None


@pytest.mark.parametrize(("who", "allowed"), [
    ("manager", True), ("region_manager", True), ("operator", True), ("other_manager", False),
    ("foreign_operator", False),
])
def test_deciders_are_store_managers_and_above_within_scope(ledger, who, allowed):
    withdrawal = withdrawal_request(guide=ledger.guide, amount=D("10.00"), request_key="k").withdrawal
    user = getattr(ledger, who)
    if allowed:
        assert withdrawal_approve(withdrawal=withdrawal, user=user).status == "approved"
    else:
        assert code_of(lambda: withdrawal_approve(withdrawal=withdrawal, user=user)) == ("not_found", 404, {})


def test_rejecting_returns_the_money_with_a_ledger_row(ledger):
    withdrawal = withdrawal_request(guide=ledger.guide, amount=D("25.50"), request_key="k").withdrawal
    withdrawal_approve(withdrawal=withdrawal, user=ledger.manager)

    rejected = withdrawal_reject(withdrawal=withdrawal, user=ledger.operator, note="bank details wrong")

    assert (rejected.status, rejected.decided_by_id, rejected.note) == ("rejected", ledger.operator.pk,
                                                                        "bank details wrong")
    assert list(withdrawal.entries.order_by("pk").values_list("kind", "amount")) == [
        ("withdrawal", D("-25.50")), ("withdrawal_return", D("25.50"))]
    assert commission_balance(guide=ledger.guide).available == D("102.34")


def test_paid_records_when(ledger):
    withdrawal = withdrawal_request(guide=ledger.guide, amount=D("10.00"), request_key="k").withdrawal
    withdrawal_approve(withdrawal=withdrawal, user=ledger.manager)

    paid = withdrawal_mark_paid(withdrawal=withdrawal, user=ledger.operator)

    assert (paid.status, paid.decided_by_id) == ("paid", ledger.manager.pk)  # who approved stays on record
    assert paid.paid_at is not None
    assert list(withdrawal.entries.values_list("kind", flat=True)) == ["withdrawal"]  # the money left with it


@pytest.mark.parametrize(("steps", "refused"), [
    ((), "paid"),                               # requested → paid skips approval
    (("approve",), "approve"),                  # approved twice
    (("reject",), "approve"),                   # a rejected request stays rejected
    (("reject",), "reject"),
    (("approve", "paid"), "reject"),            # paid money cannot be returned by rejecting
    (("approve", "paid"), "paid"),
])
def test_invalid_transitions_are_409_and_change_nothing(ledger, steps, refused):
    services = {"approve": withdrawal_approve, "reject": withdrawal_reject, "paid": withdrawal_mark_paid}
    withdrawal = withdrawal_request(guide=ledger.guide, amount=D("10.00"), request_key="k").withdrawal
    for step in steps:
        services[step](withdrawal=withdrawal, user=ledger.manager)
    before = (WithdrawalRequest.objects.get().status, CommissionEntry.objects.count())

    code, status, _ = code_of(lambda: services[refused](withdrawal=withdrawal, user=ledger.manager))

    assert (code, status) == ("invalid_transition", 409)
    assert (WithdrawalRequest.objects.get().status, CommissionEntry.objects.count()) == before


# ---------------------------------------------------------------------------- office staff (all-staff distribution)

def test_office_staff_withdraw_from_their_own_ledger_and_brand_staff_decide(org):
    office = staff_user("brand_operator", brand=org.brand)
    assert commission_owner_for(office).staff_user_id == office.pk
    assert commission_owner_for(org.manager).guide_id == org.manager_guide.pk  # a manager with a guide row
    entry(None, "earn", "33.00", due_in_days=-2, staff_user=office, brand_of_staff=org.brand)

    assert numbers(staff_user=office) == (D("0.00"), D("33.00"), D("0.00"), D("0.00"), D("0.00"))
    withdrawal = withdrawal_request(staff_user=office, amount=D("33.00"), request_key="k").withdrawal
    assert (withdrawal.guide_id, withdrawal.staff_user_id, withdrawal.brand_id) == (None, office.pk, org.brand.pk)

    # An office request hangs off no store: store and region managers do not see it; brand staff and HQ do.
    assert code_of(lambda: withdrawal_approve(withdrawal=withdrawal, user=org.manager)) == ("not_found", 404, {})
    assert code_of(lambda: withdrawal_approve(withdrawal=withdrawal, user=org.region_manager))[1] == 404
    assert code_of(lambda: withdrawal_approve(withdrawal=withdrawal, user=office)) == ("own_withdrawal", 403, {})
    hq = staff_user("hq", group=org.brand.group)
    assert withdrawal_approve(withdrawal=withdrawal, user=hq).status == "approved"
    assert numbers(staff_user=office) == (D("0.00"), D("0.00"), D("33.00"), D("33.00"), D("0.00"))
    assert numbers(guide=org.guide) == (D("0.00"),) * 5


def test_hq_staff_file_their_request_under_the_brand_of_their_latest_earning(org):
    hq = staff_user("hq", group=org.brand.group)
    other = BrandFactory(group=org.brand.group)
    entry(None, "earn", "5.00", due_in_days=-9, staff_user=hq, brand_of_staff=org.brand)
    entry(None, "earn", "7.00", due_in_days=-1, staff_user=hq, brand_of_staff=other)

    withdrawal = withdrawal_request(staff_user=hq, amount=D("12.00"), request_key="k").withdrawal

    assert withdrawal.brand_id == other.pk
