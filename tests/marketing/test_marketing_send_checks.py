"""The rules checked where time passes between the decision and the send.

A plan decided for a past moment counts only the orders paid up to that moment (the care window is
bounded on both sides); a message that waits (quiet hours, a retry's back-off) is checked again when the
dispatcher claims it: an opt-out of its channel since holds any message, a purchase within the care window
holds a marketing one. Held rows reach no provider, get no coupon, and show as held in the results.

Hand-made members; times are Shanghai local (2030-03-04 is a Monday).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from mall.models import Coupon, CouponTemplate
from marketing.campaign_overview import campaign_overviews
from marketing.campaigns import campaign_create, campaign_launch, campaign_run_resolve
from marketing.channels import fake
from marketing.models import Audience, CampaignRecipient, CampaignRun, Delivery, WeComGroupSend
from marketing.results import campaign_results
from marketing.services import deliveries_dispatch, message_send, sms_reply_record
from marketing.tasks import deliveries_dispatch_task
from members.wecom import wecom_friend_add
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    GuideBindingFactory,
    GuideFactory,
    MemberFactory,
    OrderFactory,
    RegionFactory,
    StoreFactory,
)

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
SMS = {"sms": {"template": "SMS_1001", "params": {"name": "王丽"}}}
WECOM = {"wecom": {"text": "春季新品到店", "miniprogram": {"title": "春季新品", "pic_media_id": "M-1",
                                                          "page": "/pages/new.html"}}}


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


def state(delivery: Delivery) -> tuple:
    delivery.refresh_from_db()
    return delivery.status, delivery.hold_reason, delivery.sent_at


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


# ---------------------------------------------------------------------------- checked again at send time

def test_a_purchase_in_the_night_holds_the_morning_s_marketing_message_but_not_a_service_one(shop):
    buyer, other = shop.member(), shop.member()
    held = shop.send(buyer, "campaign:1/step:1", when=at(4, 22))
    goes = shop.send(other, "campaign:1/step:1", when=at(4, 22))
    shop.pays(buyer, at(4, 23))
    shipped = shop.send(buyer, "order_shipped:1", when=at(5, 8, 50), kind="service")
    assert [d.status for d in (held, goes, shipped)] == ["waiting", "waiting", "queued"]

    early = deliveries_dispatch(now=at(5, 8, 49))
    morning = deliveries_dispatch(now=at(5, 9))

    assert (early.sent, early.held) == (0, 0)
    assert (morning.sent, morning.held, morning.failed, morning.deferred) == (2, 1, 0, 0)
    assert state(held) == ("held", "care_window", None)
    assert state(goes) == ("sent", "", at(5, 9))
    assert state(shipped) == ("sent", "", at(5, 9))
    assert sorted((m.address, m.delivery_id) for m in fake.sent_messages()) == sorted(
        [(other.phone, goes.pk), (buyer.phone, shipped.pk)])
    assert Delivery.objects.get(pk=held.pk).attempts == 0
    assert deliveries_dispatch(now=at(5, 9, 1)).held == 0  # held once, never picked up again


def test_the_care_window_at_send_time_is_counted_back_from_the_send(shop):
    outside, inside = shop.member(), shop.member()
    first = shop.send(outside, "campaign:1/step:1", when=at(4, 22))
    second = shop.send(inside, "campaign:1/step:1", when=at(4, 22))
    # Store orders imported after the decision: paid exactly 15 days before the send (outside the window),
    # and one minute later (inside).
    shop.pays(outside, at(5, 9) - dt.timedelta(days=15))
    shop.pays(inside, at(5, 9) - dt.timedelta(days=15) + dt.timedelta(minutes=1))

    result = deliveries_dispatch(now=at(5, 9))

    assert (result.sent, result.held) == (1, 1)
    assert (state(first)[:2], state(second)[:2]) == (("sent", ""), ("held", "care_window"))


def test_an_sms_opt_out_by_reply_holds_the_waiting_message(shop):
    leaver, stayer = shop.member(), shop.member()
    waiting = shop.send(leaver, "campaign:1/step:1", when=at(4, 22))
    other = shop.send(stayer, "campaign:1/step:1", when=at(4, 22))
    assert sms_reply_record(phone=leaver.phone, text="TD", at=at(4, 23)) == 1

    result = deliveries_dispatch(now=at(5, 9))

    assert (result.sent, result.held) == (1, 1)
    assert state(waiting) == ("held", "opted_out", None)
    assert state(other)[:2] == ("sent", "")
    assert [m.address for m in fake.sent_messages()] == [stayer.phone]


def test_a_retried_service_message_is_held_once_the_member_opted_out(shop):
    member = shop.member(phone="busy:13800000009")
    retried = shop.send(member, "order_shipped:7", when=at(4, 10), kind="service")
    first = deliveries_dispatch(now=at(4, 10))
    assert (first.retried, Delivery.objects.get(pk=retried.pk).send_after) == (1, at(4, 10, 2))
    sms_reply_record(phone="busy:13800000009", text="退订", at=at(4, 10, 1))

    again = deliveries_dispatch(now=at(4, 10, 2))

    assert (again.sent, again.retried, again.held, again.failed) == (0, 0, 1, 0)
    assert state(retried) == ("held", "opted_out", None)
    assert Delivery.objects.get(pk=retried.pk).attempts == 1  # the one try before the opt-out
    assert fake.sent_messages() == []


def test_a_campaign_s_message_held_at_send_gets_no_coupon_and_shows_as_held_in_the_results(shop):
    buyer, leaver, plain = shop.member(), shop.member(), shop.member()
    coupon = CouponTemplate.objects.create(brand=shop.brand, name="满200减30", kind="threshold",
                                           discount_amount=Decimal("30.00"), threshold_amount=Decimal("200.00"),
                                           valid_days=14)
    audience = Audience.objects.create(group=shop.brand.group, brand=shop.brand, name="全部会员")
    campaign = campaign_create(brand=shop.brand, audience=audience, name="夜间上新", channels=["sms"],
                               content={"sms": {"template": "1111", "params": ["{name}", "{coupon}"]}},
                               coupon_template=coupon)
    campaign_launch(campaign=campaign, at=at(4, 22))
    run = CampaignRun.objects.get(campaign=campaign)
    campaign_run_resolve(run_id=run.pk, now=at(4, 22))
    shop.pays(buyer, at(4, 23))
    sms_reply_record(phone=leaver.phone, text="TD", at=at(4, 23, 30))

    result = deliveries_dispatch(now=at(5, 9))

    assert (result.sent, result.held) == (1, 2)
    assert [m.address for m in fake.sent_messages()] == [plain.phone]
    assert list(Coupon.objects.values_list("member_id", "issued_at")) == [(plain.pk, at(5, 9))]
    figures = campaign_results(campaign).figures
    assert (figures.audience, figures.sent, figures.pending, figures.held) == (
        3, 1, 0, {"care_window": 1, "opted_out": 1})
    # The recipients keep the outcome of the decision: the lift compares the members the rules let through at
    # the resolve with the holdout chosen the same way (dropping those who bought since would bias it).
    assert figures.lift_counts[0] == 3
    assert campaign_overviews([campaign.pk])[campaign.pk].held == 2


def test_a_wecom_group_send_leaves_out_a_member_who_bought_since(shop):
    guide = GuideFactory(store=shop.store, code="GL")
    buyer, other = shop.member(), shop.member()
    for member, external in ((buyer, "wm-buyer"), (other, "wm-other")):
        GuideBindingFactory(member=member, guide=guide, started_at=at(1, 10))
        wecom_friend_add(member=member, guide=guide, external_userid=external, at=at(1, 10), source="api")
    held = shop.send(buyer, "campaign:1/step:1", when=at(4, 22), channels=("wecom",), content=WECOM)
    goes = shop.send(other, "campaign:1/step:1", when=at(4, 22), channels=("wecom",), content=WECOM)
    shop.pays(buyer, at(4, 23))

    result = deliveries_dispatch(now=at(5, 9))

    assert (result.sent, result.held) == (1, 1)
    assert [s.message.external_userids for s in fake.group_sends()] == [["wm-other"]]
    assert list(WeComGroupSend.objects.values_list("recipients", flat=True)) == [{"wm-other": goes.pk}]
    assert state(held) == ("held", "care_window", None)


def test_the_dispatch_task_reports_the_held(shop):
    member = shop.member()
    shop.send(member, "order_shipped:1", when=dt.datetime.now(tz=SH) - dt.timedelta(minutes=1), kind="service")
    sms_reply_record(phone=member.phone, text="TD", at=dt.datetime.now(tz=SH))

    assert deliveries_dispatch_task() == {"sent": 0, "failed": 0, "retried": 0, "deferred": 0, "held": 1}
