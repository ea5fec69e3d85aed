"""The whole order life through the APIs: create → pay → ship → receive → 7-day return → refunded.

Every figure is worked out here: a member of the brand buys 2 × DRESS-M at the member price 509.00 with a
满1000减100 coupon, so the order is 1,018.00 − 100.00 = 918.00; one point per yuan earns 918 points; the
7-day return of one dress gives back that line's share: 509.00 − 50.00 (half the coupon) = 459.00, and
floor(918 × 459 / 918) = 459 points are reversed.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from mall.fulfilment import AUTO_RECEIPT_DAYS, orders_auto_receive
from mall.models import CouponTemplate, Order, OrderTransition, Product, Sku, Stock
from mall.payments.fake import FakeWeChatPay
from mall.payments.services import payment_notify
from members.auth import member_token_issue
from members.models import BrandMembership, PointsEntry
from tests.factories import (
    BrandFactory,
    GuideFactory,
    MemberFactory,
    OrderFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
    staff_user,
)

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def shop(settings):
    settings.PAYMENT_PROVIDER = "fake"
    cache.clear()
    group = RetailGroupFactory()
    brand = BrandFactory(group=group, code="WOM")
    StoreFactory(brand=brand, region=RegionFactory(brand=brand))
    dress = Product.objects.create(brand=brand, code="DRESS", name="连衣裙", category="连衣裙")
    sku = Sku.objects.create(product=dress, brand=brand, code="DRESS-M", size="M", list_price=D("599.00"),
                             member_price=D("509.00"), cost_price=D("200.00"))
    Stock.objects.create(sku=sku, quantity=5)
    member = MemberFactory(group=group, openid="o-life")
    BrandMembership.objects.create(member=member, brand=brand, joined_at=timezone.now(), join_channel="guide_qr")
    template = CouponTemplate.objects.create(brand=brand, name="满1000减100", kind="threshold",
                                             threshold_amount=D("1000.00"), discount_amount=D("100.00"),
                                             valid_days=30)
    from mall.coupons import coupon_issue

    coupon = coupon_issue(template=template, member=member)
    yield {"group": group, "brand": brand, "sku": sku, "member": member, "coupon": coupon,
           "token": member_token_issue(member=member)}
    cache.clear()


def test_create_pay_ship_receive_return(shop, api_client, django_capture_on_commit_callbacks):
    member_auth = {"HTTP_AUTHORIZATION": f"Member {shop['token']}"}
    created = api_client.post("/api/v1/mp/orders/create/", {"lines": [{"sku_id": shop["sku"].pk, "quantity": 2}],
                                                             "coupon_code": shop["coupon"].code},
                              format="json", **member_auth)
    assert created.status_code == 201
    order_no = created.json()["order_no"]
    assert (created.json()["total_amount"], created.json()["coupon_discount"]) == ("918.00", "100.00")

    # Not shipped yet: the member cannot confirm receipt.
    early = api_client.post(f"/api/v1/mp/orders/{order_no}/confirm-receipt/", **member_auth)
    assert (early.status_code, early.json()["error"]["code"]) == (409, "invalid_transition")

    prepay = api_client.post(f"/api/v1/mp/orders/{order_no}/pay/", {}, format="json", **member_auth)
    assert prepay.status_code == 200
    order = Order.objects.get(order_no=order_no)
    fake = FakeWeChatPay()
    headers, body = fake.notification(fake.pay(order.payments.get().out_trade_no))
    with django_capture_on_commit_callbacks(execute=True):
        payment_notify(provider=fake, headers=headers, body=body)
    order.refresh_from_db()
    assert (order.status, order.paid_amount) == ("paid", D("918.00"))
    assert PointsEntry.objects.get(order=order, reason="earn").delta == 918

    warehouse = staff_user("brand_operator", brand=shop["brand"])
    api_client.force_authenticate(warehouse)
    shipped = api_client.post(f"/api/v1/mall/orders/{order.pk}/ship/", {"tracking_no": "SF1234567890"},
                              format="json")
    assert (shipped.status_code, shipped.json()["status"]) == (200, "shipped")
    again = api_client.post(f"/api/v1/mall/orders/{order.pk}/ship/", {}, format="json")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "invalid_transition")
    api_client.force_authenticate(None)

    received = api_client.post(f"/api/v1/mp/orders/{order_no}/confirm-receipt/", **member_auth)
    assert (received.status_code, received.json()["status"]) == (200, "completed")
    assert received.json()["delivered_at"] is not None

    line = order.lines.get()
    returned = api_client.post(f"/api/v1/mp/orders/{order_no}/refunds/",
                               {"kind": "return", "reason": "尺码不合适",
                                "lines": [{"order_line_id": line.pk, "amount": "459.00", "quantity": 1}]},
                               format="json", **member_auth)
    assert returned.status_code == 201
    api_client.force_authenticate(warehouse)
    with django_capture_on_commit_callbacks(execute=True):
        approved = api_client.post(f"/api/v1/mall/refunds/{returned.json()['id']}/approve/", {}, format="json")
    assert (approved.status_code, approved.json()["status"]) == (200, "refunded")
    order.refresh_from_db()
    assert (order.paid_amount, order.refunded_amount) == (D("918.00"), D("459.00"))
    assert PointsEntry.objects.get(order=order, reason="reverse").delta == -459
    assert Stock.objects.get(sku=shop["sku"]).quantity == 4  # 5 − 2 reserved + 1 returned
    assert list(OrderTransition.objects.filter(order=order).values_list("from_status", "to_status")) == [
        ("", "pending_payment"), ("pending_payment", "paid"), ("paid", "shipped"), ("shipped", "completed")]


def test_shipped_orders_nobody_confirms_are_received_automatically(shop):
    from mall.checkout import LineRequest, order_create
    from mall.fulfilment import order_ship

    order = order_create(member=shop["member"], lines=[LineRequest(shop["sku"].pk, 1)])
    Order.objects.filter(pk=order.pk).update(status="paid", paid_amount=order.total_amount,
                                             paid_at=timezone.now())
    shipped_at = timezone.now() - dt.timedelta(days=AUTO_RECEIPT_DAYS, minutes=1)
    order_ship(order=order, by_user=None, at=shipped_at)
    assert orders_auto_receive(now=shipped_at + dt.timedelta(days=AUTO_RECEIPT_DAYS - 1)) == 0
    assert orders_auto_receive() == 1
    order.refresh_from_db()
    assert (order.status, order.delivered_at is not None) == ("completed", True)
    assert OrderTransition.objects.filter(order=order).last().by_system == "auto_receipt"


def test_only_the_warehouse_roles_ship_and_only_orders_in_scope(shop, api_client):
    order = OrderFactory(brand=shop["brand"], member=shop["member"], status="paid", channel="mini_program")
    api_client.force_authenticate(staff_user("guide", guide=GuideFactory(store=shop["brand"].stores.first())))
    assert api_client.post(f"/api/v1/mall/orders/{order.pk}/ship/", {}, format="json").status_code == 404
    api_client.force_authenticate(staff_user("brand_operator", brand=BrandFactory(group=shop["group"])))
    assert api_client.post(f"/api/v1/mall/orders/{order.pk}/ship/", {}, format="json").status_code == 404
    api_client.force_authenticate(staff_user("region_manager", brand=shop["brand"],
                                             region=shop["brand"].regions.first()))
    order.store = shop["brand"].stores.first()
    order.save(update_fields=["store"])
    assert api_client.post(f"/api/v1/mall/orders/{order.pk}/ship/", {}, format="json").status_code == 403
    order.refresh_from_db()
    assert order.status == "paid"
