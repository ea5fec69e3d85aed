"""Password guessing protection on every password entry point, with django-axes.

The rules are in settings (``AXES_*``): a username with ``AXES_FAILURE_LIMIT`` wrong passwords from any IP,
or an IP with that many wrong passwords for any usernames, is locked out for ``AXES_COOLOFF_TIME``; while it
lasts even the right password is refused. Axes counts failures in ``AccessAttempt`` rows (deleting them, in
the admin, with ``manage.py axes_reset_username`` / ``axes_reset_ip`` or by :func:`login_unlock`, ends a
lock-out) and keeps every failure in ``AccessFailureLog`` (the audit).

This module holds what is ours: where the client's IP comes from (the socket, or X-Forwarded-For only behind
``TRUSTED_PROXY_COUNT`` proxies), and the answer to a locked-out login: a Chinese page for the HTML logins,
the API error shape with 429 and ``Retry-After`` for the token endpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max, Q, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from retail_crm.errors import ErrorCode


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: the socket's, or with ``TRUSTED_PROXY_COUNT`` = N the N-th X-Forwarded-For entry
    from the right (each trusted proxy appends the address it received the request from, so entries further
    left were written by the client and cannot be trusted)."""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
                     if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")


@dataclass(frozen=True)
class Lockout:
    """A lock-out in force: how many failures lock, and how many seconds remain."""

    failure_limit: int
    retry_after: int


def lockout_for(*, username: str | None, ip_address: str | None) -> Lockout:
    """The remaining lock-out for a username or an IP: it ends a cool-off after the last counted failure."""
    cool_off = settings.AXES_COOLOFF_TIME
    since = timezone.now() - cool_off
    match = Q(pk__in=[])
    if username:
        match |= Q(username=username)
    if ip_address:
        match |= Q(ip_address=ip_address)
    last = AccessAttempt.objects.filter(match, attempt_time__gte=since).aggregate(last=Max("attempt_time"))["last"]
    remaining = (last + cool_off - timezone.now()).total_seconds() if last else cool_off.total_seconds()
    return Lockout(failure_limit=settings.AXES_FAILURE_LIMIT, retry_after=max(1, math.ceil(remaining)))


def lockout_message(lockout: Lockout) -> str:
    minutes = max(1, math.ceil(lockout.retry_after / 60))
    return _("Too many wrong passwords: this account or network is locked for %(minutes)s more minutes. "
             "Try again later, or ask your manager or an administrator to unlock it.") % {"minutes": minutes}


def lockout_response(request: HttpRequest, original_response: HttpResponse | None = None,
                     credentials: dict | None = None) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: the answer to a login refused because of a lock-out (429 with Retry-After)."""
    username = (credentials or {}).get("username")
    lockout = lockout_for(username=username, ip_address=getattr(request, "axes_ip_address", None)
                          or client_ip(request))
    message = lockout_message(lockout)
    if request.path.startswith("/api/"):
        response = JsonResponse({"error": {"code": ErrorCode.LOGIN_LOCKED.value, "message": message}}, status=429)
    else:
        response = render(request, "registration/locked_out.html",
                          {"message": message, "lockout": lockout}, status=429)
    response["Retry-After"] = str(lockout.retry_after)
    return response


def locked_usernames(*, usernames: list[str]) -> set[str]:
    """Which of ``usernames`` are locked out now by their own failures (IP lock-outs are not a person's)."""
    if not usernames:
        return set()
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    rows = (AccessAttempt.objects.filter(username__in=usernames, attempt_time__gte=since)
            .values("username").annotate(failures=Sum("failures_since_start"))
            .filter(failures__gte=settings.AXES_FAILURE_LIMIT))
    return {row["username"] for row in rows}


def login_unlock(*, username: str) -> int:
    """End a username's lock-out now (a manager reset its password, or an admin unlocked it); returns the
    number of failure counters removed. The IP counters stay: they may be someone else's guessing."""
    return AxesProxyHandler.reset_attempts(username=username)
