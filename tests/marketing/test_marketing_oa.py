"""Official-account template messages: the WeChat client against its documented request shapes (token,
send), the token's cache and refresh, errcodes mapped to sent / temporary / permanent, the openid linked
through the unionid, unlinked members falling through to the next channel, and production refusing the fake.

No network: the client takes a transport, and the tests hand it one that records and answers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ImproperlyConfigured

from marketing.channels import OutcomeUnknown, OutgoingMessage, PermanentFailure, TemporaryFailure, fake, get_channel
from marketing.channels.official_account import OfficialAccountTemplates
from marketing.services import deliveries_dispatch, message_send
from members.models import Member
from members.services import member_merge, member_official_account_link
from retail_crm.checks import check_fake_providers
from tests.factories import BrandFactory, BrandMembershipFactory, MemberFactory, StoreFactory

SH = ZoneInfo("Asia/Shanghai")
TOKEN_URL = "https://api.weixin.qq.com/cgi-bin/stable_token"
SEND_URL = "https://api.weixin.qq.com/cgi-bin/message/template/send?access_token="
JSON = {"Content-Type": "application/json; charset=utf-8"}
TOKEN_BODY = {"grant_type": "client_credential", "appid": "wxoa0000000000001", "secret": "oa-local-secret",
              "force_refresh": False}
OA = {"official_account": {"template": "TPL-NEW-ARRIVALS", "params": {"thing1": "春季新品", "time2": "3月4日"},
                           "url": "https://mall.example.com/p/42"}}
SMS = {"sms": {"template": "SMS_1001", "params": {"name": "王丽"}}}


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2030, 3, day, hour, minute, tzinfo=SH)


class Recorder:
    """A transport that records each request and answers the next prepared answer (or raises it)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, method, url, headers, body):
        self.calls.append((method, url, headers, json.loads(body) if body else None))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return 200, json.dumps(answer, ensure_ascii=False).encode()


def token(value: str, expires_in: int = 7200) -> dict:
    return {"access_token": value, "expires_in": expires_in}


OK = {"errcode": 0, "errmsg": "ok", "msgid": 200228332}


