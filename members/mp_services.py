"""Writes for the mini-program: WeChat login, phone binding, profile, guide QR scan, logout.

These compose the identity, membership and binding services of
``members.services`` with the WeChat adapter; the API views only translate
HTTP to these calls.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.utils import timezone

from members.auth import member_token_issue
from members.errors import MembersErrorCode
from members.guide_tokens import guide_token_guide
from members.models import GuideBinding, JoinChannel, Member, MemberToken
from members.services import (
    binding_bind,
    member_find,
    member_get_or_create,
    member_merge,
    membership_join,
)
from members.wechat import WeChatError, WeChatProvider, get_wechat_client
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand, RetailGroup
from retail_crm.phones import InvalidPhone, normalise_phone

PHONE_MERGE_REASON = "phone bound in mini-program"


def _wechat_failure(exc: WeChatError, *, field: str) -> ApplicationError:
    if exc.unavailable:
        return ApplicationError(MembersErrorCode.WECHAT_UNAVAILABLE,
                                "WeChat could not be reached; please try again.", status=503)
    return ApplicationError(MembersErrorCode.WECHAT_CODE_INVALID,
                            "WeChat did not accept this code; ask WeChat for a new one.",
                            fields={field: [f"Refused by WeChat: {exc.message}"]})


def mini_program_group() -> RetailGroup:
    """The group whose mini-program this deployment serves (one WeChat app id, one group).

    ``WECHAT_GROUP`` names it by code; a deployment with a single group needs no setting.
    """
    code = getattr(settings, "WECHAT_GROUP", "")
    if code:
        group = RetailGroup.objects.filter(code=code).first()
        if group is None:
            raise ImproperlyConfigured(f"WECHAT_GROUP={code!r} names no retail group")
        return group
    groups = list(RetailGroup.objects.order_by("pk")[:2])
    if len(groups) != 1:
        raise ImproperlyConfigured("Set WECHAT_GROUP to the code of the group the mini-program belongs to")
    return groups[0]


# ---------------------------------------------------------------------------- login / logout

@dataclass(frozen=True)
class LoginResult:
    token: str
    member: Member
    is_new: bool


def mp_login(*, code: str, client: WeChatProvider | None = None) -> LoginResult:
    """Exchange a ``wx.login`` code for a member session, creating the member on first login.

    WeChat is called before any transaction opens, so a slow WeChat never holds database locks.
    """
    client = client or get_wechat_client()
    try:
        session = client.code_to_session(code)
    except WeChatError as exc:
        raise _wechat_failure(exc, field="code") from None
    with transaction.atomic():
        member, created = member_get_or_create(group=mini_program_group(), unionid=session.unionid or None,
                                               openid=session.openid)
        token = member_token_issue(member=member, openid=session.openid)
    return LoginResult(token=token, member=member, is_new=created)


def mp_logout(*, token: MemberToken) -> None:
    """End this session only; the member's other devices stay logged in."""
    MemberToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


# ---------------------------------------------------------------------------- phone

@dataclass(frozen=True)
class PhoneBindResult:
    member: Member  # the member the session now reaches (the survivor after a merge)
    merged: bool


def mp_phone_bind(*, member: Member, phone_code: str, session_openid: str = "",
                  client: WeChatProvider | None = None) -> PhoneBindResult:
    """Bind the WeChat-verified phone to the member, merging with the member who already holds it.

    - Nobody holds the phone: it is set on this member.
    - Another member holds it (say, opened at a store POS): they are the same person.
      The phone member survives, since it holds the store history, and this WeChat
      member is absorbed; the session follows the merge and keeps working.
    - The phone member already has a different WeChat identity: a different person
      may be using that number's account, so nothing changes (409).
    - This member already has a different phone: refused (409); changing a number
      is a service-desk job, because POS systems find members by it.
    """
    client = client or get_wechat_client()
    try:
        raw_phone = client.phone_from_code(phone_code)
    except WeChatError as exc:
        raise _wechat_failure(exc, field="phone_code") from None
    try:
        phone = normalise_phone(raw_phone)
    except InvalidPhone as exc:
        raise ApplicationError(MembersErrorCode.INVALID_PHONE, "WeChat returned a phone number we cannot store.",
                               fields={"phone_code": [str(exc)]}) from None
    return _phone_bind(member=member, phone=phone, session_openid=session_openid)


