"""The workbench's "My QR code" page: the token as a real QR image, rotation, revocation, and stale codes refused."""

from __future__ import annotations

import io

import pytest
import segno
from django.contrib.auth import get_user_model
from django.utils import translation
from rest_framework.test import APIClient

from guides.models import GuideToken
from guides.qr import BORDER, PNG_SCALE, SVG_SCALE, qr_code
from guides.services import guide_token_current, guide_token_issue, guide_token_resolve, guide_token_revoke
from guides.sharing import join_link
from members.auth import member_token_issue
from members.models import GuideBinding
from retail_crm.errors import ApplicationError
from tests.factories import GuideFactory, MemberFactory, RegionFactory, StoreFactory, staff_user

pytestmark = pytest.mark.django_db

JOIN = "https://mp.test/join"


@pytest.fixture(autouse=True)
def _join_url(settings):
    settings.MINIPROGRAM_JOIN_URL = JOIN


@pytest.fixture
def guide():
    store = StoreFactory(region=RegionFactory(brand__code="WOM"), code="WOM-E001")
    return GuideFactory(store=store, code="WOM-E001-G02", name="李娜")


def login_as(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def guide_client(client, guide):
    return login_as(client, staff_user("guide", guide=guide))


def expected_payload(token: str) -> str:
    # The token is "<random>:<signature>", both URL-safe base64; only the colon needs escaping.
    return f"{JOIN}?token={token.replace(':', '%3A')}"


def reference_image(payload: str, kind: str) -> bytes:
    """The picture segno draws for ``payload`` with the settings documented in guides/qr.py."""
    out = io.BytesIO()
    if kind == "svg":
        segno.make(payload, error="m", micro=False).save(out, kind="svg", scale=SVG_SCALE, border=BORDER,
                                                          xmldecl=True, dark="#000", light="#fff")
    else:
        segno.make(payload, error="m", micro=False).save(out, kind="png", scale=PNG_SCALE, border=BORDER,
                                                          dark="#000", light="#fff")
    return out.getvalue()


# ---------------------------------------------------------------------------- the image

def test_the_page_shows_the_current_token_as_a_qr_image_and_the_join_link(guide_client, guide):
    response = guide_client.get("/workbench/qr/")

    token = GuideToken.objects.get(guide=guide)  # issued on first visit
    html = response.content.decode()
    assert response.status_code == 200
    assert f'src="/workbench/qr/{token.pk}.svg"' in html
    assert f'href="/workbench/qr/{token.pk}.png"' in html
    assert f'value="{expected_payload(token.token)}"' in html


@pytest.mark.parametrize(("kind", "content_type", "magic"), [
    ("svg", "image/svg+xml", b"<?xml"), ("png", "image/png", b"\x89PNG\r\n\x1a\n")])
def test_the_image_is_a_segno_qr_of_the_join_link_with_the_token(guide_client, guide, kind, content_type, magic):
    token = guide_token_current(guide=guide)

    response = guide_client.get(f"/workbench/qr/{token.pk}.{kind}")

    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response.content.startswith(magic)
    # Byte for byte the QR segno draws for the expected payload: the code really encodes that link.
    assert response.content == reference_image(expected_payload(token.token), kind)
    assert qr_code(join_link(token.token)).matrix == segno.make(
        JOIN + "?token=" + token.token.replace(":", "%3A"), error="m", micro=False).matrix
    if kind == "svg":
        assert b'class="segno"' in response.content


def test_the_image_is_cached_privately_and_answers_304_to_its_etag(guide_client, guide):
    token = guide_token_current(guide=guide)
    url = f"/workbench/qr/{token.pk}.svg"

    first = guide_client.get(url)

    assert first["Cache-Control"] in ("private, max-age=86400", "max-age=86400, private")
    assert first["ETag"].startswith('"') and len(first["ETag"]) == 34
    again = guide_client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert (again.status_code, again.content, again["ETag"]) == (304, b"", first["ETag"])


def test_another_guides_token_image_and_unknown_formats_are_404(guide_client, guide):
    colleague_token = guide_token_current(guide=GuideFactory(store=guide.store))
    own = guide_token_current(guide=guide)

    assert guide_client.get(f"/workbench/qr/{colleague_token.pk}.svg").status_code == 404
    assert guide_client.get(f"/workbench/qr/{own.pk}.gif").status_code == 404
    assert guide_client.get(f"/workbench/qr/{10**30}.svg").status_code == 404


def test_the_qr_pages_need_a_staff_login(client, guide):
    token = guide_token_current(guide=guide)
    for url in ("/workbench/qr/", f"/workbench/qr/{token.pk}.svg"):
        response = client.get(url)
        assert (response.status_code, response["Location"].split("?")[0]) == (302, "/accounts/login/")
    client.force_login(get_user_model().objects.create_user("nobody"))  # a login without a staff role
    assert client.get("/workbench/qr/").status_code == 403


# ---------------------------------------------------------------------------- rotate and revoke

def test_rotating_issues_a_new_current_code_and_the_old_one_keeps_working(guide_client, guide):
    old = guide_token_current(guide=guide)

    response = guide_client.post("/workbench/qr/rotate/")

    assert (response.status_code, response["Location"]) == (302, "/workbench/qr/")
    new = guide_token_current(guide=guide)
    assert new != old and GuideToken.objects.filter(guide=guide).count() == 2
    assert guide_token_resolve(old.token).guide == guide
    html = guide_client.get("/workbench/qr/").content.decode()
    assert f'src="/workbench/qr/{new.pk}.svg"' in html
    assert f'data-token="{old.pk}"' in html and f'action="/workbench/qr/{old.pk}/revoke/"' in html
    assert guide_client.get(f"/workbench/qr/{old.pk}.svg").status_code == 200  # a printed old code still renders
    assert guide_client.get("/workbench/qr/rotate/").status_code == 405


def test_revoking_needs_the_confirmation_box_and_then_stops_new_bindings(guide_client, guide):
    old = guide_token_current(guide=guide)
    guide_client.post("/workbench/qr/rotate/")

    with translation.override("en"):
        unconfirmed = guide_client.post(f"/workbench/qr/{old.pk}/revoke/", HTTP_ACCEPT_LANGUAGE="en")
    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm." in unconfirmed.content.decode()
    old.refresh_from_db()
    assert old.revoked_at is None

    confirmed = guide_client.post(f"/workbench/qr/{old.pk}/revoke/", {f"t{old.pk}-confirm": "on"})

    assert (confirmed.status_code, confirmed["Location"]) == (302, "/workbench/qr/")
    old.refresh_from_db()
    assert old.revoked_at is not None
    with pytest.raises(ApplicationError) as refused:
        guide_token_resolve(old.token)
    assert refused.value.code == "revoked_token"
    assert guide_token_resolve(old.token, allow_revoked=True).guide == guide  # history still resolves


def test_a_chinese_guide_gets_the_confirmation_error_in_chinese(guide_client, guide):
    old = guide_token_current(guide=guide)
    guide_client.post("/workbench/qr/rotate/")

    response = guide_client.post(f"/workbench/qr/{old.pk}/revoke/", HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert response.status_code == 400
    assert 'class="errorlist' in response.content.decode()


def test_nobody_revokes_another_guides_code(guide_client, guide):
    colleague_token = guide_token_current(guide=GuideFactory(store=guide.store))

    response = guide_client.post(f"/workbench/qr/{colleague_token.pk}/revoke/",
                                 {f"t{colleague_token.pk}-confirm": "on"})

    assert response.status_code == 404
    colleague_token.refresh_from_db()
    assert colleague_token.revoked_at is None


def test_office_staff_get_a_distribution_code_of_their_own(client, guide):
    hq = staff_user("hq", group=guide.store.brand.group)
    login_as(client, hq)

    response = client.get("/workbench/qr/")

    token = GuideToken.objects.get(staff_user=hq)
    assert token.guide is None
    assert response.status_code == 200 and f'src="/workbench/qr/{token.pk}.svg"' in response.content.decode()
    assert client.get(f"/workbench/qr/{token.pk}.png")["Content-Type"] == "image/png"
    # A guide's own token is not theirs to render.
    assert client.get(f"/workbench/qr/{guide_token_current(guide=guide).pk}.svg").status_code == 404


# ---------------------------------------------------------------------------- the mini-program side

@pytest.mark.parametrize(("case", "code", "message"), [
    ("forged", "invalid_token", "This QR code or link is not valid."),
    ("revoked", "revoked_token", "This QR code has been replaced; ask the guide for the new one."),
])
def test_a_stale_or_forged_qr_code_is_refused_with_a_readable_message(guide, case, code, message):
    old = guide_token_current(guide=guide)
    guide_token_issue(guide=guide)
    if case == "revoked":
        guide_token_revoke(token=old)
    member = MemberFactory(group=guide.store.brand.group)
    mp = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    mp.credentials(HTTP_AUTHORIZATION=f"Member {member_token_issue(member=member)}")
    value = old.token if case == "revoked" else old.token[:-2] + "xx"

    response = mp.post("/api/v1/mp/guide-scan/", {"token": value}, format="json")

    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["message"]) == (code, message)
    assert GuideBinding.objects.count() == 0
