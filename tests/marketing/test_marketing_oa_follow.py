"""The official account's follow callback: WeChat's signature, the URL check, follow / SCAN / unfollow events
linking the follower's openid to the member with their unionid (once, however often WeChat delivers it),
messages ignored with ``success``, bad bodies refused with 400, the real ``user/info`` client against its
documented request shape, and production refusing the fake look-up.

No network: the real client takes a transport, and the tests hand it one that records and answers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from marketing import followers
from marketing.channels import (
    Follower,
    OutcomeUnknown,
    OutgoingMessage,
    PermanentFailure,
    TemporaryFailure,
    get_follower_lookup,
)
from marketing.channels.fake import FakeFollowerLookup
from marketing.channels.official_account import OfficialAccountFollowers, OfficialAccountTemplates
from members.models import Member
from retail_crm.errors import ApplicationError
from tests.factories import BrandFactory, BrandMembershipFactory, MemberFactory, RetailGroupFactory, StoreFactory

CALLBACK = "/api/v1/marketing/official-account/callback/"
TOKEN = "oa-callback-token"
TIMESTAMP, NONCE = "1893456000", "472815"
TOKEN_URL = "https://api.weixin.qq.com/cgi-bin/stable_token"
USER_INFO_URL = "https://api.weixin.qq.com/cgi-bin/user/info?"
JSON = {"Content-Type": "application/json; charset=utf-8"}
TOKEN_BODY = {"grant_type": "client_credential", "appid": "wxoa0000000000001", "secret": "oa-local-secret",
              "force_refresh": False}


def sign(timestamp: str = TIMESTAMP, nonce: str = NONCE, token: str = TOKEN) -> dict[str, str]:
    """The query WeChat sends: the signature computed here independently of the code under test."""
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()  # noqa: S324
    return {"signature": signature, "timestamp": timestamp, "nonce": nonce}


def event_xml(event: str, openid: str = "oOA-wang-li", *, msg_type: str = "event", event_key: str = "") -> str:
    """A push as WeChat's documentation shows it (CDATA sections, the account's original id as ToUserName)."""
    return ("<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>1893456000</CreateTime>"
            f"<MsgType><![CDATA[{msg_type}]]></MsgType><Event><![CDATA[{event}]]></Event>"
            f"<EventKey><![CDATA[{event_key}]]></EventKey></xml>")


def push(client, body: str | bytes, query: dict | None = None, **extra):
    return client.post(f"{CALLBACK}?{urlencode(query or sign())}", data=body, content_type="text/xml", **extra)


@pytest.fixture
def world(db, settings):
    """Two groups with a member of unionid ``u-oOA-wang-li`` each; the official account is group grp's."""
    settings.OFFICIAL_ACCOUNT_CALLBACK_TOKEN = TOKEN
    settings.OFFICIAL_ACCOUNT_PROVIDER = "fake"
    settings.WECHAT_GROUP = "grp"
    group = RetailGroupFactory(code="grp")
    other_group = RetailGroupFactory(code="other", name="Other Group")
    brand = BrandFactory(group=group, code="WA")
    member = MemberFactory(group=group, unionid="u-oOA-wang-li", openid="o-mp-1")
    BrandMembershipFactory(member=member, brand=brand, store=StoreFactory(region__brand=brand))
    namesake = MemberFactory(group=other_group, unionid="u-oOA-wang-li")
    return type("World", (), dict(group=group, other_group=other_group, member=member, namesake=namesake))


def members_as_they_are() -> list[tuple]:
    return list(Member.objects.order_by("pk").values_list("pk", "group__code", "unionid", "openid", "oa_openid",
                                                          "merged_into_id"))


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


def token(value: str) -> dict:
    return {"access_token": value, "expires_in": 7200}


def user_info(openid: str = "oOA-wang-li", **extra) -> dict:
    """``user/info``'s answer for a follower (abridged to the fields the documentation promises)."""
    return {"subscribe": 1, "openid": openid, "language": "zh_CN", "subscribe_time": 1893455990,
            "remark": "", "groupid": 0, "tagid_list": [], "subscribe_scene": "ADD_SCENE_QR_CODE", "qr_scene": 0,
            "qr_scene_str": "", **extra}


