"""Staff API tokens that expire.

Staff integrations (POS push, exports, the HQ API) authenticate with a DRF authtoken
(``Authorization: Token <key>``). A token is good for ``STAFF_TOKEN_TTL_HOURS`` after it was issued; after that
the API answers 401 ``token_expired`` and the client obtains a new one at ``/api/v1/auth/token/``, which always
issues a fresh key (the previous one stops working at once). Member (mini-program) tokens are separate
(``members.auth``) and keep their own lifetime.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from retail_crm.errors import ErrorCode


class TokenExpired(exceptions.AuthenticationFailed):
    default_detail = _("Your API token has expired; obtain a new one at /api/v1/auth/token/.")
    default_code = ErrorCode.TOKEN_EXPIRED.value


def token_lifetime() -> dt.timedelta:
    return dt.timedelta(hours=settings.STAFF_TOKEN_TTL_HOURS)


def token_expires_at(token: Token) -> dt.datetime:
    return token.created + token_lifetime()


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing tokens older than ``STAFF_TOKEN_TTL_HOURS`` (401 token_expired)."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if token_expires_at(token) <= timezone.now():
            raise TokenExpired()
        return user, token


@transaction.atomic
def staff_token_issue(*, user: AbstractBaseUser) -> Token:
    """Issue a fresh API token for ``user``, replacing (and so revoking) any previous one."""
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)