class Clock:
    def __init__(self, now: float = 1_893_456_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def client(recorder, clock=None):
    return OfficialAccountTemplates(appid="wxoa0000000000001", secret="oa-local-secret", transport=recorder,
                                    clock=clock or Clock())


MESSAGE = OutgoingMessage(delivery_id=42, channel="official_account", address="oOA-member-1",
                          template="TPL-NEW-ARRIVALS", params={"thing1": "春季新品", "time2": "3月4日"},
                          options=OA["official_account"])


@pytest.fixture(autouse=True)
def _clean_fake():
    fake.reset()
    yield
    fake.reset()


def test_send_fetches_a_stable_token_and_posts_the_documented_template_message():
    recorder = Recorder(token("TOKEN-A"), OK)
    assert client(recorder).send(MESSAGE) == "200228332"
    assert recorder.calls == [
        ("POST", TOKEN_URL, JSON, TOKEN_BODY),
        ("POST", SEND_URL + "TOKEN-A", JSON, {
            "touser": "oOA-member-1", "template_id": "TPL-NEW-ARRIVALS", "url": "https://mall.example.com/p/42",
            "client_msg_id": "delivery-42",
            "data": {"thing1": {"value": "春季新品"}, "time2": {"value": "3月4日"}}}),
    ]


def test_a_mini_program_page_is_sent_with_the_mini_program_s_app_id(settings):
    settings.WECHAT_APPID = "wxmp0000000000009"
    message = OutgoingMessage(delivery_id=7, channel="official_account", address="oOA-member-1", template="TPL",
                              params={"thing1": "会员日"},
                              options={"miniprogram": {"pagepath": "pages/home/index?c=7"}})
    recorder = Recorder(token("TOKEN-A"), OK)
    client(recorder).send(message)
    assert recorder.calls[1][3] == {
        "touser": "oOA-member-1", "template_id": "TPL",
        "miniprogram": {"appid": "wxmp0000000000009", "pagepath": "pages/home/index?c=7"},
        "client_msg_id": "delivery-7", "data": {"thing1": {"value": "会员日"}}}


def test_the_token_is_cached_until_shortly_before_it_expires():
    clock = Clock()
    recorder = Recorder(token("TOKEN-A"), OK, OK, token("TOKEN-B"), OK)
    oa = client(recorder, clock)
    oa.send(MESSAGE)
    clock.now += 7200 - 300 - 1  # still inside the token's life less the five-minute margin
    oa.send(MESSAGE)
    clock.now += 1
    oa.send(MESSAGE)
    assert [(url, body and body.get("force_refresh")) for _, url, _, body in recorder.calls] == [
        (TOKEN_URL, False), (SEND_URL + "TOKEN-A", None), (SEND_URL + "TOKEN-A", None),
        (TOKEN_URL, False), (SEND_URL + "TOKEN-B", None)]


@pytest.mark.parametrize("errcode", [40001, 42001, 40014])
def test_a_rejected_token_is_renewed_once_and_the_message_sent_again(errcode):
    rejected = {"errcode": errcode, "errmsg": "invalid credential, access_token is invalid or not latest"}
    recorder = Recorder(token("TOKEN-A"), rejected, token("TOKEN-B"), OK)
    assert client(recorder).send(MESSAGE) == "200228332"
    assert [(url, body.get("force_refresh"), body.get("client_msg_id")) for _, url, _, body in recorder.calls] == [
        (TOKEN_URL, False, None), (SEND_URL + "TOKEN-A", None, "delivery-42"),
        (TOKEN_URL, False, None), (SEND_URL + "TOKEN-B", None, "delivery-42")]


def test_when_wechat_hands_back_the_rejected_token_a_new_one_is_forced():
    recorder = Recorder(token("TOKEN-A"), {"errcode": 40001, "errmsg": "invalid credential"}, token("TOKEN-A"),
                        token("TOKEN-C"), OK)
    client(recorder).send(MESSAGE)
    assert [(url, body.get("force_refresh")) for _, url, _, body in recorder.calls] == [
        (TOKEN_URL, False), (SEND_URL + "TOKEN-A", None), (TOKEN_URL, False), (TOKEN_URL, True),
        (SEND_URL + "TOKEN-C", None)]


@pytest.mark.parametrize(("answers", "raised", "text"), [
    ([{"errcode": -1, "errmsg": "system error"}], TemporaryFailure, "official account -1: system error"),
    ([{"errcode": 45009, "errmsg": "reach max api daily quota limit"}], TemporaryFailure,
     "official account 45009: reach max api daily quota limit"),
    ([{"errcode": 40003, "errmsg": "invalid openid"}], PermanentFailure, "official account 40003: invalid openid"),
    ([{"errcode": 40037, "errmsg": "invalid template_id"}], PermanentFailure,
     "official account 40037: invalid template_id"),
    ([{"errcode": 42001, "errmsg": "access_token expired"}, token("TOKEN-B"),
      {"errcode": 42001, "errmsg": "access_token expired"}], TemporaryFailure,
     "official account 42001: access_token expired"),
    ([OutcomeUnknown("no answer: TimeoutError")], OutcomeUnknown, "no answer: TimeoutError"),
    ([TemporaryFailure("unreachable: [Errno 111] Connection refused")], TemporaryFailure,
     "unreachable: [Errno 111] Connection refused"),
])
def test_errcodes_map_to_temporary_or_permanent_failures(answers, raised, text):
    recorder = Recorder(token("TOKEN-A"), *answers)
    with pytest.raises(raised) as exc_info:
        client(recorder).send(MESSAGE)
    assert str(exc_info.value) == text
    assert issubclass(OutcomeUnknown, PermanentFailure)  # an unanswered send is never repeated


def test_a_token_endpoint_refusal_is_temporary():
    with pytest.raises(TemporaryFailure, match="stable_token 40125: invalid appsecret"):
        client(Recorder({"errcode": 40125, "errmsg": "invalid appsecret"})).send(MESSAGE)


def test_missing_credentials_refuse_to_build_a_client(settings):
    settings.OFFICIAL_ACCOUNT_APPID, settings.OFFICIAL_ACCOUNT_SECRET = "wxoa1", ""
    settings.MARKETING_CHANNELS = {**settings.MARKETING_CHANNELS, "official_account": "wechat"}
    with pytest.raises(ImproperlyConfigured, match="Official-account messages need OFFICIAL_ACCOUNT_SECRET"):
        get_channel("official_account")


# ---------------------------------------------------------------------------- the openid, the gateway, dispatch

@pytest.fixture
def world(db):
    brand = BrandFactory(code="WA")
    member = MemberFactory(group=brand.group, phone="+8613700000001", unionid="u-wang-li", openid="o-mp-1")
    BrandMembershipFactory(member=member, brand=brand, store=StoreFactory(region__brand=brand))
    return type("World", (), dict(brand=brand, member=member))


def send(world, source, *, when=None, channels=("official_account", "sms"), content=None, member=None):
    return message_send(member=member or world.member, brand=world.brand, kind="marketing", channels=list(channels),
                        source=source, content=content or {**OA, **SMS}, at=when or at(4, 10))


def test_the_openid_is_linked_through_the_unionid_and_moves_to_its_owner(world):
    other = MemberFactory(group=world.brand.group, oa_openid="oOA-member-1")  # an old, wrong link

    linked = member_official_account_link(group=world.brand.group, unionid="u-wang-li", oa_openid="oOA-member-1")
    again = member_official_account_link(group=world.brand.group, unionid="u-wang-li", oa_openid="oOA-member-1")
    newcomer = member_official_account_link(group=world.brand.group, unionid="u-new", oa_openid="oOA-new")

    other.refresh_from_db()
    assert (linked.pk, again.pk, linked.oa_openid, other.oa_openid) == (
        world.member.pk, world.member.pk, "oOA-member-1", "")
    assert (newcomer.unionid, newcomer.oa_openid, newcomer.memberships.count()) == ("u-new", "oOA-new", 0)


def test_a_merge_moves_the_openid_to_the_survivor(world):
    absorbed = MemberFactory(group=world.brand.group, oa_openid="oOA-old-card")
    result = member_merge(survivor=world.member, absorbed=absorbed, reason="same person")
    world.member.refresh_from_db()
    absorbed.refresh_from_db()
    assert (world.member.oa_openid, absorbed.oa_openid) == ("oOA-old-card", "")
    assert result.audit.absorbed_snapshot["oa_openid"] == "oOA-old-card"


def test_unlinked_members_are_not_addressable_and_fall_back_to_the_next_channel(world):
    unlinked = send(world, "campaign:1/step:1")
    only_oa = send(world, "campaign:2/step:1", channels=("official_account",))
    member_official_account_link(group=world.brand.group, unionid="u-wang-li", oa_openid="oOA-member-1")
    world.member.refresh_from_db()
    linked = send(world, "campaign:3/step:1", when=at(12, 10))

    assert [(d.channel, d.status, d.hold_reason) for d in (unlinked, only_oa, linked)] == [
        ("sms", "queued", ""), ("", "held", "no_consent"), ("official_account", "queued", "")]
    assert linked.content == OA["official_account"]


def test_dispatch_sends_the_template_message_to_the_linked_openid(world):
    Member.objects.filter(pk=world.member.pk).update(oa_openid="oOA-member-1")
    world.member.refresh_from_db()
    delivery = send(world, "campaign:1/step:1")
    result = deliveries_dispatch(now=at(4, 10, 1))

    delivery.refresh_from_db()
    assert (result.sent, delivery.status, delivery.provider_message_id) == (
        1, "sent", f"fake-official_account-{delivery.pk}")
    (message,) = fake.sent_messages()
    assert (message.channel, message.address, message.template, message.params, message.options["url"]) == (
        "official_account", "oOA-member-1", "TPL-NEW-ARRIVALS", {"thing1": "春季新品", "time2": "3月4日"},
        "https://mall.example.com/p/42")


def test_a_member_who_no_longer_follows_fails_for_good_and_is_unlinked(world, settings, monkeypatch):
    settings.MARKETING_CHANNELS = {**settings.MARKETING_CHANNELS, "official_account": "wechat"}
    settings.OFFICIAL_ACCOUNT_APPID, settings.OFFICIAL_ACCOUNT_SECRET = "wxoa0000000000001", "oa-local-secret"
    recorder = Recorder(token("TOKEN-A"), {"errcode": 43004, "errmsg": "require subscribe"},
                        {"errcode": 45009, "errmsg": "reach max api daily quota limit"})
    monkeypatch.setattr("marketing.channels.official_account.urllib_transport", recorder)
    other = MemberFactory(group=world.brand.group, phone="+8613700000002", oa_openid="oOA-member-2")
    Member.objects.filter(pk=world.member.pk).update(oa_openid="oOA-member-1")
    world.member.refresh_from_db()
    gone = send(world, "campaign:1/step:1")
    busy = send(world, "campaign:1/step:1", member=other)

    result = deliveries_dispatch(now=at(4, 10, 1))
    gone.refresh_from_db()
    busy.refresh_from_db()
    world.member.refresh_from_db()
    assert (result.sent, result.failed, result.retried) == (0, 1, 1)
    assert (gone.status, gone.error, world.member.oa_openid) == (
        "failed", "official account 43004: require subscribe", "")
    assert (busy.status, busy.attempts, busy.send_after) == ("queued", 1, at(4, 10, 3))  # 2 minutes' back-off
    next_step = send(world, "campaign:2/step:1", when=at(12, 10))
    assert next_step.channel == "sms"  # unlinked now: the next channel


# ---------------------------------------------------------------------------- production refuses the fake

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_SETTINGS_VARIABLES = ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS",
                       "WECHAT_PROVIDER", "WECOM_CLIENT", "PAYMENT_PROVIDER", "SMS_PROVIDER",
                       "OFFICIAL_ACCOUNT_PROVIDER", "ALLOW_FAKE_PROVIDERS_IN_PRODUCTION")