def real_lookup(recorder) -> OfficialAccountFollowers:
    return OfficialAccountFollowers(appid="wxoa0000000000001", secret="oa-local-secret", transport=recorder,
                                    clock=lambda: 1_893_456_000.0)


class CountingLookup(FakeFollowerLookup):
    def __init__(self):
        self.asked = []

    def follower(self, openid):
        self.asked.append(openid)
        return super().follower(openid)


# ---------------------------------------------------------------------------- the signature and the URL check

def test_the_signature_is_the_sha1_of_the_sorted_token_timestamp_and_nonce():
    expected = hashlib.sha1(b"1893456000472815oa-callback-token").hexdigest()  # noqa: S324

    assert followers.callback_signature(token=TOKEN, timestamp=TIMESTAMP, nonce=NONCE) == expected
    assert sign()["signature"] == expected


def test_the_url_check_answers_echostr_as_text(client, world):
    response = client.get(CALLBACK, {**sign(), "echostr": "1368519312469262262"})

    assert (response.status_code, response["Content-Type"], response.content) == (
        200, "text/plain; charset=utf-8", b"1368519312469262262")


def test_a_signature_in_upper_case_is_the_same_signature(client, world):
    query = sign()
    response = client.get(CALLBACK, {**query, "signature": query["signature"].upper(), "echostr": "e1"})

    assert (response.status_code, response.content) == (200, b"e1")


def test_a_wrong_signature_is_403_and_missing_parameters_400(client, world):
    wrong_token = client.get(CALLBACK, {**sign(token="someone-else"), "echostr": "e1"})
    forged = client.get(CALLBACK, {**sign(), "signature": "f" * 40, "echostr": "e1"})
    replayed_elsewhere = client.get(CALLBACK, {**sign(), "nonce": "472816", "echostr": "e1"})
    not_ascii = client.get(CALLBACK, {**sign(), "signature": "签名", "echostr": "e1"})
    missing = client.get(CALLBACK, {"timestamp": TIMESTAMP})
    post_missing = client.post(CALLBACK, data=event_xml("subscribe"), content_type="text/xml")

    for refused in (wrong_token, forged, replayed_elsewhere, not_ascii):
        assert (refused.status_code, refused.json()) == (403, {"error": {
            "code": "official_account_bad_signature", "message": "The signature does not match."}})
    assert (missing.status_code, missing.json()) == (400, {"error": {
        "code": "invalid", "message": "Missing callback parameters.",
        "fields": {"signature": ["This parameter is required."], "nonce": ["This parameter is required."],
                   "echostr": ["This parameter is required."]}}})
    assert (post_missing.status_code, post_missing.json()["error"]["fields"]) == (400, {
        "signature": ["This parameter is required."], "timestamp": ["This parameter is required."],
        "nonce": ["This parameter is required."]})


def test_a_push_with_a_wrong_signature_links_nobody(client, world):
    before = members_as_they_are()
    response = push(client, event_xml("subscribe"), {**sign(), "signature": "0" * 40})

    assert response.status_code == 403
    assert members_as_they_are() == before


def test_without_a_callback_token_the_callback_is_503(client, world, settings):
    settings.OFFICIAL_ACCOUNT_CALLBACK_TOKEN = ""
    check = client.get(CALLBACK, {**sign(token=""), "echostr": "e1"})
    event = push(client, event_xml("subscribe"), sign(token=""))

    for response in (check, event):
        assert (response.status_code, response.json()) == (503, {"error": {
            "code": "official_account_not_configured",
            "message": "Set OFFICIAL_ACCOUNT_CALLBACK_TOKEN to the token of the official account's server "
                       "configuration."}})
    assert Member.objects.get(pk=world.member.pk).oa_openid == ""


# ---------------------------------------------------------------------------- follows, scans and unfollows

def test_a_follow_links_the_openid_to_the_member_with_the_unionid_user_info_gives(client, world):
    count = Member.objects.count()
    response = push(client, event_xml("subscribe"))

    world.member.refresh_from_db()
    world.namesake.refresh_from_db()
    assert (response.status_code, response["Content-Type"], response.content) == (
        200, "text/plain; charset=utf-8", b"success")
    assert (world.member.oa_openid, world.namesake.oa_openid, Member.objects.count()) == ("oOA-wang-li", "", count)


