"""Campaigns over every channel, and over a saved audience: the set-based resolve decides each member's channel
with the same rules core as message_send (official account, WeCom through the bound guide, a task for the guide
of an important member), the content of each channel is rendered, coupons go out when each channel reaches the
member, and a run whose audience no longer validates fails instead of reaching a wider audience.

Hand-made members; times are Shanghai local (2030-03-04 is a Monday). No network: fake channels.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from mall.models import Coupon, CouponTemplate
from marketing import campaigns as campaigns_module
from marketing.campaigns import campaign_create, campaign_launch, campaign_run_resolve, campaigns_start_due
from marketing.channels import fake
from marketing.group_sends import wecom_results_poll
from marketing.models import Audience, Campaign, CampaignRecipient, CampaignRun, Delivery
from marketing.results import campaign_results
from marketing.services import deliveries_dispatch, message_send
from members.wecom import wecom_friend_add
from retail_crm.errors import ApplicationError
from segments.models import CareItem, MemberRfm
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    GuideBindingFactory,
    GuideFactory,
    MemberFactory,
    RegionFactory,
    StoreFactory,
)

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
LINK = "https://mall.example.com/mp/join?page=product&id=7"
BASE = settings.MARKETING_LINK_BASE_URL
CHANNELS = ["guide_task", "wecom", "official_account", "sms"]
CONTENT = {
    "guide_task": {"reason": "{name}：春季新品，请亲自邀约到店", "action": "电话邀约，送{coupon}"},
    "wecom": {"text": "{guide}邀您看春季新品 {link}"},
    "official_account": {"template": "OA_NEW", "params": {"first": "{name}您好", "keyword1": "{coupon}"},
                         "url": "{link}"},
    "sms": {"template": "1110", "params": ["{name}", "{link}"]},
}


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2030, 3, day, hour, minute, tzinfo=SH)


@pytest.fixture(autouse=True)
def _clean_fake():
    fake.reset()
    yield
    fake.reset()


@pytest.fixture
def world():
    brand = BrandFactory(code="WA", name="雅致")
    store = StoreFactory(region=RegionFactory(brand=brand, code="east"), code="SA")
    li, zhou = GuideFactory(store=store, code="GL", name="李娜"), GuideFactory(store=store, code="GZ", name="周敏")
    coupon = CouponTemplate.objects.create(brand=brand, name="满200减30", kind="threshold",
                                           discount_amount=Decimal("30.00"), threshold_amount=Decimal("200.00"),
                                           valid_days=14)
    members = {}

    def member(name, *, phone=None, oa_openid="", guide=None, contact_of=None, important=False):
        made = MemberFactory(group=brand.group, name=name, oa_openid=oa_openid,
                             phone=phone if phone is not None else f"+8613800{len(members):06d}")
        BrandMembershipFactory(member=made, brand=brand, store=store)
        if guide is not None:
            GuideBindingFactory(member=made, guide=guide, started_at=at(1, 10))
        if contact_of is not None:
            wecom_friend_add(member=made, guide=contact_of, external_userid=f"wm-{name}", at=at(1, 10), source="api")
        MemberRfm.objects.create(member=made, brand=brand, lifecycle_stage="mature",
                                 segment="important_value" if important else "general_value")
        members[name] = made

    member("vip", guide=li, contact_of=li, important=True)  # an important member with a guide: the guide's task
    member("vip_alone", oa_openid="oOA-vip", important=True)  # important, no guide: the official account
    member("friend", guide=li, contact_of=li)  # a WeCom contact of the bound guide
    member("friend2", guide=li, contact_of=li)
    member("elsewhere", guide=zhou, contact_of=li)  # a contact of another guide than the bound one: SMS
    member("follower", oa_openid="oOA-1")  # linked to the official account
    member("nobody", phone="")  # no address on any channel
    audience = Audience.objects.create(group=brand.group, brand=brand, name="全部会员")
    return type("World", (), dict(brand=brand, store=store, li=li, zhou=zhou, coupon=coupon, audience=audience,
                                  **members))


def campaign_of(world, **changes) -> Campaign:
    values = {"brand": world.brand, "audience": world.audience, "name": "春季上新", "channels": CHANNELS,
              "content": CONTENT, "link": LINK, "coupon_template": world.coupon, **changes}
    return campaign_create(**values)


def launch(campaign: Campaign, when: dt.datetime, *, span: int = 100_000) -> CampaignRun:
    campaign_launch(campaign=campaign, at=when)
    run = CampaignRun.objects.get(campaign=campaign, scheduled_for=when)
    return campaign_run_resolve(run_id=run.pk, span=span, now=when)


def test_the_resolve_chooses_each_member_s_channel_as_message_send_does(world):
    run = launch(campaign_of(world), at(4, 10))

    chosen = dict(CampaignRecipient.objects.filter(run=run).values_list("member__name", "channel"))
    assert chosen == {"vip": "guide_task", "vip_alone": "official_account", "friend": "wecom", "friend2": "wecom",
                      "elsewhere": "sms", "follower": "official_account", "nobody": ""}
    assert Delivery.objects.get(member=world.nobody).hold_reason == "no_consent"
    # The one rules core: message_send, for each member on its own, chooses the same channel.
    for name, channel in chosen.items():
        single = message_send(member=getattr(world, name), brand=world.brand, kind="service", channels=CHANNELS,
                              source="check", content=CONTENT, at=at(4, 11))
        assert single.channel == channel, name


def test_each_channel_s_content_is_rendered_for_its_member(world):
    campaign = campaign_of(world)
    run = launch(campaign, at(4, 10))
    codes = dict(CampaignRecipient.objects.filter(run=run).values_list("member_id", "link_code"))
    content = {d.member.name: d.content for d in Delivery.objects.filter(source=run.source).select_related("member")}

    coupon = world.coupon.pk
    assert content["vip"] == {"reason": "vip：春季新品，请亲自邀约到店", "action": "电话邀约，送满200减30",
                              "coupon_template": coupon}
    # One text for all of a guide's members (a WeCom group send): the campaign's link without a member.
    assert content["friend"] == content["friend2"] == {
        "text": f"李娜邀您看春季新品 {BASE}{campaign.link_code}", "coupon_template": coupon}
    assert content["follower"] == {"template": "OA_NEW", "params": {"first": "follower您好", "keyword1": "满200减30"},
                                   "url": f"{BASE}{codes[world.follower.pk]}", "coupon_template": coupon}
    assert content["elsewhere"] == {"template": "1110", "params": ["elsewhere", f"{BASE}{codes[world.elsewhere.pk]}"],
                                    "coupon_template": coupon}


def test_every_channel_sends_and_the_coupon_goes_when_each_reaches_the_member(world):
    run = launch(campaign_of(world), at(4, 10))

    first = deliveries_dispatch(now=at(4, 10, 1))
    statuses = {d.member.name: d.status for d in Delivery.objects.filter(source=run.source).select_related("member")}
    assert statuses == {"vip": "to_guide", "vip_alone": "sent", "friend": "confirming", "friend2": "confirming",
                        "elsewhere": "sent", "follower": "sent", "nobody": "held"}
    assert first.sent == 6  # four handed to a provider or a guide, two waiting for the guide's WeCom confirmation
    assert [(s.message.sender, sorted(s.message.external_userids)) for s in fake.group_sends()] == [
        ("GL", ["wm-friend", "wm-friend2"])]
    assert sorted((m.channel, m.address) for m in fake.sent_messages()) == [
        ("official_account", "oOA-1"), ("official_account", "oOA-vip"), ("sms", world.elsewhere.phone)]
    item = CareItem.objects.get(member=world.vip)
    assert (item.guide_id, item.reason, item.important) == (world.li.pk, "vip：春季新品，请亲自邀约到店", True)
    coupons = lambda: sorted(Coupon.objects.values_list("member__name", flat=True))  # noqa: E731
    assert coupons() == ["elsewhere", "follower", "vip", "vip_alone"]
    pending = campaign_results(run.campaign).figures
    assert (pending.sent, pending.pending, pending.held) == (4, 2, {"no_consent": 1})

    fake.confirm(at=at(4, 10, 30))
    polled = wecom_results_poll(now=at(4, 10, 40))
    again = wecom_results_poll(now=at(4, 10, 50))

    assert (polled.sent, again.sent) == (2, 0)
    assert coupons() == ["elsewhere", "follower", "friend", "friend2", "vip", "vip_alone"]
    assert set(Coupon.objects.filter(member=world.friend).values_list("issued_at", flat=True)) == {at(4, 10, 30)}
    done = campaign_results(run.campaign).figures
    assert (done.sent, done.pending) == (6, 0)


def test_campaign_content_is_checked_per_channel(world):
    with pytest.raises(ApplicationError) as bad:
        campaign_of(world, content={
            "guide_task": {"action": "电话邀约"},  # no reason
            "wecom": {"text": "{name}您好"},  # one text for all of a guide's members: no {name}
            "official_account": {"template": "OA_NEW", "params": ["{name}"]},  # template fields by name
            "sms": {"template": "1110", "params": ["{name}"]},
        })
    assert bad.value.fields["content"] == [
        "guide_task: give the reason (1–200 characters) and, if you like, the action (up to 200).",
        "wecom: {name} cannot be used: a WeCom group send carries one text to all of a guide's members.",
        "official_account: params must be an object (template field → text).",
    ]


# ---------------------------------------------------------------------------- the audience

def test_the_run_reaches_the_saved_audience_only(world):
    world.audience.definition = {"guides": [world.li.pk]}
    world.audience.save()
    run = launch(campaign_of(world), at(4, 10))
    assert set(CampaignRecipient.objects.filter(run=run).values_list("member__name", flat=True)) == {
        "vip", "friend", "friend2"}


def test_an_audience_that_no_longer_validates_refuses_the_launch(world):
    campaign = campaign_of(world)
    Audience.objects.filter(pk=world.audience.pk).update(definition={"guides": [world.li.pk + 1000]})
    with pytest.raises(ApplicationError) as refused:
        campaign_launch(campaign=campaign, at=at(4, 10))
    campaign.refresh_from_db()
    assert (refused.value.code, refused.value.status, list(refused.value.fields)) == ("invalid", 400, ["audience"])
    assert (campaign.status, CampaignRun.objects.count()) == ("draft", 0)


def test_a_scheduled_run_whose_audience_no_longer_validates_fails_with_the_reason(world):
    campaign = campaign_of(world, schedule="daily", recur_time=dt.time(10, 0))
    campaign_launch(campaign=campaign, at=at(4, 8))
    Audience.objects.filter(pk=world.audience.pk).update(definition={"guides": [world.li.pk + 1000]})

    result = campaigns_start_due(now=at(4, 10))

    run = CampaignRun.objects.get(campaign=campaign)
    campaign.refresh_from_db()
    assert (result.started, result.failed) == (0, 1)
    assert run.status == "failed"
    assert "guides" in run.error and "No such guide" in run.error
    assert (CampaignRecipient.objects.count(), Delivery.objects.count()) == (0, 0)
    assert (campaign.status, campaign.next_run_at) == ("scheduled", at(5, 10))  # the next run may find it fixed


def test_a_resolve_that_finds_the_audience_invalid_stops_and_holds_what_it_queued(world, monkeypatch):
    monkeypatch.setattr(campaigns_module, "_resolve_later", lambda run_id: None)
    campaign = campaign_of(world, channels=["sms"], content={"sms": CONTENT["sms"]})
    campaign_launch(campaign=campaign, at=at(4, 10))
    run = CampaignRun.objects.get(campaign=campaign)
    first_range = world.vip_alone.pk - run.resolved_through  # vip and vip_alone
    real = campaigns_module._resolve_range
    calls = []

    def invalidate_after_the_first(*args):
        real(*args)
        calls.append(args[3:5])
        Audience.objects.filter(pk=world.audience.pk).update(definition={"stores": [world.store.pk + 1000]})

    monkeypatch.setattr(campaigns_module, "_resolve_range", invalidate_after_the_first)
    run = campaign_run_resolve(run_id=run.pk, span=first_range, now=at(4, 10))

    campaign.refresh_from_db()
    assert len(calls) == 1
    assert (run.status, campaign.status) == ("failed", "done")
    assert "stores" in run.error
    assert sorted(Delivery.objects.filter(source=run.source).values_list("status", "hold_reason")) == [
        ("held", "cancelled"), ("held", "cancelled")]
    assert deliveries_dispatch(now=at(4, 10, 1)).sent == 0
