"""guides.withdrawals.withdrawal_actions: what the pages offer is exactly what the services allow, for every
viewer and every status (the requester, colleagues, managers in and out of scope, brand staff)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from guides.models import CommissionEntry, WithdrawalRequest
from guides.withdrawals import (
    WithdrawalActions,
    withdrawal_actions,
    withdrawal_actions_for,
    withdrawal_approve,
    withdrawal_mark_paid,
    withdrawal_reject,
    withdrawal_request,
)
from retail_crm.errors import ApplicationError
from tests.factories import BrandFactory, GuideFactory, RegionFactory, StoreFactory, staff_user

pytestmark = pytest.mark.django_db

SERVICES = {"approved": withdrawal_approve, "rejected": withdrawal_reject, "paid": withdrawal_mark_paid}


class _Undo(Exception):
    pass


def _outcome(service, withdrawal, user) -> str:
    """What the service does (then undone): 'ok' or the error code."""
    try:
        with transaction.atomic():
            service(withdrawal=withdrawal, user=user, note="checked")
            raise _Undo
    except _Undo:
        return "ok"
    except ApplicationError as exc:
        return exc.code


@pytest.fixture
def world():
    brand = BrandFactory()
    region = RegionFactory(brand=brand)
    store, other_store = StoreFactory(region=region), StoreFactory(region=region)
    guide, manager_guide = GuideFactory(store=store), GuideFactory(store=store, role="store_manager")
    users = {
        "requester": staff_user("guide", guide=guide),
        "colleague": staff_user("guide", guide=GuideFactory(store=store)),
        "manager": staff_user("store_manager", store=store, guide=manager_guide),
        "other_manager": staff_user("store_manager", store=other_store),
        "region_manager": staff_user("region_manager", region=region),
        "operator": staff_user("brand_operator", brand=brand),
        "foreign_operator": staff_user("brand_operator", brand=BrandFactory(group=brand.group)),
    }
    CommissionEntry.objects.create(guide=guide, brand=brand, kind="earn", amount=Decimal("100.00"),
                                   available_at=timezone.now() - dt.timedelta(days=1))
    return guide, users


@pytest.mark.parametrize("status", ["requested", "approved", "rejected", "paid"])
def test_the_offered_actions_are_exactly_the_allowed_ones(world, status):
    guide, users = world
    withdrawal = withdrawal_request(guide=guide, amount=Decimal("30.00"), request_key="k").withdrawal
    WithdrawalRequest.objects.filter(pk=withdrawal.pk).update(status=status)
    withdrawal.refresh_from_db()

    for name, user in users.items():
        actions = withdrawal_actions_for(withdrawal=withdrawal, user=user)
        for target, service in SERVICES.items():
            outcome = _outcome(service, withdrawal, user)
            expected = "ok" if target in actions.allowed else (actions.refusal or "invalid_transition")
            assert (name, target, outcome) == (name, target, expected)


def test_who_may_do_what_on_an_open_request(world):
    guide, users = world
    withdrawal = withdrawal_request(guide=guide, amount=Decimal("30.00"), request_key="k").withdrawal

    found = withdrawal_actions(withdrawals=[withdrawal], user=users["manager"])

    assert found == {withdrawal.pk: WithdrawalActions(status="requested", own=False, refusal=None)}
    manager = found[withdrawal.pk]
    assert (manager.approve, manager.reject, manager.mark_paid, manager.someone_else_decides) == (
        True, True, False, False)
    requester = withdrawal_actions_for(withdrawal=withdrawal, user=users["requester"])
    assert (requester.own, requester.refusal, requester.any) == (True, "not_approver", False)
    assert withdrawal_actions_for(withdrawal=withdrawal, user=users["other_manager"]).refusal == "not_found"
    assert withdrawal_actions_for(withdrawal=withdrawal, user=users["foreign_operator"]).refusal == "not_found"
    assert withdrawal_actions_for(withdrawal=withdrawal, user=users["colleague"]).refusal == "not_found"


def test_a_manager_sees_their_own_request_as_someone_elses_to_decide(world):
    _guide, users = world
    manager_guide = users["manager"].staff_profile.guide
    CommissionEntry.objects.create(guide=manager_guide, brand=manager_guide.store.brand, kind="earn",
                                   amount=Decimal("50.00"), available_at=timezone.now() - dt.timedelta(days=1))
    own = withdrawal_request(guide=manager_guide, amount=Decimal("20.00"), request_key="m").withdrawal

    actions = withdrawal_actions_for(withdrawal=own, user=users["manager"])

    assert (actions.own, actions.refusal, actions.any, actions.someone_else_decides) == (
        True, "own_withdrawal", False, True)
    assert withdrawal_actions_for(withdrawal=own, user=users["region_manager"]).allowed == {"approved", "rejected"}
