"""Checkout under real concurrency on PostgreSQL: the last units are never oversold."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from mall.checkout import LineRequest, order_create
from mall.models import Order, Product, Sku, Stock, StockMovement
from members.models import BrandMembership
from tests.factories import BrandFactory, MemberFactory, RetailGroupFactory
from tests.members.test_member_concurrency import run_at_once

pytestmark = [
    pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                       reason="concurrency tests need PostgreSQL (set DATABASE_URL)"),
    pytest.mark.django_db(transaction=True),
]


def test_fifty_buyers_of_the_last_ten_units_ten_succeed_and_stock_ends_at_zero():
    group = RetailGroupFactory()
    brand = BrandFactory(group=group)
    product = Product.objects.create(brand=brand, code="HOT", name="爆款", category="外套")
    sku = Sku.objects.create(product=product, brand=brand, code="HOT-M", list_price=Decimal("399.00"),
                             member_price=Decimal("339.00"), cost_price=Decimal("100.00"))
    Stock.objects.create(sku=sku, quantity=10)
    buyers = [MemberFactory(group=group) for _ in range(50)]
    BrandMembership.objects.bulk_create([BrandMembership(member=m, brand=brand, joined_at=timezone.now(),
                                                         join_channel="livestream") for m in buyers])

    results = run_at_once([lambda m=m: order_create(member=m, lines=[LineRequest(sku.pk, 1)]) for m in buyers])

    outcomes = [kind for kind, _value in results]
    refusals = [(value.code, value.status) for kind, value in results if kind == "error"]
    assert outcomes.count("ok") == 10
    assert refusals == [("out_of_stock", 409)] * 40
    assert Stock.objects.get(sku=sku).quantity == 0
    assert Order.objects.filter(status="pending_payment").count() == 10
    assert sum(StockMovement.objects.filter(sku=sku).values_list("delta", flat=True)) == -10


def test_two_skus_bought_in_opposite_orders_at_once_do_not_deadlock():
    group = RetailGroupFactory()
    brand = BrandFactory(group=group)
    product = Product.objects.create(brand=brand, code="SET", name="套装", category="套装")
    a, b = (Sku.objects.create(product=product, brand=brand, code=f"SET-{n}", list_price=Decimal("100.00"),
                               member_price=Decimal("90.00"), cost_price=Decimal("30.00")) for n in "AB")
    Stock.objects.bulk_create([Stock(sku=a, quantity=20), Stock(sku=b, quantity=20)])
    buyers = [MemberFactory(group=group) for _ in range(20)]
    calls = [lambda m=m, i=i: order_create(member=m, lines=[LineRequest((a if i % 2 else b).pk, 1),
                                                            LineRequest((b if i % 2 else a).pk, 1)])
             for i, m in enumerate(buyers)]
    results = run_at_once(calls)
    assert [kind for kind, _ in results] == ["ok"] * 20
    assert (Stock.objects.get(sku=a).quantity, Stock.objects.get(sku=b).quantity) == (0, 0)


def test_the_same_idempotency_key_sent_five_times_at_once_creates_one_order():
    from rest_framework.test import APIClient

    from members.auth import member_token_issue

    group = RetailGroupFactory()
    brand = BrandFactory(group=group)
    product = Product.objects.create(brand=brand, code="K", name="k", category="c")
    sku = Sku.objects.create(product=product, brand=brand, code="K-1", list_price=Decimal("100.00"),
                             member_price=Decimal("90.00"), cost_price=Decimal("30.00"))
    Stock.objects.create(sku=sku, quantity=10)
    member = MemberFactory(group=group)
    token = member_token_issue(member=member)

    def post():
        client = APIClient()
        response = client.post("/api/v1/mp/orders/create/", {"lines": [{"sku_id": sku.pk, "quantity": 1}]},
                               format="json", HTTP_AUTHORIZATION=f"Member {token}", HTTP_IDEMPOTENCY_KEY="tap-tap")
        return response.status_code, response.json()["order_no"]

    results = run_at_once([post] * 5)

    assert [kind for kind, _ in results] == ["ok"] * 5
    assert {value for _, value in results} == {(201, Order.objects.get().order_no)}
    assert Stock.objects.get(sku=sku).quantity == 9