@transaction.atomic
def _phone_bind(*, member: Member, phone: str, session_openid: str) -> PhoneBindResult:
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.phone == phone:
        return PhoneBindResult(member=member, merged=False)
    if member.phone:
        raise ApplicationError(MembersErrorCode.PHONE_ALREADY_BOUND,
                               "Your membership already has another phone number; ask customer service to "
                               "change it.", status=409)
    owners = member_find(group=member.group, phone=phone)
    owner = owners[0] if owners else None
    if owner is None:
        try:
            with transaction.atomic():
                member.phone = phone
                member.save(update_fields=["phone"])
        except IntegrityError:
            # Another sign-up took the number between our look-up and the write.
            raise ApplicationError(ErrorCode.CONFLICT, "This phone number was just registered; please try again.",
                                   status=409) from None
        return PhoneBindResult(member=member, merged=False)
    if owner.pk == member.pk:
        return PhoneBindResult(member=member, merged=False)
    openid = member.openid or session_openid
    if (owner.openid and openid and owner.openid != openid) or (
            owner.unionid and member.unionid and owner.unionid != member.unionid):
        raise ApplicationError(MembersErrorCode.IDENTITY_CONFLICT,
                               "This phone number belongs to a membership linked to another WeChat account.",
                               status=409)
    result = member_merge(survivor=owner, absorbed=member, reason=PHONE_MERGE_REASON)
    return PhoneBindResult(member=result.survivor, merged=True)


# ---------------------------------------------------------------------------- profile

PROFILE_FIELDS = ("name", "gender", "birthday", "address", "clothing_size", "shoe_size", "preferred_colours",
                  "preferred_styles", "preferred_materials")


def mp_profile_update(*, member: Member, changes: dict) -> Member:
    """The member edits their own profile; identifiers (code, phone, WeChat ids) are not editable here."""
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise ApplicationError(ErrorCode.INVALID, "These fields cannot be changed here.",
                               fields={name: ["Not editable."] for name in sorted(unknown)})
    for field, value in changes.items():
        setattr(member, field, value)
    if changes:
        member.save(update_fields=[*changes, "updated_at"])
    return member


# ---------------------------------------------------------------------------- guide QR

@dataclass(frozen=True)
class GuideScanResult:
    brand: Brand
    joined: bool
    binding: GuideBinding  # the member's open binding for the brand after the scan
    rule: str  # new, same_guide, protected, lapsed, unprotected (members.services.BindingOutcome)


@transaction.atomic
def mp_guide_scan(*, member: Member, token: str, at: dt.datetime | None = None) -> GuideScanResult:
    """The member scanned a guide's exclusive QR code: join the guide's brand, then bind by the brand's policy."""
    guide = guide_token_guide(token)
    if guide is None or guide.store.brand.group_id != member.group_id:
        # Office staff tokens only carry share attribution; another group's codes mean nothing here.
        raise ApplicationError(MembersErrorCode.INVALID_TOKEN, "This QR code or link is not valid.",
                               fields={"token": ["Not a guide's QR code."]})
    brand = guide.store.brand
    if guide.left_at is not None:
        raise ApplicationError(MembersErrorCode.GUIDE_LEFT,
                               "This guide no longer works here; ask the store for another guide's code.",
                               status=409)
    if not brand.is_active:
        raise ApplicationError(MembersErrorCode.BRAND_INACTIVE, f"{brand.name} is not taking new members.",
                               status=409)
    _membership, joined = membership_join(member=member, brand=brand, channel=JoinChannel.GUIDE_QR,
                                          store=guide.store, joined_at=at)
    outcome = binding_bind(member=member, brand=brand, guide=guide, reason=GuideBinding.Reason.QR_SCAN, at=at)
    return GuideScanResult(brand=brand, joined=joined, binding=outcome.binding, rule=outcome.rule)
