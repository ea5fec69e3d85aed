"""factory_boy factories for the organisation, members and orders."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from mall.models import Channel, Order, OrderStatus
from members.models import BrandMembership, GuideBinding, JoinChannel, Member
from retail_crm.models import Brand, Guide, Region, RetailGroup, StaffProfile, Store


class RetailGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RetailGroup
        django_get_or_create = ("code",)

    code = "grp"
    name = "Test Group"


class BrandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Brand

    group = factory.SubFactory(RetailGroupFactory)
    code = factory.Sequence(lambda n: f"B{n}")
    name = factory.Sequence(lambda n: f"Brand {n}")
    category = Brand.Category.WOMENSWEAR


class RegionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Region

    brand = factory.SubFactory(BrandFactory)
    code = factory.Sequence(lambda n: f"R{n}")
    name = factory.Sequence(lambda n: f"Region {n}")


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store

    region = factory.SubFactory(RegionFactory)
    brand = factory.SelfAttribute("region.brand")
    code = factory.Sequence(lambda n: f"S{n}")
    name = factory.Sequence(lambda n: f"Store {n}")
    kind = Store.Kind.DIRECT
    city = "上海"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-123456")
    is_staff = True


class GuideFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Guide

    store = factory.SubFactory(StoreFactory)
    code = factory.Sequence(lambda n: f"G{n}")
    name = factory.Sequence(lambda n: f"Guide {n}")
    phone = factory.Sequence(lambda n: f"+86139{n:08d}")
    role = Guide.Role.GUIDE
    hired_at = dt.date(2024, 1, 1)


_staff_numbers = itertools.count(1)


def staff_user(role: str, *, group=None, brand=None, region=None, store=None, guide=None, username=None):
    """A staff login with one role and one scope (the scope object's group is inferred)."""
    if group is None:
        anchor = guide.store if guide else store or region or brand
        group = (anchor.brand.group if hasattr(anchor, "brand") else anchor.group) if anchor else \
            RetailGroupFactory()
    user = UserFactory(username=username or f"{role}-{next(_staff_numbers)}")
    StaffProfile.objects.create(user=user, role=role, group=group, brand=brand, region=region, store=store,
                                guide=guide)
    return user


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    group = factory.SubFactory(RetailGroupFactory)
    code = factory.Sequence(lambda n: f"M{n:06d}")
    phone = factory.Sequence(lambda n: f"+86138{n:08d}")
    name = factory.Sequence(lambda n: f"会员{n}")
    created_at = factory.LazyFunction(timezone.now)


class BrandMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BrandMembership

    member = factory.SubFactory(MemberFactory)
    brand = factory.SubFactory(BrandFactory)
    joined_at = factory.LazyFunction(timezone.now)
    join_channel = JoinChannel.STORE_CARD


class GuideBindingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GuideBinding

    member = factory.SubFactory(MemberFactory)
    guide = factory.SubFactory(GuideFactory)
    brand = factory.SelfAttribute("guide.store.brand")
    store = factory.SelfAttribute("guide.store")
    started_at = factory.LazyFunction(timezone.now)
    reason = GuideBinding.Reason.QR_SCAN


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    brand = factory.SubFactory(BrandFactory)
    order_no = factory.Sequence(lambda n: f"O{n:08d}")
    channel = Channel.STORE_POS
    status = OrderStatus.PAID
    ordered_at = factory.LazyFunction(timezone.now)
    paid_at = factory.SelfAttribute("ordered_at")
    total_amount = Decimal("100.00")
    paid_amount = Decimal("100.00")
    refunded_amount = Decimal("0.00")
