"""members.wechat: the deterministic fake, the real client against a fake opener (no network), provider choice."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse

import pytest
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

from members.wechat import FakeWeChatClient, WeChatClient, WeChatError, WeChatSession, get_wechat_client


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to reach the network")
    monkeypatch.setattr("urllib.request.urlopen", refuse)


class FakeResponse:
    def __init__(self, body):
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()

    def read(self):
        return self.body

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeOpener:
    """Answers each request with the next canned body (or raises it) and records what was asked."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, request, timeout=None):
        parsed = urllib.parse.urlsplit(request.full_url)
        self.calls.append({
            "method": request.get_method(),
            "url": f"{parsed.scheme}://{parsed.netloc}{parsed.path}",
            "query": dict(urllib.parse.parse_qsl(parsed.query)),
            "body": json.loads(request.data) if request.data else None,
            "timeout": timeout,
        })
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return FakeResponse(answer)


def client_with(*answers, timeout=5.0):
    opener = FakeOpener(*answers)
    return WeChatClient(appid="wxapp123", secret="s3cr3t", timeout=timeout, opener=opener), opener


# ---------------------------------------------------------------------------- fake provider

def test_fake_maps_a_code_to_the_same_ids_every_time():
    fake = FakeWeChatClient()
    first = fake.code_to_session("alice")
    # sha256("alice") = 2bd806c97f0e00af1a1fc332|8fa763a9269723c8db8fac4f|93af71db186d6e90
    assert first == WeChatSession(openid="fake-o-2bd806c97f0e00af1a1fc332", unionid="fake-u-8fa763a9269723c8db8fac4f",
                                  session_key="93af71db186d6e90")
    assert fake.code_to_session("alice") == first
    assert fake.code_to_session("bob").openid != first.openid


@pytest.mark.parametrize("code", ["", "bad", "bad-expired-code"])
def test_fake_refuses_empty_and_bad_codes_like_wechat(code):
    with pytest.raises(WeChatError) as refused:
        FakeWeChatClient().code_to_session(code)
    assert (refused.value.errcode, refused.value.unavailable) == (40029, False)


def test_fake_phone_codes_carry_the_number():
    assert FakeWeChatClient().phone_from_code("phone:13812345678") == "+8613812345678"


@pytest.mark.parametrize("code", ["", "13812345678", "phone:", "phone:138x", "bad"])
def test_fake_refuses_other_phone_codes(code):
    with pytest.raises(WeChatError) as refused:
        FakeWeChatClient().phone_from_code(code)
    assert refused.value.errcode == 40029


# ---------------------------------------------------------------------------- real client: login

def test_code_to_session_calls_jscode2session_with_the_app_credentials_and_a_timeout():
    client, opener = client_with({"openid": "o-1", "session_key": "sk", "unionid": "u-1"}, timeout=3.0)

    session = client.code_to_session("js-code-1")

    assert session == WeChatSession(openid="o-1", unionid="u-1", session_key="sk")
    assert opener.calls == [{
        "method": "GET", "url": "https://api.weixin.qq.com/sns/jscode2session",
        "query": {"appid": "wxapp123", "secret": "s3cr3t", "js_code": "js-code-1",
                  "grant_type": "authorization_code"},
        "body": None, "timeout": 3.0,
    }]


def test_code_to_session_without_unionid_gives_an_empty_unionid():
    client, _opener = client_with({"openid": "o-1", "session_key": "sk"})
    assert client.code_to_session("c").unionid == ""


def test_a_wechat_errcode_is_an_adapter_error_that_names_no_secret():
    client, _opener = client_with({"errcode": 40163, "errmsg": "code been used, rid: 1"})

    with pytest.raises(WeChatError) as refused:
        client.code_to_session("used")

    assert (refused.value.errcode, refused.value.message, refused.value.unavailable) == (
        40163, "code been used, rid: 1", False)
    assert "s3cr3t" not in str(refused.value)


@pytest.mark.parametrize("failure", [
    urllib.error.URLError("connection refused"), TimeoutError("timed out"), ConnectionResetError(),
])
def test_network_failures_and_timeouts_are_unavailable_errors(failure):
    client, _opener = client_with(failure)

    with pytest.raises(WeChatError) as refused:
        client.code_to_session("c")

    assert (refused.value.errcode, refused.value.unavailable) == (None, True)
    assert str(refused.value) == "WeChat jscode2session is unreachable"


@pytest.mark.parametrize("body", [b"<html>502</html>", b"[1, 2]", {"session_key": "sk"}])
def test_answers_that_are_not_a_session_are_errors(body):
    client, _opener = client_with(body)
    with pytest.raises(WeChatError) as refused:
        client.code_to_session("c")
    assert refused.value.errcode is None


def test_system_busy_is_unavailable():
    client, _opener = client_with({"errcode": -1, "errmsg": "system error"})
    with pytest.raises(WeChatError) as refused:
        client.code_to_session("c")
    assert (refused.value.errcode, refused.value.unavailable) == (-1, True)


# ---------------------------------------------------------------------------- real client: phone

PHONE_ANSWER = {"errcode": 0, "errmsg": "ok", "phone_info": {
    "phoneNumber": "13812345678", "purePhoneNumber": "13812345678", "countryCode": "86",
    "watermark": {"timestamp": 1637744274, "appid": "wxapp123"}}}


