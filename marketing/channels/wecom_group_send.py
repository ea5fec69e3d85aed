"""WeCom enterprise group sends (企业群发) through a guide, written to WeCom's documented server API.

- ``GET  https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=…&corpsecret=…`` → ``{"access_token", "expires_in"}``
  (the secret of the app allowed to use customer contact, ``WECOM_CORP_SECRET``);
- ``POST …/cgi-bin/externalcontact/add_msg_template?access_token=…`` with ``chat_type`` "single", the
  members' ``external_userid`` list, ``sender`` (the guide's WeCom userid), ``text`` ``{content}`` and
  ``attachments`` (a ``miniprogram`` ``{title, pic_media_id, appid, page}`` or a ``link`` ``{title, url,
  picurl, desc}``) → ``{"msgid", "fail_list"}``. Nothing reaches a member until the guide confirms it in WeCom;
- ``POST …/externalcontact/get_groupmsg_task`` ``{msgid, limit, cursor}`` → ``task_list`` ``[{userid,
  status (0 not sent, 2 sent), send_time}]``;
- ``POST …/externalcontact/get_groupmsg_send_result`` ``{msgid, userid, limit, cursor}`` → ``send_list``
  ``[{external_userid, userid, status, send_time}]``, status 0 not sent, 1 sent, 2 not the guide's
  contact, 3 the member already received as many group messages as WeCom allows; paged by ``next_cursor``;
- ``POST …/externalcontact/cancel_groupmsg_send`` ``{msgid}``: a send the guide never confirmed is
  stopped, so a late confirmation cannot reach members already recorded as failed.

Answers: 40014/42001 (the token) → a fresh token and the request once more; -1 (busy), 45009 and 45033
(frequency and concurrency limits) → try again later; anything else → refused for good.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import urllib.parse
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from marketing.channels import (
    GroupMessage,
    GroupSendAccepted,
    PermanentFailure,
    RecipientResult,
    TemporaryFailure,
)
from marketing.channels.http import JSON_HEADERS, Transport, json_answer, json_body, urllib_transport
from marketing.channels.tokens import AccessToken

API = "https://qyapi.weixin.qq.com/cgi-bin"
TOKEN_ERRORS = frozenset({40014, 42001})
TEMPORARY_ERRORS = frozenset({-1, 45009, 45033})
PAGE = 1000  # the most either result list returns at once


def group_payload(message: GroupMessage) -> dict:
    """The documented ``add_msg_template`` body for ``message`` (text, then a mini-program and/or a link)."""
    payload = {"chat_type": "single", "external_userid": list(message.external_userids), "sender": message.sender}
    content = message.content or {}
    if content.get("text"):
        payload["text"] = {"content": content["text"]}
    attachments = []
    page = content.get("miniprogram")
    if page:
        attachments.append({"msgtype": "miniprogram", "miniprogram": {
            "title": page.get("title", ""), "pic_media_id": page.get("pic_media_id", ""),
            "appid": page.get("appid") or getattr(settings, "WECHAT_APPID", ""), "page": page.get("page", "")}})
    link = content.get("link")
    if link:
        attachments.append({"msgtype": "link", "link": {key: link[key] for key in ("title", "picurl", "desc", "url")
                                                        if link.get(key)}})
    if attachments:
        payload["attachments"] = attachments
    return payload


def _moment(timestamp) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(int(timestamp), tz=dt.UTC) if timestamp else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None


class WeComGroupSendClient:
    """The WeCom channel; configured by ``WECOM_CORP_ID`` and ``WECOM_CORP_SECRET`` (as the contact callback)."""

    def __init__(self, *, channel: str = "wecom", corp_id: str | None = None, corp_secret: str | None = None,
                 transport: Transport | None = None, clock: Callable[[], float] = time.time):
        self.channel = channel
        self.corp_id = corp_id or getattr(settings, "WECOM_CORP_ID", "")
        self.corp_secret = corp_secret or getattr(settings, "WECOM_CORP_SECRET", "")
        missing = [name for name, value in (("WECOM_CORP_ID", self.corp_id),
                                            ("WECOM_CORP_SECRET", self.corp_secret)) if not value]
        if missing:
            raise ImproperlyConfigured(f"WeCom group sends need {', '.join(missing)}")
        self.transport = transport or urllib_transport
        secret_hash = hashlib.sha256(self.corp_secret.encode()).hexdigest()[:12]
        self.token = AccessToken(cache_key=f"marketing:wecom-token:{self.corp_id}:{secret_hash}",
                                 fetch=self._fetch_token, clock=clock)

    def _fetch_token(self, force: bool) -> tuple[str, int]:
        query = urllib.parse.urlencode({"corpid": self.corp_id, "corpsecret": self.corp_secret})
        answer = json_answer(*self.transport("GET", f"{API}/gettoken?{query}", {}, None), "wecom gettoken")
        if answer.get("errcode") or not answer.get("access_token"):
            raise TemporaryFailure(f"wecom gettoken {answer.get('errcode')}: {answer.get('errmsg', '')}")
        return answer["access_token"], int(answer.get("expires_in") or 7200)

    def _call(self, path: str, payload: dict) -> dict:
        """POST ``payload`` to ``path``; the answer, or Temporary/PermanentFailure by WeCom's error code."""
        body = json_body(payload)
        token = self.token.get()
        for attempt in (1, 2):
            url = f"{API}/externalcontact/{path}?{urllib.parse.urlencode({'access_token': token})}"
            answer = json_answer(*self.transport("POST", url, dict(JSON_HEADERS), body), f"wecom {path}")
            code = int(answer.get("errcode") or 0)
            if code in TOKEN_ERRORS and attempt == 1:
                token = self.token.renew(rejected=token)
                continue
            break
        if code == 0:
            return answer
        reason = f"wecom {path} {code}: {answer.get('errmsg', '')}"[:200]
        if code in TEMPORARY_ERRORS or code in TOKEN_ERRORS:
            raise TemporaryFailure(reason)
        raise PermanentFailure(reason)

    def send_group(self, message: GroupMessage) -> GroupSendAccepted:
        """Create the group send; WeCom asks the guide to confirm it."""
        answer = self._call("add_msg_template", group_payload(message))
        if not answer.get("msgid"):
            raise PermanentFailure("wecom add_msg_template: no msgid in the answer")
        return GroupSendAccepted(msgid=str(answer["msgid"]), refused=[str(x) for x in answer.get("fail_list") or []])

    def _pages(self, path: str, payload: dict, key: str) -> list[dict]:
        rows, cursor = [], ""
        while True:
            answer = self._call(path, {**payload, "limit": PAGE, **({"cursor": cursor} if cursor else {})})
            rows.extend(row for row in answer.get(key) or [] if isinstance(row, dict))
            cursor = answer.get("next_cursor") or ""
            if not cursor:
                return rows

    def task_status(self, msgid: str, sender: str) -> tuple[int, dt.datetime | None]:
        """Whether the guide sent it: (0 not yet / 2 sent, when)."""
        for row in self._pages("get_groupmsg_task", {"msgid": msgid}, "task_list"):
            if row.get("userid") == sender:
                return int(row.get("status") or 0), _moment(row.get("send_time"))
        return 0, None

    def send_results(self, msgid: str, sender: str) -> list[RecipientResult]:
        """Each member's result of the guide's send."""
        return [RecipientResult(external_userid=str(row.get("external_userid", "")), status=int(row.get("status") or 0),
                                sent_at=_moment(row.get("send_time")))
                for row in self._pages("get_groupmsg_send_result", {"msgid": msgid, "userid": sender}, "send_list")
                if row.get("external_userid")]

    def cancel(self, msgid: str) -> None:
        """Stop a send the guide has not confirmed."""
        self._call("cancel_groupmsg_send", {"msgid": msgid})
