"""WeCom enterprise group sends through the bound guide, and important members routed to their guide.

The client against WeCom's documented request shapes (token, add_msg_template, get_groupmsg_task,
get_groupmsg_send_result with paging, cancel), errcodes mapped; the gateway's addressing (only a
member who is a WeCom contact of their bound guide); one group send per guide per campaign step; results
polled onto each member's delivery; important members as a care-list task for their guide.

Hand-made members; times are Shanghai local (2030-03-04 is a Monday). No network anywhere.
"""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ImproperlyConfigured

from marketing.channels import GroupMessage, PermanentFailure, TemporaryFailure, fake, get_channel
from marketing.channels.wecom_group_send import WeComGroupSendClient
from marketing.group_sends import wecom_results_poll
from marketing.models import Delivery, WeComGroupSend
from marketing.services import deliveries_dispatch, message_send
from members.wecom import wecom_friend_add, wecom_friend_remove
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

SH = ZoneInfo("Asia/Shanghai")
API = "https://qyapi.weixin.qq.com/cgi-bin"
JSON = {"Content-Type": "application/json; charset=utf-8"}
WECOM = {"wecom": {"text": "王丽您好，春季新品到店，点开小程序看看吧",
                   "miniprogram": {"title": "春季新品", "pic_media_id": "MEDIA-1", "page": "/pages/new.html"}}}
SMS = {"sms": {"template": "SMS_1001", "params": {"name": "王丽"}}}
GUIDE_TASK = {"guide_task": {"reason": "春季新品：请亲自邀约到店试穿", "action": "电话邀约，送新品体验券"}}
ALL = {**GUIDE_TASK, **WECOM, **SMS}


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2030, 3, day, hour, minute, tzinfo=SH)


