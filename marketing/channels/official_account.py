"""Official-account template messages (公众号模板消息) through WeChat's server API.

Written to the documented contract:

- ``POST https://api.weixin.qq.com/cgi-bin/stable_token`` with ``{"grant_type": "client_credential",
  "appid", "secret", "force_refresh"}`` → ``{"access_token", "expires_in"}``; the stable token does not
  cut off other services of the same account, and is forced only when WeChat keeps handing back the
  token it just rejected;
- ``POST https://api.weixin.qq.com/cgi-bin/message/template/send?access_token=…`` with ``touser`` (the
  member's openid in the official account, linked through the unionid), ``template_id``, ``url`` or
  ``miniprogram`` ``{appid, pagepath}``, ``client_msg_id`` (WeChat drops a repeat of the same id to the
  same openid) and ``data`` ``{key: {"value": …}}`` → ``{"errcode": 0, "msgid": …}``.

Answers: 40001/40014/42001 (the token) → a fresh token and the request once more; 43004 (the member does
not follow the account) → failed for good, and the link is forgotten so the next message falls back to
another channel; -1 (busy), 45009 (daily quota) and 45011 (minute quota) → try again later; anything
else → failed. The delivery's content: ``{"template": id, "params": {key: value}, "url": …}`` or
``"miniprogram": {"pagepath": …, "appid": …}`` (the app id defaults to ``WECHAT_APPID``).

Who follows the account (``OfficialAccountFollowers``, for the follow callback in ``marketing.followers``):

- ``GET https://api.weixin.qq.com/cgi-bin/user/info?access_token=…&openid=…&lang=zh_CN`` →
  ``{"subscribe": 1, "openid", "unionid", …}``; ``unionid`` only when the account is bound to a WeChat Open
  Platform account, ``{"subscribe": 0, "openid"}`` for someone who does not follow.

The same token errors renew the token once; -1, 45009, 45011, an unreachable or unanswered WeChat → try again
(a look-up changes nothing, so repeating it is safe); anything else → failed. Both clients share the cached
token of the account.
"""

from __future__ import annotations

import hashlib
import time
import urllib.parse
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from marketing.channels import Follower, OutcomeUnknown, OutgoingMessage, PermanentFailure, TemporaryFailure
from marketing.channels.http import JSON_HEADERS, Transport, json_answer, json_body, urllib_transport
from marketing.channels.tokens import AccessToken
from members.services import member_official_account_unfollow

API = "https://api.weixin.qq.com/cgi-bin"
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
NOT_FOLLOWING = 43004
TEMPORARY_ERRORS = frozenset({-1, 45009, 45011})


class _OfficialAccountClient:
    """The account's credentials (``OFFICIAL_ACCOUNT_APPID``, ``OFFICIAL_ACCOUNT_SECRET``) and its access token."""

    needed_for = "Official-account messages"  # says what is refused without the credentials

    def __init__(self, *, appid: str | None = None, secret: str | None = None, transport: Transport | None = None,
                 clock: Callable[[], float] = time.time):
        self.appid = appid or getattr(settings, "OFFICIAL_ACCOUNT_APPID", "")
        self.secret = secret or getattr(settings, "OFFICIAL_ACCOUNT_SECRET", "")
        missing = [name for name, value in (("OFFICIAL_ACCOUNT_APPID", self.appid),
                                            ("OFFICIAL_ACCOUNT_SECRET", self.secret)) if not value]
        if missing:
            raise ImproperlyConfigured(f"{self.needed_for} need {', '.join(missing)}")
        self.transport = transport or self.default_transport()
        # The secret is part of the key: a rotated secret never reuses a token issued for the old one.
        secret_hash = hashlib.sha256(self.secret.encode()).hexdigest()[:12]
        self.token = AccessToken(cache_key=f"marketing:oa-token:{self.appid}:{secret_hash}",
                                 fetch=self._fetch_token, clock=clock)

    def _fetch_token(self, force: bool) -> tuple[str, int]:
        body = json_body({"grant_type": "client_credential", "appid": self.appid, "secret": self.secret,
                          "force_refresh": force})
        answer = json_answer(*self.transport("POST", f"{API}/stable_token", dict(JSON_HEADERS), body),
                             "official account stable_token")
        if answer.get("errcode") or not answer.get("access_token"):
            raise TemporaryFailure(f"official account stable_token {answer.get('errcode')}: {answer.get('errmsg', '')}")
        return answer["access_token"], int(answer.get("expires_in") or 7200)

    @staticmethod
    def default_transport() -> Transport:
        return urllib_transport


