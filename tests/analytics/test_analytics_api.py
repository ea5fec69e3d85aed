"""Staff API of the dashboard metrics (``/api/v1/analytics/metrics/…``) on the group of tests/analytics/test_metrics.py.

The expected numbers are the ones worked out there (its module docstring lists the data); the API must return
exactly what ``analytics.metrics`` computes, limited to the caller's scope.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from segments.models import RfmClassChange, RfmRun
from tests.analytics.test_metrics import build_world
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

BASE = "/api/v1/analytics/metrics/"
MARCH = {"from": "2026-03-01", "to": "2026-03-31"}


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


def get(user, path: str, **params):
    return client_for(user).get(BASE + path, params)


def test_anonymous_callers_get_401_and_non_staff_403(world):
    assert APIClient().get(BASE + "overview/", MARCH).status_code == 401
    response = client_for(UserFactory()).get(BASE + "overview/", MARCH)
    assert response.status_code == 403


def test_overview_for_hq(world):
    response = get(world.users.hq, "overview/", **MARCH)

    assert response.status_code == 200
    body = response.json()
    assert body["filters"] == {"date_from": "2026-03-01", "date_to": "2026-03-31", "brand_id": None,
                               "region_id": None, "store_id": None, "channel": None, "partial": False,
                               "previous_from": "2026-01-29", "previous_to": "2026-02-28"}
    assert (body["gmv"]["value"], body["gmv"]["unit"], body["gmv"]["last_year"]["value"]) == ("2250.00", "cny",
                                                                                            "400.00")
    assert body["gmv"]["trend"][1] == {"period": "2026-03-02", "value": "500.00", "numerator": None,
                                       "denominator": None}
    assert body["sales_flow"]["value"] == "1720.00"
    assert (body["unpaid_ratio"]["value"], body["unpaid_ratio"]["numerator"]) == ("0.0356", "80.00")
    assert body["refund_ratio"]["value"] == "0.2074"
    assert body["average_order_value"]["value"] == "172.00"
    assert body["private_domain_share"]["value"] == "0.2965"
    assert body["member_growth"]["members"]["value"] == "5"
    assert body["member_growth"]["by_join_channel"] == [
        {"join_channel": "guide_qr", "new_members": 1, "new_members_last_year": 0},
        {"join_channel": "pay_as_join", "new_members": 1, "new_members_last_year": 0}]
    assert body["monthly_repurchase_rate"]["value"] == "0.5000"
    assert body["purchase_frequency"]["value"] == "2.00"
    assert body["cross_purchase_rate"]["value"] == "0.5000"
    assert body["cross_brand_guided_share"]["value"] == "0.0872"
    assert body["wecom_friend_rate"]["value"] == "0.2500"
    assert body["member_online_rate"]["value"] == "0.4000"
    assert body["card_opening_rate"]["value"] == "0.8000"
    assert body["unpaid_ratio"]["last_year"]["trend"][0]["value"] is None  # no order on 2025-03-01


def test_overview_for_a_region_manager_covers_their_region_only(world):
    body = get(world.users.rm_east, "overview/", **MARCH).json()

    assert body["sales_flow"]["value"] == "730.00"
    assert body["unpaid_ratio"]["denominator"] == "860.00"


def test_rankings(world):
    brands = get(world.users.hq, "brands/", **MARCH).json()
    regions = get(world.users.hq, "regions/", **MARCH).json()
    stores = get(world.users.hq, "stores/", **MARCH, limit=2).json()

    assert [(r["code"], r["sales_flow"], r["sales_flow_last_year"], r["growth"]) for r in brands] == [
        ("A", "1230.00", "100.00", "11.3000"), ("B", "490.00", "300.00", "0.6333")]
    assert [(r["code"], r["sales_flow"]) for r in regions] == [("east", "730.00"), ("west", "500.00"),
                                                               ("north", "340.00")]
    assert [(r["code"], r["sales_flow"], r["average_order_value"]) for r in stores] == [
        ("E1", "550.00", "183.33"), ("W1", "500.00", "500.00")]


def test_a_region_manager_never_sees_another_regions_stores(world):
    user = world.users.rm_east

    stores = get(user, "stores/", **MARCH).json()
    guides = get(user, "guides/", **MARCH).json()
    months = get(user, "store-months/", **MARCH).json()

    assert [r["code"] for r in stores] == ["E1", "E2"]
    assert [r["guide_code"] for r in guides] == ["ga1", "ga2"]
    assert [r["store_code"] for r in months["rows"]] == ["E1", "E2"]
    for path in ("overview/", "stores/", "guides/", "core/", "livestream/"):
        assert get(user, path, **MARCH, store="W1").status_code == 404
        assert get(user, path, **MARCH, region="west", brand="A").status_code == 404
    assert get(user, "overview/", **MARCH, brand="B").status_code == 404


def test_store_months(world):
    body = get(world.users.hq, "store-months/", **MARCH, limit=1).json()

    assert (body["average"]["value"], body["average"]["denominator"]) == ("180.00", "2")
    assert body["rows"] == [{"store_id": world.e1.pk, "store_code": "E1", "store_name": "Store E1",
                             "month": "2026-03-01", "private_domain_sales": "300.00", "sales_flow": "550.00"}]


def test_guides(world):
    rows = get(world.users.hq, "guides/", **MARCH).json()
    by_shares = get(world.users.hq, "guides/", **MARCH, order_by="shares", limit=1).json()

    assert [(r["guide_code"], r["sales"], r["online_sales"]) for r in rows] == [
        ("ga1", "700.00", "450.00"), ("gw", "500.00", "0.00"), ("gb", "340.00", "0.00"), ("ga2", "180.00", "60.00")]
    assert (rows[0]["share_pv"], rows[0]["share_uv"], rows[0]["members_served"], rows[0]["commission"],
            rows[0]["task_execution_rate"]) == (4, 3, 2, "8.00", "1.0000")
    assert [r["guide_code"] for r in by_shares] == ["ga1"]


def test_core_indicators_and_livestream(world):
    core = get(world.users.hq, "core/", **MARCH).json()
    live = get(world.users.hq, "livestream/", **MARCH).json()

    assert (core["sales_revenue"]["value"], core["cost_of_goods"]["value"], core["operating_profit"]["value"],
            core["inventory_turnover_days"]["value"]) == ("1720.00", "720.00", "1000.00", "834.6")
    assert core["inventory_turnover_days"]["last_year"]["value"] is None
    assert live["total"] == {"sessions": 0, "hours": "0.00", "viewers": 0, "buyers": 0, "conversion": None,
                             "gmv": "0.00", "paid_sales": "0.00"}


def test_segments_and_transitions(world):
    now = timezone.now()
    run1 = RfmRun.objects.create(brand=world.a, as_of=dt.date(2026, 3, 10), window_days=365, started_at=now,
                                 counts={"important_value": 1})
    run2 = RfmRun.objects.create(brand=world.a, as_of=dt.date(2026, 3, 20), window_days=365, started_at=now,
                                 counts={"important_value": 1})
    RfmClassChange.objects.create(member=world.m1, brand=world.a, run=run1, to_segment="general_value",
                                  changed_on=run1.as_of)
    RfmClassChange.objects.create(member=world.m1, brand=world.a, run=run2, from_segment="general_value",
                                  to_segment="important_value", changed_on=run2.as_of)

    segments = get(world.users.hq, "segments/", **MARCH).json()
    moves = get(world.users.hq, "segments/transitions/", brand="A", from_run=run1.pk, to_run=run2.pk)

    assert [(s["run_id"], s["members"]) for s in segments["sizes"] if s["segment"] == "important_value"] == [
        (run1.pk, 1), (run2.pk, 1)]
    assert segments["care_list_completion"]["value"] == "0.5000"
    assert [c["brand_code"] for c in segments["cycles"]] == ["A", "B"]
    assert moves.status_code == 200
    assert moves.json() == [{"from_segment": "general_value", "to_segment": "important_value", "members": 1}]
    assert get(world.users.op_b, "segments/transitions/", brand="A", from_run=run1.pk,
               to_run=run2.pk).status_code == 404
    assert get(world.users.op_a, "segments/transitions/", brand="A", from_run=run2.pk,
               to_run=run1.pk).status_code == 400


@pytest.mark.parametrize(("path", "params", "fields"), [
    ("overview/", {"from": "yesterday"}, {"from"}),
    ("overview/", {"from": "2026-03-31", "to": "2026-03-01"}, {"from"}),
    ("overview/", {"from": "2020-01-01", "to": "2026-03-01"}, {"to"}),
    ("overview/", {"to": "0001-01-01"}, {"to"}),
    ("brands/", {"channel": "telegraph"}, {"channel"}),
    ("stores/", {"store": "NOPE"}, {"store"}),
    ("stores/", {"store": "bad code!"}, {"store"}),
    ("stores/", {"limit": "0"}, {"limit"}),
    ("stores/", {"limit": "many"}, {"limit"}),
    ("guides/", {"order_by": "charm"}, {"order_by"}),
    ("segments/transitions/", {}, {"brand", "from_run", "to_run"}),
    ("segments/transitions/", {"brand": "NOPE", "from_run": "1", "to_run": "2"}, {"brand"}),
])
def test_bad_input_answers_400_with_field_messages(world, path, params, fields):
    response = get(world.users.hq, path, **params)

    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "invalid"
    assert set(body["error"]["fields"]) == fields


def test_the_api_and_the_functions_agree(world):
    """The dashboard and the API call the same functions: same filters, same numbers."""
    from analytics import metrics
    from retail_crm.scoping import actor_for

    actor = actor_for(world.users.op_a)
    filters = metrics.parse_filters({**MARCH, "channel": "store_pos"}, actor=actor)
    body = get(world.users.op_a, "overview/", **MARCH, channel="store_pos").json()

    assert body["sales_flow"]["value"] == str(metrics.sales_flow(actor=actor, filters=filters).value)
    assert body["card_opening_rate"]["value"] == str(metrics.card_opening_rate(actor=actor, filters=filters).value)
    assert body["sales_flow"]["value"] == "870.00"  # brand A POS: o1 250, o3 120, o5 500
