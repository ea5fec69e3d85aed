"""WeCom friendships: services, the callback codec (WeCom's published sample vectors), the callback endpoint,
the staff API, the API client (network replaced) and merging.

The codec is checked against the sample in WeCom's WXBizMsgCrypt SDK (token QDG6eK, corp id
wx5823bf96d3bd56c7): if our crypto drifted from WeCom's, those fixed vectors would stop decrypting.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from members import wecom
from members.errors import MembersErrorCode as WeComErrorCode
from members.models import Member, WeComFriendship
from members.wecom import (
    CallbackRejected,
    ExternalContact,
    FakeWeComClient,
    WeComApiClient,
    WeComApiError,
    WeComCallbackCodec,
    contact_change_from_xml,
    member_wecom_merge,
    wecom_friend_add,
    wecom_friend_remove,
)
from tests.factories import (
    BrandFactory,
    GuideFactory,
    MemberFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
    staff_user,
)

pytestmark = pytest.mark.django_db

TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"
SAMPLE_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3"
    "TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gs"
    "ijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUa"
    "x5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIG"
    "HBZZIs2pDBS8R07+qN+E7Q=="
)
SAMPLE_ECHOSTR = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
SAMPLE_POST_BODY = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{SAMPLE_ENCRYPT}]]>"
                    "</Encrypt><AgentID><![CDATA[218]]></AgentID></xml>")
CALLBACK = "/api/v1/wecom/callback/"
ADD = "/api/v1/wecom/friendships/"
REMOVE = "/api/v1/wecom/friendships/remove/"
T0 = dt.datetime(2024, 5, 1, 2, 0, tzinfo=dt.UTC)


def at(days: int) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


@pytest.fixture
def codec():
    return WeComCallbackCodec(token=TOKEN, encoding_aes_key=AES_KEY, receive_id=CORP_ID)


@pytest.fixture
def wecom_settings(settings):
    settings.WECOM_CALLBACK_TOKEN = TOKEN
    settings.WECOM_ENCODING_AES_KEY = AES_KEY
    settings.WECOM_CORP_ID = CORP_ID
    settings.WECOM_CLIENT = "fake"
    return settings


@pytest.fixture
def org():
    grp = RetailGroupFactory()
    brand_a = BrandFactory(group=grp, code="brand-a")
    brand_b = BrandFactory(group=grp, code="brand-b")
    store_a1 = StoreFactory(region=RegionFactory(brand=brand_a), code="a1")
    store_a2 = StoreFactory(region=store_a1.region, code="a2")
    store_b1 = StoreFactory(region=RegionFactory(brand=brand_b), code="b1")
    return SimpleNamespace(
        grp=grp, brand_a=brand_a, brand_b=brand_b, store_a1=store_a1, store_a2=store_a2, store_b1=store_b1,
        zhang=GuideFactory(store=store_a1, code="zhangsan"), li=GuideFactory(store=store_a1, code="lisi"),
        wang=GuideFactory(store=store_a2, code="wangwu"), zhao=GuideFactory(store=store_b1, code="zhaoliu"),
    )


def rows_of(member):
    """(guide code, external id, added_at, removed_at, source) of every friendship row, oldest first."""
    return [(f.guide.code, f.external_userid, f.added_at, f.removed_at, f.source)
            for f in WeComFriendship.objects.filter(member=member).order_by("added_at", "pk")]


# ---------------------------------------------------------------------------- services

def test_add_is_idempotent_and_remove_keeps_history_and_readd_opens_a_new_row(org):
    member = MemberFactory(group=org.grp)

    first, created = wecom_friend_add(member=member, guide=org.zhang, external_userid="wmEXT1", at=at(0),
                                      source="api")
    again, created_again = wecom_friend_add(member=member, guide=org.zhang, external_userid="wmOTHER", at=at(3),
                                            source="api")
    closed = wecom_friend_remove(member=member, guide=org.zhang, at=at(10))
    nothing_open = wecom_friend_remove(member=member, guide=org.zhang, at=at(11))
    readded, readded_created = wecom_friend_add(member=member, guide=org.zhang, external_userid="wmEXT1",
                                                at=at(20), source="callback")

    assert (created, created_again, readded_created) == (True, False, True)
    assert again.pk == first.pk and closed.pk == first.pk
    assert nothing_open is None
    assert rows_of(member) == [
        ("zhangsan", "wmEXT1", at(0), at(10), "api"),
        ("zhangsan", "wmEXT1", at(20), None, "callback"),
    ]


def test_stale_add_after_a_removal_and_stale_removal_before_a_readd_change_nothing(org):
    member = MemberFactory(group=org.grp)
    wecom_friend_add(member=member, guide=org.zhang, at=at(0), source="callback")
    wecom_friend_remove(member=member, guide=org.zhang, at=at(5))

    stale_add, created = wecom_friend_add(member=member, guide=org.zhang, at=at(2), source="callback")
    wecom_friend_add(member=member, guide=org.zhang, at=at(8), source="callback")
    stale_remove = wecom_friend_remove(member=member, guide=org.zhang, at=at(6))

    assert created is False and stale_add.removed_at == at(5)
    assert stale_remove is None
    assert rows_of(member) == [("zhangsan", "", at(0), at(5), "callback"), ("zhangsan", "", at(8), None, "callback")]


def test_merge_moves_friendships_and_keeps_the_earlier_of_two_open_rows_with_one_guide(org):
    survivor = MemberFactory(group=org.grp)
    absorbed = MemberFactory(group=org.grp)
    wecom_friend_add(member=survivor, guide=org.zhang, external_userid="s", at=at(5), source="api")
    wecom_friend_add(member=survivor, guide=org.wang, at=at(1), source="api")
    wecom_friend_add(member=absorbed, guide=org.zhang, external_userid="a", at=at(2), source="callback")
    wecom_friend_add(member=absorbed, guide=org.li, at=at(0), source="import")
    wecom_friend_remove(member=absorbed, guide=org.li, at=at(4))
    wecom_friend_add(member=absorbed, guide=org.zhao, at=at(3), source="import")
    before = timezone.now()

    moved = member_wecom_merge(survivor=survivor, absorbed=absorbed)

    assert moved == 3
    assert WeComFriendship.objects.filter(member=absorbed).count() == 0
    rows = rows_of(survivor)
    assert [r[:3] for r in rows] == [("lisi", "", at(0)), ("wangwu", "", at(1)), ("zhangsan", "a", at(2)),
                                     ("zhaoliu", "", at(3)), ("zhangsan", "s", at(5))]
    removed = {(r[0], r[2]): r[3] for r in rows}
    assert removed[("lisi", at(0))] == at(4)
    assert removed[("wangwu", at(1))] is None
    assert removed[("zhangsan", at(2))] is None  # the earlier open row stays open
    assert removed[("zhaoliu", at(3))] is None
    assert before <= removed[("zhangsan", at(5))] <= timezone.now()  # the later one is closed at merge time


# ---------------------------------------------------------------------------- codec

def test_codec_round_trip_with_a_test_key_matches_an_independent_aes_computation():
    key_text = base64.b64encode(bytes(range(32))).decode()[:-1]  # 43 chars, as WeCom shows EncodingAESKey
    codec = WeComCallbackCodec(token="tok", encoding_aes_key=key_text, receive_id="corp1")
    message = "<xml><Content><![CDATA[你好]]></Content></xml>"

    encrypted = codec.encrypt(message, random_prefix=b"R" * 16)

    body = message.encode()
    plain = b"R" * 16 + struct.pack(">I", len(body)) + body + b"corp1"
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    key = bytes(range(32))
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    assert encrypted == base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()
    assert codec.decrypt(encrypted) == message
    assert codec.signature("1700000000", "42", encrypted) == hashlib.sha1(  # noqa: S324 (WeCom's protocol)
        "".join(sorted(["tok", "1700000000", "42", encrypted])).encode()).hexdigest()


def test_codec_verifies_and_decrypts_wecoms_published_url_verification_sample(codec):
    echo = codec.verify_url(msg_signature="5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", timestamp="1409659589",
                            nonce="263014780",
                            echostr=SAMPLE_ECHOSTR)

    assert echo == "1616140317555161061"


def test_codec_decrypts_wecoms_published_message_sample(codec):
    root = codec.decrypt_post(msg_signature="477715d11cdb4164915debcba66cb864d751f3e6", timestamp="1409659813",
                              nonce="1372623149", body=SAMPLE_POST_BODY.encode())

    assert {child.tag: child.text for child in root} == {
        "ToUserName": CORP_ID, "FromUserName": "mycreate", "CreateTime": "1409659813", "MsgType": "text",
        "Content": "hello", "MsgId": "4561255354251345929", "AgentID": "218"}


def test_codec_refuses_forged_signature_tampered_text_and_another_corps_message(codec):
    with pytest.raises(CallbackRejected) as forged:
        codec.decrypt_post(msg_signature="0" * 40, timestamp="1409659813", nonce="1372623149",
                           body=SAMPLE_POST_BODY.encode())
    other_corp = WeComCallbackCodec(token=TOKEN, encoding_aes_key=AES_KEY, receive_id="wwOTHERCORP")
    with pytest.raises(CallbackRejected) as foreign:
        other_corp.decrypt(SAMPLE_ENCRYPT)
    tampered = base64.b64encode(b"\x00" * 32).decode()
    with pytest.raises(CallbackRejected) as garbled:
        codec.decrypt(tampered)

    assert forged.value.code == WeComErrorCode.BAD_SIGNATURE
    assert (foreign.value.code, str(foreign.value)) == (WeComErrorCode.BAD_MESSAGE,
                                                       "The message is for another corp id.")
    assert garbled.value.code == WeComErrorCode.BAD_MESSAGE


def test_contact_change_is_read_from_a_real_format_event():
    xml = ("<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
           "<CreateTime>1714528800</CreateTime><MsgType><![CDATA[event]]></MsgType>"
           "<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]></ChangeType>"
           "<UserID><![CDATA[zhangsan]]></UserID><ExternalUserID><![CDATA[woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA]]>"
           "</ExternalUserID><State><![CDATA[teststate]]></State><WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode>"
           "</xml>")

    change = contact_change_from_xml(wecom._parse_xml(xml))

    assert change == wecom.ContactChange(change_type="add_external_contact", user_id="zhangsan",
                                         external_userid="woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA",
                                         created_at=dt.datetime(2024, 5, 1, 2, 0, tzinfo=dt.UTC))


# ---------------------------------------------------------------------------- callback endpoint

def event_xml(change_type: str, user_id: str, external_userid: str, created: dt.datetime) -> str:
    return ("<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><FromUserName><![CDATA[sys]]>"
            f"</FromUserName><CreateTime>{int(created.timestamp())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            "<Event><![CDATA[change_external_contact]]></Event>"
            f"<ChangeType><![CDATA[{change_type}]]></ChangeType><UserID><![CDATA[{user_id}]]></UserID>"
            f"<ExternalUserID><![CDATA[{external_userid}]]></ExternalUserID></xml>")


def push(client, codec, message: str, *, signature: str | None = None):
    body, msg_signature = codec.encrypt_post(message, timestamp="1714528800", nonce="77")
    query = f"?msg_signature={signature or msg_signature}&timestamp=1714528800&nonce=77"
    return client.post(CALLBACK + query, data=body, content_type="text/xml")


@pytest.mark.urls("tests.urls_wecom")
def test_callback_url_verification_answers_the_plain_echo(client, wecom_settings):
    response = client.get(CALLBACK, {
        "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "timestamp": "1409659589", "nonce": "263014780",
        "echostr": SAMPLE_ECHOSTR})

    assert (response.status_code, response.content) == (200, b"1616140317555161061")


@pytest.mark.urls("tests.urls_wecom")
def test_callback_with_a_forged_signature_is_403_and_missing_parameters_400(client, wecom_settings):
    forged = client.get(CALLBACK, {"msg_signature": "f" * 40, "timestamp": "1409659589", "nonce": "263014780",
                                   "echostr": SAMPLE_ECHOSTR})
    missing = client.get(CALLBACK, {"timestamp": "1409659589"})

    assert forged.status_code == 403
    assert forged.json() == {"error": {"code": "wecom_bad_signature",
                                       "message": "The message signature does not match."}}
    assert missing.status_code == 400
    assert missing.json()["error"]["fields"] == {"msg_signature": ["This parameter is required."],
                                                 "nonce": ["This parameter is required."],
                                                 "echostr": ["This parameter is required."]}


@pytest.mark.urls("tests.urls_wecom")
def test_callback_post_with_malformed_xml_or_a_dtd_is_400(client, wecom_settings):
    query = "?msg_signature=abc&timestamp=1&nonce=2"
    malformed = client.post(CALLBACK + query, data="<xml><Encrypt>abc", content_type="text/xml")
    with_dtd = client.post(CALLBACK + query, data='<!DOCTYPE x [<!ENTITY a "b">]><xml><Encrypt>&a;</Encrypt></xml>',
                           content_type="text/xml")
    no_encrypt = client.post(CALLBACK + query, data="<xml><ToUserName>x</ToUserName></xml>", content_type="text/xml")

    assert (malformed.status_code, malformed.json()["error"]["code"]) == (400, "wecom_bad_message")
    assert with_dtd.json() == {"error": {"code": "wecom_bad_message", "message": "XML with a DTD is not accepted."}}
    assert no_encrypt.json() == {"error": {"code": "wecom_bad_message",
                                           "message": "The XML has no Encrypt element."}}


@pytest.mark.urls("tests.urls_wecom")
def test_callback_post_with_a_forged_signature_records_nothing(client, wecom_settings, codec, org):
    response = push(client, codec, event_xml("add_external_contact", "zhangsan", "wmEXT", at(0)),
                    signature="0" * 40)

    assert response.status_code == 403
    assert WeComFriendship.objects.count() == 0
    assert Member.objects.count() == 0


@pytest.mark.urls("tests.urls_wecom")
def test_callback_add_then_delete_records_and_closes_a_friendship(client, wecom_settings, codec, org):
    added = push(client, codec, event_xml("add_external_contact", "zhangsan", "wmEXT9", at(0)))
    member = Member.objects.get()
    repeated = push(client, codec, event_xml("add_external_contact", "zhangsan", "wmEXT9", at(0)))
    removed = push(client, codec, event_xml("del_external_contact", "zhangsan", "wmEXT9", at(7)))
    stale_add = push(client, codec, event_xml("add_external_contact", "zhangsan", "wmEXT9", at(1)))

    assert [r.content for r in (added, repeated, removed, stale_add)] == [b"success"] * 4
    assert (member.group, member.unionid, member.name) == (org.grp, "fake-union-wmEXT9", "WeCom EXT9")
    assert Member.objects.count() == 1
    assert rows_of(member) == [("zhangsan", "wmEXT9", at(0), at(7), "callback")]


@pytest.mark.urls("tests.urls_wecom")
def test_callback_finds_an_existing_member_by_unionid_and_the_contact_deleting_the_guide_closes_it(
        client, wecom_settings, codec, org):
    member = MemberFactory(group=org.grp, unionid="fake-union-wmAAA")

    push(client, codec, event_xml("add_external_contact", "lisi", "wmAAA", at(0)))
    push(client, codec, event_xml("add_external_contact", "wangwu", "wmAAA", at(1)))
    push(client, codec, event_xml("del_follow_user", "lisi", "wmAAA", at(2)))

    assert Member.objects.count() == 1
    assert rows_of(member) == [("lisi", "wmAAA", at(0), at(2), "callback"),
                               ("wangwu", "wmAAA", at(1), None, "callback")]


@pytest.mark.urls("tests.urls_wecom")
def test_callback_ignores_unknown_guides_other_events_and_text_messages(client, wecom_settings, codec, org):
    unknown_guide = push(client, codec, event_xml("add_external_contact", "nobody", "wmX", at(0)))
    other_change = push(client, codec, event_xml("edit_external_contact", "zhangsan", "wmX", at(0)))
    never_added = push(client, codec, event_xml("del_external_contact", "zhangsan", "wmX", at(0)))
    text = push(client, codec, "<xml><MsgType><![CDATA[text]]></MsgType><Content>hi</Content></xml>")

    assert [r.content for r in (unknown_guide, other_change, never_added, text)] == [b"success"] * 4
    assert (WeComFriendship.objects.count(), Member.objects.count()) == (0, 0)


@pytest.mark.urls("tests.urls_wecom")
def test_callback_answers_503_when_wecoms_api_fails_so_wecom_retries(client, wecom_settings, codec, org,
                                                                     monkeypatch):
    class DownClient:
        def external_contact(self, external_userid):
            raise WeComApiError("timed out")

    monkeypatch.setattr(wecom, "wecom_client", DownClient)

    response = push(client, codec, event_xml("add_external_contact", "zhangsan", "wmX", at(0)))

    assert response.status_code == 503
    assert response.json() == {"error": {"code": "wecom_api_error", "message": "WeCom API unavailable."}}
    assert WeComFriendship.objects.count() == 0


@pytest.mark.urls("tests.urls_wecom")
def test_callback_unconfigured_is_503(client, settings, org):
    settings.WECOM_CALLBACK_TOKEN = ""

    response = client.get(CALLBACK, {"msg_signature": "a", "timestamp": "1", "nonce": "2", "echostr": "x"})

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "wecom_not_configured"


# ---------------------------------------------------------------------------- staff API

@pytest.mark.urls("tests.urls_wecom")
def test_staff_api_needs_auth(api_client, org):
    assert api_client.post(ADD, {"member_code": "x", "guide_code": "zhangsan"}, format="json").status_code == 401
    assert api_client.post(REMOVE, {"member_code": "x", "guide_code": "zhangsan"}, format="json").status_code == 401


@pytest.mark.urls("tests.urls_wecom")
def test_staff_api_records_a_friendship_once_and_removes_it(api_client, org):
    member = MemberFactory(group=org.grp, code="M1")
    api_client.force_authenticate(staff_user("store_manager", store=org.store_a1))

    created = api_client.post(ADD, {"member_code": "M1", "guide_code": "lisi", "external_userid": "wmL",
                                    "added_at": "2024-05-01T10:00:00+08:00"}, format="json")
    again = api_client.post(ADD, {"member_code": "M1", "guide_code": "lisi"}, format="json")
    removed = api_client.post(REMOVE, {"member_code": "M1", "guide_code": "lisi",
                                       "removed_at": "2024-05-08T10:00:00+08:00"}, format="json")
    removed_again = api_client.post(REMOVE, {"member_code": "M1", "guide_code": "lisi"}, format="json")

    expected = {"id": created.json()["id"], "member_code": "M1", "guide_code": "lisi", "external_userid": "wmL",
                "added_at": "2024-05-01T10:00:00+08:00", "removed_at": None, "source": "api"}
    assert (created.status_code, created.json()) == (201, expected)
    assert (again.status_code, again.json()) == (200, expected)
    closed = {**expected, "removed_at": "2024-05-08T10:00:00+08:00"}
    assert (removed.status_code, removed.json()) == (200, closed)
    assert (removed_again.status_code, removed_again.json()) == (200, closed)
    assert rows_of(member) == [("lisi", "wmL", at(0), at(7), "api")]


@pytest.mark.urls("tests.urls_wecom")
def test_staff_api_bad_input_is_400_with_field_messages(api_client, org):
    member = MemberFactory(group=org.grp, code="M1")
    wecom_friend_add(member=member, guide=org.zhang, at=at(5), source="api")
    api_client.force_authenticate(staff_user("hq", group=org.grp))

    empty = api_client.post(ADD, {}, format="json")
    bad_time = api_client.post(ADD, {"member_code": "M1", "guide_code": "zhangsan", "added_at": "yesterday"},
                               format="json")
    future = api_client.post(ADD, {"member_code": "M1", "guide_code": "zhangsan",
                                   "added_at": (timezone.now() + dt.timedelta(days=1)).isoformat()}, format="json")
    before_start = api_client.post(REMOVE, {"member_code": "M1", "guide_code": "zhangsan",
                                            "removed_at": at(1).isoformat()}, format="json")
    not_json = api_client.post(ADD, "{", content_type="application/json")

    assert empty.status_code == 400
    assert empty.json()["error"]["fields"] == {"member_code": ["该字段是必填项。"], "guide_code": ["该字段是必填项。"]}
    assert bad_time.status_code == 400 and list(bad_time.json()["error"]["fields"]) == ["added_at"]
    assert future.status_code == 400
    assert future.json()["error"]["fields"] == {"added_at": ["Must not be in the future."]}
    assert before_start.status_code == 400
    assert before_start.json()["error"]["fields"] == {"removed_at": ["Must not be before 2024-05-06T10:00:00+08:00."]}
    assert not_json.status_code == 400
    assert rows_of(member) == [("zhangsan", "", at(5), None, "api")]


@pytest.mark.urls("tests.urls_wecom")
def test_staff_api_is_scoped_guides_outside_scope_and_unknown_members_are_404(api_client, org):
    MemberFactory(group=org.grp, code="M1")
    other_group_member = MemberFactory(group=RetailGroupFactory(code="other"), code="M2")
    operator_b = staff_user("brand_operator", brand=org.brand_b)
    guide_li = staff_user("guide", guide=org.li)

    api_client.force_authenticate(operator_b)
    outside = api_client.post(ADD, {"member_code": "M1", "guide_code": "zhangsan"}, format="json")
    outside_remove = api_client.post(REMOVE, {"member_code": "M1", "guide_code": "zhangsan"}, format="json")
    unknown_member = api_client.post(ADD, {"member_code": "NOPE", "guide_code": "zhaoliu"}, format="json")
    other_group = api_client.post(ADD, {"member_code": other_group_member.code, "guide_code": "zhaoliu"},
                                  format="json")
    never_friends = api_client.post(REMOVE, {"member_code": "M1", "guide_code": "zhaoliu"}, format="json")
    api_client.force_authenticate(guide_li)
    colleague = api_client.post(ADD, {"member_code": "M1", "guide_code": "zhangsan"}, format="json")
    own = api_client.post(ADD, {"member_code": "M1", "guide_code": "lisi"}, format="json")

    assert [r.status_code for r in (outside, outside_remove, unknown_member, other_group, never_friends,
                                    colleague)] == [404] * 6
    assert outside.json() == {"error": {"code": "not_found", "message": "No such guide.",
                                        "fields": {"guide_code": ["No such guide in your scope."]}}}
    assert unknown_member.json()["error"]["fields"] == {"member_code": ["No such member."]}
    assert own.status_code == 201
    assert list(WeComFriendship.objects.values_list("member__code", "guide__code")) == [("M1", "lisi")]


@pytest.mark.urls("tests.urls_wecom")
def test_staff_api_refuses_a_guide_who_left(api_client, org):
    MemberFactory(group=org.grp, code="M1")
    org.wang.left_at = dt.date(2024, 6, 1)
    org.wang.save()
    api_client.force_authenticate(staff_user("hq", group=org.grp))

    response = api_client.post(ADD, {"member_code": "M1", "guide_code": "wangwu"}, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (409, "guide_inactive")
    assert WeComFriendship.objects.count() == 0


# ---------------------------------------------------------------------------- API client (no network)

class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_api_client_caches_the_token_and_refreshes_it_once_when_wecom_says_it_expired(monkeypatch):
    cache.clear()
    calls = []
    answers = {
        "gettoken": [{"errcode": 0, "access_token": "TOKEN1", "expires_in": 7200},
                     {"errcode": 0, "access_token": "TOKEN2", "expires_in": 7200}],
        "externalcontact/get": [
            {"errcode": 0, "external_contact": {"external_userid": "wmA", "name": "小王", "unionid": "uA"}},
            {"errcode": 42001, "errmsg": "access_token expired"},
            {"errcode": 0, "external_contact": {"external_userid": "wmB", "name": "小李"}},
        ],
    }

    def fake_urlopen(url, timeout):
        calls.append((url, timeout))
        path = url.split("/cgi-bin/")[1].split("?")[0]
        return FakeResponse(json.dumps(answers[path].pop(0)).encode())

    monkeypatch.setattr(wecom.urllib.request, "urlopen", fake_urlopen)
    client = WeComApiClient(corp_id="ww1", corp_secret="s3cret", timeout=2.5)

    first = client.external_contact("wmA")
    second = client.external_contact("wmB")

    assert first == ExternalContact(external_userid="wmA", unionid="uA", name="小王")
    assert second == ExternalContact(external_userid="wmB", unionid="", name="小李")
    base = "https://qyapi.weixin.qq.com/cgi-bin/"
    assert calls == [
        (base + "gettoken?corpid=ww1&corpsecret=s3cret", 2.5),
        (base + "externalcontact/get?access_token=TOKEN1&external_userid=wmA", 2.5),
        (base + "externalcontact/get?access_token=TOKEN1&external_userid=wmB", 2.5),
        (base + "gettoken?corpid=ww1&corpsecret=s3cret", 2.5),
        (base + "externalcontact/get?access_token=TOKEN2&external_userid=wmB", 2.5),
    ]


def test_api_client_reports_wecom_errors_and_network_failures(monkeypatch):
    cache.clear()

    def refused(url, timeout):
        raise wecom.urllib.error.URLError("connection refused")

    monkeypatch.setattr(wecom.urllib.request, "urlopen", refused)

    with pytest.raises(WeComApiError, match="connection refused"):
        WeComApiClient(corp_id="ww1", corp_secret="s", timeout=1).external_contact("wmA")


def test_fake_client_is_deterministic():
    fake = FakeWeComClient(contacts={"wmK": ExternalContact("wmK", "u-known", "已知")})

    assert fake.external_contact("wmK") == ExternalContact("wmK", "u-known", "已知")
    assert fake.external_contact("wm1234") == ExternalContact("wm1234", "fake-union-wm1234", "WeCom 1234")
    assert fake.calls == ["wmK", "wm1234"]



# ---------------------------------------------------------------------------- concurrency (PostgreSQL only)

@pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                    reason="concurrency tests need PostgreSQL (set DATABASE_URL)")
@pytest.mark.django_db(transaction=True)
def test_ten_redelivered_add_events_at_once_open_exactly_one_friendship(org):
    member = MemberFactory(group=org.grp)
    barrier = threading.Barrier(10)

    def add():
        try:
            barrier.wait(timeout=10)
            return wecom_friend_add(member=member, guide=org.zhang, external_userid="wmC", at=at(0),
                                    source="callback")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = [f.result(timeout=60) for f in [pool.submit(add) for _ in range(10)]]

    assert sorted(created for _row, created in results) == [False] * 9 + [True]
    assert {row.pk for row, _created in results} == {WeComFriendship.objects.get().pk}
    assert rows_of(member) == [("zhangsan", "wmC", at(0), None, "callback")]


def test_a_signature_with_non_ascii_characters_is_a_bad_signature_not_a_crash(settings, client):
    settings.WECOM_CALLBACK_TOKEN = "QDG6eK"
    settings.WECOM_ENCODING_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
    settings.WECOM_CORP_ID = "wx5823bf96d3bd56c7"
    response = client.get("/api/v1/wecom/callback/", {"msg_signature": "ð签名", "timestamp": "1", "nonce": "n",
                                                      "echostr": "x"})
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "The message signature does not match."
