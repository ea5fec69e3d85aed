"""Staff API for commission and withdrawals: /api/v1/guides/commission/ and /api/v1/guides/withdrawals/…"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import timezone

from guides.models import CommissionEntry, WithdrawalRequest
from tests.factories import BrandFactory, GuideFactory, MemberFactory, OrderFactory, StoreFactory, staff_user

pytestmark = pytest.mark.django_db
D = Decimal
URL = "/api/v1/guides/"


@pytest.fixture
def org():
    store = StoreFactory()
    guide = GuideFactory(store=store, code="G-ANN")
    colleague = GuideFactory(store=store, code="G-BEN")
    order = OrderFactory(brand=store.brand, order_no="ORD-1", member=MemberFactory(group=store.brand.group))
    now = timezone.now()
    CommissionEntry.objects.create(guide=guide, brand=store.brand, kind="earn", amount=D("80.00"), order=order,
                                   rate=D("0.0500"), available_at=now - dt.timedelta(days=1), note="ORD-1")
    CommissionEntry.objects.create(guide=guide, brand=store.brand, kind="earn", amount=D("15.50"),
                                   available_at=now + dt.timedelta(days=2))
    CommissionEntry.objects.create(guide=colleague, brand=store.brand, kind="earn", amount=D("999.00"),
                                   available_at=now - dt.timedelta(days=1))
    return SimpleNamespace(store=store, guide=guide, colleague=colleague, order=order,
                           guide_user=staff_user("guide", guide=guide),
                           colleague_user=staff_user("guide", guide=colleague),
                           manager=staff_user("store_manager", store=store),
                           foreign=staff_user("store_manager", store=StoreFactory(region__brand=BrandFactory(
                               group=store.brand.group))))


def as_(api_client, user):
    api_client.force_authenticate(user)
    return api_client


def test_anonymous_is_401(api_client):
    assert api_client.get(f"{URL}commission/").status_code == 401
    assert api_client.post(f"{URL}withdrawals/", {"amount": "1.00"}, format="json").status_code == 401


def test_my_commission_is_my_balance_and_my_rows_only(api_client, org):
    response = as_(api_client, org.guide_user).get(f"{URL}commission/")

    assert response.status_code == 200
    body = response.json()
    assert body["owner"] == "guide:G-ANN"
    assert body["balance"] == {"pending": "15.50", "available": "80.00", "withdrawn": "0.00", "in_review": "0.00",
                               "paid_out": "0.00", "total": "95.50"}
    assert [(e["kind"], e["amount"], e["order_no"], e["rate"]) for e in body["entries"]] == [
        ("earn", "15.50", None, None), ("earn", "80.00", "ORD-1", "0.0500")]
    assert body["withdrawals"] == []


def test_request_with_a_request_key_twice_makes_one(api_client, org):
    client = as_(api_client, org.guide_user)

    first = client.post(f"{URL}withdrawals/", {"amount": "50.00", "request_key": "tap-1"}, format="json")
    again = client.post(f"{URL}withdrawals/", {"amount": "50.00", "request_key": "tap-1"}, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert {k: first.json()[k] for k in ("guide", "staff_user", "amount", "status", "decided_by")} == {
        "guide": "G-ANN", "staff_user": None, "amount": "50.00", "status": "requested", "decided_by": None}
    assert WithdrawalRequest.objects.count() == 1
    assert client.get(f"{URL}commission/").json()["balance"]["available"] == "30.00"


def test_request_with_an_idempotency_key_header_replays(api_client, org):
    client = as_(api_client, org.guide_user)

    first = client.post(f"{URL}withdrawals/", {"amount": "20.00"}, format="json", HTTP_IDEMPOTENCY_KEY="h-1")
    again = client.post(f"{URL}withdrawals/", {"amount": "20.00"}, format="json", HTTP_IDEMPOTENCY_KEY="h-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert WithdrawalRequest.objects.count() == 1


@pytest.mark.parametrize(("payload", "status", "fields"), [
    ({"amount": "1.00"}, 400, {"request_key": ["This field is required."]}),
    ({"amount": "0.00", "request_key": "k"}, 400, {"amount": ["Ensure this value is greater than or equal to 0.01."]}),
    ({"amount": "abc", "request_key": "k"}, 400, {"amount": ["A valid number is required."]}),
    ({"request_key": "k"}, 400, {"amount": ["This field is required."]}),
    ({"amount": "80.01", "request_key": "k"}, 409, {"amount": ["At most 80.00."]}),
])
def test_bad_requests_get_field_messages(api_client, org, payload, status, fields):
    response = as_(api_client, org.guide_user).post(f"{URL}withdrawals/", payload, format="json",
                                                    HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == status
    assert response.json()["error"]["fields"] == fields
    assert WithdrawalRequest.objects.count() == 0


def _requested(client, amount="40.00", key="k"):
    return client.post(f"{URL}withdrawals/", {"amount": amount, "request_key": key}, format="json").json()["id"]


def test_decisions_by_someone_in_scope_and_their_conflicts(api_client, org):
    pk = _requested(as_(api_client, org.guide_user))

    # The requester (a guide) may not decide; another store's manager does not see it.
    assert api_client.post(f"{URL}withdrawals/{pk}/approve/").status_code == 403
    assert as_(api_client, org.colleague_user).post(f"{URL}withdrawals/{pk}/approve/").status_code == 404
    assert as_(api_client, org.foreign).post(f"{URL}withdrawals/{pk}/approve/").status_code == 404
    assert as_(api_client, org.manager).post(f"{URL}withdrawals/999999/approve/").status_code == 404

    client = as_(api_client, org.manager)
    approved = client.post(f"{URL}withdrawals/{pk}/approve/", {"note": "ok"}, format="json")
    assert (approved.status_code, approved.json()["status"], approved.json()["decided_by"],
            approved.json()["note"]) == (200, "approved", org.manager.username, "ok")
    again = client.post(f"{URL}withdrawals/{pk}/approve/")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "invalid_transition")
    paid = client.post(f"{URL}withdrawals/{pk}/paid/")
    assert (paid.status_code, paid.json()["status"]) == (200, "paid")
    assert client.post(f"{URL}withdrawals/{pk}/reject/").status_code == 409


def test_reject_returns_the_money(api_client, org):
    pk = _requested(as_(api_client, org.guide_user), amount="80.00")
    assert api_client.get(f"{URL}commission/").json()["balance"]["available"] == "0.00"

    rejected = as_(api_client, org.manager).post(f"{URL}withdrawals/{pk}/reject/")

    assert (rejected.status_code, rejected.json()["status"]) == (200, "rejected")
    body = as_(api_client, org.guide_user).get(f"{URL}commission/").json()
    assert body["balance"]["available"] == "80.00"
    # Newest value date first: the pending earning (due in 2 days), then the return, the withdrawal, the earning.
    assert [(e["kind"], e["amount"], e["withdrawal"]) for e in body["entries"]] == [
        ("earn", "15.50", None), ("withdrawal_return", "80.00", pk), ("withdrawal", "-80.00", pk),
        ("earn", "80.00", None)]


def test_the_review_list_is_scoped_and_empty_for_guides(api_client, org):
    pk = _requested(as_(api_client, org.guide_user))

    assert api_client.get(f"{URL}withdrawals/").json()["results"] == []
    listed = as_(api_client, org.manager).get(f"{URL}withdrawals/", {"status": "requested"}).json()
    assert [(w["id"], w["guide"]) for w in listed["results"]] == [(pk, "G-ANN")]
    assert as_(api_client, org.manager).get(f"{URL}withdrawals/", {"status": "paid"}).json()["results"] == []
    assert as_(api_client, org.foreign).get(f"{URL}withdrawals/").json()["results"] == []
    assert as_(api_client, org.manager).get(f"{URL}withdrawals/", {"status": "nope"}).status_code == 400
