"""WeChat mini-program provider adapter: login codes → openid, phone codes → phone numbers.

The platform talks to WeChat through :class:`WeChatProvider` only, so tests and
development use :class:`FakeWeChatClient` (deterministic, no network) and
production uses :class:`WeChatClient`, written to WeChat's documented server
API with the standard library alone:

- ``GET  https://api.weixin.qq.com/sns/jscode2session`` (``wx.login`` code → openid, unionid, session_key)
- ``POST https://api.weixin.qq.com/cgi-bin/stable_token`` (the app's access token, cached)
- ``POST https://api.weixin.qq.com/wxa/business/getuserphonenumber`` (``getPhoneNumber`` code → phone)

Settings (read with defaults, so a missing line never breaks start-up):
``WECHAT_PROVIDER`` ("fake" or "real"; "fake" by default only when DEBUG is on),
``WECHAT_APPID``, ``WECHAT_SECRET``, ``WECHAT_TIMEOUT`` (seconds, default 5).
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

API_BASE = "https://api.weixin.qq.com"
# WeChat's access-token errors: the cached token was invalidated early (e.g. refreshed elsewhere).
_TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
# Refresh the access token this many seconds before WeChat says it expires.
_TOKEN_MARGIN_SECONDS = 300


class WeChatError(Exception):
    """WeChat refused a request (``errcode`` set) or could not be reached (``errcode`` None)."""

    def __init__(self, message: str, *, errcode: int | None = None):
        super().__init__(message)
        self.message = message
        self.errcode = errcode

    @property
    def unavailable(self) -> bool:
        """True when the fault is WeChat's or the network's, not the caller's code (try again later)."""
        return self.errcode is None or self.errcode == -1


@dataclass(frozen=True)
class WeChatSession:
    """The result of ``code2Session``: who the user is in this mini-program (and the open platform)."""

    openid: str
    unionid: str
    session_key: str


class WeChatProvider(Protocol):
    """What the platform needs from WeChat."""

    def code_to_session(self, code: str) -> WeChatSession: ...

    def phone_from_code(self, phone_code: str) -> str: ...


# ---------------------------------------------------------------------------- fake

class FakeWeChatClient:
    """Deterministic stand-in for development and tests; never touches the network.

    - A login code maps to the same openid/unionid every time (a hash of the code),
      so "the same person logs in again" is "send the same code again".
    - ``"phone:13812345678"`` as a phone code yields that number (the +86 form).
    - Codes starting with ``"bad"`` are refused as WeChat refuses expired codes.
    """

    def code_to_session(self, code: str) -> WeChatSession:
        code = (code or "").strip()
        if not code or code.startswith("bad"):
            raise WeChatError("invalid code", errcode=40029)
        digest = hashlib.sha256(code.encode()).hexdigest()
        return WeChatSession(openid=f"fake-o-{digest[:24]}", unionid=f"fake-u-{digest[24:48]}",
                             session_key=digest[48:])

    def phone_from_code(self, phone_code: str) -> str:
        phone_code = (phone_code or "").strip()
        if not phone_code.startswith("phone:"):
            raise WeChatError("invalid code", errcode=40029)
        number = phone_code.removeprefix("phone:")
        if not number.isdigit():
            raise WeChatError("invalid code", errcode=40029)
        return "+86" + number if len(number) == 11 else "+" + number


# ---------------------------------------------------------------------------- real

Opener = Callable[..., object]  # urllib.request.urlopen's shape: (request, timeout=…) → response