PRODUCTION = {"DEBUG": "0", "SECRET_KEY": "x" * 20 + "-production-like-secret-key-for-the-test-0123456789",
              "ALLOWED_HOSTS": "crm.example.com"}


def _manage(*args: str, **overrides: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if name not in _SETTINGS_VARIABLES}
    env.update(DJANGO_SETTINGS_MODULE="retail_crm.settings", PYTHONDONTWRITEBYTECODE="1", **overrides)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_production_refuses_the_fake_official_account_and_uses_the_real_channels_by_default():
    refused = _manage("check", **PRODUCTION, OFFICIAL_ACCOUNT_PROVIDER="fake")
    unknown = _manage("check", **PRODUCTION, OFFICIAL_ACCOUNT_PROVIDER="mp")
    shown = _manage("shell", "--no-imports", "-c",
                    "from django.conf import settings; print(sorted(settings.MARKETING_CHANNELS.items()))",
                    **PRODUCTION)
    assert (refused.returncode, refused.stderr.splitlines()) == (2, [
        "Configuration error: OFFICIAL_ACCOUNT_PROVIDER=fake is refused with DEBUG off (configure the real "
        "provider; a staging box may set ALLOW_FAKE_PROVIDERS_IN_PRODUCTION=1)"])
    assert (unknown.returncode, unknown.stderr.splitlines()) == (2, [
        "Configuration error: OFFICIAL_ACCOUNT_PROVIDER='mp' is not one of: fake, wechat"])
    assert shown.stdout.splitlines() == [
        "[('guide_task', 'guides'), ('official_account', 'wechat'), ('sms', 'tencent'), ('subscribe', None), "
        "('wecom', 'api')]"]


def test_the_deploy_check_names_a_forced_fake_official_account(settings):
    settings.DEBUG, settings.ALLOW_FAKE_PROVIDERS_IN_PRODUCTION = False, False
    settings.WECHAT_PROVIDER, settings.WECOM_CLIENT, settings.PAYMENT_PROVIDER = "real", "api", "wechat"
    settings.SMS_PROVIDER, settings.OFFICIAL_ACCOUNT_PROVIDER = "tencent", "fake"
    (message,) = check_fake_providers()
    assert (message.id, message.msg) == ("retail_crm.E001", "OFFICIAL_ACCOUNT_PROVIDER set to 'fake' with DEBUG off.")
