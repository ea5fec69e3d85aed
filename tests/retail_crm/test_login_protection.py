"""Password guessing is slowed on every password entry point: the login page, the admin's, the API token.

Rules (settings): 5 wrong passwords for one username from any IPs, or from one IP for any usernames, lock that
username / IP for 15 minutes; while locked even the right password is refused (429, Retry-After, a Chinese
message). The lock-out ends by time, or earlier by an admin (admin page or ``axes_reset_username``).
"""

from __future__ import annotations

import datetime as dt

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.utils import timezone
from rest_framework.authtoken.models import Token

from retail_crm.login_guard import client_ip
from tests.factories import UserFactory

PASSWORD = "pw-123456"
LOCKED_ZH = "密码错误次数过多"


def _page_login(client, username, password, ip):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def _admin_login(client, username, password, ip):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password,
                                                      "next": "/admin/"}, REMOTE_ADDR=ip)


def _api_login(client, username, password, ip):
    return client.post("/api/v1/auth/token/", {"username": username, "password": password},
                       content_type="application/json", REMOTE_ADDR=ip)


# (login, status of a wrong password, status of the right one)
ENTRY_POINTS = {
    "login_page": (_page_login, 200, 302),
    "admin": (_admin_login, 200, 302),
    "api_token": (_api_login, 400, 200),
}


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")  # is_staff, so the admin's login accepts her too


def _assert_locked(response, entry: str, retry_after: int = 900):
    assert response.status_code == 429
    assert response["Retry-After"] == str(retry_after)
    if entry == "api_token":
        body = response.json()
        assert body["error"]["code"] == "login_locked"
        assert LOCKED_ZH in body["error"]["message"]
    else:
        assert LOCKED_ZH in response.content.decode()
    if entry != "api_token":
        assert "_auth_user_id" not in response.wsgi_request.session


def _assert_logged_in(response, entry: str, status: int, username: str):
    assert response.status_code == status
    if entry == "api_token":
        assert response.json()["token"] == Token.objects.get(user__username=username).key
    else:
        assert response.wsgi_request.user.get_username() == username


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_fifth_wrong_password_for_one_user_locks_even_the_right_password_from_any_ip(alice, entry):
    login, wrong_status, ok_status = ENTRY_POINTS[entry]
    for n in range(1, 5):  # four misses from four addresses: answered normally
        assert login(Client(), "alice", "wrong", f"10.0.0.{n}").status_code == wrong_status

    _assert_locked(login(Client(), "alice", "wrong", "10.0.0.5"), entry)  # the fifth locks
    _assert_locked(login(Client(), "alice", PASSWORD, "10.0.0.9"), entry)  # right password, new IP: still no
    assert Token.objects.filter(user=alice).exists() is False
    # Someone else on another address is not affected.
    UserFactory(username="bob")
    _assert_logged_in(login(Client(), "bob", PASSWORD, "10.0.0.8"), entry, ok_status, "bob")


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_fifth_wrong_password_from_one_ip_locks_that_ip_for_every_username(alice, entry):
    login, wrong_status, ok_status = ENTRY_POINTS[entry]
    for n in range(1, 5):
        assert login(Client(), f"guess{n}", "wrong", "10.1.1.1").status_code == wrong_status

    _assert_locked(login(Client(), "guess5", "wrong", "10.1.1.1"), entry)
    _assert_locked(login(Client(), "alice", PASSWORD, "10.1.1.1"), entry)  # right password, locked IP
    # alice herself is not locked: from another address she logs in.
    _assert_logged_in(login(Client(), "alice", PASSWORD, "10.1.1.2"), entry, ok_status, "alice")


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_the_lockout_ends_after_the_cool_off(alice, entry):
    login, _wrong, ok_status = ENTRY_POINTS[entry]
    for n in range(1, 6):
        login(Client(), "alice", "wrong", f"10.2.0.{n}")
    # Ten minutes later (the failures moved back in time): five minutes to go.
    AccessAttempt.objects.update(attempt_time=timezone.now() - dt.timedelta(minutes=10))
    _assert_locked(login(Client(), "alice", PASSWORD, "10.2.0.9"), entry, retry_after=300)
    # 14 min 55 s after: still locked, 5 s to go.
    AccessAttempt.objects.update(attempt_time=timezone.now() - dt.timedelta(minutes=14, seconds=55))
    response = login(Client(), "alice", PASSWORD, "10.2.0.9")
    assert response.status_code == 429
    assert int(response["Retry-After"]) in (5, 6)  # rounding up whatever the clock did between the two lines
    # 15 minutes and a second after the last failure: the right password works again.
    AccessAttempt.objects.update(attempt_time=timezone.now() - dt.timedelta(minutes=15, seconds=1))
    _assert_logged_in(login(Client(), "alice", PASSWORD, "10.2.0.9"), entry, ok_status, "alice")


