"""Writes for guides: the exclusive QR / share token.

A token is a random id signed with the project's secret (``django.core.signing``),
so a forged or mistyped token is refused before any database look-up, and a
stored row says whose it is and whether it was revoked.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from django.core import signing
from django.db import transaction
from django.utils import timezone

from guides.models import GuideToken
from retail_crm.errors import ApplicationError
from retail_crm.models import Guide

_SALT = "guides.token"


class GuideTokenErrorCode(StrEnum):
    INVALID_TOKEN = "invalid_token"  # noqa: S105 - an error code, not a secret
    REVOKED_TOKEN = "revoked_token"  # noqa: S105 - an error code, not a secret
    GUIDE_LEFT = "guide_left"


def _signer() -> signing.Signer:
    return signing.Signer(salt=_SALT)


@dataclass(frozen=True)
class ResolvedToken:
    token: GuideToken
    guide: Guide | None


@transaction.atomic
def guide_token_issue(*, guide: Guide | None = None, staff_user=None) -> GuideToken:
    """A new token for a guide (or an office staff login); earlier tokens stay valid until revoked."""
    if guide is None and staff_user is None:
        raise ApplicationError("invalid", "A token needs a guide or a staff user.")
    value = _signer().sign(secrets.token_urlsafe(9))
    return GuideToken.objects.create(token=value, guide=guide, staff_user=staff_user)


def guide_token_current(*, guide: Guide) -> GuideToken:
    """The guide's newest unrevoked token, issued on first use."""
    token = GuideToken.objects.filter(guide=guide, revoked_at__isnull=True).order_by("-created_at", "-pk").first()
    return token or guide_token_issue(guide=guide)


def guide_token_rotate(*, guide: Guide) -> GuideToken:
    """Issue a fresh token; the old ones keep working (printed QR codes in stores) until revoked."""
    return guide_token_issue(guide=guide)


def guide_token_revoke(*, token: GuideToken) -> GuideToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def guide_token_resolve(value: str, *, allow_revoked: bool = False) -> ResolvedToken:
    """The token row and guide for a scanned or shared token; ApplicationError (400) if forged or revoked.

    ``allow_revoked`` serves history (attributing an old share link), never new bindings.
    """
    value = (value or "").strip()
    try:
        _signer().unsign(value)
    except signing.BadSignature:
        raise ApplicationError(GuideTokenErrorCode.INVALID_TOKEN, "This QR code or link is not valid.",
                               fields={"token": ["Not a valid guide token."]}) from None
    token = GuideToken.objects.select_related("guide", "guide__store", "guide__store__brand").filter(
        token=value).first()
    if token is None:
        raise ApplicationError(GuideTokenErrorCode.INVALID_TOKEN, "This QR code or link is not valid.",
                               fields={"token": ["Unknown guide token."]})
    if token.revoked_at is not None and not allow_revoked:
        raise ApplicationError(GuideTokenErrorCode.REVOKED_TOKEN,
                               "This QR code has been replaced; ask the guide for the new one.",
                               fields={"token": ["This token was revoked."]})
    return ResolvedToken(token=token, guide=token.guide)


def guide_tokens_resolve_many(values: Iterable[str]) -> dict[str, int | None]:
    """Guide id per genuine token (None for office-staff tokens); forged and unknown values are absent.

    The batch form of :func:`guide_token_resolve` for event ingestion: signatures
    are checked first (no query for a forged value), then one ``IN`` query.
    Revoked tokens are included, because a shared link is history.
    """
    signer = _signer()
    genuine = []
    for value in set(values):
        try:
            signer.unsign(value)
        except signing.BadSignature:
            continue
        genuine.append(value)
    if not genuine:
        return {}
    return dict(GuideToken.objects.filter(token__in=genuine).values_list("token", "guide_id"))
