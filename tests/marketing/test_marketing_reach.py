"""marketing.services: every message through one place that applies consent, quiet hours, the cap, the care window.

Hand-made members; times are Shanghai local (2030-03-04 is a Monday). The fake channel records what it
would send, so "sent once" is counted on what reached the provider.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from marketing.channels import fake
from marketing.models import ChannelOptOut, Delivery, ReachRules, SubscribeConsent
from marketing.services import (
    deliveries_dispatch,
    message_send,
    sms_reply_record,
    subscribe_results_record,
)
from members.auth import member_token_issue
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
SMS = {"sms": {"template": "SMS_1001", "params": {"name": "王丽"}}}
BOTH = {"subscribe": {"template": "TPL_NEW", "params": {"thing1": "新品"}}, **SMS}


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2030, 3, day, hour, minute, tzinfo=SH)


@pytest.fixture(autouse=True)
def _clean_fake():
    fake.reset()
    yield
    fake.reset()


@pytest.fixture
def world():
    brand = BrandFactory(code="WA")
    store = StoreFactory(region=RegionFactory(brand=brand, code="east"), code="SA")
    member = MemberFactory(group=brand.group, phone="+8613800000001", openid="o-member-1")
    BrandMembershipFactory(member=member, brand=brand, store=store)
    return type("World", (), dict(brand=brand, store=store, member=member))


def send(world, source, *, when, channels=("sms",), content=SMS, kind="marketing", member=None):
    return message_send(member=member or world.member, brand=world.brand, kind=kind, channels=list(channels),
                        source=source, content=content, at=when)


def test_the_cap_holds_across_channels_and_campaigns(world):
    SubscribeConsent.objects.create(member=world.member, template_id="TPL_NEW", remaining=1)

    monday = send(world, "campaign:1/step:1", when=at(4, 10), channels=("subscribe", "sms"), content=BOTH)
    tuesday = send(world, "campaign:2/step:1", when=at(5, 10))
    wednesday = send(world, "journey:7/step:2", when=at(6, 10))
    next_monday = send(world, "campaign:3/step:1", when=at(11, 10, 1))  # only Tuesday's within 7 days
    next_tuesday = send(world, "campaign:4/step:1", when=at(12, 10))  # exactly 7 days after Tuesday's
    next_wednesday = send(world, "campaign:5/step:1", when=at(13, 10))  # 11th and 12th are within 7 days

    assert [(d.channel, d.status, d.hold_reason) for d in (
        monday, tuesday, wednesday, next_monday, next_tuesday, next_wednesday)] == [
        ("subscribe", "queued", ""), ("sms", "queued", ""), ("sms", "held", "frequency_cap"),
        ("sms", "queued", ""), ("sms", "queued", ""), ("sms", "held", "frequency_cap")]


def test_a_brand_s_own_rules_override_the_group_s(world):
    ReachRules.objects.create(group=world.brand.group, cap_messages=2)
    ReachRules.objects.create(group=world.brand.group, brand=world.brand, cap_messages=1)
    send(world, "campaign:1/step:1", when=at(4, 10))
    assert send(world, "campaign:2/step:1", when=at(5, 10)).hold_reason == "frequency_cap"


def test_quiet_hour_sends_wait_and_go_at_nine(world):
    evening = send(world, "campaign:1/step:1", when=at(4, 22, 30))
    shipped = send(world, "order_shipped:991", when=at(4, 22, 30), kind="service")

    assert (evening.status, evening.send_after) == ("waiting", at(5, 9))
    assert (shipped.status, shipped.send_after) == ("queued", at(4, 22, 30))
    night = deliveries_dispatch(now=at(4, 22, 31))
    early = deliveries_dispatch(now=at(5, 8, 59))
    morning = deliveries_dispatch(now=at(5, 9))

    assert (night.sent, early.sent, morning.sent) == (1, 0, 1)
    assert [m.template for m in fake.sent_messages()] == ["SMS_1001", "SMS_1001"]
    evening.refresh_from_db()
    assert (evening.status, evening.sent_at) == ("sent", at(5, 9))


def test_a_late_dispatch_never_sends_marketing_into_the_night(world):
    planned = send(world, "campaign:1/step:1", when=at(4, 20, 50))
    result = deliveries_dispatch(now=at(4, 21, 5))  # the queue ran late: it is quiet hours now
    planned.refresh_from_db()
    assert (result.sent, result.deferred, planned.status, planned.send_after) == (0, 1, "waiting", at(5, 9))


def test_the_care_window_after_a_purchase_holds_marketing_but_not_service(world):
    OrderFactory(brand=world.brand, member=world.member, store=world.store, ordered_at=at(1, 12),
                 paid_at=at(1, 12), total_amount=Decimal("300.00"), paid_amount=Decimal("300.00"))

    day_14 = send(world, "campaign:1/step:1", when=at(15, 11, 59))
    service = send(world, "refund_done:5", when=at(15, 11, 59), kind="service")
    day_15 = send(world, "campaign:2/step:1", when=at(16, 12, 1))

    assert (day_14.status, day_14.hold_reason) == ("held", "care_window")
    assert (service.status, service.hold_reason) == ("queued", "")
    assert (day_15.status, day_15.hold_reason) == ("queued", "")


def test_opt_outs_and_missing_consents_hold_back_with_the_right_reason(world):
    assert sms_reply_record(phone="+8613800000001", text=" td ", at=at(3, 20)) == 1
    assert sms_reply_record(phone="+8613800000001", text="好的", at=at(3, 20)) == 0
    assert list(ChannelOptOut.objects.values_list("member_id", "channel", "source")) == [
        (world.member.pk, "sms", "sms_reply")]

    sms_only = send(world, "campaign:1/step:1", when=at(4, 10))
    no_consent = send(world, "campaign:2/step:1", when=at(4, 10), channels=("subscribe", "sms"), content=BOTH)
    service = send(world, "order_shipped:7", when=at(4, 10), kind="service")  # opt-out holds service too

    assert [(d.status, d.hold_reason, d.channel) for d in (sms_only, no_consent, service)] == [
        ("held", "opted_out", ""), ("held", "no_consent", ""), ("held", "opted_out", "")]
    assert deliveries_dispatch(now=at(4, 10, 1)).sent == 0
    assert fake.sent_messages() == []


def test_subscribe_consents_are_counted_and_each_send_uses_one(world):
    left = subscribe_results_record(member=world.member, results={"TPL_NEW": "accept", "TPL_SHIP": "reject"})
    assert left == {"TPL_NEW": 1, "TPL_SHIP": 0}
    first = send(world, "campaign:1/step:1", when=at(4, 10), channels=("subscribe", "sms"), content=BOTH)
    deliveries_dispatch(now=at(4, 10))
    second = send(world, "campaign:2/step:1", when=at(5, 10), channels=("subscribe", "sms"), content=BOTH)

    assert (first.channel, second.channel) == ("subscribe", "sms")  # no consent left: the fallback
    assert SubscribeConsent.objects.get(template_id="TPL_NEW").remaining == 0
    assert [(m.channel, m.address) for m in fake.sent_messages()] == [("subscribe", "o-member-1")]


def test_a_retried_send_never_duplicates(world):
    first = send(world, "campaign:1/step:1", when=at(4, 10))
    again = send(world, "campaign:1/step:1", when=at(4, 10, 5))  # the campaign step ran twice
    assert again.pk == first.pk and Delivery.objects.count() == 1
    assert deliveries_dispatch(now=at(4, 10, 6)).sent == 1
    assert deliveries_dispatch(now=at(4, 10, 7)).sent == 0
    assert len(fake.sent_messages()) == 1


def test_temporary_failures_back_off_and_a_crash_mid_send_is_never_resent(world):
    busy = MemberFactory(group=world.brand.group, phone="busy:138", openid="")
    gone = MemberFactory(group=world.brand.group, phone="fail:139", openid="")
    retry = send(world, "campaign:1/step:1", when=at(4, 10), member=busy)
    refused = send(world, "campaign:1/step:1", when=at(4, 10), member=gone)
    stuck = send(world, "campaign:2/step:1", when=at(4, 10))
    Delivery.objects.filter(pk=stuck.pk).update(status="sending")  # a sender died after handing it over

    first = deliveries_dispatch(now=at(4, 10))
    retry.refresh_from_db()
    refused.refresh_from_db()
    assert (first.retried, retry.status, retry.attempts, retry.send_after) == (1, "queued", 1, at(4, 10, 2))
    assert (refused.status, refused.error) == ("failed", "fake: address refused")
    later = deliveries_dispatch(now=at(4, 11, 1))  # the stuck one is over an hour old now
    stuck.refresh_from_db()
    assert (stuck.status, stuck.error) == ("failed", "outcome unknown: the sender stopped mid-send")
    assert later.retried == 1 and fake.sent_messages() == []


def test_deliveries_api_lists_sent_and_held_in_scope_with_masked_phones(world, api_client):
    other_brand = BrandFactory(code="MB", group=world.brand.group)
    stranger = MemberFactory(group=world.brand.group, phone="+8613800000002")
    BrandMembershipFactory(member=stranger, brand=other_brand)
    send(world, "campaign:1/step:1", when=at(4, 10))
    send(world, "campaign:2/step:1", when=at(4, 11))
    send(world, "campaign:3/step:1", when=at(4, 12))  # held: cap
    message_send(member=stranger, brand=other_brand, kind="marketing", channels=["sms"], source="campaign:9/step:1",
                 content=SMS, at=at(4, 10))
    api_client.force_authenticate(staff_user("brand_operator", brand=world.brand))

    everything = api_client.get("/api/v1/marketing/deliveries/")
    held = api_client.get("/api/v1/marketing/deliveries/", {"status": "held", "date_from": "2030-03-04"})
    bad = api_client.get("/api/v1/marketing/deliveries/", {"channel": "fax", "date_from": "2030-03-05",
                                                             "date_to": "2030-03-04"})

    assert everything.status_code == 200
    rows = everything.json()["results"]
    assert [(r["source"], r["status"], r["hold_reason"]) for r in rows] == [
        ("campaign:3/step:1", "held", "frequency_cap"), ("campaign:2/step:1", "queued", ""),
        ("campaign:1/step:1", "queued", "")]
    assert {r["member_phone"] for r in rows} == {"138****0001"}
    assert [r["source"] for r in held.json()["results"]] == ["campaign:3/step:1"]
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"channel"}  # the field errors first; dates after
    backwards = api_client.get("/api/v1/marketing/deliveries/", {"date_from": "2030-03-05", "date_to": "2030-03-04"})
    assert (backwards.status_code, backwards.json()["error"]["fields"]) == (
        400, {"date_to": ["Must not be before date_from."]})


def test_a_bound_guide_sees_their_members_deliveries_only(world, api_client):
    guide = GuideFactory(store=world.store)
    GuideBindingFactory(member=world.member, guide=guide)
    other = MemberFactory(group=world.brand.group, phone="+8613800000003")
    BrandMembershipFactory(member=other, brand=world.brand, store=world.store)
    send(world, "campaign:1/step:1", when=at(4, 10))
    send(world, "campaign:1/step:1", when=at(4, 10), member=other)
    api_client.force_authenticate(staff_user("guide", guide=guide, store=world.store))
    rows = api_client.get("/api/v1/marketing/deliveries/").json()["results"]
    assert [(r["member"], r["member_phone"]) for r in rows] == [(world.member.code, "13800000001")]


def test_members_report_subscribe_results_through_the_api(world, api_client):
    token = member_token_issue(member=world.member)
    auth = {"HTTP_AUTHORIZATION": f"Member {token}"}
    ok = api_client.post("/api/v1/mp/subscribe-results/", {"results": {"TPL_NEW": "accept"}}, format="json", **auth)
    again = api_client.post("/api/v1/mp/subscribe-results/", {"results": {"TPL_NEW": "accept", "TPL_X": "ban"}},
                            format="json", **auth)
    bad = api_client.post("/api/v1/mp/subscribe-results/", {"results": {"TPL_NEW": "maybe"}}, format="json", **auth)
    form = api_client.post("/api/v1/mp/subscribe-results/", "results=1",
                           content_type="application/x-www-form-urlencoded", **auth)
    assert (ok.status_code, ok.json()) == (200, {"remaining": {"TPL_NEW": 1}})
    assert again.json() == {"remaining": {"TPL_NEW": 2, "TPL_X": 0}}
    assert bad.status_code == 400
    assert form.status_code == 415
    assert api_client.post("/api/v1/mp/subscribe-results/", {"results": {"A": "accept"}}, format="json").status_code \
        == 401


@pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                    reason="concurrency tests need PostgreSQL (set DATABASE_URL)")
@pytest.mark.django_db(transaction=True)
def test_ten_campaigns_messaging_one_member_at_once_send_exactly_the_cap(world):
    results = run_at_once([
        (lambda n=n: send(world, f"campaign:{n}/step:1", when=at(4, 10))) for n in range(10)])
    assert [kind for kind, _ in results] == ["ok"] * 10
    statuses = sorted(Delivery.objects.values_list("status", "hold_reason"))
    assert statuses == [("held", "frequency_cap")] * 8 + [("queued", "")] * 2


def test_a_channel_without_an_adapter_is_skipped_for_the_next(world, settings):
    settings.MARKETING_CHANNELS = {"sms": "fake", "subscribe": None}  # production has no subscribe adapter yet
    SubscribeConsent.objects.create(member=world.member, template_id="TPL_NEW", remaining=3)
    chosen = send(world, "campaign:1/step:1", when=at(4, 10), channels=("subscribe", "sms"), content=BOTH)
    assert (chosen.channel, chosen.status) == ("sms", "queued")
    assert SubscribeConsent.objects.get().remaining == 3
