"""Writes for guides: the exclusive QR / share token.

A token is a random id signed with the project's secret (``django.core.signing``),
so a forged or mistyped token is refused before any database look-up, and a
stored row says whose it is and whether it was revoked.

A share code (``guides.models.Share.code``, see ``guides.sharing``) is signed by
the same signer, so it is accepted wherever a token is (guide scan, behaviour
events, cart, order): it resolves to the token it was shared under, and that
token's rules apply (a share made under a since-revoked token still attributes
history but binds nobody new).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from django.core import signing
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from guides.models import GuideToken, Share
from mall.models import Product
from members.errors import MembersErrorCode
from members.events import try_on_record as member_try_on_record
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Guide

_SALT = "guides.token"


def _signer() -> signing.Signer:
    return signing.Signer(salt=_SALT)


def signed_code_new() -> str:
    """A fresh random value signed like every token: used for tokens and share codes alike."""
    return _signer().sign(secrets.token_urlsafe(9))


@dataclass(frozen=True)
class ResolvedToken:
    token: GuideToken
    guide: Guide | None
    share_code: str = ""  # set when the value was a share code rather than the token itself


@transaction.atomic
def guide_token_issue(*, guide: Guide | None = None, staff_user=None) -> GuideToken:
    """A new token for a guide (or an office staff login); earlier tokens stay valid until revoked."""
    if guide is None and staff_user is None:
        raise ApplicationError(ErrorCode.INVALID, "A token needs a guide or a staff user.")
    return GuideToken.objects.create(token=signed_code_new(), guide=guide, staff_user=staff_user)


def guide_tokens_of(*, guide: Guide | None = None, staff_user=None):
    """The tokens of a guide, or of an office staff login holding tokens without a guide row (newest first)."""
    if guide is not None:
        owned = GuideToken.objects.filter(guide=guide)
    elif staff_user is not None:
        owned = GuideToken.objects.filter(guide__isnull=True, staff_user=staff_user)
    else:
        raise ApplicationError(ErrorCode.INVALID, "A token needs a guide or a staff user.")
    return owned.order_by("-created_at", "-pk")


def guide_token_current(*, guide: Guide | None = None, staff_user=None) -> GuideToken:
    """The newest unrevoked token of a guide (or office staff login), issued on first use."""
    token = guide_tokens_of(guide=guide, staff_user=staff_user).filter(revoked_at__isnull=True).first()
    return token or guide_token_issue(guide=guide, staff_user=None if guide is not None else staff_user)


def guide_token_rotate(*, guide: Guide | None = None, staff_user=None) -> GuideToken:
    """Issue a fresh token; the old ones keep working (printed QR codes in stores) until revoked."""
    return guide_token_issue(guide=guide, staff_user=None if guide is not None else staff_user)


def guide_token_revoke(*, token: GuideToken) -> GuideToken:
    """Stop a token (and every share code made under it) from binding new members; history still resolves."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def guide_token_resolve(value: str, *, allow_revoked: bool = False) -> ResolvedToken:
    """The token row and guide for a scanned or shared token; ApplicationError (400) if forged or revoked.

    ``value`` may be a token or a share code; a share code resolves to the token
    it was shared under (one query either way). ``allow_revoked`` serves history
    (attributing an old share link), never new bindings.
    """
    value = (value or "").strip()
    try:
        _signer().unsign(value)
    except signing.BadSignature:
        raise ApplicationError(MembersErrorCode.INVALID_TOKEN, "This QR code or link is not valid.",
                               fields={"token": ["Not a valid guide token."]}) from None
    shared_under = Share.objects.filter(code=value).values("guide_token_id")
    token = GuideToken.objects.select_related("guide", "guide__store", "guide__store__brand").filter(
        Q(token=value) | Q(pk__in=shared_under)).first()
    if token is None:
        raise ApplicationError(MembersErrorCode.INVALID_TOKEN, "This QR code or link is not valid.",
                               fields={"token": ["Unknown guide token."]})
    if token.revoked_at is not None and not allow_revoked:
        raise ApplicationError(MembersErrorCode.REVOKED_TOKEN,
                               "This QR code has been replaced; ask the guide for the new one.",
                               fields={"token": ["This token was revoked."]})
    return ResolvedToken(token=token, guide=token.guide, share_code=value if value != token.token else "")


def guide_tokens_resolve_many(values: Iterable[str]) -> dict[str, int | None]:
    """Guide id per genuine token (None for office-staff tokens); forged and unknown values are absent.

    The batch form of :func:`guide_token_resolve` for event ingestion: signatures
    are checked first (no query for a forged value), then one query over tokens
    and share codes together. Revoked tokens (and codes shared under them) are
    included, because a shared link is history.
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
    tokens = GuideToken.objects.filter(token__in=genuine).values_list("token", "guide_id")
    shares = Share.objects.filter(code__in=genuine).values_list("code", "guide_token__guide_id")
    return dict(tokens.union(shares, all=True))


# ---------------------------------------------------------------------------- in-store try-ons

def try_on_record(*, member, brand_id: int, product_code: str, guide: Guide | None, store, at=None):
    """Record that ``member`` tried ``product_code`` on in ``store`` (the guide's two taps on the workbench).

    The product must be an active product of ``brand_id`` (400 with a field message otherwise); the caller has
    checked the member is in the viewer's scope. The event goes through the members app
    (``members.events.try_on_record``), which tells journeys."""
    code = (product_code or "").strip()
    if not code or not Product.objects.filter(brand_id=brand_id, code=code, is_active=True).exists():
        raise ApplicationError(ErrorCode.INVALID, "Not a product of the store's brand.",
                               fields={"product": ["Not a product of the store's brand."]})
    return member_try_on_record(member=member, brand_id=brand_id, product_code=code,
                                guide_id=guide.pk if guide else None, store_id=store.pk if store else None, at=at)
