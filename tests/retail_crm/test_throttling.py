"""Rate limits (retail_crm/throttling.py): the (n+1)-th request of a client inside the window is 429 with
``Retry-After``, another client is not affected, and after the window the client passes again.

The limits run at the production defaults of ``settings.THROTTLE_RATES`` (n is read from them), except where a
test sets a rate explicitly to keep the request count small. Time is a fake clock on the throttles; nothing
sleeps. With ``REDIS_URL`` set the counters live in that Redis (under a key prefix of their own), which shows
the limits work on the shared cache production uses:

    REDIS_URL=redis://127.0.0.1:6379/3 DATABASE_URL=postgres://… pytest tests/retail_crm/test_throttling.py
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from livestream.models import LiveSession, ViewerEvent
from members.auth import member_token_issue
from members.models import BehaviourEvent
from retail_crm.env import ConfigError, env_rate
from retail_crm.throttling import ScopedRateThrottle
from tests.factories import BrandFactory, MemberFactory, RetailGroupFactory, StoreFactory, staff_user

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/mp/events/"
REDIS_URL = os.environ.get("REDIS_URL")
T0 = 1_800_000_000.0  # the fake clock's start (a Unix time)


class Clock:
    """The throttles' timer: a callable instance (not a function, so it is not bound as a method)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(ScopedRateThrottle, "timer", fake)
    return fake


@pytest.fixture(autouse=True)
def throttle_cache(settings):
    """Redis when REDIS_URL is set (a fresh key prefix, removed afterwards); the test settings' memory otherwise."""
    if not REDIS_URL:
        yield None
        return
    prefix = f"throttle-test-{uuid.uuid4().hex}"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": REDIS_URL, "KEY_PREFIX": prefix}}
    yield prefix
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)


def allowed(settings, scope: str) -> tuple[int, int]:
    """(n, window seconds) of a scope's configured rate."""
    count, period = settings.THROTTLE_RATES[scope].split("/")
    return int(count), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]


def assert_throttled(response, retry_after: int) -> None:
    assert response.status_code == 429, response.content
    assert response["Retry-After"] == str(retry_after)
    assert response.json() == {"error": {"code": "throttled",
                                         "message": f"请求过于频繁，请 {retry_after} 秒后再试。"}}


@pytest.fixture
def brand():
    return BrandFactory(code="LADY", group=RetailGroupFactory(code="grp"))


def event(visitor_id: str | None = "v-1") -> dict:
    item = {"kind": "product_view", "occurred_at": (timezone.now() - dt.timedelta(minutes=1)).isoformat(),
            "brand": "LADY", "object_type": "product", "object_id": "P001"}
    if visitor_id is not None:
        item["visitor_id"] = visitor_id
    return {"events": [item]}


def post(client: APIClient, url: str, body: dict, *, ip: str = "10.0.0.1", **extra):
    return client.post(url, body, format="json", REMOTE_ADDR=ip, **extra)


# ---------------------------------------------------------------------------- behaviour events

def test_anonymous_event_batches_beyond_the_burst_are_429_until_the_window_passes(settings, brand, clock):
    n, window = allowed(settings, "events_burst")
    assert (n, window) == (60, 60)  # the documented default
    client = APIClient()
    for _ in range(n):
        assert post(client, EVENTS, event("v-1")).status_code == 200
    assert_throttled(post(client, EVENTS, event("v-1")), window)
    assert BehaviourEvent.objects.count() == n  # the refused batch stored nothing

    # Another phone behind the same NAT (another visitor id), and another address, are other clients.
    assert post(client, EVENTS, event("v-2")).status_code == 200
    assert post(client, EVENTS, event("v-1"), ip="10.0.0.2").status_code == 200

    clock.now += window - 1
    assert_throttled(post(client, EVENTS, event("v-1")), 1)
    clock.now += 1
    assert post(client, EVENTS, event("v-1")).status_code == 200
    assert BehaviourEvent.objects.count() == n + 3


def test_the_sustained_rate_holds_a_client_below_the_burst(settings, brand, clock):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "events_sustained": "3/hour"}
    client = APIClient()
    for minute in range(3):  # one batch a minute: far below the burst limit
        clock.now = T0 + 60 * minute
        assert post(client, EVENTS, event()).status_code == 200
    assert_throttled(post(client, EVENTS, event()), 3600 - 120)  # the first batch leaves the hour at T0 + 3600
    clock.now = T0 + 3600
    assert post(client, EVENTS, event()).status_code == 200


