"""The commission admin: rules written by HQ and brand operators, the ledger read-only, withdrawals decided
through actions that apply the same rules as the workbench (in scope, never one's own)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from guides.models import CommissionEntry, CommissionRule, WithdrawalRequest
from guides.withdrawals import withdrawal_request
from tests.factories import BrandFactory, GuideFactory, StoreFactory, staff_user

pytestmark = pytest.mark.django_db
D = Decimal


def login(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


@pytest.fixture
def world():
    store = StoreFactory()
    other = StoreFactory(region__brand=BrandFactory(group=store.brand.group))
    requests = []
    for s, code in ((store, "G-HERE"), (other, "G-THERE")):
        guide = GuideFactory(store=s, code=code)
        CommissionEntry.objects.create(guide=guide, brand=s.brand, kind="earn", amount=D("50.00"),
                                       available_at=timezone.now() - dt.timedelta(days=1))
        requests.append(withdrawal_request(guide=guide, amount=D("50.00"), request_key="k").withdrawal)
    return store, other, requests


def test_withdrawals_are_listed_in_scope_and_decided_by_action(world):
    store, other, (here, there) = world
    manager = login(staff_user("store_manager", store=store))

    page = manager.get("/admin/guides/withdrawalrequest/").content.decode()
    assert "G-HERE" in page and "G-THERE" not in page
    assert manager.get(f"/admin/guides/withdrawalrequest/{there.pk}/change/").status_code == 302  # not in scope
    assert manager.get("/admin/guides/withdrawalrequest/add/").status_code == 403

    manager.post("/admin/guides/withdrawalrequest/", {"action": "approve", "_selected_action": [here.pk, there.pk]})

    assert dict(WithdrawalRequest.objects.values_list("pk", "status")) == {here.pk: "approved",
                                                                          there.pk: "requested"}


def test_the_ledger_is_read_only_and_rules_are_for_hq_and_brand_staff(world):
    store = world[0]
    operator = login(staff_user("brand_operator", brand=store.brand))
    entry = CommissionEntry.objects.filter(brand=store.brand).first()

    assert operator.get("/admin/guides/commissionentry/").status_code == 200
    assert operator.get("/admin/guides/commissionentry/add/").status_code == 403
    assert operator.post(f"/admin/guides/commissionentry/{entry.pk}/change/", {"amount": "9"}).status_code == 403
    response = operator.post("/admin/guides/commissionrule/add/", {"brand": store.brand.pk, "category": "",
                                                                   "channel": "", "rate": "0.0300",
                                                                   "is_active": "on"})
    assert response.status_code == 302
    assert list(CommissionRule.objects.values_list("brand_id", "rate")) == [(store.brand.pk, D("0.0300"))]
    assert login(staff_user("store_manager", store=store)).get("/admin/guides/commissionrule/add/").status_code == 403