class WeChatClient:
    """WeChat's server API over HTTPS (standard library only), with the access token cached.

    ``opener`` is ``urllib.request.urlopen`` unless a test passes a fake one.
    Every call has a timeout; secrets never appear in log lines or error messages.
    """

    def __init__(self, *, appid: str, secret: str, timeout: float = 5.0, opener: Opener | None = None):
        if not appid or not secret:
            raise ImproperlyConfigured("WECHAT_APPID and WECHAT_SECRET must be set for WECHAT_PROVIDER=real")
        self.appid = appid
        self.secret = secret
        self.timeout = timeout
        self._open = opener or urllib.request.urlopen

    # -- transport

    def _call(self, what: str, request: urllib.request.Request) -> dict:
        try:
            with self._open(request, timeout=self.timeout) as response:
                raw = response.read()
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            logger.warning("WeChat %s unreachable: %s", what, type(exc).__name__)
            raise WeChatError(f"WeChat {what} is unreachable") from None
        try:
            data = json.loads(raw)
        except (ValueError, TypeError):
            raise WeChatError(f"WeChat {what} answered with something that is not JSON") from None
        if not isinstance(data, dict):
            raise WeChatError(f"WeChat {what} answered with something that is not an object")
        errcode = data.get("errcode") or 0
        if errcode != 0:
            logger.info("WeChat %s refused: errcode %s", what, errcode)
            raise WeChatError(str(data.get("errmsg") or f"WeChat {what} failed"), errcode=int(errcode))
        return data

    @staticmethod
    def _request(path: str, query: dict, body: dict | None = None) -> urllib.request.Request:
        url = f"{API_BASE}{path}?{urllib.parse.urlencode(query)}" if query else f"{API_BASE}{path}"
        if body is None:
            return urllib.request.Request(url)  # noqa: S310 - always https://api.weixin.qq.com (API_BASE)
        return urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",  # noqa: S310 - as above
                                      headers={"Content-Type": "application/json"})

    # -- API

    def code_to_session(self, code: str) -> WeChatSession:
        query = {"appid": self.appid, "secret": self.secret, "js_code": code, "grant_type": "authorization_code"}
        data = self._call("jscode2session", self._request("/sns/jscode2session", query))
        openid = data.get("openid") or ""
        if not openid:
            raise WeChatError("WeChat jscode2session returned no openid")
        return WeChatSession(openid=openid, unionid=data.get("unionid") or "",
                             session_key=data.get("session_key") or "")

    @property
    def _token_cache_key(self) -> str:
        return f"wechat:access_token:{self.appid}"

    def access_token(self, *, force_refresh: bool = False) -> str:
        """The app's access token; fetched through ``stable_token`` and cached until shortly before expiry."""
        if not force_refresh:
            cached = cache.get(self._token_cache_key)
            if cached:
                return cached
        data = self._call("stable_token", self._request(
            "/cgi-bin/stable_token", {}, {"grant_type": "client_credential", "appid": self.appid,
                                         "secret": self.secret, "force_refresh": force_refresh}))
        token = data.get("access_token") or ""
        if not token:
            raise WeChatError("WeChat stable_token returned no access_token")
        expires_in = int(data.get("expires_in") or 7200)
        cache.set(self._token_cache_key, token, timeout=max(expires_in - _TOKEN_MARGIN_SECONDS, 60))
        return token

    def phone_from_code(self, phone_code: str) -> str:
        body = {"code": phone_code}
        for attempt in range(2):
            token = self.access_token(force_refresh=attempt > 0)
            try:
                data = self._call("getuserphonenumber", self._request("/wxa/business/getuserphonenumber",
                                                                      {"access_token": token}, body))
                break
            except WeChatError as exc:
                # A token invalidated before its time: drop it and try once with a fresh one.
                if exc.errcode in _TOKEN_ERRCODES and attempt == 0:
                    cache.delete(self._token_cache_key)
                    continue
                raise
        info = data.get("phone_info") or {}
        number, country = info.get("purePhoneNumber") or "", str(info.get("countryCode") or "86")
        if not number:
            raise WeChatError("WeChat getuserphonenumber returned no phone number")
        return f"+{country}{number}"


def get_wechat_client() -> WeChatProvider:
    """The configured provider: the fake unless ``WECHAT_PROVIDER`` is "real" (the default when DEBUG is off)."""
    provider = getattr(settings, "WECHAT_PROVIDER", None) or ("fake" if settings.DEBUG else "real")
    if provider == "fake":
        return FakeWeChatClient()
    if provider == "real":
        return WeChatClient(appid=getattr(settings, "WECHAT_APPID", ""), secret=getattr(settings, "WECHAT_SECRET", ""),
                            timeout=float(getattr(settings, "WECHAT_TIMEOUT", 5)))
    raise ImproperlyConfigured(f"WECHAT_PROVIDER must be 'fake' or 'real', not {provider!r}")