class OfficialAccountTemplates(_OfficialAccountClient):
    """The official-account channel; configured by ``OFFICIAL_ACCOUNT_APPID`` and ``OFFICIAL_ACCOUNT_SECRET``."""

    def __init__(self, *, channel: str = "official_account", appid: str | None = None, secret: str | None = None,
                 transport: Transport | None = None, clock: Callable[[], float] = time.time):
        self.channel = channel
        super().__init__(appid=appid, secret=secret, transport=transport, clock=clock)

    def payload_for(self, message: OutgoingMessage) -> dict:
        """The documented request body that sends ``message``."""
        payload = {"touser": message.address, "template_id": message.template}
        options = message.options or {}
        if options.get("url"):
            payload["url"] = options["url"]
        page = options.get("miniprogram")
        if page:
            payload["miniprogram"] = {"appid": page.get("appid") or getattr(settings, "WECHAT_APPID", ""),
                                      "pagepath": page.get("pagepath", "")}
        payload["client_msg_id"] = f"delivery-{message.delivery_id}"
        payload["data"] = {key: value if isinstance(value, dict) else {"value": str(value)}
                           for key, value in (message.params or {}).items()}
        return payload

    def send(self, message: OutgoingMessage) -> str:
        """Send one template message; WeChat's msgid on success."""
        if not message.address:
            raise PermanentFailure("official account: the member's openid is no longer linked")
        if not isinstance(message.params or {}, dict):
            raise PermanentFailure("official account: params must name each template field")
        body = json_body(self.payload_for(message))
        token = self.token.get()
        for attempt in (1, 2):
            url = f"{API}/message/template/send?{urllib.parse.urlencode({'access_token': token})}"
            answer = json_answer(*self.transport("POST", url, dict(JSON_HEADERS), body), "official account")
            code = int(answer.get("errcode") or 0)
            if code in TOKEN_ERRORS and attempt == 1:
                token = self.token.renew(rejected=token)
                continue
            break
        if code == 0:
            return str(answer.get("msgid", ""))
        reason = f"official account {code}: {answer.get('errmsg', '')}"[:200]
        if code == NOT_FOLLOWING:
            member_official_account_unfollow(oa_openid=message.address)
            raise PermanentFailure(reason)
        if code in TEMPORARY_ERRORS or code in TOKEN_ERRORS:  # a token refused twice: WeChat's trouble, for now
            raise TemporaryFailure(reason)
        raise PermanentFailure(reason)


# WeChat waits 5 s for the callback's answer: a token and a look-up must both fit inside it.
LOOKUP_TIMEOUT_SECONDS = 2


def _lookup_transport(method: str, url: str, headers: dict, body: bytes | None) -> tuple[int, bytes]:
    return urllib_transport(method, url, headers, body, timeout=LOOKUP_TIMEOUT_SECONDS)


class OfficialAccountFollowers(_OfficialAccountClient):
    """Who follows the account, by openid (``cgi-bin/user/info``); the same credentials and token as the channel."""

    needed_for = "Official-account follower look-ups"

    @staticmethod
    def default_transport() -> Transport:
        return _lookup_transport

    def follower(self, openid: str) -> Follower:
        """Whether ``openid`` follows the account, and its unionid; ``TemporaryFailure``: ask again later."""
        token = self.token.get()
        try:
            for attempt in (1, 2):
                query = urllib.parse.urlencode({"access_token": token, "openid": openid, "lang": "zh_CN"})
                answer = json_answer(*self.transport("GET", f"{API}/user/info?{query}", {}, None),
                                     "official account user/info")
                code = int(answer.get("errcode") or 0)
                if code in TOKEN_ERRORS and attempt == 1:
                    token = self.token.renew(rejected=token)
                    continue
                break
        except OutcomeUnknown as exc:  # a look-up changes nothing: an unanswered one is simply asked again
            raise TemporaryFailure(str(exc)) from exc
        if code == 0:
            return Follower(openid=openid, following=bool(answer.get("subscribe")),
                            unionid=str(answer.get("unionid") or ""))
        reason = f"official account user/info {code}: {answer.get('errmsg', '')}"[:200]
        if code in TEMPORARY_ERRORS or code in TOKEN_ERRORS:
            raise TemporaryFailure(reason)
        raise PermanentFailure(reason)