def test_a_follow_by_someone_new_creates_their_identity_in_the_account_s_group(client, world):
    count = Member.objects.count()
    response = push(client, event_xml("subscribe", "oOA-newcomer", event_key="qrscene_store42"))

    newcomer = Member.objects.get(oa_openid="oOA-newcomer")
    assert response.content == b"success"
    assert (newcomer.group.code, newcomer.unionid, newcomer.openid, newcomer.phone, newcomer.memberships.count(),
            Member.objects.count()) == ("grp", "u-oOA-newcomer", "", "", 0, count + 1)


def test_the_same_follow_delivered_twice_changes_nothing(client, world):
    first = push(client, event_xml("subscribe"))
    after_first = members_as_they_are()
    again = push(client, event_xml("subscribe"))
    newcomer = [push(client, event_xml("subscribe", "oOA-newcomer")) for _ in range(2)]

    assert [r.content for r in (first, again, *newcomer)] == [b"success"] * 4
    assert members_as_they_are()[:len(after_first)] == after_first
    assert Member.objects.count() == len(after_first) + 1
    assert Member.objects.filter(oa_openid="oOA-newcomer").count() == 1


def test_a_follower_scanning_a_parametric_qr_code_is_linked_too(client, world):
    response = push(client, event_xml("SCAN", event_key="store42"))

    world.member.refresh_from_db()
    assert (response.content, world.member.oa_openid) == (b"success", "oOA-wang-li")


def test_an_openid_moves_to_the_member_user_info_names(client, world):
    stale = MemberFactory(group=world.group, unionid="u-someone-else", oa_openid="oOA-wang-li")  # an old, wrong link
    push(client, event_xml("subscribe"))

    stale.refresh_from_db()
    world.member.refresh_from_db()
    assert (world.member.oa_openid, stale.oa_openid) == ("oOA-wang-li", "")


def test_an_unfollow_forgets_the_link_and_its_redelivery_changes_nothing(client, world, monkeypatch):
    Member.objects.filter(pk=world.member.pk).update(oa_openid="oOA-wang-li")
    lookup = CountingLookup()
    monkeypatch.setattr(followers, "get_follower_lookup", lambda: lookup)
    responses = [push(client, event_xml("unsubscribe")) for _ in range(2)]

    world.member.refresh_from_db()
    assert [r.content for r in responses] == [b"success", b"success"]
    assert (world.member.oa_openid, lookup.asked) == ("", [])  # an unfollow never looks anyone up


def test_unfollow_then_follow_again_links_again(client, world):
    push(client, event_xml("subscribe"))
    push(client, event_xml("unsubscribe"))
    push(client, event_xml("subscribe"))

    world.member.refresh_from_db()
    assert world.member.oa_openid == "oOA-wang-li"


@pytest.mark.skipif(django_settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                    reason="concurrency tests need PostgreSQL (set DATABASE_URL)")
@pytest.mark.django_db(transaction=True)
def test_a_follow_and_its_redeliveries_at_once_make_one_member_with_the_openid(settings):
    # WeChat delivers again after 5 s without an answer: a slow first delivery can overlap its retries.
    settings.OFFICIAL_ACCOUNT_PROVIDER, settings.WECHAT_GROUP = "fake", "grp"
    RetailGroupFactory(code="grp")
    message = followers.CallbackMessage(msg_type="event", event="subscribe", openid="oOA-rush")
    barrier = threading.Barrier(4)

    def deliver():
        try:
            barrier.wait(timeout=10)
            return followers.follower_event_apply(message=message).member.pk
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        linked = [f.result(timeout=60) for f in [pool.submit(deliver) for _ in range(4)]]

    assert list(Member.objects.values_list("pk", "unionid", "oa_openid")) == [(linked[0], "u-oOA-rush", "oOA-rush")]
    assert set(linked) == {linked[0]}