def test_phone_from_code_fetches_a_stable_token_then_the_number():
    client, opener = client_with({"access_token": "AT-1", "expires_in": 7200}, PHONE_ANSWER)

    assert client.phone_from_code("pc-1") == "+8613812345678"

    assert opener.calls == [
        {"method": "POST", "url": "https://api.weixin.qq.com/cgi-bin/stable_token", "query": {},
         "body": {"grant_type": "client_credential", "appid": "wxapp123", "secret": "s3cr3t",
                  "force_refresh": False}, "timeout": 5.0},
        {"method": "POST", "url": "https://api.weixin.qq.com/wxa/business/getuserphonenumber",
         "query": {"access_token": "AT-1"}, "body": {"code": "pc-1"}, "timeout": 5.0},
    ]


def test_the_access_token_is_cached_until_shortly_before_it_expires(monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr("django.core.cache.backends.locmem.time.time", lambda: now[0])
    client, opener = client_with({"access_token": "AT-1", "expires_in": 7200}, PHONE_ANSWER, PHONE_ANSWER,
                                 {"access_token": "AT-2", "expires_in": 7200}, PHONE_ANSWER)

    client.phone_from_code("a")
    now[0] += 6899  # still inside expires_in − 300 s
    client.phone_from_code("b")
    now[0] += 2  # 6901 s: within WeChat's 7200 s, but past our margin
    client.phone_from_code("c")

    assert [call["url"].rsplit("/", 1)[1] for call in opener.calls] == [
        "stable_token", "getuserphonenumber", "getuserphonenumber", "stable_token", "getuserphonenumber"]
    assert [call["query"].get("access_token") for call in opener.calls] == [None, "AT-1", "AT-1", None, "AT-2"]


def test_an_invalidated_access_token_is_refreshed_once_and_the_call_retried():
    client, opener = client_with({"access_token": "AT-old", "expires_in": 7200},
                                 {"errcode": 40001, "errmsg": "invalid credential"},
                                 {"access_token": "AT-new", "expires_in": 7200}, PHONE_ANSWER)

    assert client.phone_from_code("pc") == "+8613812345678"

    assert [(c["url"].rsplit("/", 1)[1], (c["body"] or {}).get("force_refresh"), c["query"].get("access_token"))
            for c in opener.calls] == [("stable_token", False, None), ("getuserphonenumber", None, "AT-old"),
                                       ("stable_token", True, None), ("getuserphonenumber", None, "AT-new")]
    assert cache.get("wechat:access_token:wxapp123") == "AT-new"


def test_a_refused_phone_code_is_an_error_without_retry():
    client, opener = client_with({"access_token": "AT-1", "expires_in": 7200},
                                 {"errcode": 40029, "errmsg": "invalid code"})

    with pytest.raises(WeChatError) as refused:
        client.phone_from_code("expired")

    assert (refused.value.errcode, len(opener.calls)) == (40029, 2)


def test_a_foreign_number_keeps_its_country_code():
    answer = {"errcode": 0, "phone_info": {"purePhoneNumber": "91234567", "countryCode": "852"}}
    client, _opener = client_with({"access_token": "AT", "expires_in": 7200}, answer)
    assert client.phone_from_code("pc") == "+85291234567"


# ---------------------------------------------------------------------------- choosing the provider

def test_the_fake_is_chosen_by_setting(settings):
    settings.WECHAT_PROVIDER = "fake"
    assert isinstance(get_wechat_client(), FakeWeChatClient)


def test_the_real_client_takes_credentials_and_timeout_from_settings(settings):
    settings.WECHAT_PROVIDER, settings.WECHAT_APPID, settings.WECHAT_SECRET = "real", "wxapp9", "sec"
    settings.WECHAT_TIMEOUT = 2
    client = get_wechat_client()
    assert isinstance(client, WeChatClient)
    assert (client.appid, client.secret, client.timeout) == ("wxapp9", "sec", 2.0)


def test_the_real_client_without_credentials_fails_loudly(settings):
    settings.WECHAT_PROVIDER = "real"
    settings.WECHAT_APPID = ""
    with pytest.raises(ImproperlyConfigured, match="WECHAT_APPID and WECHAT_SECRET must be set"):
        get_wechat_client()


def test_without_a_setting_debug_gets_the_fake_and_production_the_real_one(settings):
    settings.WECHAT_PROVIDER = ""  # unset
    settings.DEBUG = True
    assert isinstance(get_wechat_client(), FakeWeChatClient)
    settings.DEBUG = False
    with pytest.raises(ImproperlyConfigured):
        get_wechat_client()  # real, and no credentials: never a silent fake in production


def test_an_unknown_provider_is_a_configuration_error(settings):
    settings.WECHAT_PROVIDER = "mock"
    with pytest.raises(ImproperlyConfigured, match="WECHAT_PROVIDER must be 'fake' or 'real', not 'mock'"):
        get_wechat_client()


def test_without_an_opener_the_client_uses_urllib_urlopen(monkeypatch):
    opener = FakeOpener({"openid": "o-9", "session_key": "sk"})
    monkeypatch.setattr("urllib.request.urlopen", opener)

    assert WeChatClient(appid="a", secret="b").code_to_session("c").openid == "o-9"
    assert opener.calls[0]["url"] == "https://api.weixin.qq.com/sns/jscode2session"
