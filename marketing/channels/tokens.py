"""Access tokens of the WeChat official account and of WeCom, cached until shortly before they expire.

Both APIs hand out a token valid for ``expires_in`` seconds (7200) and reject a stale one with an error
code; the client then asks for a fresh one once and repeats its request. The token is kept in the
cache shared by every worker with the moment it stops being used, read against the client's clock.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.cache import cache

from marketing.channels import OutcomeUnknown, TemporaryFailure

# Stop using a token this many seconds before the provider says it expires.
MARGIN_SECONDS = 300

Fetch = Callable[[bool], tuple[str, int]]  # force a new token? → (token, expires_in seconds)


class AccessToken:
    """One app's access token: ``get`` the cached one, ``renew`` after the API rejected it."""

    def __init__(self, *, cache_key: str, fetch: Fetch, clock: Callable[[], float]):
        self.cache_key = cache_key
        self.fetch = fetch
        self.clock = clock

    def _fetch(self, force: bool) -> str:
        try:
            token, expires_in = self.fetch(force)
        except OutcomeUnknown as exc:  # asking for a token sends nothing to a member: just try later
            raise TemporaryFailure(str(exc)) from exc
        usable = max(int(expires_in) - MARGIN_SECONDS, 60)
        cache.set(self.cache_key, {"token": token, "expires_at": self.clock() + usable}, timeout=usable)
        return token

    def get(self) -> str:
        cached = cache.get(self.cache_key)
        if cached and cached.get("expires_at", 0) > self.clock():
            return cached["token"]
        return self._fetch(False)

    def renew(self, *, rejected: str) -> str:
        """A fresh token after ``rejected`` was refused; forced only if the provider hands back the same one."""
        token = self._fetch(False)
        if token == rejected:
            token = self._fetch(True)
        return token