@pytest.mark.parametrize("body", [
    event_xml("CLICK", event_key="MENU_NEW_ARRIVALS"),
    event_xml("VIEW", event_key="https://mall.example.com/"),
    event_xml("LOCATION"),
    event_xml("TEMPLATESENDJOBFINISH"),
    event_xml("subscribe_msg_popup_event"),
    "<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[oOA-wang-li]]></FromUserName>"
    "<CreateTime>1893456000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[subscribe]]></Content>"
    "<MsgId>23456789012345678</MsgId></xml>",
    "<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><CreateTime>1893456000</CreateTime></xml>",
], ids=["click", "view", "location", "template-job", "mp-popup", "text", "no-type"])
def test_other_messages_and_events_are_answered_success_and_change_nothing(client, world, monkeypatch, body):
    lookup = CountingLookup()
    monkeypatch.setattr(followers, "get_follower_lookup", lambda: lookup)
    before = members_as_they_are()
    response = push(client, body)

    assert (response.status_code, response.content) == (200, b"success")
    assert (members_as_they_are(), lookup.asked) == (before, [])


# ---------------------------------------------------------------------------- what user/info says

def test_a_follower_without_a_unionid_is_logged_answered_success_and_linked_nowhere(client, world, monkeypatch,
                                                                                      caplog):
    recorder = Recorder(token("TOKEN-A"), user_info())  # no "unionid": the account is bound to no Open Platform
    monkeypatch.setattr(followers, "get_follower_lookup", lambda: real_lookup(recorder))
    before = members_as_they_are()
    with caplog.at_level(logging.INFO, logger="marketing"):
        response = push(client, event_xml("subscribe"))

    assert (response.status_code, response.content) == (200, b"success")
    assert members_as_they_are() == before
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "Official-account callback: WeChat gives no unionid for oOA-wang-li (is the account bound to "
                    "the mini-program's WeChat Open Platform account?); not linked"),
        ("INFO", "Official-account callback event subscribe ignored: no unionid")]


def test_the_fake_look_up_has_no_unionid_for_nounion_openids(client, world):
    before = members_as_they_are()
    response = push(client, event_xml("subscribe", "nounion:oOA-x"))

    assert (response.content, members_as_they_are()) == (b"success", before)


def test_someone_who_no_longer_follows_by_the_time_we_ask_is_not_linked(client, world, monkeypatch):
    recorder = Recorder(token("TOKEN-A"), {"subscribe": 0, "openid": "oOA-wang-li"})
    monkeypatch.setattr(followers, "get_follower_lookup", lambda: real_lookup(recorder))
    before = members_as_they_are()
    response = push(client, event_xml("subscribe"))

    assert (response.content, members_as_they_are()) == (b"success", before)


def test_a_look_up_that_may_work_later_is_503_so_wechat_delivers_the_event_again(client, world, monkeypatch):
    recorder = Recorder(token("TOKEN-A"), {"errcode": -1, "errmsg": "system error"},
                        user_info(unionid="u-oOA-wang-li"))  # the retry uses the cached token
    monkeypatch.setattr(followers, "get_follower_lookup", lambda: real_lookup(recorder))
    busy = push(client, event_xml("subscribe"))
    world.member.refresh_from_db()
    linked_before_retry = world.member.oa_openid
    retried = push(client, event_xml("subscribe"))

    world.member.refresh_from_db()
    assert (busy.status_code, busy.json()) == (503, {"error": {
        "code": "official_account_api_error",
        "message": "WeChat's user/info could not be reached; deliver the event again."}})
    assert (linked_before_retry, retried.content, world.member.oa_openid) == ("", b"success", "oOA-wang-li")


def test_a_look_up_refused_for_good_is_logged_and_answered_success(client, world, monkeypatch, caplog):
    recorder = Recorder(token("TOKEN-A"), {"errcode": 48001, "errmsg": "api unauthorized"})
    monkeypatch.setattr(followers, "get_follower_lookup", lambda: real_lookup(recorder))
    before = members_as_they_are()
    with caplog.at_level(logging.ERROR, logger="marketing"):
        response = push(client, event_xml("subscribe"))

    assert (response.content, members_as_they_are()) == (b"success", before)
    assert [r.getMessage() for r in caplog.records] == [
        "Official-account callback: subscribe event of oOA-wang-li not linked: "
        "official account user/info 48001: api unauthorized"]


