"""Staff API tokens expire STAFF_TOKEN_TTL_HOURS (12 h by default) after they were issued."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from tests.factories import StoreFactory, staff_user

PASSWORD = "pw-123456"


@pytest.fixture
def manager(db):
    return staff_user("store_manager", store=StoreFactory(), username="mgr")


def _age(token: Token, **age) -> None:
    Token.objects.filter(pk=token.pk).update(created=timezone.now() - dt.timedelta(**age))


def _me(api_client, key: str):
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api_client.get("/api/v1/me/")


def test_a_token_inside_its_lifetime_works(manager, api_client):
    token = Token.objects.create(user=manager)
    _age(token, hours=11, minutes=59)

    response = _me(api_client, token.key)

    assert response.status_code == 200
    assert response.json()["username"] == "mgr"


def test_a_token_past_its_lifetime_is_401_token_expired(manager, api_client):
    token = Token.objects.create(user=manager)
    _age(token, hours=12, seconds=1)

    response = _me(api_client, token.key)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {"error": {
        "code": "token_expired", "message": "API 令牌已过期，请在 /api/v1/auth/token/ 重新获取。"}}


def test_the_lifetime_follows_the_setting(manager, api_client, settings):
    settings.STAFF_TOKEN_TTL_HOURS = 1
    token = Token.objects.create(user=manager)
    _age(token, minutes=61)

    assert _me(api_client, token.key).status_code == 401


def test_obtaining_a_token_issues_a_fresh_one_and_revokes_the_old(manager, api_client):
    old = Token.objects.create(user=manager)
    _age(old, hours=13)
    assert _me(api_client, old.key).status_code == 401

    before = timezone.now()
    response = api_client.post("/api/v1/auth/token/", {"username": "mgr", "password": PASSWORD}, format="json")

    assert response.status_code == 200
    fresh = Token.objects.get(user=manager)
    assert fresh.key != old.key
    assert response.json() == {"token": fresh.key,
                               "expires_at": (fresh.created + dt.timedelta(hours=12)).astimezone(
                                   timezone.get_current_timezone()).isoformat()}
    assert fresh.created >= before
    assert _me(api_client, fresh.key).status_code == 200
    assert _me(api_client, old.key).status_code == 401  # gone: "Invalid token."
    # A second obtain replaces the first one too.
    again = api_client.post("/api/v1/auth/token/", {"username": "mgr", "password": PASSWORD}, format="json")
    assert again.json()["token"] != fresh.key
    assert _me(api_client, fresh.key).status_code == 401
    assert Token.objects.filter(user=manager).count() == 1


def test_the_wrong_password_issues_no_token(manager, api_client):
    response = api_client.post("/api/v1/auth/token/", {"username": "mgr", "password": "nope"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert Token.objects.filter(user=manager).exists() is False
