"""The official account's followers: WeChat's server callback (服务器配置) links them to members by unionid.

Template messages reach a member through their openid in the official account (``Member.oa_openid``). WeChat
pushes follows and unfollows to the URL set under 设置与开发 → 基本配置 → 服务器配置 (here
``/api/v1/marketing/official-account/callback/``), written to its documented contract:

- every request carries ``signature``, ``timestamp`` and ``nonce`` in the query string, with
  ``signature = sha1("".join(sorted([token, timestamp, nonce])))`` and the token ``OFFICIAL_ACCOUNT_CALLBACK_TOKEN``
  (the 令牌 entered in that form); a mismatch is refused (403);
- saving the form sends a ``GET`` with ``echostr`` as well, answered with ``echostr`` itself as text;
- events arrive as ``POST`` XML: ``<xml><ToUserName/><FromUserName>openid</FromUserName><CreateTime/>
  <MsgType>event</MsgType><Event>subscribe|unsubscribe|SCAN</Event><EventKey/>…</xml>``. ``subscribe`` (also
  with ``EventKey`` ``qrscene_…`` from a parametric QR code) and ``SCAN`` (a follower scanning one) carry the
  openid but not the unionid: ``user/info`` gives it, and the openid is linked to the member with that unionid
  (created as an identity if new; ``members.services.member_official_account_link``). ``unsubscribe`` forgets
  the link. Every other message and event is answered ``success`` and otherwise ignored.

WeChat waits 5 s for an answer and otherwise delivers the same event again, three times in all; anything but
``success`` (or an empty answer) also makes it show the follower "该公众号暂时无法提供服务". So everything here is
idempotent (the same event twice changes nothing), and only a look-up that may succeed on a retry (WeChat busy
or unreachable) is answered 503; a follower WeChat gives no unionid for (the account is not bound to a WeChat
Open Platform account) or who no longer follows is logged and answered ``success``, as is a look-up WeChat
refused for good (a retry would be refused too).

Plaintext mode (明文模式) only. Safe mode (安全模式, AES) is not supported: its pushes carry an ``<Encrypt>``
element (compatible mode, 兼容模式, carries one beside the plaintext too) and are refused with 400
``official_account_encrypted``, so switching it on stops the linking until the account is set back to
plaintext mode. In plaintext mode the signature does not cover the body, so bodies are treated as untrusted
input: at most 64 KB, no DTD or entity declarations (refused before parsing; the standard library's parser
fetches no external entities, and nothing else is declared in WeChat's messages), malformed XML is a 400.
WeChat's contract sets no window on ``timestamp`` and none is enforced, so a captured signed URL could be
replayed with another body (safe mode would prevent it): a forged follow links only what ``user/info``
confirms, a forged unfollow could unlink a follower until their next follow or scan.

The followers belong to the mini-program's group (``WECHAT_GROUP``; a deployment with a single group needs no
setting): the unionid joins them to that group's members only if the official account is bound to the same
Open Platform account as the mini-program, which is also what makes the unionid appear at all.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from marketing.channels import PermanentFailure, TemporaryFailure, get_follower_lookup
from marketing.errors import MarketingErrorCode
from members.models import Member
from members.mp_services import mini_program_group
from members.services import member_official_account_link, member_official_account_unfollow
from retail_crm.errors import ApplicationError

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024  # WeChat's event pushes are well under 1 KB
FOLLOW_EVENTS = frozenset({"subscribe", "scan"})  # compared in lower case: WeChat writes "SCAN"
UNFOLLOW_EVENT = "unsubscribe"


# ---------------------------------------------------------------------------- the callback's contract

def _not_configured(message: str) -> ApplicationError:
    return ApplicationError(MarketingErrorCode.OFFICIAL_ACCOUNT_NOT_CONFIGURED, message, status=503)


def _bad_message(message: str) -> ApplicationError:
    return ApplicationError(MarketingErrorCode.OFFICIAL_ACCOUNT_BAD_MESSAGE, message)


def callback_signature(*, token: str, timestamp: str, nonce: str) -> str:
    """WeChat's signature of a callback request: SHA-1 over the sorted token, timestamp and nonce."""
    joined = "".join(sorted([token, timestamp, nonce]))
    return hashlib.sha1(joined.encode()).hexdigest()  # noqa: S324 - WeChat's protocol, not a password hash


def callback_verify(*, signature: str, timestamp: str, nonce: str) -> None:
    """Refuse a request not signed with ``OFFICIAL_ACCOUNT_CALLBACK_TOKEN`` (403; 503 while no token is set)."""
    token = getattr(settings, "OFFICIAL_ACCOUNT_CALLBACK_TOKEN", "")
    if not token:
        raise _not_configured("Set OFFICIAL_ACCOUNT_CALLBACK_TOKEN to the token of the official account's "
                              "server configuration.")
    expected = callback_signature(token=token, timestamp=timestamp, nonce=nonce)
    # Compared as bytes: compare_digest refuses non-ASCII str, and a forged signature may be anything.
    if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
        raise ApplicationError(MarketingErrorCode.OFFICIAL_ACCOUNT_BAD_SIGNATURE,
                               "The signature does not match.", status=403)