def test_without_the_account_s_credentials_a_follow_is_503(client, world, settings):
    settings.OFFICIAL_ACCOUNT_PROVIDER = "wechat"
    settings.OFFICIAL_ACCOUNT_APPID, settings.OFFICIAL_ACCOUNT_SECRET = "wxoa0000000000001", ""
    response = push(client, event_xml("subscribe"))

    assert (response.status_code, response.json()) == (503, {"error": {
        "code": "official_account_not_configured",
        "message": "Official-account follower look-ups need OFFICIAL_ACCOUNT_SECRET"}})


def test_without_wechat_group_and_with_two_groups_a_follow_is_503(client, world, settings):
    settings.WECHAT_GROUP = ""
    response = push(client, event_xml("subscribe"))

    assert (response.status_code, response.json()["error"]) == (503, {
        "code": "official_account_not_configured",
        "message": "Set WECHAT_GROUP to the code of the group the mini-program belongs to"})


# ---------------------------------------------------------------------------- bodies refused

@pytest.mark.parametrize(("body", "code", "message"), [
    ("<xml><MsgType>event</MsgType>", "official_account_bad_message",
     "Malformed XML: no element found: line 1, column 29"),
    ("", "official_account_bad_message", "Malformed XML: no element found: line 1, column 0"),
    ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
     "<xml><FromUserName>&b;</FromUserName></xml>", "official_account_bad_message",
     "XML with a DOCTYPE or entity declarations is not accepted."),
    ('<!doctype xml SYSTEM "file:///etc/passwd"><xml/>', "official_account_bad_message",
     "XML with a DOCTYPE or entity declarations is not accepted."),
    ("<html><body>subscribe</body></html>", "official_account_bad_message",
     "Not a WeChat message: the root element is <html>, not <xml>."),
    ("<xml><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event></xml>",
     "official_account_bad_message", "A subscribe event without FromUserName."),
    ("<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><Encrypt><![CDATA[bm90IHBsYWludGV4dA==]]></Encrypt>"
     "</xml>", "official_account_encrypted",
     "Encrypted messages are not supported: set the official account's message encryption (消息加解密方式) to "
     "plaintext mode (明文模式)."),
    (event_xml("subscribe").replace("</xml>", "<Encrypt><![CDATA[bm90IHBsYWludGV4dA==]]></Encrypt></xml>"),
     "official_account_encrypted",
     "Encrypted messages are not supported: set the official account's message encryption (消息加解密方式) to "
     "plaintext mode (明文模式)."),
], ids=["malformed", "empty", "entities", "doctype", "not-wechat", "no-openid", "safe-mode", "compatible-mode"])
def test_bad_bodies_are_400_with_a_code_and_change_nothing(client, world, body, code, message):
    before = members_as_they_are()
    response = push(client, body)

    assert (response.status_code, response.json()) == (400, {"error": {"code": code, "message": message}})
    assert members_as_they_are() == before


def test_a_body_over_64_kb_is_400_whether_declared_or_read(client, world):
    padding = "<!-- " + "x" * (64 * 1024) + " -->"
    too_big = push(client, event_xml("subscribe").replace("</xml>", padding + "</xml>"))
    # A declared length over the limit is refused before the body is read (the test client's payload would
    # refuse a read past its end).
    declared = push(client, event_xml("subscribe"), CONTENT_LENGTH=str(64 * 1024 + 1))

    for response in (too_big, declared):
        assert (response.status_code, response.json()) == (400, {"error": {
            "code": "official_account_bad_message", "message": "The message is larger than 64 KB."}})
    with pytest.raises(ApplicationError, match="larger than 64 KB"):
        followers.callback_message(b"<xml>" + b" " * (64 * 1024) + b"</xml>")
    world.member.refresh_from_db()
    assert world.member.oa_openid == ""


def test_a_body_of_exactly_64_kb_is_read(client, world):
    body = event_xml("subscribe")
    body = body.replace("</xml>", "<!--" + "x" * (64 * 1024 - len(body.encode()) - len("<!---->")) + "--></xml>")
    response = push(client, body)

    world.member.refresh_from_db()
    assert (len(body.encode()), response.content, world.member.oa_openid) == (64 * 1024, b"success", "oOA-wang-li")


# ---------------------------------------------------------------------------- the real user/info client

