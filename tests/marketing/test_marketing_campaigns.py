"""marketing.campaigns: runs resolved set-based through the same rules as message_send, holdout and A/B split by
hash, coupons at send time, tracking links carried to orders, results with the lift against the holdout.

Hand-made members; times are Shanghai local (2030-03-04 is a Monday). The fake channel records what it would
send, so "sent" is counted on what reached the provider.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import transaction

from mall.models import Coupon, CouponTemplate
from marketing import campaigns as campaigns_module
from marketing.campaigns import (
    VariantSpec,
    campaign_cancel,
    campaign_cancellable,
    campaign_create,
    campaign_launch,
    campaign_run_resolve,
    campaigns_start_due,
    is_held_out,
    member_bucket,
    next_occurrence,
    variant_for,
)
from marketing.channels import fake
from marketing.models import (
    Audience,
    Campaign,
    CampaignConversion,
    CampaignRecipient,
    CampaignRun,
    ChannelOptOut,
    Delivery,
    LinkClick,
    SubscribeConsent,
)
from marketing.results import campaign_results, newcombe_interval, wilson_interval
from marketing.services import deliveries_dispatch, message_send
from marketing.tracking import order_conversion_record
from retail_crm import events
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    GuideBindingFactory,
    GuideFactory,
    MemberFactory,
    OrderFactory,
    RegionFactory,
    StoreFactory,
    staff_user,
)
from tests.members.test_member_concurrency import run_at_once

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
LINK = "https://mall.example.com/mp/join?page=product&id=7"
BASE = settings.MARKETING_LINK_BASE_URL
SMS = {"sms": {"template": "1110", "params": ["{name}", "{link}"]}}
BOTH = {"subscribe": {"template": "TPL_NEW", "params": {"thing1": "{name}", "thing2": "新品上市"}},
        "sms": {"template": "1110", "params": ["{name}", "{link}"]}}
ON_SQLITE = settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")


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
        self.guide = GuideFactory(store=self.store, name="李娜")
        self.audience = Audience.objects.create(group=self.brand.group, brand=self.brand, name="全部会员")
        self.count = 0

    def member(self, *, phone: str | None = None, openid: str = "", name: str | None = None, join: bool = True):
        self.count += 1
        member = MemberFactory(group=self.brand.group, phone=phone if phone is not None else
                               f"+86138000{self.count:05d}", openid=openid, name=name or f"会员{self.count}")
        if join:
            BrandMembershipFactory(member=member, brand=self.brand, store=self.store)
        return member

    def campaign(self, **kwargs) -> Campaign:
        values = {"brand": self.brand, "audience": self.audience, "name": "春季上新", "channels": ["sms"],
                  "content": SMS, "link": LINK, **kwargs}
        return campaign_create(**values)


@pytest.fixture
def shop():
    return Shop()


def launch(campaign: Campaign, when: dt.datetime, *, span: int = 100_000) -> CampaignRun:
    campaign_launch(campaign=campaign, at=when)
    run = CampaignRun.objects.get(campaign=campaign, scheduled_for=when)
    return campaign_run_resolve(run_id=run.pk, span=span, now=when)


def outcomes(run: CampaignRun) -> dict[int, tuple]:
    """member id → (outcome, hold reason, channel, delivery status)."""
    return {r.member_id: (r.outcome, r.hold_reason, r.channel, r.delivery.status if r.delivery else None)
            for r in CampaignRecipient.objects.filter(run=run).select_related("delivery")}


def test_a_run_reaches_every_member_once_with_its_content_rendered_and_its_own_link(shop):
    bound = shop.member(name="王丽")
    GuideBindingFactory(member=bound, guide=shop.guide)
    other = shop.member(name="张敏")
    shop.member(join=False)  # not a member of the brand: not in the audience
    campaign = shop.campaign(content={"sms": {"template": "1110",
                                              "params": ["{name}", "{guide}", "{link}", "{name}您好"]}})

    run = launch(campaign, at(4, 10))

    assert (run.status, run.resolved_through, run.members_upto) == ("queued", other.pk, other.pk)
    recipients = {r.member_id: r for r in CampaignRecipient.objects.filter(run=run)}
    assert set(recipients) == {bound.pk, other.pk}
    deliveries = {d.member_id: d for d in Delivery.objects.filter(source=run.source)}
    assert {m: (d.channel, d.status, d.kind, d.dedupe_key, d.planned_at, d.send_after)
            for m, d in deliveries.items()} == {
        m: ("sms", "queued", "marketing", f"campaign:{campaign.pk}/run:{run.pk}|{m}", at(4, 10), at(4, 10))
        for m in (bound.pk, other.pk)}
    code = recipients[bound.pk].link_code
    assert len(code) == (16 if ON_SQLITE else 11) and code != recipients[other.pk].link_code
    assert deliveries[bound.pk].content == {"template": "1110", "params": ["王丽", "李娜", BASE + code, "王丽您好"]}
    assert deliveries[other.pk].content["params"][:2] == ["张敏", ""]  # no bound guide: empty
    assert recipients[bound.pk].delivery_id == deliveries[bound.pk].pk
    # The per-member gateway finds the same row under the run's source: one place, one key.
    again = message_send(member=bound, brand=shop.brand, kind="marketing", channels=["sms"], source=run.source,
                         content=SMS, at=at(4, 11))
    assert again.pk == deliveries[bound.pk].pk
    campaign.refresh_from_db()
    assert campaign.status == "done"


def test_the_cap_holds_across_channels_and_campaigns(shop):
    twice, once, fresh = (shop.member(openid=f"o-{n}") for n in range(3))
    SubscribeConsent.objects.create(member=twice, template_id="TPL_NEW", remaining=1)
    message_send(member=twice, brand=shop.brand, kind="marketing", channels=["subscribe"], source="journey:3/step:1",
                 content=BOTH, at=at(1, 10))  # Friday, by subscribe message
    for member in (twice, once):
        message_send(member=member, brand=shop.brand, kind="marketing", channels=["sms"], source="campaign:90/step:1",
                     content=SMS, at=at(2, 11))  # Saturday, by SMS

    monday = launch(shop.campaign(name="周一"), at(4, 10))
    tuesday = launch(shop.campaign(name="周二"), at(5, 10))

    assert outcomes(monday) == {twice.pk: ("held", "frequency_cap", "sms", "held"),
                                once.pk: ("sent", "", "sms", "queued"), fresh.pk: ("sent", "", "sms", "queued")}
    assert outcomes(tuesday) == {twice.pk: ("held", "frequency_cap", "sms", "held"),
                                 once.pk: ("held", "frequency_cap", "sms", "held"),
                                 fresh.pk: ("sent", "", "sms", "queued")}
    # Counted: the three earlier messages, Monday's two, Tuesday's one; none over two in any seven days.
    assert Delivery.objects.filter(kind="marketing").exclude(status="held").count() == 3 + 2 + 1


def test_quiet_hour_sends_wait_and_go_at_nine(shop):
    members = [shop.member() for _ in range(3)]
    run = launch(shop.campaign(), at(4, 22, 30))

    assert sorted(Delivery.objects.filter(source=run.source).values_list("status", "send_after")) == [
        ("waiting", at(5, 9))] * 3
    assert deliveries_dispatch(now=at(4, 23)).sent == 0
    assert deliveries_dispatch(now=at(5, 8, 59)).sent == 0
    assert deliveries_dispatch(now=at(5, 9)).sent == 3
    assert sorted(m.address for m in fake.sent_messages()) == sorted(m.phone for m in members)
    assert set(Delivery.objects.filter(source=run.source).values_list("status", "sent_at")) == {("sent", at(5, 9))}


def test_the_care_window_after_a_purchase_holds_marketing(shop):
    recent, earlier, never = shop.member(), shop.member(), shop.member()
    OrderFactory(brand=shop.brand, member=recent, ordered_at=at(4, 10) - dt.timedelta(days=14),
                 paid_at=at(4, 10) - dt.timedelta(days=14))
    OrderFactory(brand=shop.brand, member=earlier, ordered_at=at(4, 10) - dt.timedelta(days=15, minutes=1),
                 paid_at=at(4, 10) - dt.timedelta(days=15, minutes=1))
    OrderFactory(brand=shop.brand, member=never, paid_at=None, status="pending_payment")  # never paid

    run = launch(shop.campaign(), at(4, 10))

    assert outcomes(run) == {recent.pk: ("held", "care_window", "sms", "held"),
                             earlier.pk: ("sent", "", "sms", "queued"), never.pk: ("sent", "", "sms", "queued")}


def test_opt_outs_and_missing_consents_fall_back_or_hold_with_the_right_reason(shop):
    consented = shop.member(openid="o-1")
    SubscribeConsent.objects.create(member=consented, template_id="TPL_NEW", remaining=1)
    no_consent = shop.member(openid="o-2")
    SubscribeConsent.objects.create(member=no_consent, template_id="TPL_OTHER", remaining=3)
    sms_out = shop.member(openid="o-3")
    everything_out = shop.member(openid="o-4")
    unreachable = shop.member(phone="", openid="")
    ChannelOptOut.objects.create(member=sms_out, channel="sms", source="sms_reply", opted_out_at=at(1, 9))
    for channel in ("sms", "subscribe"):
        ChannelOptOut.objects.create(member=everything_out, channel=channel, source="mp", opted_out_at=at(1, 9))
    SubscribeConsent.objects.create(member=everything_out, template_id="TPL_NEW", remaining=5)

    run = launch(shop.campaign(channels=["subscribe", "sms"], content=BOTH), at(4, 10))

    assert outcomes(run) == {
        consented.pk: ("sent", "", "subscribe", "queued"),
        no_consent.pk: ("sent", "", "sms", "queued"),  # the fallback
        sms_out.pk: ("held", "no_consent", "", "held"),
        everything_out.pk: ("held", "opted_out", "", "held"),
        unreachable.pk: ("held", "no_consent", "", "held")}
    assert Delivery.objects.get(member=consented, source=run.source).content == {
        "template": "TPL_NEW", "params": {"thing1": consented.name, "thing2": "新品上市"}}
    assert deliveries_dispatch(now=at(4, 10, 1)).sent == 2
    assert sorted((m.channel, m.address) for m in fake.sent_messages()) == [
        ("sms", no_consent.phone), ("subscribe", "o-1")]
    assert SubscribeConsent.objects.get(member=consented).remaining == 0


def test_the_holdout_is_chosen_by_hash_gets_nothing_and_is_the_same_every_run(shop):
    members = [shop.member() for _ in range(40)]
    coupon = CouponTemplate.objects.create(brand=shop.brand, name="满200减30", kind="threshold",
                                           discount_amount=Decimal("30.00"), threshold_amount=Decimal("200.00"),
                                           valid_days=14)
    campaign = shop.campaign(holdout_percent=Decimal("25.00"), coupon_template=coupon, schedule="daily",
                             recur_time=dt.time(10, 0))
    expected = {m.pk for m in members if is_held_out(m.pk, campaign)}
    assert 0 < len(expected) < 40  # the hash leaves both groups non-empty here

    campaign_launch(campaign=campaign, at=at(4, 8))
    assert campaigns_start_due(now=at(4, 10)).started == 1
    first = CampaignRun.objects.get(campaign=campaign)
    campaign_run_resolve(run_id=first.pk)
    deliveries_dispatch(now=at(4, 10, 1))
    assert campaigns_start_due(now=at(5, 10)).started == 1
    second = CampaignRun.objects.exclude(pk=first.pk).get(campaign=campaign)
    campaign_run_resolve(run_id=second.pk)
    deliveries_dispatch(now=at(5, 10, 1))

    for run in (first, second):
        held_out = set(CampaignRecipient.objects.filter(run=run, outcome="holdout").values_list("member_id", flat=True))
        assert held_out == expected
        assert CampaignRecipient.objects.filter(run=run).count() == 40
    assert not Delivery.objects.filter(member_id__in=expected).exists()
    assert not Coupon.objects.filter(member_id__in=expected).exists()
    assert not {m.address for m in fake.sent_messages()} & {m.phone for m in members if m.pk in expected}
    assert len(fake.sent_messages()) == 2 * (40 - len(expected))
    assert Coupon.objects.count() == 2 * (40 - len(expected))


def test_the_hash_matches_its_python_twin_and_splits_fairly(shop):
    campaign = shop.campaign(holdout_percent=Decimal("10.00"))
    ids = range(1, 20_001)
    held = [i for i in ids if is_held_out(i, campaign)]
    assert 1_900 <= len(held) <= 2_100  # 10 % of 20,000 ± 1 point
    slots = [member_bucket(i, campaign.pk) // 10000 % 100 for i in ids]
    assert 9_800 <= sum(slot < 50 for slot in slots) <= 10_200
    # The SQL computes the same buckets as member_bucket (checked on the ids of real members).
    members = [shop.member() for _ in range(12)]
    run = launch(shop.campaign(name="五成", holdout_percent=Decimal("50.00")), at(4, 10))
    expected = {m.pk for m in members if member_bucket(m.pk, run.campaign_id) % 10000 < 5000}
    assert set(CampaignRecipient.objects.filter(run=run, outcome="holdout").values_list("member_id", flat=True)) \
        == expected


def test_coupons_go_only_to_members_actually_sent_to_and_never_twice(shop):
    coupon = CouponTemplate.objects.create(brand=shop.brand, name="满200减30", kind="threshold",
                                           discount_amount=Decimal("30.00"), threshold_amount=Decimal("200.00"),
                                           valid_days=14)
    reached = [shop.member(), shop.member()]
    in_care = shop.member()
    OrderFactory(brand=shop.brand, member=in_care, ordered_at=at(1, 10), paid_at=at(1, 10))
    refused = shop.member(phone="fail:13900000001")
    busy = shop.member(phone="busy:13900000002")
    campaign = shop.campaign(coupon_template=coupon, content={"sms": {"template": "1111",
                                                                      "params": ["{name}", "{coupon}", "{link}"]}})

    run = launch(campaign, at(4, 10))
    assert Coupon.objects.count() == 0  # nothing at resolve time: issued when the message goes
    first = deliveries_dispatch(now=at(4, 10, 1))
    again = deliveries_dispatch(now=at(4, 10, 2))  # a retried dispatch
    later = deliveries_dispatch(now=at(4, 10, 5))  # the busy one is tried again, still busy

    assert (first.sent, first.failed, first.retried, again.sent, later.sent, later.retried) == (2, 1, 1, 0, 0, 1)
    assert sorted(Coupon.objects.values_list("member_id", "template_id", "issued_at")) == sorted(
        (m.pk, coupon.pk, at(4, 10, 1)) for m in reached)
    assert outcomes(run)[in_care.pk][:2] == ("held", "care_window")
    assert {m.params[1] for m in fake.sent_messages()} == {"满200减30"}
    assert (Delivery.objects.get(member=busy).status, Delivery.objects.get(member=refused).status) == (
        "queued", "failed")


def test_a_resolve_that_stopped_half_way_carries_on_without_duplicates(shop, monkeypatch):
    members = [shop.member() for _ in range(6)]
    campaign = shop.campaign()
    campaign_launch(campaign=campaign, at=at(4, 10))
    run = CampaignRun.objects.get(campaign=campaign)
    real = campaigns_module._resolve_range
    calls = []

    def crash_on_second(*args):
        calls.append(args[3:])
        if len(calls) == 2:
            raise RuntimeError("worker lost")
        return real(*args)

    monkeypatch.setattr(campaigns_module, "_resolve_range", crash_on_second)
    span = members[2].pk - run.resolved_through  # the first range holds the first three members
    with pytest.raises(RuntimeError):
        campaign_run_resolve(run_id=run.pk, span=span)
    run.refresh_from_db()
    assert (run.status, run.resolved_through, CampaignRecipient.objects.filter(run=run).count()) == (
        "resolving", members[2].pk, 3)
    monkeypatch.setattr(campaigns_module, "_resolve_range", real)
    campaign_run_resolve(run_id=run.pk, span=span)
    campaign_run_resolve(run_id=run.pk, span=span)  # the task delivered twice: nothing more

    assert CampaignRecipient.objects.filter(run=run).count() == 6
    assert Delivery.objects.filter(source=run.source).count() == 6
    assert deliveries_dispatch(now=at(4, 10, 1)).sent == 6
    assert deliveries_dispatch(now=at(4, 10, 2)).sent == 0
    assert len(fake.sent_messages()) == 6


def test_the_ab_split_follows_the_hash_and_each_variant_sends_its_own_content(shop):
    members = [shop.member() for _ in range(30)]
    campaign = shop.campaign(content={}, holdout_percent=Decimal("10.00"), variants=[
        VariantSpec(name="A", weight=30, content={"sms": {"template": "2001", "params": ["A {name}", "{link}"]}}),
        VariantSpec(name="B", weight=70, content={"sms": {"template": "2002", "params": ["B {name}", "{link}"]}})])
    variants = list(campaign.variants.order_by("pk"))

    run = launch(campaign, at(4, 10))

    expected = {m.pk: (None if is_held_out(m.pk, campaign) else variant_for(m.pk, variants).pk) for m in members}
    assert dict(CampaignRecipient.objects.filter(run=run).values_list("member_id", "variant_id")) == expected
    templates = {d.member_id: d.content["template"] for d in Delivery.objects.filter(source=run.source)}
    assert templates == {m: ("2001" if v == variants[0].pk else "2002") for m, v in expected.items() if v}
    results = campaign_results(campaign)
    assert [(v.name, v.figures.audience, v.figures.pending) for v in results.variants] == [
        (variant.name, n, n) for variant, n in
        ((variant, sum(v == variant.pk for v in expected.values())) for variant in variants)]
    assert results.figures.holdout == sum(v is None for v in expected.values())


def test_clicks_carry_the_campaign_to_orders_paid_within_the_window_last_click_wins(shop, client):
    quick, late, switcher = shop.member(), shop.member(), shop.member()
    spring = shop.campaign(name="春季")
    summer = shop.campaign(name="夏季", attribution_days=3)
    spring_run = launch(spring, at(4, 10))
    summer_run = launch(summer, at(4, 10, 30))
    code = {(r.run_id, r.member_id): r.link_code for r in CampaignRecipient.objects.all()}

    opened = client.get(f"/t/{code[(spring_run.pk, quick.pk)]}")
    assert (opened.status_code, opened["Location"]) == (302, f"{LINK}&mk={code[(spring_run.pk, quick.pk)]}")
    assert client.get("/t/nosuchcode0").status_code == 404
    click = LinkClick.objects.get()
    assert (click.campaign_id, click.run_id, click.member_id, click.variant_id) == (spring.pk, spring_run.pk,
                                                                                   quick.pk, None)
    LinkClick.objects.filter(pk=click.pk).update(clicked_at=at(4, 12))
    LinkClick.objects.create(campaign=spring, run=spring_run, member=late, clicked_at=at(4, 12))
    LinkClick.objects.create(campaign=spring, run=spring_run, member=switcher, clicked_at=at(4, 12))
    LinkClick.objects.create(campaign=summer, run=summer_run, member=switcher, clicked_at=at(5, 9))

    within = OrderFactory(brand=shop.brand, member=quick, ordered_at=at(11, 12), paid_at=at(11, 12),
                          paid_amount=Decimal("300.00"), total_amount=Decimal("300.00"))  # exactly 7 days on
    after = OrderFactory(brand=shop.brand, member=late, ordered_at=at(11, 12, 1), paid_at=at(11, 12, 1))
    switched = OrderFactory(brand=shop.brand, member=switcher, ordered_at=at(6, 20), paid_at=at(6, 20),
                            paid_amount=Decimal("500.00"), total_amount=Decimal("500.00"),
                            refunded_amount=Decimal("50.00"))
    elsewhere = OrderFactory(brand=BrandFactory(group=shop.brand.group, code="OT"), member=quick, ordered_at=at(5, 9),
                             paid_at=at(5, 9))
    for order in (within, after, switched, elsewhere):
        order_conversion_record(order_id=order.pk)
    order_conversion_record(order_id=within.pk)  # the event delivered twice

    assert sorted(CampaignConversion.objects.values_list("order_id", "campaign_id", "run_id", "member_id")) == sorted([
        (within.pk, spring.pk, spring_run.pk, quick.pk), (switched.pk, summer.pk, summer_run.pk, switcher.pk)])
    figures = {c.pk: campaign_results(c).figures for c in (spring, summer)}
    assert [(f.clicks, f.clicked, f.converted, f.orders, f.sales) for f in figures.values()] == [
        (3, 3, 1, 1, Decimal("300.00")), (1, 1, 1, 1, Decimal("450.00"))]


def test_the_order_paid_event_reaches_the_marketing_handler(shop):
    member = shop.member()
    run = launch(shop.campaign(), at(4, 10))
    LinkClick.objects.create(campaign=run.campaign, run=run, member=member, clicked_at=at(4, 11))
    order = OrderFactory(brand=shop.brand, member=member, ordered_at=at(5, 10), paid_at=at(5, 10))
    handler = "marketing.handlers.order_campaign_attribute"
    assert handler in [s.handler for s in events.subscriptions("order_paid")]
    with transaction.atomic():
        event = events.record("order_paid", order_id=order.pk, member_id=member.pk, brand_id=shop.brand.pk)
    assert events.deliver(event_id=event.pk, handler=handler) is True
    assert events.deliver(event_id=event.pk, handler=handler) is False
    assert list(CampaignConversion.objects.values_list("order_id", "campaign_id")) == [(order.pk, run.campaign_id)]


def test_wilson_and_newcombe_intervals_match_worked_values():
    # Newcombe (1998), Statistics in Medicine 17:873–890, table II, example (a): 56/70 − 48/80.
    # Wilson 56/70: centre (0.8 + z²/140)/(1 + z²/70) = 0.7844, half-width z·√(0.16/70 + z²/19600)/(1 + z²/70)
    # = 0.0926; the published difference interval is 0.0524 to 0.3339.
    assert [round(x, 4) for x in wilson_interval(56, 70)] == [0.6918, 0.8770]
    assert [round(x, 4) for x in wilson_interval(48, 80)] == [0.4905, 0.7004]
    difference, low, high = newcombe_interval(56, 70, 48, 80)
    assert (round(difference, 4), round(low, 4), round(high, 4)) == (0.2, 0.0524, 0.3339)
    # Zero events: Wilson still gives an interval (0, z²/(n + z²)), where Wald collapses to 0 ± 0.
    assert [round(x, 4) for x in wilson_interval(0, 10)] == [0.0, 0.2775]
    # 4/10 against 1/10: Wilson 4/10 = 0.4278 ± 0.2596 = (0.1682, 0.6873), 1/10 = 0.2110 ± 0.1931 = (0.0179,
    # 0.4042); low = 0.3 − √((0.4 − 0.1682)² + (0.4042 − 0.1)²) = 0.3 − 0.3824, high = 0.3 + √((0.6873 − 0.4)²
    # + (0.1 − 0.0179)²) = 0.3 + 0.2988.
    assert [round(x, 4) for x in newcombe_interval(4, 10, 1, 10)] == [0.3, -0.0824, 0.5988]


def test_results_count_reach_restraint_delivery_and_the_lift_against_the_holdout(shop):
    campaign = shop.campaign(holdout_percent=Decimal("50.00"))
    treated, control, spare = [], [], []
    while len(treated) < 10 or len(control) < 10:  # ten of each, chosen by the campaign's hash
        member = shop.member(join=False)
        group = control if is_held_out(member.pk, campaign) else treated
        (group if len(group) < 10 else spare).append(member)
    for member in treated + control:
        BrandMembershipFactory(member=member, brand=shop.brand, store=shop.store)
    OrderFactory(brand=shop.brand, member=treated[9], ordered_at=at(1, 10), paid_at=at(1, 10))  # care window
    OrderFactory(brand=shop.brand, member=control[9], ordered_at=at(1, 10), paid_at=at(1, 10))  # would be too
    ChannelOptOut.objects.create(member=treated[8], channel="sms", source="sms_reply", opted_out_at=at(1, 9))

    run = launch(campaign, at(4, 10))
    treated[0].phone = "fail:13911111111"
    treated[0].save(update_fields=["phone"])
    deliveries_dispatch(now=at(4, 10, 1))
    Delivery.objects.filter(member=treated[1], source=run.source).update(status="delivered")
    # Paid orders in the 7-day window: 4 of the 8 sent to (2 after a click), 1 of the 9 eligible held out.
    for member in treated[1:5] + control[:1]:
        OrderFactory(brand=shop.brand, member=member, ordered_at=at(6, 15), paid_at=at(6, 15),
                     paid_amount=Decimal("200.00"), total_amount=Decimal("200.00"))
    OrderFactory(brand=shop.brand, member=treated[5], ordered_at=at(12, 15), paid_at=at(12, 15))  # too late
    for member in treated[1:3]:
        LinkClick.objects.create(campaign=campaign, run=run, member=member, clicked_at=at(5, 10))
    for order in OrderFactory._meta.model.objects.filter(member__in=treated[1:3]):
        order_conversion_record(order_id=order.pk)

    figures = campaign_results(campaign).figures

    assert (figures.audience, figures.holdout, figures.held, figures.pending) == (
        20, 10, {"care_window": 1, "opted_out": 1}, 0)
    assert (figures.sent, figures.delivered, figures.failed) == (7, 1, 1)
    assert (figures.clicks, figures.clicked, figures.converted, figures.orders, figures.sales) == (
        2, 2, 2, 2, Decimal("400.00"))
    assert str(figures.sales) == "400.00"  # in cents on SQLite too, which sums decimals as floats
    lift = figures.lift
    assert (lift.treated, lift.treated_converted, lift.holdout, lift.holdout_converted) == (8, 4, 9, 1)
    # 4/8 − 1/9 = 0.3889; Wilson 4/8 = 0.5 ± 0.2848 = (0.2152, 0.7848), 1/9 = 0.2274 ± 0.2076 = (0.0199, 0.4350);
    # low = 0.3889 − √(0.2848² + (0.4350 − 0.1111)²) = 0.3889 − 0.4313, high = 0.3889 + √(0.2848² + (0.1111 −
    # 0.0199)²) = 0.3889 + 0.2990.
    assert [round(x, 4) for x in (lift.treated_rate, lift.holdout_rate, lift.difference, lift.ci_low,
                                  lift.ci_high)] == [0.5, 0.1111, 0.3889, -0.0424, 0.6879]
    assert round(lift.relative, 4) == 3.5


def test_cancelling_holds_what_has_not_gone_and_stops_the_schedule(shop):
    [shop.member() for _ in range(3)]
    waiting = launch(shop.campaign(name="夜间"), at(4, 22))
    recurring = shop.campaign(name="每周", schedule="weekly", recur_time=dt.time(10, 0), recur_weekday=2)
    campaign_launch(campaign=recurring, at=at(4, 12))
    recurring.refresh_from_db()
    assert (recurring.status, recurring.next_run_at) == ("scheduled", at(6, 10))

    assert campaign_cancel(campaign=waiting.campaign, at=at(4, 23)) == 3
    assert campaign_cancel(campaign=recurring, at=at(4, 23)) == 0
    assert deliveries_dispatch(now=at(5, 9)).sent == 0
    assert set(Delivery.objects.values_list("status", "hold_reason")) == {("held", "cancelled")}
    assert campaigns_start_due(now=at(6, 10)).started == 0
    with pytest.raises(Exception) as again:
        campaign_cancel(campaign=recurring)
    assert (again.value.code, again.value.status) == ("campaign_not_cancellable", 409)


def test_a_finished_campaign_whose_messages_have_all_gone_cannot_be_cancelled(shop):
    [shop.member() for _ in range(2)]
    run = launch(shop.campaign(name="已发完"), at(4, 10))
    assert (run.campaign.status, campaign_cancellable(run.campaign)) == ("done", True)  # two still queued

    assert deliveries_dispatch(now=at(4, 10, 1)).sent == 2
    run.campaign.refresh_from_db()
    assert campaign_cancellable(run.campaign) is False
    with pytest.raises(Exception) as refused:
        campaign_cancel(campaign=run.campaign)
    assert (refused.value.code, refused.value.status) == ("campaign_not_cancellable", 409)
    run.campaign.refresh_from_db()
    assert (run.campaign.status, run.campaign.cancelled_at) == ("done", None)


def test_schedules_at_a_time_daily_and_weekly(shop):
    shop.member()
    later = shop.campaign(name="定时", schedule="at", send_at=at(6, 10))
    campaign_launch(campaign=later, at=at(4, 9))
    assert campaigns_start_due(now=at(6, 9, 59)).started == 0
    assert campaigns_start_due(now=at(6, 10)).started == 1
    later.refresh_from_db()
    assert (later.status, later.next_run_at) == ("running", None)
    campaign_run_resolve(run_id=CampaignRun.objects.get(campaign=later).pk)
    later.refresh_from_db()
    assert later.status == "done"

    daily = shop.campaign(name="每日", schedule="daily", recur_time=dt.time(10, 0), ends_at=at(7, 12))
    assert next_occurrence(daily, after=at(4, 9)) == at(4, 10)
    assert next_occurrence(daily, after=at(4, 10)) == at(5, 10)
    assert next_occurrence(daily, after=at(7, 10)) is None  # past ends_at
    weekly = shop.campaign(name="每周日", schedule="weekly", recur_time=dt.time(9, 30), recur_weekday=6)
    assert next_occurrence(weekly, after=at(4, 9)) == at(10, 9, 30)
    assert next_occurrence(weekly, after=at(10, 9, 30)) == at(17, 9, 30)


def test_launching_twice_is_a_conflict_and_an_expired_coupon_cannot_launch(shop):
    shop.member()
    campaign = shop.campaign()
    launch(campaign, at(4, 10))
    with pytest.raises(Exception) as again:
        campaign_launch(campaign=campaign, at=at(4, 11))
    assert (again.value.code, again.value.status) == ("campaign_not_launchable", 409)
    gone = CouponTemplate.objects.create(brand=shop.brand, name="过期券", kind="threshold",
                                         discount_amount=Decimal("10.00"), valid_from=at(1, 0), valid_to=at(3, 0))
    with pytest.raises(Exception) as expired:
        campaign_launch(campaign=shop.campaign(name="过期", coupon_template=gone), at=at(4, 10))
    assert (expired.value.code, expired.value.status) == ("coupon_not_issuable", 409)


# ---------------------------------------------------------------------------- the staff API

def payload(shop, **changes):
    return {"brand": "WA", "audience": shop.audience.pk, "name": "春季上新", "channels": ["subscribe", "sms"],
            "content": BOTH, "link": LINK, "holdout_percent": "10.00", **changes}


def test_campaign_api_creates_lists_launches_cancels_and_reports(shop, api_client, django_capture_on_commit_callbacks):
    [shop.member() for _ in range(4)]
    other_brand = BrandFactory(group=shop.brand.group, code="MB")
    other_audience = Audience.objects.create(group=shop.brand.group, brand=other_brand, name="MB 会员")
    campaign_create(brand=other_brand, audience=other_audience, name="别家", channels=["sms"],
                    content={"sms": {"template": "1", "params": []}})
    api_client.force_authenticate(staff_user("brand_operator", brand=shop.brand))

    created = api_client.post("/api/v1/marketing/campaigns/", payload(shop), format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["status"], body["channels"], body["holdout_percent"], body["runs"], body["variants"]) == (
        "draft", ["subscribe", "sms"], "10.00", [], [])
    assert body["tracking_link"].startswith(BASE)
    pk = body["id"]
    listed = api_client.get("/api/v1/marketing/campaigns/")
    assert [c["name"] for c in listed.json()["results"]] == ["春季上新"]
    assert api_client.get(f"/api/v1/marketing/campaigns/{pk}/").json()["audience_name"] == "全部会员"

    with django_capture_on_commit_callbacks(execute=True):
        launched = api_client.post(f"/api/v1/marketing/campaigns/{pk}/launch/")
    assert (launched.status_code, launched.json()["status"], launched.json()["runs"][0]["status"]) == (
        200, "running", "resolving")  # the resolve task is queued once the launch commits
    resolved = api_client.get(f"/api/v1/marketing/campaigns/{pk}/").json()
    assert (resolved["status"], [run["status"] for run in resolved["runs"]]) == ("done", ["queued"])
    again = api_client.post(f"/api/v1/marketing/campaigns/{pk}/launch/")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "campaign_not_launchable")

    results = api_client.get(f"/api/v1/marketing/campaigns/{pk}/results/")
    assert results.status_code == 200
    figures = results.json()["figures"]
    assert figures["audience"] == 4 and figures["holdout"] + figures["pending"] + sum(figures["held"].values()) == 4
    assert results.json()["runs"][0]["figures"]["audience"] == 4

    cancelled = api_client.post(f"/api/v1/marketing/campaigns/{pk}/cancel/")
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert api_client.post(f"/api/v1/marketing/campaigns/{pk}/cancel/").status_code == 409
    assert not Delivery.objects.filter(status__in=["queued", "waiting"]).exists()


def test_campaign_api_refuses_bad_input_other_brands_and_roles_that_may_not(shop, api_client):
    other_brand = BrandFactory(group=shop.brand.group, code="MB")
    theirs = campaign_create(brand=other_brand, name="别家", channels=["sms"],
                             audience=Audience.objects.create(group=shop.brand.group, brand=other_brand, name="MB"),
                             content={"sms": {"template": "1", "params": []}})
    api_client.force_authenticate(staff_user("brand_operator", brand=shop.brand))
    url = "/api/v1/marketing/campaigns/"

    unknown_variable = api_client.post(url, payload(shop, content={**BOTH, "sms": {"template": "1",
                                                                               "params": ["{phone}"]}}), format="json")
    foreign_link = api_client.post(url, payload(shop, link="https://evil.example.net/x"), format="json")
    bad_split = api_client.post(url, payload(shop, content={}, variants=[
        {"name": "A", "weight": 60, "content": BOTH}, {"name": "B", "weight": 50, "content": BOTH}]), format="json")
    no_time = api_client.post(url, payload(shop, schedule="weekly", recur_time="10:00"), format="json")
    their_audience = api_client.post(url, payload(shop, audience=theirs.audience_id), format="json")
    too_much_holdout = api_client.post(url, payload(shop, holdout_percent="60"), format="json")

    assert (unknown_variable.status_code, list(unknown_variable.json()["error"]["fields"])) == (400, ["content"])
    assert "{phone}" in unknown_variable.json()["error"]["fields"]["content"][0]
    assert (foreign_link.status_code, list(foreign_link.json()["error"]["fields"])) == (400, ["link"])
    assert (bad_split.status_code, list(bad_split.json()["error"]["fields"])) == (400, ["variants"])
    assert (no_time.status_code, list(no_time.json()["error"]["fields"])) == (400, ["recur_weekday"])
    assert (their_audience.status_code, list(their_audience.json()["error"]["fields"])) == (400, ["audience"])
    assert (too_much_holdout.status_code, list(too_much_holdout.json()["error"]["fields"])) == (
        400, ["holdout_percent"])
    for path in ("", "launch/", "cancel/", "results/"):
        method = api_client.get if path in ("", "results/") else api_client.post
        assert method(f"{url}{theirs.pk}/{path}").status_code == 404
    assert Campaign.objects.count() == 1

    api_client.force_authenticate(staff_user("store_manager", store=shop.store))
    assert api_client.post(url, payload(shop), format="json").status_code == 403
    assert api_client.get(url).json()["results"] == []


# ---------------------------------------------------------------------------- concurrency (PostgreSQL)

needs_postgres = pytest.mark.skipif(ON_SQLITE, reason="concurrency tests need PostgreSQL (set DATABASE_URL)")


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_launches_of_one_campaign_start_one_run():
    shop = Shop()
    [shop.member() for _ in range(3)]
    campaign = shop.campaign()
    results = run_at_once([lambda: campaign_launch(campaign=campaign, at=at(4, 10)) for _ in range(5)])
    assert sorted(kind for kind, _ in results) == ["error"] * 4 + ["ok"]
    assert {exc.status for kind, exc in results if kind == "error"} == {409}
    assert CampaignRun.objects.filter(campaign=campaign).count() == 1
    assert CampaignRecipient.objects.count() == 3  # the run was resolved once, after the winner's commit


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_three_campaigns_resolving_the_same_members_at_once_send_exactly_the_cap(monkeypatch):
    monkeypatch.setattr(campaigns_module, "_resolve_later", lambda run_id: None)  # resolved below, all at once
    shop = Shop()
    members = [shop.member() for _ in range(4)]
    runs = []
    for n in range(3):
        campaign = shop.campaign(name=f"同时{n}")
        campaign_launch(campaign=campaign, at=at(4, 10))
        runs.append(CampaignRun.objects.get(campaign=campaign))
    results = run_at_once([lambda run=run: campaign_run_resolve(run_id=run.pk, span=2) for run in runs])
    assert [kind for kind, _ in results] == ["ok"] * 3
    for member in members:
        assert sorted(Delivery.objects.filter(member=member).values_list("status", flat=True)) == [
            "held", "queued", "queued"]