def callback_size_check(size: int) -> None:
    """Refuse a body over ``MAX_BODY_BYTES`` (checked on the declared length before the body is read, too)."""
    if size > MAX_BODY_BYTES:
        raise _bad_message(f"The message is larger than {MAX_BODY_BYTES // 1024} KB.")


@dataclass(frozen=True)
class CallbackMessage:
    """One message WeChat pushed: its type, its event (lower case; empty for other types) and who sent it."""

    msg_type: str
    event: str
    openid: str  # FromUserName: the person's openid in the official account


def _text(root: ET.Element, tag: str) -> str:
    node = root.find(tag)
    return (node.text or "").strip() if node is not None else ""


def callback_message(body: bytes) -> CallbackMessage:
    """The pushed message in ``body``; 400 for anything that is not a plaintext WeChat message."""
    callback_size_check(len(body))
    upper = body.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise _bad_message("XML with a DOCTYPE or entity declarations is not accepted.")
    try:
        root = ET.fromstring(body)  # noqa: S314 - DTDs refused above; expat fetches no external entities
    except ET.ParseError as exc:
        raise _bad_message(f"Malformed XML: {exc}") from None
    if root.tag != "xml":
        raise _bad_message(f"Not a WeChat message: the root element is <{root.tag}>, not <xml>.")
    if root.find("Encrypt") is not None:
        raise ApplicationError(MarketingErrorCode.OFFICIAL_ACCOUNT_ENCRYPTED,
                               "Encrypted messages are not supported: set the official account's message "
                               "encryption (消息加解密方式) to plaintext mode (明文模式).")
    message = CallbackMessage(msg_type=_text(root, "MsgType").lower(), event=_text(root, "Event").lower(),
                              openid=_text(root, "FromUserName"))
    if message.msg_type == "event" and message.event in FOLLOW_EVENTS | {UNFOLLOW_EVENT} and not message.openid:
        raise _bad_message(f"A {message.event} event without FromUserName.")
    return message


# ---------------------------------------------------------------------------- linking followers

@dataclass(frozen=True)
class FollowerEventOutcome:
    """What a pushed message did: ``linked``, ``unlinked`` or ``ignored`` (with why)."""

    result: str
    detail: str = ""
    member: Member | None = None


def follower_event_apply(*, message: CallbackMessage) -> FollowerEventOutcome:
    """Link the follower of a ``subscribe`` or ``SCAN`` event through their unionid; forget an ``unsubscribe``.

    Idempotent: WeChat delivers an event again when our answer is late, and linking the same openid to the
    same member again changes nothing. A look-up that may work on WeChat's retry is a 503
    (``official_account_api_error``); one that cannot is logged and ignored.
    """
    if message.msg_type != "event" or message.event not in FOLLOW_EVENTS | {UNFOLLOW_EVENT}:
        return FollowerEventOutcome("ignored", "not a follow or an unfollow")
    if message.event == UNFOLLOW_EVENT:
        unlinked = member_official_account_unfollow(oa_openid=message.openid)
        return FollowerEventOutcome("unlinked" if unlinked else "ignored", "" if unlinked else "openid not linked")
    try:
        group = mini_program_group()
        lookup = get_follower_lookup()
    except ImproperlyConfigured as exc:
        raise _not_configured(str(exc)) from None
    try:
        follower = lookup.follower(message.openid)
    except TemporaryFailure as exc:
        logger.warning("Official-account callback: user/info failed, WeChat will retry: %s", exc)
        raise ApplicationError(MarketingErrorCode.OFFICIAL_ACCOUNT_API_ERROR,
                               "WeChat's user/info could not be reached; deliver the event again.",
                               status=503) from None
    except PermanentFailure as exc:
        logger.error("Official-account callback: %s event of %s not linked: %s", message.event, message.openid, exc)
        return FollowerEventOutcome("ignored", str(exc))
    if not follower.following:
        logger.info("Official-account callback: %s no longer follows; not linked", message.openid)
        return FollowerEventOutcome("ignored", "not following")
    if not follower.unionid:
        logger.warning("Official-account callback: WeChat gives no unionid for %s (is the account bound to the "
                       "mini-program's WeChat Open Platform account?); not linked", message.openid)
        return FollowerEventOutcome("ignored", "no unionid")
    member = member_official_account_link(group=group, unionid=follower.unionid, oa_openid=message.openid)
    return FollowerEventOutcome("linked", member=member)