def test_tries_during_the_lockout_do_not_extend_it(alice):
    for n in range(1, 6):
        _page_login(Client(), "alice", "wrong", f"10.3.0.{n}")
    AccessAttempt.objects.update(attempt_time=timezone.now() - dt.timedelta(minutes=14))
    for _n in range(3):  # more guesses while locked
        assert _page_login(Client(), "alice", "wrong", "10.3.0.7").status_code == 429
    assert list(AccessAttempt.objects.values_list("failures_since_start", flat=True)) == [1, 1, 1, 1, 1]
    AccessAttempt.objects.update(attempt_time=timezone.now() - dt.timedelta(minutes=15, seconds=1))
    assert _page_login(Client(), "alice", PASSWORD, "10.3.0.7").status_code == 302


def test_a_right_password_does_not_clear_the_count(alice):
    """An attacker's own valid login must not reset the failures counted against their IP (or a user's)."""
    for n in range(1, 5):
        _page_login(Client(), "alice", "wrong", f"10.4.0.{n}")
    assert _page_login(Client(), "alice", PASSWORD, "10.4.0.9").status_code == 302
    _assert_locked(_page_login(Client(), "alice", "wrong", "10.4.0.10"), "login_page")


def test_failed_logins_are_audited(alice):
    for n in range(1, 6):
        _api_login(Client(), "alice", "wrong", f"10.5.0.{n}")
    rows = list(AccessFailureLog.objects.order_by("attempt_time", "pk")
                .values_list("username", "ip_address", "path_info", "locked_out"))
    assert rows == [("alice", f"10.5.0.{n}", "/api/v1/auth/token/", n == 5) for n in range(1, 6)]


def test_admin_unlocks_by_deleting_the_attempts_in_the_admin(alice):
    for n in range(1, 6):
        _page_login(Client(), "alice", "wrong", f"10.6.0.{n}")
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "root-pass-123")
    admin_client = Client()
    admin_client.force_login(admin)
    assert admin_client.get("/admin/axes/accessattempt/").status_code == 200
    ids = [str(pk) for pk in AccessAttempt.objects.values_list("pk", flat=True)]
    response = admin_client.post("/admin/axes/accessattempt/", {
        "action": "delete_selected", "_selected_action": ids, "post": "yes"})
    assert response.status_code == 302
    assert AccessAttempt.objects.count() == 0
    assert _page_login(Client(), "alice", PASSWORD, "10.6.0.1").status_code == 302


def test_admin_unlocks_a_username_with_the_command(alice):
    for n in range(1, 6):
        _api_login(Client(), "alice", "wrong", f"10.7.0.{n}")
    _assert_locked(_api_login(Client(), "alice", PASSWORD, "10.7.0.9"), "api_token")

    call_command("axes_reset_username", "alice")

    assert _api_login(Client(), "alice", PASSWORD, "10.7.0.9").status_code == 200


def test_failure_logs_in_the_admin_are_read_only(alice):
    _page_login(Client(), "alice", "wrong", "10.8.0.1")
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "root-pass-123")
    admin_client = Client()
    admin_client.force_login(admin)
    row = AccessFailureLog.objects.get()
    assert admin_client.get("/admin/axes/accessfailurelog/").status_code == 200
    assert admin_client.get("/admin/axes/accessfailurelog/add/").status_code == 403
    admin_client.post(f"/admin/axes/accessfailurelog/{row.pk}/change/", {"username": "mallory"})
    row.refresh_from_db()
    assert row.username == "alice"


def test_the_locked_page_speaks_english_too(alice):
    for n in range(1, 6):
        response = Client().post("/accounts/login/", {"username": "alice", "password": "wrong"},
                                 REMOTE_ADDR=f"10.9.0.{n}", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 429
    assert "Too many wrong passwords" in response.content.decode()


def test_the_client_ip_comes_from_x_forwarded_for_only_behind_trusted_proxies(settings):
    request = RequestFactory().get("/", REMOTE_ADDR="172.16.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == "172.16.0.2"  # a client can write any X-Forwarded-For: ignored
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "203.0.113.7"  # the address our one proxy saw
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_ip(request) == "6.6.6.6"
    settings.TRUSTED_PROXY_COUNT = 3  # fewer entries than proxies: not from our proxies, use the socket
    assert client_ip(request) == "172.16.0.2"


def test_forged_forwarded_for_does_not_escape_the_ip_lockout(alice):
    for n in range(1, 6):
        response = Client().post("/accounts/login/", {"username": f"guess{n}", "password": "wrong"},
                                 REMOTE_ADDR="10.10.0.1", HTTP_X_FORWARDED_FOR=f"1.1.1.{n}")
    assert response.status_code == 429
