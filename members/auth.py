"""Mini-program authentication: a member bearer token, separate from staff logins.

Member endpoints use only :class:`MemberTokenAuthentication`; staff endpoints
never accept member tokens, so a member can never act as staff. Tokens are
stored as SHA-256 hashes; the plain value is shown once, at login.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone
from rest_framework import authentication, exceptions

from members.models import Member, MemberToken
from retail_crm import rawsql

TOKEN_LIFETIME = dt.timedelta(days=30)
KEYWORD = "Member"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class MemberPrincipal:
    """``request.user`` on member endpoints: authenticated, but never a staff user (no ``pk``)."""

    member: Member
    is_authenticated: bool = True
    is_active: bool = True
    is_superuser: bool = False
    is_staff: bool = False
    pk = None

    def get_username(self) -> str:
        return self.member.code


def member_token_issue(*, member: Member, openid: str = "") -> str:
    """Create a session for the member and return its plain token (shown once)."""
    key = secrets.token_urlsafe(32)
    MemberToken.objects.create(member=member, key_hash=_hash(key), openid=openid,
                               expires_at=timezone.now() + TOKEN_LIFETIME)
    return key


def member_token_revoke(*, key: str) -> None:
    MemberToken.objects.filter(key_hash=_hash(key), revoked_at__isnull=True).update(revoked_at=timezone.now())


_TOKEN_FIELDS, _MEMBER_FIELDS = rawsql.field_names(MemberToken), rawsql.field_names(Member)


@rawsql.cached_sql
def _token_sql() -> str:
    return (f"SELECT {rawsql.columns(MemberToken, 't', _TOKEN_FIELDS)}, "  # noqa: S608 - names from the models
            f"{rawsql.columns(Member, 'm', _MEMBER_FIELDS)} FROM {rawsql.table(MemberToken)} t "
            f"JOIN {rawsql.table(Member)} m ON m.id = t.member_id WHERE t.key_hash = %s")


def _token_with_member(key_hash: str) -> MemberToken | None:
    """The token and its member in one hand-written statement: every mini-program request runs it, and the
    ORM's select_related cost more to build than the query takes to run."""
    with connection.cursor() as cursor:
        cursor.execute(_token_sql(), [key_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    token = rawsql.load(MemberToken, _TOKEN_FIELDS, row[:len(_TOKEN_FIELDS)])
    token.member = rawsql.load(Member, _MEMBER_FIELDS, row[len(_TOKEN_FIELDS):])
    return token


class MemberTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Member <token>``; follows merges to the surviving member."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode(errors="replace") != KEYWORD:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid member token header.")
        key = header[1].decode(errors="replace")
        token = _token_with_member(_hash(key))
        if token is None or token.revoked_at is not None or token.expires_at <= timezone.now():
            raise exceptions.AuthenticationFailed("Member token is invalid or expired; log in again.")
        member = token.member
        while member.merged_into_id is not None:
            member = Member.objects.get(pk=member.merged_into_id)
        return MemberPrincipal(member=member), token

    def authenticate_header(self, request) -> str:
        return KEYWORD


def member_of(request) -> Member:
    """The authenticated member of a mini-program request."""
    principal = request.user
    if not isinstance(principal, MemberPrincipal):
        raise exceptions.NotAuthenticated()
    return principal.member
