"""A guide's QR token or share code, as the apps below ``guides`` meet it.

A member joins and binds by scanning a guide's code, behaviour events and orders name the guide who
shared a link. The codes themselves (signed values, rotation, revocation, share codes made under a
token) are ``guides``' business, so ``guides`` answers these hooks (``GuidesConfig.ready``) and
members and mall ask through the functions here. What a caller may be told back is fixed here: the
error codes a bad code raises, which the mini-program branches on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from retail_crm import hooks

if TYPE_CHECKING:
    from retail_crm.models import Guide


hooks.declare(
    "guide_token_resolve",
    "value: str (a guide token or share code), allow_revoked: bool -> an answer whose .guide is the token's "
    "retail_crm.models.Guide (None for an office staff token); raises ApplicationError "
    "(MembersErrorCode.INVALID_TOKEN for a forged or unknown value, REVOKED_TOKEN for a revoked one unless "
    "allow_revoked) with the offending value under fields['token']. Exactly one provider.")
hooks.declare(
    "guide_tokens_resolve_many",
    "values: iterable of str -> {value: guide id, None for an office staff token} for the genuine values, "
    "revoked ones included; forged and unknown values are absent. Exactly one provider.")


def guide_token_guide(value: str, *, allow_revoked: bool = False) -> Guide | None:
    """The guide behind a scanned token or shared code (None: an office staff token); ApplicationError if bad.

    ``allow_revoked`` serves history (crediting an old share link), never new bindings.
    """
    return hooks.call_one("guide_token_resolve", value=value, allow_revoked=allow_revoked).guide


def guide_tokens_guides(values: Iterable[str]) -> dict[str, int | None]:
    """Guide id per genuine token or share code in ``values`` (revoked ones included), in one look-up."""
    return hooks.call_one("guide_tokens_resolve_many", values=values)
