"""Sales-credit selectors, staff API and admin: scope (a guide sees only their own credits), filters, errors.

Fixture: the two-brand organisation of tests/attribution/test_attribution.py and three attributed orders

    online    brand A, mini-program, member bound to GA3 (SA2), via GA1's link, 300.00 (100.00 refunded)
    offline   brand A, POS at SA1 by GA2, same member, 50.00
    cross     brand A, mini-program, member bound only in brand B to GB1, 80.00

which give these credit rows (worked out by hand from the rules):

    online   store SA2 300, exclusive GA3@SA2 300, selling GA1@SA1 300, then -100 on each (refund)
    offline  store SA1 50, exclusive GA3@SA2 50, selling GA2@SA1 50
    cross    store HQ pool 80, exclusive GB1@SB1 80 (cross-brand)
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.utils import translation

import attribution.admin  # noqa: F401  (registers the admin classes)
from attribution.models import AttributionSettings, SalesCredit
from attribution.selectors import (
    GuideCredit,
    StoreCredit,
    credits_by_store,
    credits_for_guide,
)
from attribution.services import attribute_orders
from mall.models import Channel, Order
from retail_crm.errors import ApplicationError
from retail_crm.scoping import actor_for
from tests.attribution.test_attribution import Org, bind, order
from tests.factories import MemberFactory, UserFactory, staff_user

pytestmark = pytest.mark.django_db

MARCH = {"date_from": "2024-03-01", "date_to": "2024-03-31"}


class World(Org):
    def __init__(self):
        super().__init__()
        self.member = MemberFactory(group=self.group)
        bind(self, self.member, self.ga3)
        other = MemberFactory(group=self.group)
        bind(self, other, self.gb1)
        self.online = order(self, self.member, guide=self.ga1, paid="300.00", when=1)
        self.offline = order(self, self.member, channel=Channel.STORE_POS, store=self.sa1, guide=self.ga2,
                             paid="50.00", when=2)
        self.cross = order(self, other, paid="80.00", when=3)
        attribute_orders(order_ids=[self.online.pk, self.offline.pk, self.cross.pk])
        Order.objects.filter(pk=self.online.pk).update(refunded_amount=Decimal("100.00"))
        attribute_orders(order_ids=[self.online.pk])


@pytest.fixture
def world():
    return World()


def as_user(api_client, user):
    api_client.force_authenticate(user)
    return api_client


def listed(response):
    """(order, kind, store, guide, amount, rule) of each listed row, as the API returns them."""
    return sorted((r["order_no"], r["kind"], r["store"], r["guide"], r["amount"], r["rule"])
                  for r in response.json()["results"])


# ---------------------------------------------------------------------------- selectors


def test_credits_for_guide_sums_rows_per_order_and_says_why(world):
    actor = actor_for(staff_user("guide", guide=world.ga3))

    with translation.override("en"):
        lines = credits_for_guide(actor=actor, guide_id=world.ga3.pk, date_from=dt.date(2024, 3, 1),
                                  date_to=dt.date(2024, 3, 31))

    why = "The member has been bound to GA3 since 2024-02-20 (QR scan): exclusive credit."
    assert lines == [
        GuideCredit(order_id=world.offline.pk, order_no=world.offline.order_no, order_day=dt.date(2024, 3, 3),
                    brand_code="A", channel="store_pos", kind="exclusive", amount=Decimal("50.00"),
                    rule="exclusive_bound_guide", why=why, cross_brand=False, counts_for_kpi=True,
                    earns_commission=True),
        GuideCredit(order_id=world.online.pk, order_no=world.online.order_no, order_day=dt.date(2024, 3, 2),
                    brand_code="A", channel="mini_program", kind="exclusive", amount=Decimal("200.00"),
                    rule="exclusive_bound_guide", why=why, cross_brand=False, counts_for_kpi=True,
                    earns_commission=True),
    ]


def test_credits_for_guide_follows_brand_settings_and_explains_selling_and_cross_brand(world):
    AttributionSettings.objects.create(brand=world.brand_a, selling_earns_commission=True,
                                       selling_counts_for_kpi=False)
    hq = actor_for(staff_user("hq", group=world.group))

    with translation.override("en"):
        [selling] = credits_for_guide(actor=hq, guide_id=world.ga1.pk, date_from=dt.date(2024, 3, 1),
                                      date_to=dt.date(2024, 3, 31))
        [cross] = credits_for_guide(actor=hq, guide_id=world.gb1.pk, date_from=dt.date(2024, 3, 1),
                                    date_to=dt.date(2024, 3, 31))

    assert (selling.kind, selling.amount, selling.counts_for_kpi, selling.earns_commission, selling.why) == (
        "selling", Decimal("200.00"), False, True,
        "The order came through GA1's share link or POS entry (the member's own guide: GA3): selling credit.")
    assert (cross.kind, cross.amount, cross.cross_brand, cross.rule, cross.why) == (
        "exclusive", Decimal("80.00"), True, "exclusive_cross_brand_guide",
        "The member's guide GB1 (bound since 2024-02-20) works for another brand: the credit follows the guide "
        "across brands.")


def test_credits_for_guide_refuses_a_guide_outside_scope(world):
    actor = actor_for(staff_user("guide", guide=world.ga1))
    with pytest.raises(ApplicationError) as caught:
        credits_for_guide(actor=actor, guide_id=world.ga3.pk, date_from=dt.date(2024, 3, 1),
                          date_to=dt.date(2024, 3, 31))
    assert (caught.value.code, caught.value.status) == ("not_found", 404)


def test_a_fully_reversed_credit_is_listed_at_zero_with_the_reversal_reason(world):
    Order.objects.filter(pk=world.offline.pk).update(refunded_amount=Decimal("50.00"))
    attribute_orders(order_ids=[world.offline.pk])
    actor = actor_for(staff_user("guide", guide=world.ga2))

    with translation.override("en"):
        [line] = credits_for_guide(actor=actor, guide_id=world.ga2.pk, date_from=dt.date(2024, 3, 1),
                                   date_to=dt.date(2024, 3, 31))

    assert (line.amount, line.rule, line.why) == (
        Decimal("0.00"), "reversal_not_purchase",
        "The order was refunded or is no longer paid: the credit is taken back.")


def test_credits_by_store_one_grouped_row_per_store_and_hq_pool(world):
    hq = actor_for(staff_user("hq", group=world.group))
    march = {"date_from": dt.date(2024, 3, 1), "date_to": dt.date(2024, 3, 31)}

    assert credits_by_store(actor=hq, **march) == [
        StoreCredit(store_id=world.sa2.pk, store_code="SA2", store_name=world.sa2.name, orders=1,
                    amount=Decimal("200.00")),
        StoreCredit(store_id=None, store_code=None, store_name=None, orders=1, amount=Decimal("80.00")),
        StoreCredit(store_id=world.sa1.pk, store_code="SA1", store_name=world.sa1.name, orders=1,
                    amount=Decimal("50.00")),
    ]
    assert credits_by_store(actor=hq, kind="selling", **march) == [
        StoreCredit(store_id=world.sa1.pk, store_code="SA1", store_name=world.sa1.name, orders=2,
                    amount=Decimal("250.00"))]
    manager = actor_for(staff_user("store_manager", store=world.sa1))
    assert [(s.store_code, s.amount) for s in credits_by_store(actor=manager, **march)] == [("SA1", Decimal("50.00"))]
    assert credits_by_store(actor=hq, brand_id=world.brand_b.pk, **march) == []


# ---------------------------------------------------------------------------- API


@pytest.mark.parametrize("path", ["/api/v1/analytics/credits/", "/api/v1/analytics/orders/1/credits/",
                                  "/api/v1/analytics/guides/1/credits/?date_from=2024-03-01&date_to=2024-03-02"])
def test_anonymous_gets_401(api_client, path):
    assert api_client.get(path).status_code == 401


def test_non_staff_user_gets_403(api_client, world):
    response = as_user(api_client, UserFactory(username="shopper")).get("/api/v1/analytics/credits/")
    assert response.status_code == 403


def test_hq_lists_every_row_with_filters(api_client, world):
    client = as_user(api_client, staff_user("hq", group=world.group))

    everything = client.get("/api/v1/analytics/credits/", MARCH)
    selling = client.get("/api/v1/analytics/credits/", {"kind": "selling", "guide": "GA1"})
    pos = client.get("/api/v1/analytics/credits/", {"channel": "store_pos", "store": "SA1"})
    day = client.get("/api/v1/analytics/credits/", {"date_from": "2024-03-04", "date_to": "2024-03-04"})

    assert everything.json()["count"] == 6 + 3 + 2
    online_no = world.online.order_no
    assert listed(selling) == [(online_no, "selling", "SA1", "GA1", "-100.00", "selling_named_guide"),
                               (online_no, "selling", "SA1", "GA1", "300.00", "selling_named_guide")]
    assert listed(pos) == [(world.offline.order_no, "selling", "SA1", "GA2", "50.00", "selling_named_guide"),
                           (world.offline.order_no, "store", "SA1", None, "50.00", "offline_pos_store")]
    assert listed(day) == [(world.cross.order_no, "exclusive", "SB1", "GB1", "80.00", "exclusive_cross_brand_guide"),
                           (world.cross.order_no, "store", None, None, "80.00", "online_unbound_hq_pool")]


def test_a_guide_lists_only_their_own_credits(api_client, world):
    client = as_user(api_client, staff_user("guide", guide=world.ga1))

    mine = client.get("/api/v1/analytics/credits/")
    others = client.get("/api/v1/analytics/credits/", {"guide": "GA3"})

    assert listed(mine) == [
        (world.online.order_no, "selling", "SA1", "GA1", "-100.00", "selling_named_guide"),
        (world.online.order_no, "selling", "SA1", "GA1", "300.00", "selling_named_guide")]
    assert others.status_code == 200 and others.json()["count"] == 0


def test_a_store_manager_lists_the_rows_of_their_store(api_client, world):
    client = as_user(api_client, staff_user("store_manager", store=world.sa1))
    response = client.get("/api/v1/analytics/credits/")
    assert listed(response) == [  # sorted by order number: the online order was created first
        (world.online.order_no, "selling", "SA1", "GA1", "-100.00", "selling_named_guide"),
        (world.online.order_no, "selling", "SA1", "GA1", "300.00", "selling_named_guide"),
        (world.offline.order_no, "selling", "SA1", "GA2", "50.00", "selling_named_guide"),
        (world.offline.order_no, "store", "SA1", None, "50.00", "offline_pos_store"),
    ]


@pytest.mark.parametrize(("params", "field"), [
    ({"kind": "bonus"}, "kind"),
    ({"channel": "tv"}, "channel"),
    ({"date_from": "yesterday"}, "date_from"),
    ({"date_from": "2024-03-05", "date_to": "2024-03-01"}, "date_to"),
    ({"brand": "NOPE"}, "brand"),
    ({"store": "NOPE"}, "store"),
    ({"guide": "NOPE"}, "guide"),
    ({"guide": "not a slug"}, "guide"),
])
def test_bad_filters_get_400_with_the_field(api_client, world, params, field):
    client = as_user(api_client, staff_user("hq", group=world.group))
    response = client.get("/api/v1/analytics/credits/", params)
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "invalid" and list(body["fields"]) == [field]


def test_order_credits_show_rows_rules_and_reasons(api_client, world):
    client = as_user(api_client, staff_user("hq", group=world.group))
    response = client.get(f"/api/v1/analytics/orders/{world.online.pk}/credits/", HTTP_ACCEPT_LANGUAGE="en")

    body = response.json()
    assert response.status_code == 200
    assert (body["order_no"], body["brand"], body["channel"], body["net_amount"]) == (
        world.online.order_no, "A", "mini_program", "200.00")
    assert [(c["kind"], c["store"], c["guide"], c["amount"], c["rule"], c["is_correction"]) for c in body["credits"]] \
        == [("store", "SA2", None, "300.00", "online_bound_guide_store", False),
            ("exclusive", "SA2", "GA3", "300.00", "exclusive_bound_guide", False),
            ("selling", "SA1", "GA1", "300.00", "selling_named_guide", False),
            ("store", "SA2", None, "-100.00", "online_bound_guide_store", True),
            ("exclusive", "SA2", "GA3", "-100.00", "exclusive_bound_guide", True),
            ("selling", "SA1", "GA1", "-100.00", "selling_named_guide", True)]
    assert body["credits"][0]["why"] == ("Bought online (Mini-program); the member's guide GA3 is of store SA2, "
                                         "so the sale belongs to that store.")


def test_order_credits_for_a_guide_show_only_their_rows_and_404_outside(api_client, world):
    client = as_user(api_client, staff_user("guide", guide=world.ga1))

    mine = client.get(f"/api/v1/analytics/orders/{world.online.pk}/credits/")
    foreign = client.get(f"/api/v1/analytics/orders/{world.cross.pk}/credits/")
    missing = client.get("/api/v1/analytics/orders/999999/credits/")

    assert [(c["kind"], c["guide"], c["amount"]) for c in mine.json()["credits"]] == [
        ("selling", "GA1", "300.00"), ("selling", "GA1", "-100.00")]
    assert (foreign.status_code, foreign.json()["error"]["code"]) == (404, "not_found")
    assert missing.status_code == 404


def test_guide_credits_endpoint_scope_and_errors(api_client, world):
    client = as_user(api_client, staff_user("guide", guide=world.ga3))

    mine = client.get(f"/api/v1/analytics/guides/{world.ga3.pk}/credits/", MARCH)
    other = client.get(f"/api/v1/analytics/guides/{world.ga1.pk}/credits/", MARCH)
    no_dates = client.get(f"/api/v1/analytics/guides/{world.ga3.pk}/credits/")
    reversed_range = client.get(f"/api/v1/analytics/guides/{world.ga3.pk}/credits/",
                                {"date_from": "2024-03-31", "date_to": "2024-03-01"})

    assert [(c["order_no"], c["kind"], c["amount"], c["rule"]) for c in mine.json()] == [
        (world.offline.order_no, "exclusive", "50.00", "exclusive_bound_guide"),
        (world.online.order_no, "exclusive", "200.00", "exclusive_bound_guide")]
    assert other.status_code == 404
    assert no_dates.status_code == 400 and set(no_dates.json()["error"]["fields"]) == {"date_from", "date_to"}
    assert reversed_range.status_code == 400


# ---------------------------------------------------------------------------- admin


def _request(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def test_admin_credit_rows_are_read_only_and_settings_writable_by_brand_operators(world):
    credit_admin = admin.site._registry[SalesCredit]
    settings_admin = admin.site._registry[AttributionSettings]
    hq = staff_user("hq", group=world.group)
    operator = staff_user("brand_operator", brand=world.brand_a)
    guide = staff_user("guide", guide=world.ga1)
    row = SalesCredit.objects.filter(order=world.online).first()

    assert (credit_admin.has_add_permission(_request(hq)), credit_admin.has_change_permission(_request(hq), row),
            credit_admin.has_delete_permission(_request(hq), row), credit_admin.has_view_permission(_request(hq), row)
            ) == (False, False, False, True)
    settings_a = AttributionSettings.objects.create(brand=world.brand_a)
    settings_b = AttributionSettings.objects.create(brand=world.brand_b)
    assert settings_admin.has_change_permission(_request(operator), settings_a) is True
    assert settings_admin.has_change_permission(_request(operator), settings_b) is False
    assert settings_admin.has_change_permission(_request(guide), settings_a) is False
    assert credit_admin.get_queryset(_request(guide)).count() == 2


def test_ids_beyond_bigint_are_404_not_500(api_client, world):
    client = as_user(api_client, staff_user("hq", group=world.group))
    huge = 2**100
    assert client.get(f"/api/v1/analytics/orders/{huge}/credits/").status_code == 404
    assert client.get(f"/api/v1/analytics/guides/{huge}/credits/", MARCH).status_code == 404


def test_a_brand_operator_sees_the_cross_brand_credit_their_own_guide_earned(api_client, world):
    # The "cross" order is brand A's; its exclusive credit went to GB1, a brand B guide (cross-brand).
    as_user(api_client, staff_user("brand_operator", brand=world.brand_b))
    rows = listed(api_client.get("/api/v1/analytics/credits/", MARCH))
    assert [(kind, guide, amount) for _order, kind, _store, guide, amount, _rule in rows] == [
        ("exclusive", world.gb1.code, "80.00")]
