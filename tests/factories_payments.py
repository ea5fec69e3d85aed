"""Factories and a worked example order for the payment and refund tests.

``paid_ready_order`` builds the order checkout would have created, without
calling checkout: two SKUs (2 × 199.00 + 1 × 99.00 = 497.00), a 50.00-off
coupon above 300 locked by the order, 1,000 points spent (10.00), payable
437.00; the 60.00 of discounts shared 48.04 / 11.96 over the lines
(line amounts 349.96 and 87.04), stock reserved, the SPEND entry posted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import factory
from django.utils import timezone

from mall.models import (
    Channel,
    Coupon,
    CouponStatus,
    CouponTemplate,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    Product,
    Sku,
    Stock,
)
from members.models import PointsEntry
from members.services import points_post
from tests.factories import BrandFactory, BrandMembershipFactory, MemberFactory, OrderFactory


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    brand = factory.SubFactory(BrandFactory)
    code = factory.Sequence(lambda n: f"P{n:05d}")
    name = factory.Sequence(lambda n: f"商品{n}")
    category = "dress"


class SkuFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sku

    product = factory.SubFactory(ProductFactory)
    brand = factory.SelfAttribute("product.brand")
    code = factory.Sequence(lambda n: f"SKU{n:05d}")
    colour = "black"
    size = "M"
    list_price = Decimal("219.00")
    member_price = Decimal("199.00")
    cost_price = Decimal("80.00")


@dataclass
class ExampleOrder:
    order: Order
    member: object
    brand: object
    line_a: OrderLine
    line_b: OrderLine
    coupon: Coupon


def paid_ready_order(*, brand=None, member=None, status: str = OrderStatus.PENDING_PAYMENT,
                     ordered_at: dt.datetime | None = None, guide=None, store=None) -> ExampleOrder:
    """The worked example above, as a pending order (or with ``status`` and amounts of a paid one)."""
    at = ordered_at or timezone.now()
    brand = brand or BrandFactory()
    if member is None:
        member = MemberFactory(group=brand.group, openid=f"o-{brand.code}-{timezone.now().timestamp()}")
        BrandMembershipFactory(member=member, brand=brand)
    points_post(member=member, brand=brand, delta=2000, reason=PointsEntry.Reason.ADJUST, note="opening balance")
    sku_a = SkuFactory(product=ProductFactory(brand=brand, category="dress"), member_price=Decimal("199.00"))
    sku_b = SkuFactory(product=ProductFactory(brand=brand, category="scarf"), member_price=Decimal("99.00"),
                       list_price=Decimal("109.00"))
    Stock.objects.create(sku=sku_a, quantity=8)   # 10 before the order reserved 2
    Stock.objects.create(sku=sku_b, quantity=4)   # 5 before the order reserved 1
    paid = status != OrderStatus.PENDING_PAYMENT
    order = OrderFactory(
        brand=brand, member=member, channel=Channel.MINI_PROGRAM, status=status, ordered_at=at,
        paid_at=at if paid else None, expires_at=at + dt.timedelta(minutes=30),
        items_amount=Decimal("497.00"), coupon_discount=Decimal("50.00"), points_used=1000,
        points_discount=Decimal("10.00"), total_amount=Decimal("437.00"),
        paid_amount=Decimal("437.00") if paid else Decimal("0.00"), member_price_applied=True, guide=guide,
        store=store)
    line_a = OrderLine.objects.create(order=order, brand=brand, sku=sku_a, quantity=2, list_price=Decimal("219.00"),
                                      unit_price=Decimal("199.00"), discount_amount=Decimal("48.04"),
                                      amount=Decimal("349.96"))
    line_b = OrderLine.objects.create(order=order, brand=brand, sku=sku_b, quantity=1, list_price=Decimal("109.00"),
                                      unit_price=Decimal("99.00"), discount_amount=Decimal("11.96"),
                                      amount=Decimal("87.04"))
    template = CouponTemplate.objects.create(brand=brand, name="满300减50", kind=CouponTemplate.Kind.THRESHOLD,
                                             threshold_amount=Decimal("300.00"), discount_amount=Decimal("50.00"),
                                             valid_days=30)
    coupon = Coupon.objects.create(
        template=template, member=member, code=f"C{order.pk:08d}", issued_at=at - dt.timedelta(days=1),
        valid_from=at - dt.timedelta(days=1), valid_to=at + dt.timedelta(days=29),
        status=CouponStatus.USED if paid else CouponStatus.LOCKED, used_order=order, locked_at=at,
        used_at=at if paid else None)
    points_post(member=member, brand=brand, delta=-1000, reason=PointsEntry.Reason.SPEND, order=order,
                note=order.order_no)
    if paid:
        Payment.objects.create(order=order, provider="fake", out_trade_no=f"P{order.pk:010d}paid",
                               amount=Decimal("437.00"), status=Payment.Status.PAID,
                               transaction_id=f"4200{order.pk:010d}", paid_at=at)
        points_post(member=member, brand=brand, delta=437, reason=PointsEntry.Reason.EARN, order=order,
                    note=order.order_no)
    return ExampleOrder(order=order, member=member, brand=brand, line_a=line_a, line_b=line_b, coupon=coupon)


def fake_trade_for_paid(example: ExampleOrder) -> None:
    """Tell the fake provider the example's payment happened (for a paid example, so refunds go through)."""
    from mall.payments.fake import FakeWeChatPay

    payment = example.order.payments.get()
    fake = FakeWeChatPay()
    fake.create_prepay(example.order, payment, openid=example.member.openid)
    fake.pay(payment.out_trade_no)