def test_one_address_inventing_visitor_ids_meets_the_per_ip_cap(settings, brand):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "events_ip": "5/min"}
    client = APIClient()
    for number in range(5):
        assert post(client, EVENTS, event(f"v-{number}")).status_code == 200
    assert_throttled(post(client, EVENTS, event("v-new")), 60)
    # Sending X-Forwarded-For does not make another client: without trusted proxies the header is ignored.
    assert_throttled(post(client, EVENTS, event("v-new"), HTTP_X_FORWARDED_FOR="203.0.113.9"), 60)
    assert post(client, EVENTS, event("v-new"), ip="10.0.0.2").status_code == 200


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(settings, brand):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "events_ip": "2/min"}
    client = APIClient()
    proxy = "172.16.0.1"
    for number in range(2):
        assert post(client, EVENTS, event(f"v-{number}"), ip=proxy,
                    HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 200
    assert_throttled(post(client, EVENTS, event("v-9"), ip=proxy, HTTP_X_FORWARDED_FOR="203.0.113.9"), 60)
    # Another visitor's address, forwarded by the same proxy, is another client.
    assert post(client, EVENTS, event("v-9"), ip=proxy, HTTP_X_FORWARDED_FOR="203.0.113.10").status_code == 200


def test_member_event_batches_are_limited_per_member(settings, brand):
    n, window = allowed(settings, "events_burst")
    ann, bob = (MemberFactory(group=brand.group) for _ in range(2))
    client = APIClient()
    ann_token = f"Member {member_token_issue(member=ann)}"
    for _ in range(n):
        assert post(client, EVENTS, event(None), HTTP_AUTHORIZATION=ann_token).status_code == 200
    assert_throttled(post(client, EVENTS, event(None), HTTP_AUTHORIZATION=ann_token), window)
    # Ann on another network is still Ann.
    assert_throttled(post(client, EVENTS, event(None), ip="10.9.9.9", HTTP_AUTHORIZATION=ann_token), window)
    bob_token = f"Member {member_token_issue(member=bob)}"
    assert post(client, EVENTS, event(None), HTTP_AUTHORIZATION=bob_token).status_code == 200
    assert post(client, EVENTS, event("v-1")).status_code == 200  # an anonymous visitor on Ann's network
    assert BehaviourEvent.objects.filter(member=ann).count() == n


def test_an_english_reader_gets_the_message_in_english(settings, brand):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "events_burst": "1/min"}
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    assert post(client, EVENTS, event()).status_code == 200
    response = post(client, EVENTS, event())
    assert response.status_code == 429
    assert response.json()["error"] == {"code": "throttled",
                                        "message": "Too many requests. Please try again in 60 seconds."}


# ---------------------------------------------------------------------------- livestream viewer events

def test_anonymous_viewer_event_batches_beyond_the_burst_are_429(settings, brand, clock):
    n, window = allowed(settings, "live_events_burst")
    assert (n, window) == (120, 60)
    now = timezone.now()
    session = LiveSession.objects.create(
        brand=brand, kind=LiveSession.Kind.HQ_CENTRAL, title="On air", planned_start=now - dt.timedelta(hours=1),
        planned_end=now + dt.timedelta(hours=1), status=LiveSession.Status.LIVE,
        actual_start=now - dt.timedelta(hours=1))
    url = f"/api/v1/mp/live/sessions/{session.pk}/events/"

    def batch(viewer: str) -> dict:
        return {"events": [{"kind": "like", "occurred_at": (now - dt.timedelta(minutes=1)).isoformat(),
                            "viewer_id": viewer}]}

    client = APIClient()
    for _ in range(n):
        assert post(client, url, batch("w-1")).status_code == 200
    assert_throttled(post(client, url, batch("w-1")), window)
    assert post(client, url, batch("w-2")).status_code == 200
    assert ViewerEvent.objects.count() == n + 1
    clock.now += window
    assert post(client, url, batch("w-1")).status_code == 200


# ---------------------------------------------------------------------------- member login and phone binding

def test_mini_program_logins_are_limited_per_address(settings, brand, clock):
    settings.WECHAT_PROVIDER = "fake"
    settings.WECHAT_GROUP = "grp"
    n, window = allowed(settings, "mp_login")
    assert (n, window) == (30, 60)
    client = APIClient()
    for number in range(n):
        assert post(client, "/api/v1/mp/auth/login/", {"code": f"user-{number}"}).status_code == 200
    assert_throttled(post(client, "/api/v1/mp/auth/login/", {"code": "user-x"}), window)
    assert post(client, "/api/v1/mp/auth/login/", {"code": "user-x"}, ip="10.0.0.2").status_code == 200
    clock.now += window
    assert post(client, "/api/v1/mp/auth/login/", {"code": "user-y"}).status_code == 200


def test_phone_binding_attempts_are_limited_per_member(settings, brand):
    settings.WECHAT_PROVIDER = "fake"
    n, window = allowed(settings, "mp_phone_bind")
    assert (n, window) == (10, 3600)
    ann, bob = (MemberFactory(group=brand.group, phone="") for _ in range(2))
    client = APIClient()
    ann_token = f"Member {member_token_issue(member=ann)}"
    for _ in range(n):  # a script trying codes: each refused, each counted
        response = post(client, "/api/v1/mp/me/phone/", {"phone_code": "not-a-code"}, HTTP_AUTHORIZATION=ann_token)
        assert response.status_code != 429, response.content
    assert_throttled(post(client, "/api/v1/mp/me/phone/", {"phone_code": "phone:13812345678"},
                          HTTP_AUTHORIZATION=ann_token), window)
    ann.refresh_from_db()
    assert ann.phone == ""
    bob_token = f"Member {member_token_issue(member=bob)}"
    response = post(client, "/api/v1/mp/me/phone/", {"phone_code": "phone:13812345678"},
                    HTTP_AUTHORIZATION=bob_token)
    assert response.status_code == 200, response.content


