"""The mall's Django admin: brand-scoped catalogue, stock adjusted only through its service, read-only orders."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from mall.models import Product, Sku, Stock, StockMovement
from tests.factories import BrandFactory, OrderFactory, RegionFactory, RetailGroupFactory, StoreFactory, staff_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    group = RetailGroupFactory()
    wom, men = BrandFactory(group=group, code="WOM"), BrandFactory(group=group, code="MEN")
    products = {}
    for brand in (wom, men):
        product = Product.objects.create(brand=brand, code=f"{brand.code}-P", name="p", category="c")
        sku = Sku.objects.create(product=product, brand=brand, code=f"{brand.code}-P-M", list_price=Decimal("10"),
                                 member_price=Decimal("9"), cost_price=Decimal("3"))
        Stock.objects.create(sku=sku, quantity=4)
        products[brand.code] = (product, sku)
    return {"group": group, "wom": wom, "men": men, "products": products}


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_brand_operator_sees_and_edits_only_their_brands_products(catalogue):
    client = login(staff_user("brand_operator", brand=catalogue["wom"]))
    page = client.get("/admin/mall/product/").content.decode()
    assert "WOM-P" in page and "MEN-P" not in page
    men_product = catalogue["products"]["MEN"][0]
    assert client.get(f"/admin/mall/product/{men_product.pk}/change/").status_code == 302  # not found: back out


def test_stock_is_adjusted_through_the_service_with_a_movement_and_never_below_zero(catalogue):
    client = login(staff_user("brand_operator", brand=catalogue["wom"]))
    sku = catalogue["products"]["WOM"][1]
    url = f"/admin/mall/stock/{sku.pk}/adjust/"
    assert client.post(url, {"delta": "-3", "note": "盘点"}).status_code == 302
    assert Stock.objects.get(sku=sku).quantity == 1
    assert list(StockMovement.objects.values_list("delta", "reason", "note")) == [(-3, "adjust", "盘点")]
    refused = client.post(url, {"delta": "-2"})
    assert refused.status_code == 200 and "Only 1 in stock; cannot remove 2." in refused.content.decode()
    other = catalogue["products"]["MEN"][1]
    client.post(f"/admin/mall/stock/{other.pk}/adjust/", {"delta": "5"})
    assert Stock.objects.get(sku=other).quantity == 4


def test_orders_are_read_only_in_the_admin(catalogue):
    store = StoreFactory(brand=catalogue["wom"], region=RegionFactory(brand=catalogue["wom"]))
    order = OrderFactory(brand=catalogue["wom"], store=store)
    client = login(staff_user("hq", group=catalogue["group"]))
    page = client.get(f"/admin/mall/order/{order.pk}/change/").content.decode()
    assert order.order_no in page and 'name="_save"' not in page
