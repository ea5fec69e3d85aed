"""Content-Security-Policy and Permissions-Policy on the pages, with production settings (DEBUG off)."""

import re

import pytest
from django.test import override_settings

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

EXPECTED_CSP_WITHOUT_NONCE = (
    "default-src 'self'; script-src 'self'; style-src 'self'; style-src-elem 'self'; "
    "style-src-attr 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
EXPECTED_PERMISSIONS_POLICY = (  # django-permissions-policy writes the features in alphabetical order
    "accelerometer=(), bluetooth=(), camera=(self), display-capture=(), fullscreen=(self), geolocation=(), "
    "gyroscope=(), hid=(), magnetometer=(), microphone=(), midi=(), payment=(), serial=(), usb=()"
)


def _directives(header: str) -> dict[str, list[str]]:
    """The header's directives by name (django-csp writes them in no fixed order)."""
    directives = {part.split()[0]: part.split()[1:] for part in header.split("; ")}
    assert len(directives) == len(header.split("; "))  # no directive twice
    return directives


@override_settings(DEBUG=False)
def test_login_page_carries_the_policies(client, settings):
    assert settings.DEBUG is False
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert _directives(response["Content-Security-Policy"]) == _directives(EXPECTED_CSP_WITHOUT_NONCE)
    assert response["Permissions-Policy"] == EXPECTED_PERMISSIONS_POLICY


@override_settings(DEBUG=False)
def test_error_page_carries_the_policies(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert _directives(response["Content-Security-Policy"]) == _directives(EXPECTED_CSP_WITHOUT_NONCE)
    assert response["Permissions-Policy"] == EXPECTED_PERMISSIONS_POLICY


@override_settings(DEBUG=False)
def test_a_page_with_an_inline_style_gets_the_same_nonce_in_header_and_tag(client):
    from tests.factories import GuideFactory, staff_user

    guide = GuideFactory()
    user = staff_user("guide", guide=guide)
    client.force_login(user)
    response = client.get("/workbench/commission/")
    assert response.status_code == 200
    html = response.content.decode()
    nonces = set(re.findall(r'<style nonce="([^"]+)">', html))
    assert len(nonces) == 1
    nonce = nonces.pop()
    assert len(nonce) >= 16
    directives = _directives(response["Content-Security-Policy"])
    assert directives["script-src"] == ["'self'", f"'nonce-{nonce}'"]
    assert directives["style-src-elem"] == ["'self'", f"'nonce-{nonce}'"]
    # A second request gets a fresh nonce.
    again = client.get("/workbench/commission/")
    assert nonce not in again["Content-Security-Policy"]


def test_no_template_has_an_inline_handler_or_an_unnonced_inline_block():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "templates"
    offenders = []
    for path in root.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        if re.search(r"\son[a-z]+\s*=", text):
            offenders.append(f"{path.relative_to(root)}: inline event handler")
        for tag in re.findall(r"<(?:script|style)\b[^>]*>", text):
            if "src=" not in tag and 'nonce="{{ request.csp_nonce }}"' not in tag:
                offenders.append(f"{path.relative_to(root)}: {tag}")
    assert offenders == []


@override_settings(DEBUG=False)
def test_admin_and_api_pages_carry_the_policies(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    for path in ("/admin/", "/api/docs/", "/api/v1/org/brands/"):
        response = client.get(path, HTTP_ACCEPT="text/html")
        assert response.status_code == 200, path
        assert _directives(response["Content-Security-Policy"])["default-src"] == ["'self'"], path
        assert response["Permissions-Policy"] == EXPECTED_PERMISSIONS_POLICY, path
