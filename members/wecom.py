"""WeCom (企业微信) friendships: the services that record them and the adapter for WeCom's callback.

A guide's WeCom contacts are company assets (DOMAIN.md, "WeCom friendship"):
we record which guide a member is a contact of, since when, and when the
contact was removed. Removing and re-adding keeps history: a removal closes
the open row, a re-add opens a new one.

How WeCom ids map to ours, without new columns:
- a guide's WeCom ``userid`` is the guide's ``code`` (set the guide's account
  id in the WeCom admin console to the code used in the org import);
- an external contact (``ExternalUserID``) is resolved to a member first
  through an earlier friendship with the same external id, else through the
  contact's WeChat ``unionid`` fetched with :class:`WeComClient` (the member
  is created if the unionid is new to the group).

The adapter implements WeCom's documented callback encryption
(WXBizMsgCrypt): a SHA-1 signature over the sorted token, timestamp, nonce
and ciphertext, and AES-256-CBC with the key ``base64(EncodingAESKey + "=")``,
IV = the key's first 16 bytes, PKCS#7 padding to 32-byte blocks, plaintext =
16 random bytes + 4-byte big-endian length + message + receiveid (the corp id).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import struct
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from members.errors import MembersErrorCode
from members.models import GuideBinding, Member, WeComFriendship
from members.services import member_get_or_create
from retail_crm.errors import ApplicationError
from retail_crm.models import Guide

# ---------------------------------------------------------------------------- services

def _latest(member: Member, guide: Guide) -> WeComFriendship | None:
    return WeComFriendship.objects.filter(member=member, guide=guide).order_by("-added_at", "-pk").first()


@transaction.atomic
def wecom_friend_add(*, member: Member, guide: Guide, external_userid: str = "", at: dt.datetime,
                     source: str) -> tuple[WeComFriendship, bool]:
    """Record that the member became the guide's WeCom contact at ``at``; returns (row, created).

    Idempotent: an already-open friendship is returned unchanged (its
    external id is filled in if it had none). An add no later than the last
    recorded removal is a stale redelivery and changes nothing, so a
    callback retried after a later delete cannot reopen the friendship.
    """
    # The member row serialises concurrent adds for one member, as binding does.
    Member.objects.select_for_update().filter(pk=member.pk).first()
    latest = _latest(member, guide)
    if latest is not None and latest.removed_at is None:
        if external_userid and not latest.external_userid:
            latest.external_userid = external_userid
            latest.save(update_fields=["external_userid"])
        return latest, False
    if latest is not None and latest.removed_at >= at:
        return latest, False
    try:
        with transaction.atomic():
            row = WeComFriendship.objects.create(member=member, guide=guide, external_userid=external_userid,
                                                 added_at=at, source=source)
    except IntegrityError:
        # A concurrent add on another connection won the one-open-row constraint: theirs stands.
        return WeComFriendship.objects.get(member=member, guide=guide, removed_at__isnull=True), False
    return row, True


@transaction.atomic
def wecom_friend_remove(*, member: Member, guide: Guide, at: dt.datetime) -> WeComFriendship | None:
    """Close the open friendship of member and guide at ``at``; returns the closed row, None if none was open.

    History is kept (the row is closed, not deleted). A removal dated before
    the open row began belongs to an earlier friendship: it leaves the current
    one open (a retried delete must not end a newer re-add).
    """
    row = (WeComFriendship.objects.select_for_update()
           .filter(member=member, guide=guide, removed_at__isnull=True).first())
    if row is None or at < row.added_at:
        return None
    row.removed_at = at
    row.save(update_fields=["removed_at"])
    return row


@transaction.atomic
def member_wecom_merge(*, survivor: Member, absorbed: Member) -> int:
    """Move the absorbed member's friendships to the survivor; returns how many rows moved.

    Where both hold an open friendship with the same guide, the earlier one
    stays open and the later one is closed (history kept), so the survivor
    still has one open row per guide.
    """
    open_mine = {f.guide_id: f for f in WeComFriendship.objects.select_for_update()
                 .filter(member=survivor, removed_at__isnull=True)}
    now = timezone.now()
    theirs = list(WeComFriendship.objects.select_for_update().filter(member=absorbed).order_by("pk"))
    for row in theirs:
        mine = open_mine.get(row.guide_id) if row.removed_at is None else None
        if mine is None:
            continue
        older, newer = (row, mine) if (row.added_at, row.pk) < (mine.added_at, mine.pk) else (mine, row)
        newer.removed_at = max(now, newer.added_at)
        newer.save(update_fields=["removed_at"])
        open_mine[row.guide_id] = older
    return WeComFriendship.objects.filter(member=absorbed).update(member=survivor)


@dataclass(frozen=True)
class GuideContact:
    """A member as a WeCom contact of their bound guide: who sends (the guide's WeCom userid) and to whom."""

    guide_id: int
    sender: str  # the guide's WeCom userid, i.e. the guide's code
    external_userid: str


def bound_guide_contact_rows(*, brand_id: int) -> QuerySet[WeComFriendship]:
    """The open WeCom contacts between members and the guide currently bound to them for the brand.

    The one definition of "the member's bound guide can reach them through WeCom": the contact is not
    removed, has an external user id, and its guide is the member's open binding for the brand. Lazy; a
    caller narrows it to its members (:func:`bound_guide_contacts`, or marketing's set-based rules, which
    embed it as SQL).
    """
    bound = GuideBinding.objects.filter(member_id=OuterRef("member_id"), guide_id=OuterRef("guide_id"),
                                        brand_id=brand_id, ended_at__isnull=True)
    return WeComFriendship.objects.filter(Exists(bound), removed_at__isnull=True).exclude(external_userid="")


def bound_guide_contacts(*, brand_id: int, member_ids: Iterable[int]) -> dict[int, GuideContact]:
    """Per member, their WeCom contact with the guide currently bound to them for the brand (one query).

    Members without a bound guide, or who are not (or no longer) that guide's WeCom contact, or whose
    contact has no external user id yet, are absent: the guide cannot reach them through WeCom.
    """
    rows = (bound_guide_contact_rows(brand_id=brand_id).filter(member_id__in=list(member_ids))
            .values_list("member_id", "guide_id", "guide__code", "external_userid"))
    return {member_id: GuideContact(guide_id=guide_id, sender=code, external_userid=external)
            for member_id, guide_id, code, external in rows}


# ---------------------------------------------------------------------------- WeCom API client

@dataclass(frozen=True)
class ExternalContact:
    """What we need from WeCom about an external contact."""

    external_userid: str
    unionid: str
    name: str


class WeComApiError(Exception):
    """WeCom's server could not be reached or answered with an error code."""


class WeComClient(Protocol):
    """Looks up external contacts; the real one calls WeCom, the fake one is deterministic."""

    def external_contact(self, external_userid: str) -> ExternalContact: ...


class FakeWeComClient:
    """A deterministic stand-in for development and tests: no network.

    Known contacts can be given; any other external id gets the unionid
    ``fake-union-<external id>`` and the name ``WeCom <last 4 chars>``.
    """

    def __init__(self, contacts: dict[str, ExternalContact] | None = None):
        self.contacts = dict(contacts or {})
        self.calls: list[str] = []

    def external_contact(self, external_userid: str) -> ExternalContact:
        self.calls.append(external_userid)
        if external_userid in self.contacts:
            return self.contacts[external_userid]
        return ExternalContact(external_userid=external_userid, unionid=f"fake-union-{external_userid}",
                               name=f"WeCom {external_userid[-4:]}")


class WeComApiClient:
    """WeCom's server API over HTTPS (stdlib only), with the access token cached.

    Tokens last ``expires_in`` seconds (7200); we keep them a little shorter
    and fetch a new one once if WeCom says the cached one expired.
    """

    base_url = "https://qyapi.weixin.qq.com/cgi-bin"
    _EXPIRED_TOKEN_CODES = frozenset({40014, 42001})

    def __init__(self, *, corp_id: str, corp_secret: str, timeout: float = 5.0):
        if not corp_id or not corp_secret:
            raise ApplicationError(MembersErrorCode.NOT_CONFIGURED, "WECOM_CORP_ID and WECOM_CORP_SECRET must be set.",
                                   status=503)
        self.corp_id, self.corp_secret, self.timeout = corp_id, corp_secret, timeout
        # The secret is part of the key so rotating it never reuses a token issued for the old one.
        secret_hash = hashlib.sha256(corp_secret.encode()).hexdigest()[:12]
        self._cache_key = f"wecom:token:{corp_id}:{secret_hash}"

    def _get(self, path: str, params: dict) -> dict:
        url = f"{self.base_url}/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:  # noqa: S310 (fixed https host)
                return json.loads(response.read().decode("utf-8"))
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            raise WeComApiError(f"WeCom {path}: {exc}") from exc

    def access_token(self, *, refresh: bool = False) -> str:
        token = None if refresh else cache.get(self._cache_key)
        if token:
            return token
        data = self._get("gettoken", {"corpid": self.corp_id, "corpsecret": self.corp_secret})
        if data.get("errcode", 0) != 0 or not data.get("access_token"):
            raise WeComApiError(f"WeCom gettoken: {data.get('errcode')} {data.get('errmsg')}")
        token = data["access_token"]
        cache.set(self._cache_key, token, max(60, int(data.get("expires_in", 7200)) - 300))
        return token

    def external_contact(self, external_userid: str) -> ExternalContact:
        data = {}
        for refresh in (False, True):
            data = self._get("externalcontact/get", {"access_token": self.access_token(refresh=refresh),
                                                     "external_userid": external_userid})
            if data.get("errcode", 0) not in self._EXPIRED_TOKEN_CODES:
                break
        if data.get("errcode", 0) != 0:
            raise WeComApiError(f"WeCom externalcontact/get: {data.get('errcode')} {data.get('errmsg')}")
        contact = data.get("external_contact") or {}
        return ExternalContact(external_userid=external_userid, unionid=contact.get("unionid", ""),
                               name=contact.get("name", ""))


def wecom_client() -> WeComClient:
    """The client the settings choose: ``WECOM_CLIENT = "api"`` (default) or ``"fake"``."""
    kind = getattr(settings, "WECOM_CLIENT", "api")
    if kind == "fake":
        return FakeWeComClient()
    return WeComApiClient(corp_id=getattr(settings, "WECOM_CORP_ID", ""),
                          corp_secret=getattr(settings, "WECOM_CORP_SECRET", ""),
                          timeout=float(getattr(settings, "WECOM_TIMEOUT_SECONDS", 5)))


# ---------------------------------------------------------------------------- callback codec

class CallbackRejected(Exception):
    """The callback failed its signature or could not be decrypted or parsed."""

    def __init__(self, code: MembersErrorCode, message: str):
        super().__init__(message)
        self.code = code


def _parse_xml(text: str | bytes) -> ET.Element:
    # ElementTree does not fetch external entities, but entity expansion is still a
    # denial-of-service vector; WeCom never sends a DTD, so anything with one is refused.
    raw = text.encode() if isinstance(text, str) else text
    if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
        raise CallbackRejected(MembersErrorCode.BAD_MESSAGE, "XML with a DTD is not accepted.")
    try:
        return ET.fromstring(raw)  # noqa: S314 (DTDs refused above; expat fetches no external entities)
    except ET.ParseError as exc:
        raise CallbackRejected(MembersErrorCode.BAD_MESSAGE, f"Malformed XML: {exc}") from None


def _child(root: ET.Element, tag: str) -> str:
    node = root.find(tag)
    return (node.text or "").strip() if node is not None else ""


@dataclass(frozen=True)
class ContactChange:
    """One ``change_external_contact`` event, decoded."""

    change_type: str  # add_external_contact, del_external_contact, del_follow_user, …
    user_id: str  # the guide's WeCom userid (= Guide.code)
    external_userid: str
    created_at: dt.datetime


class WeComCallbackCodec:
    """WeCom's callback contract: verify signatures, decrypt and encrypt messages."""

    BLOCK_SIZE = 32

    def __init__(self, *, token: str, encoding_aes_key: str, receive_id: str):
        if not token or not receive_id or len(encoding_aes_key or "") != 43:
            raise ApplicationError(MembersErrorCode.NOT_CONFIGURED,
                                   "WeCom callback needs a token, a 43-character EncodingAESKey and the corp id.",
                                   status=503)
        try:
            self.key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except ValueError:
            raise ApplicationError(MembersErrorCode.NOT_CONFIGURED, "EncodingAESKey is not base64.",
                                   status=503) from None
        if len(self.key) != 32:
            raise ApplicationError(MembersErrorCode.NOT_CONFIGURED, "EncodingAESKey must decode to 32 bytes.",
                                   status=503)
        self.token = token
        self.receive_id = receive_id

    @classmethod
    def from_settings(cls) -> WeComCallbackCodec:
        return cls(token=getattr(settings, "WECOM_CALLBACK_TOKEN", ""),
                   encoding_aes_key=getattr(settings, "WECOM_ENCODING_AES_KEY", ""),
                   receive_id=getattr(settings, "WECOM_CORP_ID", ""))

    # -- signature

    def signature(self, timestamp: str, nonce: str, encrypted: str) -> str:
        parts = sorted([self.token, timestamp, nonce, encrypted])
        return hashlib.sha1("".join(parts).encode()).hexdigest()  # noqa: S324 (WeCom's protocol)

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        expected = self.signature(timestamp, nonce, encrypted)
        # Compared as bytes: compare_digest refuses non-ASCII str, and a forged signature may be anything.
        if not hmac.compare_digest(expected.encode(), (msg_signature or "").lower().encode()):
            raise CallbackRejected(MembersErrorCode.BAD_SIGNATURE, "The message signature does not match.")

    # -- AES

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, message: str, *, random_prefix: bytes | None = None) -> str:
        body = message.encode()
        prefix = random_prefix if random_prefix is not None else os.urandom(16)
        plain = prefix + struct.pack(">I", len(body)) + body + self.receive_id.encode()
        pad = self.BLOCK_SIZE - len(plain) % self.BLOCK_SIZE
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()

    def decrypt(self, encrypted: str) -> str:
        try:
            data = base64.b64decode(encrypted, validate=True)
        except ValueError:
            raise CallbackRejected(MembersErrorCode.BAD_MESSAGE, "The encrypted text is not base64.") from None
        if not data or len(data) % 16:
            raise CallbackRejected(MembersErrorCode.BAD_MESSAGE, "The encrypted text has a wrong length.")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= self.BLOCK_SIZE or len(plain) < 20 + pad:
            raise CallbackRejected(MembersErrorCode.BAD_MESSAGE, "Bad padding in the decrypted text.")
        content = plain[16:-pad]
        (length,) = struct.unpack(">I", content[:4])
        message, receive_id = content[4:4 + length], content[4 + length:]
        if len(message) != length:
            raise CallbackRejected(MembersErrorCode.BAD_MESSAGE, "The decrypted length is wrong.")
        if receive_id.decode(errors="replace") != self.receive_id:
            raise CallbackRejected(MembersErrorCode.BAD_MESSAGE, "The message is for another corp id.")
        try:
            return message.decode()
        except UnicodeDecodeError:
            raise CallbackRejected(MembersErrorCode.BAD_MESSAGE, "The decrypted text is not UTF-8.") from None

    # -- the two requests WeCom makes

    def verify_url(self, *, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """URL verification (GET): check the signature over ``echostr`` and return its plaintext."""
        self.verify(msg_signature, timestamp, nonce, echostr)
        return self.decrypt(echostr)

    def decrypt_post(self, *, msg_signature: str, timestamp: str, nonce: str, body: bytes) -> ET.Element:
        """An event POST: the XML envelope's ``Encrypt`` is verified, decrypted and parsed."""
        envelope = _parse_xml(body)
        encrypted = _child(envelope, "Encrypt")
        if not encrypted:
            raise CallbackRejected(MembersErrorCode.BAD_MESSAGE, "The XML has no Encrypt element.")
        self.verify(msg_signature, timestamp, nonce, encrypted)
        return _parse_xml(self.decrypt(encrypted))

    def encrypt_post(self, message: str, *, timestamp: str, nonce: str, to_user: str = "",
                     agent_id: str = "") -> tuple[str, str]:
        """Build an encrypted envelope as WeCom sends it; returns (body, msg_signature). For tests and tools."""
        encrypted = self.encrypt(message)
        body = (f"<xml><ToUserName><![CDATA[{to_user or self.receive_id}]]></ToUserName>"
                f"<AgentID><![CDATA[{agent_id}]]></AgentID><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>")
        return body, self.signature(timestamp, nonce, encrypted)


def contact_change_from_xml(root: ET.Element) -> ContactChange | None:
    """The ``change_external_contact`` event in a decrypted message, or None for any other message."""
    if _child(root, "MsgType") != "event" or _child(root, "Event") != "change_external_contact":
        return None
    created = _child(root, "CreateTime")
    try:
        created_at = dt.datetime.fromtimestamp(int(created), tz=dt.UTC) if created else timezone.now()
    except (ValueError, OverflowError, OSError):
        raise CallbackRejected(MembersErrorCode.BAD_MESSAGE, f"CreateTime {created!r} is not a timestamp.") from None
    return ContactChange(change_type=_child(root, "ChangeType"), user_id=_child(root, "UserID"),
                         external_userid=_child(root, "ExternalUserID"), created_at=created_at)


# ---------------------------------------------------------------------------- applying events

ADD_TYPES = frozenset({"add_external_contact", "add_half_external_contact"})
REMOVE_TYPES = frozenset({"del_external_contact", "del_follow_user"})


@dataclass(frozen=True)
class ContactChangeOutcome:
    """What an event did: ``recorded``, ``unchanged``, ``ignored`` (with why)."""

    result: str
    detail: str = ""
    friendship: WeComFriendship | None = None


def _member_for_external(guide: Guide, external_userid: str, client: WeComClient | None) -> Member | None:
    group_id = guide.store.brand.group_id
    known = (WeComFriendship.objects.filter(external_userid=external_userid, member__group_id=group_id)
             .select_related("member").order_by("-added_at").first())
    if known is not None:
        member = known.member
        while member.merged_into_id is not None:  # follow merge tombstones
            member = Member.objects.get(pk=member.merged_into_id)
        return member
    if client is None:
        return None
    contact = client.external_contact(external_userid)
    if not contact.unionid:
        return None
    member, _created = member_get_or_create(group=guide.store.brand.group, unionid=contact.unionid,
                                            name=contact.name)
    return member


def wecom_contact_change_apply(*, change: ContactChange, client: WeComClient) -> ContactChangeOutcome:
    """Record an add or a removal from a WeCom event; events we do not handle are ignored, not errors.

    WeCom redelivers events it thinks failed, so everything here is
    idempotent (see :func:`wecom_friend_add` and :func:`wecom_friend_remove`).
    """
    if change.change_type not in ADD_TYPES | REMOVE_TYPES:
        return ContactChangeOutcome("ignored", f"change type {change.change_type or '(none)'} not handled")
    if not change.user_id or not change.external_userid:
        return ContactChangeOutcome("ignored", "event without UserID or ExternalUserID")
    guide = Guide.objects.select_related("store__brand").filter(code=change.user_id).first()
    if guide is None:
        return ContactChangeOutcome("ignored", f"no guide with code {change.user_id}")
    if change.change_type in REMOVE_TYPES:
        member = _member_for_external(guide, change.external_userid, client=None)
        if member is None:
            return ContactChangeOutcome("ignored", "external contact never recorded")
        row = wecom_friend_remove(member=member, guide=guide, at=change.created_at)
        return ContactChangeOutcome("recorded" if row else "unchanged", "", row)
    member = _member_for_external(guide, change.external_userid, client=client)
    if member is None:
        # Without a unionid (the corp has no bound WeChat open platform) we cannot tell who it is.
        return ContactChangeOutcome("ignored", "external contact has no unionid")
    row, created = wecom_friend_add(member=member, guide=guide, external_userid=change.external_userid,
                                    at=change.created_at, source=WeComFriendship.Source.CALLBACK)
    return ContactChangeOutcome("recorded" if created else "unchanged", "", row)
