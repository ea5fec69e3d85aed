"""The rules checked where time passes between the decision and the send.

A plan decided for a past moment counts only the orders paid up to that moment (the care window is
bounded on both sides).

Hand-made members; times are Shanghai local (2030-03-04 is a Monday).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from marketing.campaigns import campaign_create, campaign_launch, campaign_run_resolve
from marketing.channels import fake
from marketing.models import Audience, CampaignRecipient, CampaignRun, Delivery
from marketing.services import message_send
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    MemberFactory,
    OrderFactory,
    RegionFactory,
    StoreFactory,
)

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
SMS = {"sms": {"template": "SMS_1001", "params": {"name": "王丽"}}}


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2030, 3, day, hour, minute, tzinfo=SH)


@pytest.fixture(autouse=True)
def _clean_fake():
    fake.reset()
    yield
    fake.reset()


class Shop:
    def __init__(self):
        self.brand = BrandFactory(code="WA", name="雅致")
        self.store = StoreFactory(region=RegionFactory(brand=self.brand, code="east"), code="SA")
        self.count = 0

    def member(self, *, phone: str | None = None):
        self.count += 1
        member = MemberFactory(group=self.brand.group, phone=phone or f"+86138000{self.count:05d}", openid="")
        BrandMembershipFactory(member=member, brand=self.brand, store=self.store)
        return member

    def pays(self, member, when: dt.datetime):
        return OrderFactory(brand=self.brand, member=member, store=self.store, ordered_at=when, paid_at=when,
                            total_amount=Decimal("300.00"), paid_amount=Decimal("300.00"))

    def send(self, member, source: str, *, when: dt.datetime, kind: str = "marketing", channels=("sms",),
             content=None) -> Delivery:
        return message_send(member=member, brand=self.brand, kind=kind, channels=list(channels), source=source,
                            content=content or SMS, at=when)


@pytest.fixture
def shop():
    return Shop()


# ---------------------------------------------------------------------------- the care window's upper bound

def test_a_plan_for_a_past_moment_is_held_only_by_orders_paid_before_it(shop):
    bought_before, bought_after = shop.member(), shop.member()
    shop.pays(bought_before, at(4, 10) - dt.timedelta(days=3))
    shop.pays(bought_after, at(4, 10) + dt.timedelta(days=3))  # its only order, paid after the planned moment

    before = shop.send(bought_before, "campaign:1/step:1", when=at(4, 10))
    after = shop.send(bought_after, "campaign:1/step:1", when=at(4, 10))

    assert [(d.status, d.hold_reason) for d in (before, after)] == [("held", "care_window"), ("queued", "")]


def test_a_campaign_launched_at_a_past_moment_ignores_orders_paid_after_it(shop):
    bought_before, bought_after = shop.member(), shop.member()
    shop.pays(bought_before, at(4, 10) - dt.timedelta(days=3))
    shop.pays(bought_after, at(4, 10) + dt.timedelta(days=3))
    audience = Audience.objects.create(group=shop.brand.group, brand=shop.brand, name="全部会员")
    campaign = campaign_create(brand=shop.brand, audience=audience, name="回放", channels=["sms"], content=SMS)

    campaign_launch(campaign=campaign, at=at(4, 10))
    run = CampaignRun.objects.get(campaign=campaign)
    campaign_run_resolve(run_id=run.pk, now=at(7, 12))  # resolved after both orders were paid

    assert {r.member_id: (r.outcome, r.hold_reason) for r in CampaignRecipient.objects.filter(run=run)} == {
        bought_before.pk: ("held", "care_window"), bought_after.pk: ("sent", "")}
