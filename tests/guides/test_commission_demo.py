"""The demo's commission step (retail_crm.demo.commission_life): rules, office shares and withdrawals, once."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from guides.models import CommissionEntry, CommissionRule, GuideToken, WithdrawalRequest
from guides.withdrawals import commission_balance
from retail_crm.demo.commission_life import demo_commission_rules, demo_office_shares, demo_withdrawals
from tests.factories import BrandFactory, GuideFactory, OrderFactory, RetailGroupFactory, StoreFactory, staff_user

pytestmark = pytest.mark.django_db
D = Decimal


def test_rules_only_for_demo_brands_without_any():
    demo = RetailGroupFactory(code="demo")
    fresh, ruled = BrandFactory(group=demo), BrandFactory(group=demo)
    CommissionRule.objects.create(brand=ruled, rate=D("0.0100"))
    BrandFactory(group=RetailGroupFactory(code="real"))

    assert demo_commission_rules() == 3
    assert demo_commission_rules() == 0
    assert sorted(CommissionRule.objects.filter(brand=fresh).values_list("channel", "rate")) == [
        ("", D("0.0300")), ("mini_program", D("0.0500")), ("store_pos", D("0.0000"))]


def test_the_demo_guide_gets_a_paid_and_an_open_withdrawal_once():
    store = StoreFactory(region__brand__group=RetailGroupFactory(code="demo"))
    guide = GuideFactory(store=store, code="WOM-E001-G02")
    manager = GuideFactory(store=store, code="WOM-E001-G01", role="store_manager")
    manager.user = staff_user("store_manager", store=store, guide=manager)
    manager.save(update_fields=["user"])
    CommissionEntry.objects.create(guide=guide, brand=store.brand, kind="earn", amount=D("1234.56"),
                                   available_at=timezone.now() - dt.timedelta(days=20))

    assert demo_withdrawals() == 2
    assert demo_withdrawals() == 0
    # 40% of 1234.56 → 490 (whole tens, down); 20% → 240; 1234.56 − 730 = 504.56 left.
    assert sorted(WithdrawalRequest.objects.values_list("amount", "status", "decided_by")) == [
        (D("240.00"), "requested", None), (D("490.00"), "paid", manager.user.pk)]
    balance = commission_balance(guide=guide)
    assert (balance.available, balance.paid_out, balance.in_review) == (D("504.56"), D("490.00"), D("240.00"))


def test_the_demo_operator_shares_a_dozen_recent_unguided_orders_once():
    store = StoreFactory()
    operator = staff_user("brand_operator", brand=store.brand, username="brand_wom")
    now = timezone.now()
    orders = [OrderFactory(brand=store.brand, channel="mini_program", ordered_at=now - dt.timedelta(days=d))
              for d in range(1, 31)]
    OrderFactory(brand=store.brand, channel="mini_program", ordered_at=now - dt.timedelta(days=90))
    OrderFactory(brand=store.brand, channel="mini_program", guide=GuideFactory(store=store))

    assert demo_office_shares() == 12
    assert demo_office_shares() == 0
    token = GuideToken.objects.get(staff_user=operator)
    shared = [o.pk for o in orders if type(o).objects.get(pk=o.pk).share_token == token.token]
    assert len(shared) == 12