def test_the_look_up_asks_user_info_with_the_token_the_openid_and_zh_cn():
    recorder = Recorder(token("TOKEN-A"), user_info(unionid="o6_bmasdasdsad6_2sgVt7hMZOPfL"))

    follower = real_lookup(recorder).follower("oOA-wang-li")

    assert follower == Follower(openid="oOA-wang-li", following=True, unionid="o6_bmasdasdsad6_2sgVt7hMZOPfL")
    assert recorder.calls == [
        ("POST", TOKEN_URL, JSON, TOKEN_BODY),
        ("GET", USER_INFO_URL + "access_token=TOKEN-A&openid=oOA-wang-li&lang=zh_CN", {}, None)]


def test_an_openid_is_sent_url_encoded():
    recorder = Recorder(token("TOKEN-A"), user_info("o+A/b=c&d"))
    real_lookup(recorder).follower("o+A/b=c&d")

    assert recorder.calls[1][1] == USER_INFO_URL + "access_token=TOKEN-A&openid=o%2BA%2Fb%3Dc%26d&lang=zh_CN"


@pytest.mark.parametrize("errcode", [40001, 42001, 40014])
def test_a_rejected_token_is_renewed_once_and_the_look_up_asked_again(errcode):
    rejected = {"errcode": errcode, "errmsg": "invalid credential, access_token is invalid or not latest"}
    recorder = Recorder(token("TOKEN-A"), rejected, token("TOKEN-B"), user_info(unionid="u-1"))

    follower = real_lookup(recorder).follower("oOA-wang-li")

    assert follower == Follower(openid="oOA-wang-li", following=True, unionid="u-1")
    assert [(method, url, body and body["force_refresh"]) for method, url, _, body in recorder.calls] == [
        ("POST", TOKEN_URL, False),
        ("GET", USER_INFO_URL + "access_token=TOKEN-A&openid=oOA-wang-li&lang=zh_CN", None),
        ("POST", TOKEN_URL, False),
        ("GET", USER_INFO_URL + "access_token=TOKEN-B&openid=oOA-wang-li&lang=zh_CN", None)]


def test_when_wechat_hands_back_the_rejected_token_a_new_one_is_forced():
    recorder = Recorder(token("TOKEN-A"), {"errcode": 40001, "errmsg": "invalid credential"}, token("TOKEN-A"),
                        token("TOKEN-C"), user_info(unionid="u-1"))
    real_lookup(recorder).follower("oOA-wang-li")

    assert [(url.split("?")[0], body and body["force_refresh"]) for _, url, _, body in recorder.calls] == [
        (TOKEN_URL, False), (USER_INFO_URL[:-1], None), (TOKEN_URL, False), (TOKEN_URL, True),
        (USER_INFO_URL[:-1], None)]


def test_the_look_up_shares_the_template_channel_s_cached_token():
    channel = Recorder(token("TOKEN-A"), {"errcode": 0, "errmsg": "ok", "msgid": 1})
    OfficialAccountTemplates(appid="wxoa0000000000001", secret="oa-local-secret", transport=channel,
                             clock=lambda: 1_893_456_000.0).send(OutgoingMessage(
                                 delivery_id=1, channel="official_account", address="oOA-wang-li", template="TPL",
                                 params={}))
    lookup = Recorder(user_info(unionid="u-1"))
    real_lookup(lookup).follower("oOA-wang-li")

    assert [url for _, url, _, _ in lookup.calls] == [
        USER_INFO_URL + "access_token=TOKEN-A&openid=oOA-wang-li&lang=zh_CN"]


