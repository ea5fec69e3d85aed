"""Password resets that fit a retail business: a manager resets a guide's password.

Guides rarely have an e-mail address, so the everyday path is their manager: a store manager (or a regional
manager, brand operator, HQ) picks a guide in their scope and gets a temporary password to pass on, shown
once. The guide must choose a new password at the next login (:class:`PasswordChangeRequiredMiddleware`).
Who may reset whom: only logins strictly below the manager's own role, inside the manager's scope (the one
scoping helper decides; anything else is a 404), never one's own (that is the password change page) and never
a platform operator. Every reset is a :class:`~retail_crm.models.StaffPasswordReset` row.

Where e-mail is configured, Django's own reset-by-link pages are at /accounts/password-reset/ too.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import user_logged_in
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.dispatch import receiver
from django.http import HttpRequest, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from rest_framework.authtoken.models import Token

from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.login_guard import login_unlock
from retail_crm.models import Guide, StaffPasswordReset, StaffProfile
from retail_crm.scoping import Actor, scoped

# Higher may reset lower. A login without a staff profile ranks lowest.
ROLE_RANK = {"guide": 0, "store_manager": 1, "region_manager": 2, "brand_operator": 3, "hq": 4}
SUPERUSER_RANK = 10
# No 0/O, 1/l/I: the password is read out or typed from a phone screen.
TEMPORARY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
TEMPORARY_LENGTH = 10
SESSION_FLAG = "password_change_required"


def _rank(actor: Actor) -> int:
    return SUPERUSER_RANK if actor.is_superuser else ROLE_RANK.get(actor.role or "", -1)


def can_reset_passwords(actor: Actor) -> bool:
    """Store managers and everyone above them may reset the passwords of the logins below them."""
    return _rank(actor) >= ROLE_RANK["store_manager"]


def guides_for_password_reset(*, actor: Actor) -> QuerySet[Guide]:
    """The guides (with a login) whose passwords ``actor`` may reset: in scope, below the actor's role."""
    guides = (scoped(Guide.objects.filter(user__isnull=False, left_at__isnull=True), actor)
              .exclude(user_id=actor.user_id).exclude(user__is_superuser=True)
              .select_related("store", "user").order_by("store__code", "code"))
    below = [role for role, rank in ROLE_RANK.items() if rank < _rank(actor)]
    return guides.filter(user__staff_profile__role__in=below)


def password_change_required(*, user: AbstractBaseUser) -> bool:
    return StaffProfile.objects.filter(user_id=user.pk, must_change_password=True).exists()


def _temporary_password(user: AbstractBaseUser) -> str:
    for _attempt in range(5):
        candidate = "".join(secrets.choice(TEMPORARY_ALPHABET) for _i in range(TEMPORARY_LENGTH))
        try:
            validate_password(candidate, user)
        except ValidationError:
            continue
        return candidate
    raise RuntimeError("could not generate a temporary password that passes the validators")


@dataclass(frozen=True)
class PasswordResetResult:
    guide: Guide
    temporary_password: str


def _guide_below(*, actor: Actor, guide_id: int) -> tuple[Guide, StaffProfile]:
    """The guide ``actor`` may manage the login of, with its staff profile; raises 403 / 404 / 409 otherwise."""
    if not can_reset_passwords(actor):
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, _("Only a store manager or above can reset passwords."),
                               status=403)
    guide = scoped(Guide.objects.filter(pk=guide_id), actor).select_related("user", "store").first()
    if guide is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, _("No such guide."), status=404)
    user = guide.user
    if user is None:
        raise ApplicationError(ErrorCode.CONFLICT, _("This guide has no login."), status=409)
    if user.pk == actor.user_id:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED,
                               _("Change your own password on the password change page."), status=403)
    profile = StaffProfile.objects.filter(user=user).first()
    if user.is_superuser or profile is None or ROLE_RANK[profile.role] >= _rank(actor):
        raise ApplicationError(ErrorCode.PERMISSION_DENIED,
                               _("You can only reset the passwords of staff below your own role."), status=403)
    return guide, profile


@transaction.atomic
def guide_password_reset(*, actor: Actor, guide_id: int, channel: str) -> PasswordResetResult:
    """Give a guide's login a temporary password (returned once, never stored in clear) and make them change
    it at the next login. Their API token is revoked, their sessions end (the password hash changed) and a
    lock-out of their username is lifted. 403 for roles that may not reset; 404 outside scope."""
    guide, profile = _guide_below(actor=actor, guide_id=guide_id)
    user = guide.user
    temporary = _temporary_password(user)
    user.set_password(temporary)
    user.save(update_fields=["password"])
    StaffProfile.objects.filter(pk=profile.pk).update(must_change_password=True)
    Token.objects.filter(user=user).delete()
    login_unlock(username=user.get_username())
    StaffPasswordReset.objects.create(reset_by_id=actor.user_id, user=user, guide=guide, channel=channel)
    return PasswordResetResult(guide=guide, temporary_password=temporary)


def guide_login_unlock(*, actor: Actor, guide_id: int) -> int:
    """Lift the lock-out of a guide's username now (the guide remembered the password after all); same rules
    as a reset. Returns the number of failure counters removed."""
    guide, _profile = _guide_below(actor=actor, guide_id=guide_id)
    return login_unlock(username=guide.user.get_username())


def password_changed(*, user: AbstractBaseUser) -> None:
    """The login chose its own password: the temporary one's obligation is over."""
    StaffProfile.objects.filter(user_id=user.pk, must_change_password=True).update(must_change_password=False)


@receiver(user_logged_in, dispatch_uid="retail_crm.passwords.flag_session")
def _flag_session(sender, request: HttpRequest | None, user, **kwargs) -> None:
    """Remember in the session that this login still has a temporary password (no query on later requests)."""
    if request is not None and hasattr(request, "session") and password_change_required(user=user):
        request.session[SESSION_FLAG] = True


class PasswordChangeRequiredMiddleware:
    """A login with a temporary password reaches only the password change page (and logging out) until it has
    chosen a new password: pages redirect there, the API answers 403 ``password_change_required``."""

    ALLOWED_PREFIXES = ("/accounts/", "/i18n/", "/static/", "/favicon.ico", "/healthz")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        session = getattr(request, "session", None)
        if session is not None and session.get(SESSION_FLAG) and not request.path.startswith(self.ALLOWED_PREFIXES):
            if request.path.startswith("/api/"):
                return JsonResponse({"error": {
                    "code": ErrorCode.PASSWORD_CHANGE_REQUIRED.value,
                    "message": _("Your password was reset: choose a new one first.")}}, status=403)
            return redirect(reverse("password_change"))
        return self.get_response(request)
