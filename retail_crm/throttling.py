"""Rate limits: DRF throttles on the Django cache (Redis in production), for the API and for plain views.

Every limit has a *scope* whose rate (``"60/min"``, ``"1500/hour"``, or ``None`` for no limit) lives in
``settings.THROTTLE_RATES`` and comes from the environment (``THROTTLE_<SCOPE>``, see ``settings.py`` and the
README's "Rate limits"). The rate is read when a request is checked, so an override in a test or a new
deployment setting applies at once.

Who counts as one client:

* a logged-in caller (staff user or mini-program member) is themself, wherever they connect from;
* an anonymous caller is its IP address **and** the visitor or viewer id the client sends (the mini-program
  keeps one per install): many phones behind one shared NAT (a mall's Wi-Fi) are different clients. A
  per-IP limit (a scope of its own, a multiple of the per-client one) caps what one address can do however
  many ids it invents.

The IP is the socket's address unless ``NUM_PROXIES`` (DRF's setting, from the environment) says how many
trusted proxies append to ``X-Forwarded-For``; with the default 0 the header is ignored, so a client cannot
pick its own IP by sending one.

A refused request is 429 with ``Retry-After`` (seconds) and the error shape ``{"error": {"code":
"throttled", …}}`` from the API's exception handler; :func:`throttle_view` gives a plain Django view the
same status and header.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpResponse
from django.utils.translation import gettext as _
from rest_framework.throttling import SimpleRateThrottle


def throttled_message(wait: float | None) -> str:
    """The one sentence a throttled caller reads (API and pages alike)."""
    seconds = max(1, math.ceil(wait or 1))
    return _("Too many requests. Please try again in %(seconds)d seconds.") % {"seconds": seconds}


class ScopedRateThrottle(SimpleRateThrottle):
    """A sliding-window limit for one scope; the rate is looked up in ``settings.THROTTLE_RATES`` per check."""

    scope: str = ""

    def get_rate(self) -> str | None:
        return settings.THROTTLE_RATES.get(self.scope)

    def principal_ident(self, request) -> str | None:
        """``user:<pk>`` for a staff login, ``member:<code>`` for a mini-program member, None when anonymous."""
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if getattr(user, "pk", None) is not None:
            return f"user:{user.pk}"
        return f"member:{user.get_username()}"

    def key(self, ident: str) -> str:
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ClientRateThrottle(ScopedRateThrottle):
    """Per client: the logged-in principal, else the IP plus the anonymous id the request body carries.

    ``anonymous_id_field`` names the id in the items of ``{"events": [{…}, …]}`` (the first item's counts:
    a real client sends its own id on every item); without it anonymous callers are keyed by IP alone.
    """

    anonymous_id_field: str = ""

    def anonymous_id(self, request) -> str:
        if not self.anonymous_id_field:
            return ""
        # A body the parser refuses raises here (400/415, as the view would answer): never swallow it, or DRF
        # would hand the view an empty body. Put the per-IP throttle first so such requests still count.
        data = request.data
        items = data.get("events") if isinstance(data, dict) else None
        first = items[0] if isinstance(items, list) and items else None
        value = first.get(self.anonymous_id_field) if isinstance(first, dict) else None
        return value.strip()[:64] if isinstance(value, str) else ""

    def get_cache_key(self, request, view) -> str:
        ident = self.principal_ident(request)
        if ident is None:
            ident = f"ip:{self.get_ident(request)}:{self.anonymous_id(request)}"
        return self.key(ident)


class AnonymousIpRateThrottle(ScopedRateThrottle):
    """Per IP, anonymous callers only: the cap on one address (shared NAT included) however many ids it sends."""

    def get_cache_key(self, request, view) -> str | None:
        if self.principal_ident(request) is not None:
            return None
        return self.key(f"ip:{self.get_ident(request)}")


class IpRateThrottle(ScopedRateThrottle):
    """Per IP, whoever calls: for endpoints before anyone is logged in (login, token)."""

    def get_cache_key(self, request, view) -> str:
        return self.key(f"ip:{self.get_ident(request)}")


def client_throttle(scope: str, *, anonymous_id_field: str = "") -> type[ClientRateThrottle]:
    """A :class:`ClientRateThrottle` for ``scope`` (a class, as DRF's ``throttle_classes`` wants)."""
    name = "".join(part.title() for part in scope.split("_")) + "Throttle"
    return type(name, (ClientRateThrottle,), {"scope": scope, "anonymous_id_field": anonymous_id_field})


def anonymous_ip_throttle(scope: str) -> type[AnonymousIpRateThrottle]:
    name = "".join(part.title() for part in scope.split("_")) + "Throttle"
    return type(name, (AnonymousIpRateThrottle,), {"scope": scope})


def ip_throttle(scope: str) -> type[IpRateThrottle]:
    name = "".join(part.title() for part in scope.split("_")) + "Throttle"
    return type(name, (IpRateThrottle,), {"scope": scope})


def throttle_view(*throttle_classes: type[ScopedRateThrottle]) -> Callable:
    """The API's throttles on a plain Django view: 429 with ``Retry-After`` and the message as plain text.

    Put it under ``login_required`` so the limit is the logged-in user's.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            waits = []
            for throttle_class in throttle_classes:
                throttle = throttle_class()
                if not throttle.allow_request(request, None):
                    waits.append(throttle.wait())
            if waits:
                wait = max((w for w in waits if w is not None), default=None)
                response = HttpResponse(throttled_message(wait), status=429,
                                        content_type="text/plain; charset=utf-8")
                response["Retry-After"] = str(max(1, math.ceil(wait or 1)))
                return response
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
