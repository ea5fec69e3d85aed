"""Password resets: a store manager or above resets a guide's password inside their scope (workbench page and
API); the guide must choose a new one at the next login. E-mail reset where e-mail is configured."""

from __future__ import annotations

import re

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from retail_crm.models import Guide, StaffPasswordReset, StaffProfile
from tests.factories import BrandFactory, GuideFactory, RegionFactory, StoreFactory, UserFactory, staff_user

PASSWORD = "pw-123456"
NEW_PASSWORD = "Spring-Sale-2026"
TEMPORARY = re.compile(r'<strong class="temporary-password">([a-z2-9]{10})</strong>')


def _guide_login(store, code, role=Guide.Role.GUIDE, staff_role="guide"):
    guide = GuideFactory(store=store, code=code, name=f"导购{code}", role=role)
    user = UserFactory(username=code.lower())
    guide.user = user
    guide.save(update_fields=["user"])
    kwargs = {"guide": guide} if staff_role == "guide" else {"store": store}
    StaffProfile.objects.create(user=user, role=staff_role, group=store.brand.group, **kwargs)
    return guide


@pytest.fixture
def org(db):
    brand = BrandFactory()
    north, south = RegionFactory(brand=brand, code="N"), RegionFactory(brand=brand, code="S")
    s1 = StoreFactory(region=north, code="S1")
    s3 = StoreFactory(region=south, code="S3")

    class Org:
        pass

    o = Org()
    o.s1, o.s3 = s1, s3
    o.g1 = _guide_login(s1, "G1")
    o.g2 = _guide_login(s1, "G2")
    o.g3 = _guide_login(s3, "G3")
    o.m1 = _guide_login(s1, "M1", Guide.Role.STORE_MANAGER, "store_manager")  # S1's manager, also a Guide row
    o.m1b = _guide_login(s1, "M1B", Guide.Role.STORE_MANAGER, "store_manager")  # S1's second manager
    o.m3 = staff_user("store_manager", store=s3, username="m3")
    o.north_manager = staff_user("region_manager", brand=brand, region=north, username="north")
    return o


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _reset_page(client, guide):
    return client.post(f"/workbench/team/{guide.pk}/password-reset/")


def _temporary(response) -> str:
    return TEMPORARY.search(response.content.decode()).group(1)


def test_store_manager_resets_a_guide_of_the_store_and_the_guide_must_change_it(org):
    guide_session = _client(org.g1.user)  # the guide was logged in somewhere
    Token.objects.create(user=org.g1.user)

    response = _reset_page(_client(org.m1.user), org.g1)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    temporary = _temporary(response)
    user = get_user_model().objects.get(pk=org.g1.user_id)
    assert user.check_password(temporary) is True
    assert user.check_password(PASSWORD) is False
    assert StaffProfile.objects.get(user=user).must_change_password is True
    assert Token.objects.filter(user=user).exists() is False  # the API token is revoked
    assert list(StaffPasswordReset.objects.values_list("reset_by__username", "user__username", "guide__code",
                                                       "channel")) == [("m1", "g1", "G1", "workbench")]
    # The old session ended with the old password.
    assert guide_session.get("/workbench/")["Location"].startswith("/accounts/login/")

    # Next login: with the temporary password, and straight to the password change page.
    guide = Client()
    assert guide.post("/accounts/login/", {"username": "g1", "password": temporary}).status_code == 302
    assert guide.get("/workbench/")["Location"] == "/accounts/password-change/"
    assert guide.get("/hq/")["Location"] == "/accounts/password-change/"
    api = guide.get("/api/v1/me/")
    assert api.status_code == 403
    assert api.json()["error"]["code"] == "password_change_required"
    page = guide.get("/accounts/password-change/")
    assert page.status_code == 200
    assert "您的密码已被店长重置。请设置新密码后继续。" in page.content.decode()
    # No API token with the temporary password either.
    token = Client().post("/api/v1/auth/token/", {"username": "g1", "password": temporary},
                          content_type="application/json")
    assert token.status_code == 403
    assert token.json()["error"]["code"] == "password_change_required"

    changed = guide.post("/accounts/password-change/", {"old_password": temporary, "new_password1": NEW_PASSWORD,
                                                        "new_password2": NEW_PASSWORD})
    assert changed.status_code == 302
    assert changed["Location"] == "/accounts/password-change/done/"
    assert StaffProfile.objects.get(user=user).must_change_password is False
    assert guide.get("/workbench/").status_code == 200
    assert Client().post("/api/v1/auth/token/", {"username": "g1", "password": NEW_PASSWORD},
                         content_type="application/json").status_code == 200