# ---------------------------------------------------------------------------- staff token and exports

def test_token_requests_are_limited_per_address_even_with_the_right_password(settings, brand, clock):
    # Right passwords only: wrong ones would meet the login lock-out (5 per address) before this limit.
    n, window = allowed(settings, "auth_token")
    assert (n, window) == (10, 60)
    user = staff_user("hq", group=brand.group, username="hq-li")
    client = APIClient()
    url = "/api/v1/auth/token/"
    for _ in range(n):
        assert post(client, url, {"username": "hq-li", "password": "pw-123456"}).status_code == 200
    issued = Token.objects.get(user=user).key
    assert_throttled(post(client, url, {"username": "hq-li", "password": "pw-123456"}), window)
    assert Token.objects.get(user=user).key == issued  # refused before the password was even checked
    response = post(client, url, {"username": "hq-li", "password": "pw-123456"}, ip="10.0.0.2")
    assert response.status_code == 200
    assert response.json()["token"] == Token.objects.get(user=user).key != issued
    clock.now += window
    assert post(client, url, {"username": "hq-li", "password": "pw-123456"}).status_code == 200


def test_exports_are_limited_per_user(settings, brand, client, clock):
    n, window = allowed(settings, "export")
    assert (n, window) == (30, 3600)
    StoreFactory(brand=brand)
    staff_user("hq", group=brand.group, username="hq-wu")
    staff_user("hq", group=brand.group, username="hq-zhou")
    assert client.login(username="hq-wu", password="pw-123456")
    url = "/hq/export/brand_ranking.csv"
    for _ in range(n):
        response = client.get(url)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
    response = client.get(url)
    assert response.status_code == 429
    assert response["Retry-After"] == str(window)
    assert response.content.decode() == f"请求过于频繁，请 {window} 秒后再试。"
    client.logout()
    assert client.login(username="hq-zhou", password="pw-123456")
    assert client.get(url).status_code == 200
    client.logout()
    assert client.login(username="hq-wu", password="pw-123456")
    clock.now += window
    assert client.get(url).status_code == 200


@pytest.mark.skipif(not REDIS_URL, reason="set REDIS_URL to check the counters are kept in Redis")
def test_the_counters_live_in_redis(settings, brand, throttle_cache):
    import redis

    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "events_burst": "1/min"}
    client = APIClient()
    assert post(client, EVENTS, event("v-redis")).status_code == 200
    keys = sorted(key.decode() for key in redis.Redis.from_url(REDIS_URL).scan_iter(f"{throttle_cache}:*"))
    assert keys == [f"{throttle_cache}:1:throttle_events_burst_ip:10.0.0.1:v-redis",
                    f"{throttle_cache}:1:throttle_events_ip_ip:10.0.0.1",
                    f"{throttle_cache}:1:throttle_events_sustained_ip:10.0.0.1:v-redis"]
    assert_throttled(post(client, EVENTS, event("v-redis")), 60)


@pytest.mark.parametrize(("raw", "expected"), [("", "60/min"), ("1000/hour", "1000/hour"), ("5/S", "5/s"),
                                               ("off", None), ("none", None)])
def test_rates_come_from_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv("THROTTLE_TEST", raw)
    assert env_rate("THROTTLE_TEST", "60/min") == expected


@pytest.mark.parametrize("raw", ["60", "0/min", "-1/min", "ten/min", "60/week", "1.5/s"])
def test_a_malformed_rate_stops_start_up(monkeypatch, raw):
    monkeypatch.setenv("THROTTLE_TEST", raw)
    with pytest.raises(ConfigError) as error:
        env_rate("THROTTLE_TEST", "60/min")
    assert str(error.value) == (f"THROTTLE_TEST={raw!r} is not a rate "
                                "(use e.g. 60/min, 1000/hour, 10/s, 5000/day, or off)")


def test_the_throttle_reading_the_body_keeps_the_parse_error_and_the_415(settings, brand):
    """The anonymous key reads the visitor id from the body: a body that does not parse is still answered as the
    view would (the parse error, not an empty batch), and still counts against the address."""
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "events_ip": "2/min"}
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    response = client.post(EVENTS, '{"events": [', content_type="application/json", REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert response.json()["error"]["message"].startswith("JSON parse error")
    response = client.post(EVENTS, {"events": "x"}, REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 415
    assert_throttled(post(APIClient(), EVENTS, event("v-1")), 60)