@pytest.mark.parametrize(("answers", "raised", "text"), [
    ([{"errcode": -1, "errmsg": "system error"}], TemporaryFailure, "official account user/info -1: system error"),
    ([{"errcode": 45009, "errmsg": "reach max api daily quota limit"}], TemporaryFailure,
     "official account user/info 45009: reach max api daily quota limit"),
    ([{"errcode": 42001, "errmsg": "access_token expired"}, token("TOKEN-B"),
      {"errcode": 42001, "errmsg": "access_token expired"}], TemporaryFailure,
     "official account user/info 42001: access_token expired"),
    ([OutcomeUnknown("no answer: TimeoutError")], TemporaryFailure, "no answer: TimeoutError"),
    ([TemporaryFailure("unreachable: [Errno 111] Connection refused")], TemporaryFailure,
     "unreachable: [Errno 111] Connection refused"),
    ([{"errcode": 40003, "errmsg": "invalid openid"}], PermanentFailure,
     "official account user/info 40003: invalid openid"),
    ([{"errcode": 48001, "errmsg": "api unauthorized"}], PermanentFailure,
     "official account user/info 48001: api unauthorized"),
], ids=["busy", "quota", "token-twice", "no-answer", "unreachable", "invalid-openid", "unauthorized"])
def test_errcodes_map_to_asking_again_or_giving_up(answers, raised, text):
    recorder = Recorder(token("TOKEN-A"), *answers)
    with pytest.raises(raised) as exc_info:
        real_lookup(recorder).follower("oOA-wang-li")

    assert (type(exc_info.value), str(exc_info.value)) == (raised, text)


def test_someone_who_does_not_follow_has_no_unionid():
    recorder = Recorder(token("TOKEN-A"), {"subscribe": 0, "openid": "oOA-gone"})

    assert real_lookup(recorder).follower("oOA-gone") == Follower(openid="oOA-gone", following=False, unionid="")


def test_the_look_up_is_refused_without_the_account_s_credentials(settings):
    settings.OFFICIAL_ACCOUNT_APPID, settings.OFFICIAL_ACCOUNT_SECRET = "", ""

    with pytest.raises(ImproperlyConfigured) as exc_info:
        OfficialAccountFollowers()
    assert str(exc_info.value) == (
        "Official-account follower look-ups need OFFICIAL_ACCOUNT_APPID, OFFICIAL_ACCOUNT_SECRET")


# ---------------------------------------------------------------------------- the fake, and production refusing it

def test_the_setting_picks_the_fake_or_the_real_look_up(settings):
    settings.OFFICIAL_ACCOUNT_APPID, settings.OFFICIAL_ACCOUNT_SECRET = "wxoa0000000000001", "oa-local-secret"
    settings.OFFICIAL_ACCOUNT_PROVIDER = "fake"
    fake = get_follower_lookup()
    settings.OFFICIAL_ACCOUNT_PROVIDER = "wechat"
    real = get_follower_lookup()
    settings.OFFICIAL_ACCOUNT_PROVIDER = "mp"
    with pytest.raises(ImproperlyConfigured) as exc_info:
        get_follower_lookup()

    assert (type(fake), type(real), str(exc_info.value)) == (
        FakeFollowerLookup, OfficialAccountFollowers, "Unknown follower look-up 'mp' (OFFICIAL_ACCOUNT_PROVIDER)")


def test_the_fake_is_deterministic():
    fake = FakeFollowerLookup()

    assert [fake.follower(openid) for openid in ("oOA-1", "oOA-1", "nounion:oOA-2", "gone:oOA-3")] == [
        Follower("oOA-1", True, "u-oOA-1"), Follower("oOA-1", True, "u-oOA-1"),
        Follower("nounion:oOA-2", True, ""), Follower("gone:oOA-3", False, "")]
    with pytest.raises(TemporaryFailure):
        fake.follower("busy:oOA-4")
    with pytest.raises(PermanentFailure):
        fake.follower("fail:oOA-5")


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


def test_production_refuses_to_start_with_the_fake_look_up_and_uses_the_real_one_by_default():
    refused = _manage("check", **PRODUCTION, OFFICIAL_ACCOUNT_PROVIDER="fake")
    shown = _manage("shell", "--no-imports", "-c",
                    "from django.conf import settings; from marketing.channels import FOLLOWER_ADAPTERS; "
                    "print(FOLLOWER_ADAPTERS[settings.OFFICIAL_ACCOUNT_PROVIDER])", **PRODUCTION)

    assert (refused.returncode, refused.stderr.splitlines()) == (2, [
        "Configuration error: OFFICIAL_ACCOUNT_PROVIDER=fake is refused with DEBUG off (configure the real "
        "provider; a staging box may set ALLOW_FAKE_PROVIDERS_IN_PRODUCTION=1)"])
    assert (shown.returncode, shown.stdout.splitlines()) == (
        0, ["marketing.channels.official_account.OfficialAccountFollowers"])