def test_a_manager_outside_the_scope_gets_404_and_nothing_changes(org):
    assert _reset_page(_client(org.m3), org.g1).status_code == 404  # another store's manager
    api = APIClient()
    api.force_authenticate(org.m3)
    response = api.post(f"/api/v1/org/guides/{org.g1.pk}/password-reset/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert get_user_model().objects.get(pk=org.g1.user_id).check_password(PASSWORD) is True
    assert StaffPasswordReset.objects.count() == 0


def test_a_region_manager_resets_inside_the_region_only(org):
    north = _client(org.north_manager)
    assert _reset_page(north, org.g3).status_code == 404  # the south region's guide
    assert _reset_page(north, org.m1).status_code == 200  # a store manager of the region: below a region manager
    assert get_user_model().objects.get(pk=org.g3.user_id).check_password(PASSWORD) is True


def test_a_guide_cannot_reset_another_guide(org):
    guide = _client(org.g2.user)
    assert _reset_page(guide, org.g1).status_code == 403
    assert guide.get("/workbench/team/").status_code == 403
    api = APIClient()
    api.force_authenticate(org.g2.user)
    response = api.post(f"/api/v1/org/guides/{org.g1.pk}/password-reset/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert get_user_model().objects.get(pk=org.g1.user_id).check_password(PASSWORD) is True


def test_a_manager_cannot_reset_themself_or_a_peer(org):
    manager = _client(org.m1.user)
    assert _reset_page(manager, org.m1).status_code == 403  # own password: the password change page
    assert _reset_page(manager, org.m1b).status_code == 403  # the store's other manager: same rank
    assert StaffPasswordReset.objects.count() == 0


def test_the_team_page_lists_the_logins_below_me_in_my_scope(org):
    def listed(user):
        page = _client(user).get("/workbench/team/").content.decode()
        return re.findall(r'data-guide="([A-Z0-9]+)"', page)

    assert listed(org.m1.user) == ["G1", "G2"]
    assert listed(org.north_manager) == ["G1", "G2", "M1", "M1B"]
    assert listed(org.m3) == ["G3"]
    home = _client(org.m1.user).get("/workbench/").content.decode()
    assert 'data-testid="team-link"' in home
    assert 'data-testid="team-link"' not in _client(org.g1.user).get("/workbench/").content.decode()


def test_api_reset_returns_the_temporary_password_once(org):
    api = APIClient()
    api.force_authenticate(org.m1.user)

    response = api.post(f"/api/v1/org/guides/{org.g2.pk}/password-reset/")

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert sorted(body) == ["guide", "temporary_password", "username"]
    assert (body["guide"], body["username"]) == ("G2", "g2")
    assert re.fullmatch(r"[a-z2-9]{10}", body["temporary_password"])
    assert get_user_model().objects.get(pk=org.g2.user_id).check_password(body["temporary_password"]) is True
    assert list(StaffPasswordReset.objects.values_list("reset_by__username", "channel")) == [("m1", "api")]


def test_a_locked_out_guide_shows_on_the_team_page_and_a_reset_or_unlock_lifts_it(org):
    for n in range(1, 6):
        Client().post("/accounts/login/", {"username": "g1", "password": "wrong"}, REMOTE_ADDR=f"10.20.0.{n}")
    assert Client().post("/accounts/login/", {"username": "g1", "password": PASSWORD},
                         REMOTE_ADDR="10.20.0.9").status_code == 429
    manager = _client(org.m1.user)
    page = manager.get("/workbench/team/").content.decode()
    rows = re.findall(r'data-guide="(\w+)"(.*?)</li>', page, re.S)
    assert [(code, 'data-testid="locked"' in row) for code, row in rows] == [("G1", True), ("G2", False)]

    unlocked = manager.post(f"/workbench/team/{org.g1.pk}/unlock/")
    assert unlocked.status_code == 302
    assert AccessAttempt.objects.filter(username="g1").count() == 0
    assert Client().post("/accounts/login/", {"username": "g1", "password": PASSWORD},
                         REMOTE_ADDR="10.20.0.9").status_code == 302

    for n in range(1, 6):
        Client().post("/accounts/login/", {"username": "g1", "password": "wrong"}, REMOTE_ADDR=f"10.21.0.{n}")
    temporary = _temporary(_reset_page(manager, org.g1))
    assert Client().post("/accounts/login/", {"username": "g1", "password": temporary},
                         REMOTE_ADDR="10.21.0.9").status_code == 302


def test_unlock_outside_the_scope_is_404(org):
    assert _client(org.m3).post(f"/workbench/team/{org.g1.pk}/unlock/").status_code == 404


def test_email_reset_sends_a_link_only_to_a_login_with_that_address(org):
    user = org.m1.user
    user.email = "m1@example.com"
    user.save(update_fields=["email"])

    assert Client().post("/accounts/password-reset/", {"email": "nobody@example.com"}).status_code == 302
    assert len(mail.outbox) == 0
    response = Client().post("/accounts/password-reset/", {"email": "m1@example.com"})
    assert response["Location"] == "/accounts/password-reset/sent/"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["m1@example.com"]
    assert message.subject == "设置零售 CRM 新密码"
    link = re.search(r"http://testserver(/accounts/password-reset/[^/]+/[^/]+/)", message.body).group(1)

    client = Client()
    form_page = client.get(link, follow=True)  # Django swaps the token into the session and redirects
    assert "设置新密码" in form_page.content.decode()
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD,
                                                         "new_password2": NEW_PASSWORD})
    assert done["Location"] == "/accounts/password-reset/done/"
    assert get_user_model().objects.get(pk=user.pk).check_password(NEW_PASSWORD) is True
    assert Client().post("/accounts/login/", {"username": "m1", "password": NEW_PASSWORD}).status_code == 302