class Recorder:
    """A transport that records each request and answers the next prepared answer."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, method, url, headers, body):
        self.calls.append((method, url, headers, json.loads(body) if body else None))
        return 200, json.dumps(self.answers.pop(0), ensure_ascii=False).encode()


TOKEN = {"errcode": 0, "errmsg": "ok", "access_token": "WT-1", "expires_in": 7200}
TOKEN_URL = f"{API}/gettoken?corpid=ww-local-corp&corpsecret=contact-local-secret"


def client(recorder):
    return WeComGroupSendClient(corp_id="ww-local-corp", corp_secret="contact-local-secret", transport=recorder,
                                clock=lambda: 1_893_456_000.0)


@pytest.fixture(autouse=True)
def _clean_fake():
    fake.reset()
    yield
    fake.reset()


# ---------------------------------------------------------------------------- the client

def test_add_msg_template_has_the_documented_shape(settings):
    settings.WECHAT_APPID = "wxmp0000000000009"
    recorder = Recorder(TOKEN, {"errcode": 0, "errmsg": "ok", "fail_list": ["wm-gone"], "msgid": "msgGCAAAX01"})
    link = {"title": "会员日", "url": "https://mall.example.com/d/7", "desc": "满200减30"}
    content = {**WECOM["wecom"], "link": link}
    accepted = client(recorder).send_group(GroupMessage(sender="WOM-E001-G02", external_userids=["wm-1", "wm-gone"],
                                                        content=content, delivery_ids=(11, 12)))
    assert (accepted.msgid, accepted.refused) == ("msgGCAAAX01", ["wm-gone"])
    assert recorder.calls == [
        ("GET", TOKEN_URL, {}, None),
        ("POST", f"{API}/externalcontact/add_msg_template?access_token=WT-1", JSON, {
            "chat_type": "single", "external_userid": ["wm-1", "wm-gone"], "sender": "WOM-E001-G02",
            "text": {"content": "王丽您好，春季新品到店，点开小程序看看吧"},
            "attachments": [
                {"msgtype": "miniprogram", "miniprogram": {"title": "春季新品", "pic_media_id": "MEDIA-1",
                                                           "appid": "wxmp0000000000009", "page": "/pages/new.html"}},
                {"msgtype": "link", "link": {"title": "会员日", "desc": "满200减30",
                                             "url": "https://mall.example.com/d/7"}}]}),
    ]


def test_results_are_fetched_by_task_then_by_member_page_by_page():
    recorder = Recorder(
        TOKEN,
        {"errcode": 0, "errmsg": "ok", "next_cursor": "",
         "task_list": [{"userid": "WOM-E001-G02", "status": 2, "send_time": 1893470400}]},
        {"errcode": 0, "errmsg": "ok", "next_cursor": "CURSOR-2", "send_list": [
            {"external_userid": "wm-1", "userid": "WOM-E001-G02", "status": 1, "send_time": 1893470400}]},
        {"errcode": 0, "errmsg": "ok", "next_cursor": "", "send_list": [
            {"external_userid": "wm-2", "userid": "WOM-E001-G02", "status": 2},
            {"external_userid": "wm-3", "userid": "WOM-E001-G02", "status": 3}]},
        {"errcode": 0, "errmsg": "ok"})
    wecom = client(recorder)
    status = wecom.task_status("msgGCAAAX01", "WOM-E001-G02")
    results = wecom.send_results("msgGCAAAX01", "WOM-E001-G02")
    wecom.cancel("msgGCAAAX01")

    sent_at = dt.datetime(2030, 1, 1, 4, 0, tzinfo=dt.UTC)
    assert status == (2, sent_at)
    assert [(r.external_userid, r.status, r.sent_at) for r in results] == [
        ("wm-1", 1, sent_at), ("wm-2", 2, None), ("wm-3", 3, None)]
    assert [(url.split("?")[0].rsplit("/", 1)[1], body) for _, url, _, body in recorder.calls[1:]] == [
        ("get_groupmsg_task", {"msgid": "msgGCAAAX01", "limit": 1000}),
        ("get_groupmsg_send_result", {"msgid": "msgGCAAAX01", "userid": "WOM-E001-G02", "limit": 1000}),
        ("get_groupmsg_send_result", {"msgid": "msgGCAAAX01", "userid": "WOM-E001-G02", "limit": 1000,
                                      "cursor": "CURSOR-2"}),
        ("cancel_groupmsg_send", {"msgid": "msgGCAAAX01"}),
    ]


def test_an_expired_token_is_renewed_once():
    recorder = Recorder(TOKEN, {"errcode": 42001, "errmsg": "access_token expired"},
                        {**TOKEN, "access_token": "WT-2"}, {"errcode": 0, "errmsg": "ok", "msgid": "msg-2"})
    client(recorder).send_group(GroupMessage(sender="G1", external_userids=["wm-1"], content={"text": "hi"}))
    assert [url for _, url, _, _ in recorder.calls] == [
        TOKEN_URL, f"{API}/externalcontact/add_msg_template?access_token=WT-1",
        TOKEN_URL, f"{API}/externalcontact/add_msg_template?access_token=WT-2"]


@pytest.mark.parametrize(("answer", "raised", "text"), [
    ({"errcode": -1, "errmsg": "system busy"}, TemporaryFailure, "wecom add_msg_template -1: system busy"),
    ({"errcode": 45033, "errmsg": "api concurrent out of limit"}, TemporaryFailure,
     "wecom add_msg_template 45033: api concurrent out of limit"),
    ({"errcode": 41048, "errmsg": "no external contact"}, PermanentFailure,
     "wecom add_msg_template 41048: no external contact"),
])
def test_errcodes_map_to_temporary_or_permanent_failures(answer, raised, text):
    with pytest.raises(raised) as exc_info:
        client(Recorder(TOKEN, answer)).send_group(GroupMessage(sender="G1", external_userids=["wm-1"],
                                                                content={"text": "hi"}))
    assert str(exc_info.value) == text


def test_the_real_channel_needs_the_corp_credentials(settings):
    settings.MARKETING_CHANNELS = {**settings.MARKETING_CHANNELS, "wecom": "api"}
    settings.WECOM_CORP_ID, settings.WECOM_CORP_SECRET = "ww-local-corp", ""
    with pytest.raises(ImproperlyConfigured, match="WeCom group sends need WECOM_CORP_SECRET"):
        get_channel("wecom")


# ---------------------------------------------------------------------------- addressing, batching, results

@pytest.fixture
def world(db):
    brand = BrandFactory(code="WA")
    store = StoreFactory(region=RegionFactory(brand=brand, code="east"), code="SA")
    li, zhou = GuideFactory(store=store, code="GL"), GuideFactory(store=store, code="GZ")
    members = {}
    for name, guide, external in [("a1", li, "wm-a1"), ("a2", li, "nofriend:a2"), ("a3", li, "limit:a3"),
                                  ("b1", zhou, "wm-b1"), ("b2", zhou, "wm-b2"), ("c1", li, "")]:
        member = MemberFactory(group=brand.group, name=name)
        BrandMembershipFactory(member=member, brand=brand, store=store)
        GuideBindingFactory(member=member, guide=guide, started_at=at(1, 10))
        if external:
            wecom_friend_add(member=member, guide=guide, external_userid=external, at=at(1, 10), source="api")
        members[name] = member
    return type("World", (), dict(brand=brand, store=store, li=li, zhou=zhou, **members))


def send(world, member, source="campaign:1/step:1", *, when=None, channels=("wecom", "sms"), content=None):
    return message_send(member=member, brand=world.brand, kind="marketing", channels=list(channels), source=source,
                        content=content or ALL, at=when or at(4, 10))


def test_only_contacts_of_their_bound_guide_are_addressable(world):
    other_guide = GuideFactory(store=world.store, code="GX")
    wecom_friend_add(member=world.c1, guide=other_guide, external_userid="wm-c1-x", at=at(1, 11), source="api")
    wecom_friend_remove(member=world.b2, guide=world.zhou, at=at(2, 10))

    rows = {name: send(world, getattr(world, name)) for name in ("a1", "b1", "b2", "c1")}

    assert {name: (d.channel, d.status) for name, d in rows.items()} == {
        "a1": ("wecom", "queued"), "b1": ("wecom", "queued"),
        "b2": ("sms", "queued"),  # removed the guide from WeCom
        "c1": ("sms", "queued")}  # a contact of another guide only
    assert rows["a1"].content == WECOM["wecom"]


def test_one_group_send_per_guide_per_campaign_step(world):
    for name in ("a1", "a2", "a3", "b1", "b2"):
        send(world, getattr(world, name))
    send(world, world.a1, "campaign:2/step:1", when=at(4, 11))  # a later step: its own send

    first = deliveries_dispatch(now=at(4, 10, 1))
    again = deliveries_dispatch(now=at(4, 10, 2))
    later = deliveries_dispatch(now=at(4, 11, 1))

    assert (first.sent, again.sent, later.sent) == (5, 0, 1)
    sends = fake.group_sends()
    assert [(s.message.sender, s.message.external_userids, s.message.content) for s in sends] == [
        ("GL", ["wm-a1", "nofriend:a2", "limit:a3"], WECOM["wecom"]),
        ("GZ", ["wm-b1", "wm-b2"], WECOM["wecom"]),
        ("GL", ["wm-a1"], WECOM["wecom"])]
    rows = Delivery.objects.filter(source="campaign:1/step:1").order_by("pk")
    assert {(d.status, d.provider_message_id) for d in rows} == {
        ("confirming", sends[0].msgid), ("confirming", sends[1].msgid)}
    stored = WeComGroupSend.objects.order_by("pk")
    assert [(s.sender, s.source, s.recipients) for s in stored] == [
        ("GL", "campaign:1/step:1", {"wm-a1": world_pk(world.a1), "nofriend:a2": world_pk(world.a2),
                                     "limit:a3": world_pk(world.a3)}),
        ("GZ", "campaign:1/step:1", {"wm-b1": world_pk(world.b1), "wm-b2": world_pk(world.b2)}),
        ("GL", "campaign:2/step:1", {"wm-a1": world_pk(world.a1, "campaign:2/step:1")})]


def world_pk(member, source="campaign:1/step:1") -> int:
    return Delivery.objects.get(member=member, source=source).pk


def test_the_rate_counts_group_sends_and_never_splits_a_guide_s_members(world):
    for name in ("a1", "a2", "a3", "b1", "b2"):
        send(world, getattr(world, name))
    first = deliveries_dispatch(now=at(4, 10, 1), limits={"wecom": 1})
    second = deliveries_dispatch(now=at(4, 10, 2), limits={"wecom": 1})
    assert (first.sent, second.sent) == (3, 2)
    assert [s.message.sender for s in fake.group_sends()] == ["GL", "GZ"]


def test_results_are_polled_onto_each_member_s_delivery(world):
    for name in ("a1", "a2", "a3", "b1"):
        send(world, getattr(world, name))
    deliveries_dispatch(now=at(4, 10, 1))
    gl, gz = fake.group_sends()

    unconfirmed = wecom_results_poll(now=at(4, 10, 10))
    fake.confirm(msgid=gl.msgid, at=at(4, 10, 30))
    confirmed = wecom_results_poll(now=at(4, 10, 40))
    repeated = wecom_results_poll(now=at(4, 10, 50))

    assert (unconfirmed.sent, unconfirmed.failed, unconfirmed.closed) == (0, 0, 0)
    assert (confirmed.sent, confirmed.failed, confirmed.closed) == (1, 2, 1)
    assert (repeated.sent, repeated.failed, repeated.closed) == (0, 0, 0)  # the closed one is not asked again
    rows = {d.member.name: (d.status, d.sent_at, d.error) for d in Delivery.objects.select_related("member")}
    assert rows == {
        "a1": ("sent", at(4, 10, 30), ""),
        "a2": ("failed", None, "wecom 2: not a WeCom contact of the guide"),
        "a3": ("failed", None, "wecom 3: the member already received as many group messages as WeCom allows"),
        "b1": ("confirming", None, "")}
    assert list(WeComGroupSend.objects.order_by("pk").values_list("closed_at", "checked_at")) == [
        (at(4, 10, 40), at(4, 10, 40)), (None, at(4, 10, 50))]


def test_a_send_the_guide_never_confirms_fails_after_the_deadline_and_is_cancelled(world, settings):
    settings.MARKETING_WECOM_CONFIRM_HOURS = 48
    send(world, world.b1)
    deliveries_dispatch(now=at(4, 10, 1))
    (gz,) = fake.group_sends()

    before = wecom_results_poll(now=at(6, 10, 0))
    after = wecom_results_poll(now=at(6, 10, 1))

    delivery = Delivery.objects.get()
    assert (before.failed, after.failed, after.closed) == (0, 1, 1)
    assert (delivery.status, delivery.error) == ("failed", "wecom: the guide did not send it within 48 hours")
    assert fake.CANCELLED == [gz.msgid]


def test_refused_senders_and_contacts_and_busy_wecom(world):
    world.zhou.code = "busy:GZ"
    world.zhou.save()
    send(world, world.b1)
    gone = MemberFactory(group=world.brand.group)
    GuideBindingFactory(member=gone, guide=world.li, started_at=at(1, 10))
    wecom_friend_add(member=gone, guide=world.li, external_userid="gone:1", at=at(1, 10), source="api")
    send(world, world.a1)
    send(world, gone)

    result = deliveries_dispatch(now=at(4, 10, 1))

    rows = {d.member_id: (d.status, d.attempts, d.send_after, d.error) for d in Delivery.objects.all()}
    assert (result.sent, result.failed, result.retried) == (1, 1, 1)
    assert rows == {
        world.b1.pk: ("queued", 1, at(4, 10, 3), "fake wecom: busy"),
        world.a1.pk: ("confirming", 1, at(4, 10), ""),
        gone.pk: ("failed", 1, at(4, 10), "wecom: WeCom refused this contact (fail_list)")}


def test_a_member_no_longer_the_guide_s_contact_at_send_time_fails(world):
    send(world, world.a1)
    wecom_friend_remove(member=world.a1, guide=world.li, at=at(4, 10, 0))
    result = deliveries_dispatch(now=at(4, 10, 1))
    delivery = Delivery.objects.get()
    assert (result.failed, delivery.status, delivery.error) == (
        1, "failed", "wecom: not a WeCom contact of the member's bound guide any more")
    assert fake.group_sends() == []


def test_group_sends_wait_for_the_morning(world):
    planned = send(world, world.a1, when=at(4, 22, 30))
    late = send(world, world.b1, "campaign:2/step:1", when=at(4, 20, 50))
    night = deliveries_dispatch(now=at(4, 21, 5))
    morning = deliveries_dispatch(now=at(5, 9))
    assert (planned.status, planned.send_after) == ("waiting", at(5, 9))
    assert (night.deferred, night.sent, morning.sent) == (1, 0, 2)
    assert [s.message.sender for s in fake.group_sends()] == ["GL", "GZ"]  # both due at 09:00: by source
    late.refresh_from_db()
    assert (late.status, late.send_after) == ("confirming", at(5, 9))


# ---------------------------------------------------------------------------- important members: the guide

def test_important_members_become_a_personal_task_for_their_guide(world):
    MemberRfm.objects.create(member=world.a1, brand=world.brand, segment="important_value", lifecycle_stage="mature")
    MemberRfm.objects.create(member=world.b1, brand=world.brand, segment="general_value", lifecycle_stage="mature")
    channels = ("guide_task", "wecom", "sms")

    important = send(world, world.a1, channels=channels)
    general = send(world, world.b1, channels=channels)
    result = deliveries_dispatch(now=at(4, 10, 1))

    important.refresh_from_db()
    item = CareItem.objects.get()
    assert (general.channel, important.channel) == ("wecom", "guide_task")
    assert (result.sent, important.status, important.sent_at, important.provider_message_id) == (
        2, "to_guide", at(4, 10, 1), f"care-item:{item.pk}")
    assert (item.day, item.guide_id, item.member_id, item.brand_id, item.kind, item.important, item.reason_code,
            item.reason_params, item.reason_text, item.action_text, item.done_at) == (
        dt.date(2030, 3, 4), world.li.pk, world.a1.pk, world.brand.pk, "market", True, "campaign",
        {"source": "campaign:1/step:1"}, "春季新品：请亲自邀约到店试穿", "电话邀约，送新品体验券", None)
    assert [s.message.external_userids for s in fake.group_sends()] == [["wm-b1"]]  # the system messaged b1 only
    assert fake.sent_messages() == []


def test_guide_tasks_keep_the_restraint_and_need_a_bound_guide(world):
    MemberRfm.objects.create(member=world.a1, brand=world.brand, segment="important_retain", lifecycle_stage="mature")
    loner = MemberFactory(group=world.brand.group)
    BrandMembershipFactory(member=loner, brand=world.brand, store=world.store)
    MemberRfm.objects.create(member=loner, brand=world.brand, segment="important_value", lifecycle_stage="mature")
    channels = ("guide_task", "sms")

    tasks = [send(world, world.a1, f"campaign:{n}/step:1", when=at(4, 10 + n), channels=channels) for n in (1, 2, 3)]
    unbound = send(world, loner, channels=channels)

    assert [(d.channel, d.status, d.hold_reason) for d in tasks] == [
        ("guide_task", "queued", ""), ("guide_task", "queued", ""), ("guide_task", "held", "frequency_cap")]
    assert unbound.channel == "sms"  # no bound guide: the system's channel
    deliveries_dispatch(now=at(4, 13))
    assert CareItem.objects.count() == 1  # one item per guide, member and day: the second campaign joins it
    assert list(Delivery.objects.filter(channel="guide_task").order_by("pk").values_list("status", flat=True)) == [
        "to_guide", "to_guide", "held"]