def test_an_email_reset_lifts_the_lockout_of_the_username(org):
    user = org.m1.user
    user.email = "m1@example.com"
    user.save(update_fields=["email"])
    for n in range(1, 6):
        Client().post("/accounts/login/", {"username": "m1", "password": "wrong"}, REMOTE_ADDR=f"10.30.0.{n}")
    assert Client().post("/accounts/login/", {"username": "m1", "password": PASSWORD},
                         REMOTE_ADDR="10.30.0.9").status_code == 429

    Client().post("/accounts/password-reset/", {"email": "m1@example.com"})
    link = re.search(r"http://testserver(/accounts/password-reset/[^/]+/[^/]+/)", mail.outbox[0].body).group(1)
    client = Client()
    form_url = client.get(link, follow=True).redirect_chain[-1][0]
    client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    assert Client().post("/accounts/login/", {"username": "m1", "password": NEW_PASSWORD},
                         REMOTE_ADDR="10.30.0.9").status_code == 302


def test_without_email_configured_the_reset_page_points_to_the_manager(db, settings):
    settings.PASSWORD_RESET_BY_EMAIL = False
    UserFactory(username="x", email="x@example.com")

    response = Client().post("/accounts/password-reset/", {"email": "x@example.com"})

    assert response.status_code == 200
    assert 'data-testid="reset-unavailable"' in response.content.decode()
    assert len(mail.outbox) == 0


def test_the_login_page_links_to_the_reset(db):
    assert 'href="/accounts/password-reset/"' in Client().get("/accounts/login/").content.decode()
