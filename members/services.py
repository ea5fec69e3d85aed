"""Writes for members: identity, memberships, merging, guide binding and points.

Rules (DOMAIN.md, "Guide binding"): one bound guide per member per brand; the
first binding is protected, so scanning or buying through another guide does
not move the member; only an explicit transfer, the guide leaving, or a lapse
of service (configurable per brand) rebinds. History is never edited: a
rebinding ends the open row and starts a new one.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from members.errors import MembersErrorCode
from members.models import (
    BindingPolicy,
    BrandMembership,
    GuideBinding,
    Member,
    MemberMerge,
    MemberToken,
    PointsBalance,
    PointsEntry,
)
from retail_crm import events, hooks
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand, Guide, RetailGroup
from retail_crm.phones import InvalidPhone, normalise_phone
from retail_crm.scoping import Actor, in_scope

# ---------------------------------------------------------------------------- identity

def _phone_or_error(phone: str | None) -> str:
    if not phone:
        return ""
    try:
        return normalise_phone(phone)
    except InvalidPhone as exc:
        raise ApplicationError(MembersErrorCode.INVALID_PHONE, str(exc), fields={"phone": [str(exc)]}) from None


def _live(member: Member) -> Member:
    """Follow merge tombstones to the member that absorbed this one."""
    seen = set()
    while member.merged_into_id is not None and member.pk not in seen:
        seen.add(member.pk)
        member = Member.objects.get(pk=member.merged_into_id)
    return member


def member_find(*, group: RetailGroup, phone: str | None = None, unionid: str | None = None,
                openid: str | None = None, code: str | None = None) -> list[Member]:
    """Distinct live members matching any of the identifiers (indexed equality look-ups only)."""
    found: dict[int, Member] = {}
    lookups = [("unionid", unionid), ("openid", openid), ("phone", _phone_or_error(phone)), ("code", code)]
    for field, value in lookups:
        if not value:
            continue
        member = Member.objects.filter(group=group, **{field: value}).first()
        if member is not None:
            member = _live(member)
            found.setdefault(member.pk, member)
    return list(found.values())


def _new_member_code() -> str:
    """A code for a member born in the platform (imported members keep theirs).

    Random rather than counted, so concurrent sign-ups never compute the same
    code; the local date keeps codes readable for the people who see them.
    """
    return f"M{timezone.localdate():%y%m%d}{secrets.token_hex(4).upper()}"


@transaction.atomic
def member_get_or_create(*, group: RetailGroup, phone: str | None = None, unionid: str | None = None,
                         openid: str | None = None, name: str = "", code: str | None = None
                         ) -> tuple[Member, bool]:
    """The one member these identifiers belong to, created if none; 409 if they name two people.

    Identifiers the found member lacks are added to it (a phone bound after a
    WeChat login, say). Concurrent creation of the same person is settled by
    the unique constraints: the loser re-reads the winner's row.
    """
    stored_phone = _phone_or_error(phone)
    if not (stored_phone or unionid or openid or code):
        raise ApplicationError(MembersErrorCode.NO_IDENTIFIER, "A phone, unionid, openid or member code is required.")
    matches = member_find(group=group, phone=stored_phone, unionid=unionid, openid=openid, code=code)
    if len(matches) > 1:
        raise ApplicationError(
            MembersErrorCode.IDENTITY_CONFLICT,
            "These identifiers belong to different members; merge them first.",
            status=409, fields={"member_codes": sorted(m.code for m in matches)},
        )
    if matches:
        member = matches[0]
        changed = []
        for field, value in (("phone", stored_phone), ("unionid", unionid), ("openid", openid)):
            if value and not getattr(member, field):
                setattr(member, field, value)
                changed.append(field)
        if name and not member.name:
            member.name = name
            changed.append("name")
        if changed:
            member.save(update_fields=changed)
        return member, False
    for _attempt in range(5):
        try:
            with transaction.atomic():
                member = Member.objects.create(
                    group=group, code=code or _new_member_code(), phone=stored_phone, unionid=unionid or "",
                    openid=openid or "", name=name, created_at=timezone.now(),
                )
            return member, True
        except IntegrityError:
            # Someone created this person a moment ago: use theirs. Otherwise the generated
            # code clashed (one in four billion a day): try another.
            again = member_find(group=group, phone=stored_phone, unionid=unionid, openid=openid, code=code)
            if len(again) == 1:
                return again[0], False
            if len(again) > 1 or code:
                raise ApplicationError(MembersErrorCode.IDENTITY_CONFLICT,
                                       "These identifiers were just registered to different members.",
                                       status=409) from None
    raise ApplicationError(ErrorCode.CONFLICT, "Could not allocate a member code; try again.", status=409)


@transaction.atomic
def member_official_account_link(*, group: RetailGroup, unionid: str, oa_openid: str) -> Member:
    """Record that the person with ``unionid`` follows the group's official account as ``oa_openid``.

    Called with what a follow event (or ``user/info``) gives: the openid in the official account and the
    WeChat unionid shared with the mini-program. The member is found by unionid, created as an identity if
    the unionid is new (as a WeCom contact is), and the openid moves to them from any other member of the
    group that held it. Linking again changes nothing.
    """
    if not unionid or not oa_openid:
        raise ApplicationError(MembersErrorCode.NO_IDENTIFIER, "Both the unionid and the openid are required.")
    member, _created = member_get_or_create(group=group, unionid=unionid)
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.oa_openid == oa_openid:
        return member
    Member.objects.filter(group=group, oa_openid=oa_openid).exclude(pk=member.pk).update(oa_openid="")
    member.oa_openid = oa_openid
    member.save(update_fields=["oa_openid"])
    return member


def member_official_account_unfollow(*, oa_openid: str) -> int:
    """The person behind ``oa_openid`` no longer follows the official account: forget the link.

    Template messages cannot reach them (WeChat's 43004), so the gateway falls back to the next channel
    until they follow again and are linked anew. Returns how many members were unlinked (0 or 1).
    """
    if not oa_openid:
        return 0
    return Member.objects.filter(oa_openid=oa_openid).update(oa_openid="")


def membership_join(*, member: Member, brand: Brand, channel: str, store=None,
                    joined_at: dt.datetime | None = None) -> tuple[BrandMembership, bool]:
    """Join a brand once; a second join keeps the first record (when and how they joined).

    A new membership records ``member_joined`` (journeys welcome the new member) in the same transaction.
    """
    with transaction.atomic():
        membership, created = BrandMembership.objects.get_or_create(
            member=member, brand=brand,
            defaults={"join_channel": channel, "store": store, "joined_at": joined_at or timezone.now()},
        )
        if created:
            events.record("member_joined", member_id=member.pk, brand_id=brand.pk)
    return membership, created


# ---------------------------------------------------------------------------- merge

@dataclass(frozen=True)
class MergeResult:
    survivor: Member
    audit: MemberMerge


@dataclass(frozen=True)
class MergeMoved:
    """A ``member_merge`` provider's answer: rows moved per kind (for the audit) and the orders that moved."""

    counts: dict[str, int]
    order_ids: tuple[int, ...] = ()


hooks.declare(
    "member_merge",
    "survivor: Member, absorbed: Member (both row-locked, inside the merge's transaction): move the providing "
    "app's rows of the absorbed member to the survivor -> None, {kind: rows moved} for the merge's audit, or a "
    "members.services.MergeMoved (those counts and the ids of the orders that moved to the survivor, which "
    "member_merged carries). Every provider is called, in INSTALLED_APPS order.")


def _snapshot(member: Member) -> dict:
    return {
        "id": member.pk, "code": member.code, "phone": member.phone, "unionid": member.unionid,
        "openid": member.openid, "name": member.name, "gender": member.gender,
        "birthday": member.birthday.isoformat() if member.birthday else None,
        "created_at": member.created_at.isoformat(),
        # Only when linked, so audits of members without an official-account link read as before.
        **({"oa_openid": member.oa_openid} if member.oa_openid else {}),
    }


@transaction.atomic
def member_merge(*, survivor: Member, absorbed: Member, reason: str, merged_by=None) -> MergeResult:
    """Merge ``absorbed`` into ``survivor``: every order, binding, membership and points entry moves.

    Where both hold a membership of the same brand, the earlier join is kept.
    Where both have an open binding for a brand, the earlier one (the protected
    first binding) stays open and the other is closed, history kept. Profile
    gaps on the survivor are filled from the absorbed record, whose identifiers
    are released. The absorbed row stays as a tombstone pointing at the
    survivor, so old member codes (from POS systems) still resolve. The apps
    above move their own rows (orders, cart, coupons, live viewers, RFML
    history) in this transaction, answering the ``member_merge`` hook.
    """
    if survivor.pk == absorbed.pk:
        raise ApplicationError(MembersErrorCode.MERGE_INVALID, "A member cannot be merged into itself.", status=409)
    # Lock both rows in primary-key order so two merges of the same pair cannot deadlock or interleave.
    locked = {m.pk: m for m in Member.objects.select_for_update().filter(pk__in=[survivor.pk, absorbed.pk])
              .order_by("pk")}
    survivor, absorbed = locked[survivor.pk], locked[absorbed.pk]
    if survivor.group_id != absorbed.group_id:
        raise ApplicationError(MembersErrorCode.MERGE_INVALID, "Members of different groups cannot be merged.",
                               status=409)
    if survivor.merged_into_id or absorbed.merged_into_id:
        raise ApplicationError(MembersErrorCode.MERGE_INVALID, "One of these members was already merged.",
                               status=409)
    snapshot = _snapshot(absorbed)
    moved: dict[str, int] = {}

    moved["points_entries"] = PointsEntry.objects.filter(member=absorbed).update(member=survivor)
    # Both members' balances follow their ledgers again (the survivor's now holds the absorbed entries).
    points_balances_rebuild(member_ids=[survivor.pk, absorbed.pk])

    kept_memberships = {m.brand_id: m for m in BrandMembership.objects.filter(member=survivor)}
    moved["memberships"] = 0
    for membership in BrandMembership.objects.filter(member=absorbed).order_by("pk"):
        mine = kept_memberships.get(membership.brand_id)
        if mine is None:
            membership.member = survivor
            membership.save(update_fields=["member"])
            moved["memberships"] += 1
        else:
            snapshot.setdefault("duplicate_memberships", []).append({
                "brand_id": membership.brand_id, "joined_at": membership.joined_at.isoformat(),
                "join_channel": membership.join_channel, "store_id": membership.store_id, "tier": membership.tier})
            if membership.joined_at < mine.joined_at:
                mine.joined_at, mine.join_channel, mine.store_id = (membership.joined_at, membership.join_channel,
                                                                    membership.store_id)
                mine.save(update_fields=["joined_at", "join_channel", "store"])
            membership.delete()

    now = timezone.now()
    open_mine = {b.brand_id: b for b in GuideBinding.objects.filter(member=survivor, ended_at__isnull=True)}
    moved["bindings"] = 0
    for binding in GuideBinding.objects.select_for_update().filter(member=absorbed).order_by("pk"):
        mine = open_mine.get(binding.brand_id) if binding.ended_at is None else None
        if mine is not None:
            # Two open bindings for one brand: the earlier (protected) one stays open.
            older, newer = (binding, mine) if binding.started_at < mine.started_at else (mine, binding)
            newer.ended_at = now
            newer.save(update_fields=["ended_at"])
            open_mine[binding.brand_id] = older
        binding.member = survivor
        binding.save(update_fields=["member"])
        moved["bindings"] += 1

    moved.update(_merge_hooks(survivor=survivor, absorbed=absorbed))

    # Identifiers the survivor lacks move to it; the others stay on the tombstone, where
    # look-ups still find them and follow merged_into, so a later login with the absorbed
    # openid or phone reaches the survivor instead of creating a duplicate.
    moving = {field: getattr(absorbed, field) for field in ("phone", "unionid", "openid", "oa_openid")
              if getattr(absorbed, field) and not getattr(survivor, field)}
    for field in moving:
        setattr(absorbed, field, "")
    absorbed.merged_into = survivor
    absorbed.save(update_fields=[*moving, "merged_into"])
    filled = []
    for field, value in moving.items():
        setattr(survivor, field, value)
        filled.append(field)
    for field in ("name", "gender", "birthday"):
        if not getattr(survivor, field) and getattr(absorbed, field):
            setattr(survivor, field, getattr(absorbed, field))
            filled.append(field)
    if absorbed.created_at < survivor.created_at:
        survivor.created_at = absorbed.created_at
        filled.append("created_at")
    if filled:
        survivor.save(update_fields=filled)
    audit = MemberMerge.objects.create(survivor=survivor, absorbed=absorbed, absorbed_snapshot=snapshot,
                                       moved=moved, reason=reason, merged_by=merged_by)
    return MergeResult(survivor=survivor, audit=audit)


def _merge_hooks(*, survivor: Member, absorbed: Member) -> dict[str, int]:
    """Rows of the other features that follow a merge, each moved by the feature's own service.

    Members' own features are imported here, not at module level (those modules import this one); the apps
    above answer the ``member_merge`` hook.
    """
    from members.events import member_events_merge
    from members.tags import member_tags_merge
    from members.wecom import member_wecom_merge

    moved = {
        "tags": member_tags_merge(survivor=survivor, absorbed=absorbed),
        "events": member_events_merge(survivor=survivor, absorbed=absorbed),
        "wecom_friendships": member_wecom_merge(survivor=survivor, absorbed=absorbed),
        "tokens": MemberToken.objects.filter(member=absorbed).update(member=survivor),
    }
    order_ids: list[int] = []
    for answer in hooks.call_all("member_merge", survivor=survivor, absorbed=absorbed):
        if isinstance(answer, MergeMoved):
            moved.update(answer.counts)
            order_ids.extend(answer.order_ids)
        elif answer:
            moved.update(answer)
    # Sales credits are append-only history and keep naming the buyer they were booked for (the tombstone
    # resolves to the survivor); the moved orders are re-attributed after commit (subscribers of the event).
    events.record("member_merged", survivor_id=survivor.pk, absorbed_id=absorbed.pk, order_ids=sorted(order_ids))
    return moved


# ---------------------------------------------------------------------------- binding

def binding_policy_for(brand: Brand) -> BindingPolicy:
    policy = BindingPolicy.objects.filter(brand=brand).first()
    return policy or BindingPolicy(brand=brand)


@dataclass(frozen=True)
class BindingOutcome:
    binding: GuideBinding
    changed: bool
    rule: str  # why: "new", "same_guide", "protected", "lapsed", "unprotected"


def _open_binding_locked(member: Member, brand: Brand) -> GuideBinding | None:
    return (GuideBinding.objects.select_for_update()
            .filter(member=member, brand=brand, ended_at__isnull=True).first())


def _start_binding(*, member, brand, guide, reason, at) -> GuideBinding:
    return GuideBinding.objects.create(member=member, brand=brand, guide=guide, store=guide.store, started_at=at,
                                       reason=reason)


def _check_guide(guide: Guide, brand: Brand) -> None:
    if guide.left_at is not None:
        raise ApplicationError(MembersErrorCode.GUIDE_INACTIVE, f"Guide {guide.code} has left.", status=409)
    if guide.store.brand_id != brand.pk:
        raise ApplicationError(MembersErrorCode.GUIDE_WRONG_BRAND,
                               f"Guide {guide.code} does not work for brand {brand.code}.")


@transaction.atomic
def binding_bind(*, member: Member, brand: Brand, guide: Guide, reason: str,
                 at: dt.datetime | None = None) -> BindingOutcome:
    """A guide claims a member (QR scan, share link, store purchase), following the brand's policy.

    The member's row is locked first so concurrent scans by two guides bind
    exactly one of them.
    """
    _check_guide(guide, brand)
    Member.objects.select_for_update().filter(pk=member.pk).first()
    at = at or timezone.now()  # read after the lock, so serialised bindings get ordered times
    current = _open_binding_locked(member, brand)
    if current is None:
        return BindingOutcome(_start_binding(member=member, brand=brand, guide=guide, reason=reason, at=at), True,
                              "new")
    if current.guide_id == guide.pk:
        return BindingOutcome(current, False, "same_guide")
    policy = binding_policy_for(brand)
    last_service = current.last_served_at or current.started_at
    lapsed = policy.service_lapse_days is not None and at - last_service > dt.timedelta(
        days=policy.service_lapse_days)
    if policy.protect_first_binding and not lapsed:
        return BindingOutcome(current, False, "protected")
    current.ended_at = at
    current.save(update_fields=["ended_at"])
    new_reason = GuideBinding.Reason.SERVICE_LAPSE if lapsed else reason
    return BindingOutcome(_start_binding(member=member, brand=brand, guide=guide, reason=new_reason, at=at), True,
                          "lapsed" if lapsed else "unprotected")


@transaction.atomic
def binding_transfer(*, member: Member, brand: Brand, to_guide: Guide, actor: Actor,
                     at: dt.datetime | None = None) -> GuideBinding:
    """A store manager (or anyone above, within scope) moves a member to another guide."""
    if actor.role not in ("store_manager", "region_manager", "brand_operator", "hq") and not actor.is_superuser:
        raise ApplicationError(MembersErrorCode.TRANSFER_FORBIDDEN, "Only managers can transfer members.",
                               status=403)
    if not in_scope(to_guide, actor):
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such guide.", status=404)
    _check_guide(to_guide, brand)
    Member.objects.select_for_update().filter(pk=member.pk).first()
    at = at or timezone.now()  # read after the lock, so serialised transfers get ordered times
    current = _open_binding_locked(member, brand)
    if current is not None:
        if not in_scope(current, actor):
            raise ApplicationError(ErrorCode.NOT_FOUND, "No such member binding in your scope.", status=404)
        if current.guide_id == to_guide.pk:
            return current
        current.ended_at = at
        current.save(update_fields=["ended_at"])
    return _start_binding(member=member, brand=brand, guide=to_guide, reason=GuideBinding.Reason.TRANSFER, at=at)


@dataclass(frozen=True)
class GuideLeaveResult:
    guide: Guide
    reassigned: dict[int, int]  # colleague guide id → members received


@transaction.atomic
def guide_leave(*, guide: Guide, left_at: dt.date, at: dt.datetime | None = None) -> GuideLeaveResult:
    """A guide leaves: the login is closed and their members go round-robin to store colleagues.

    Colleagues are the store's other active guides, in code order; members are
    dealt in the order they were bound, so the result is the same every run.
    """
    at = at or timezone.now()
    guide = Guide.objects.select_for_update().get(pk=guide.pk)
    if guide.left_at is None:
        guide.left_at = left_at
        guide.save(update_fields=["left_at"])
    if guide.user_id:
        type(guide.user)._default_manager.filter(pk=guide.user_id).update(is_active=False)
    colleagues = list(Guide.objects.filter(store_id=guide.store_id, left_at__isnull=True).exclude(pk=guide.pk)
                      .order_by("code"))
    open_bindings = list(GuideBinding.objects.select_for_update().filter(guide=guide, ended_at__isnull=True)
                         .order_by("started_at", "pk"))
    reassigned: dict[int, int] = {}
    for index, binding in enumerate(open_bindings):
        binding.ended_at = at
        binding.save(update_fields=["ended_at"])
        if not colleagues:
            continue  # No one left in the store: the members are unbound until someone claims them.
        colleague = colleagues[index % len(colleagues)]
        _start_binding(member=binding.member, brand=binding.brand, guide=colleague,
                       reason=GuideBinding.Reason.GUIDE_LEFT, at=at)
        reassigned[colleague.pk] = reassigned.get(colleague.pk, 0) + 1
    return GuideLeaveResult(guide=guide, reassigned=reassigned)


def binding_record_service(*, member: Member, brand: Brand, guide: Guide, at: dt.datetime | None = None) -> bool:
    """The bound guide served the member (care call, chat, sale): resets the lapse clock."""
    updated = GuideBinding.objects.filter(member=member, brand=brand, guide=guide, ended_at__isnull=True).update(
        last_served_at=at or timezone.now())
    return updated == 1


# ---------------------------------------------------------------------------- points

def points_balance(*, member: Member, brand: Brand) -> int:
    """The member's points in the brand: their balance row, kept with every entry (0 without one)."""
    return PointsBalance.objects.filter(member=member, brand=brand).values_list("balance", flat=True).first() or 0


def _balance_add(*, member_id: int, brand_id: int, delta: int) -> None:
    # One statement, so concurrent posts for one member and brand queue on the row and none is lost; the
    # first post creates the row (on PostgreSQL a concurrent first post waits for it, then adds).
    table = connection.ops.quote_name(PointsBalance._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} (member_id, brand_id, balance) VALUES (%s, %s, %s) "  # noqa: S608
                       f"ON CONFLICT (member_id, brand_id) DO UPDATE SET balance = {table}.balance + excluded.balance",
                       [member_id, brand_id, delta])


@transaction.atomic
def points_post(*, member: Member, brand: Brand, delta: int, reason: str, order=None, refund=None, note: str = "",
                allow_overdraw: bool = False) -> PointsEntry:
    """Post one ledger entry and add it to the balance row. Spending locks the member row and refuses to overdraw.

    An entry tied to an order is posted once per (order, reason), one tied to a
    refund once per (refund, reason): a second call returns the existing entry
    instead of crediting again (and leaves the balance alone). ``allow_overdraw``
    is for reversing points a refund takes back, which the member may already
    have spent.
    """
    if delta == 0:
        raise ApplicationError(ErrorCode.INVALID, "A points entry cannot be zero.",
                               fields={"delta": ["Must not be 0."]})
    once = {"refund": refund} if refund is not None else {"order": order, "refund": None} if order is not None \
        else None
    if once is not None:
        existing = PointsEntry.objects.filter(member=member, brand=brand, reason=reason, **once).first()
        if existing is not None:
            return existing
    if delta < 0 and not allow_overdraw:
        # Serialise spends of one member on the member row, which always exists.
        Member.objects.select_for_update().filter(pk=member.pk).first()
        balance = points_balance(member=member, brand=brand)
        if balance + delta < 0:
            raise ApplicationError(MembersErrorCode.INSUFFICIENT_POINTS,
                                   f"Not enough points: balance {balance}, needed {-delta}.", status=409)
    try:
        with transaction.atomic():
            entry = PointsEntry.objects.create(member=member, brand=brand, delta=delta, reason=reason, order=order,
                                               refund=refund, note=note)
            _balance_add(member_id=member.pk, brand_id=brand.pk, delta=delta)
            return entry
    except IntegrityError:
        if once is None:
            raise
        return PointsEntry.objects.get(member=member, brand=brand, reason=reason, **once)


@transaction.atomic
def points_balances_rebuild(*, brand_id: int | None = None, member_ids: Iterable[int] | None = None) -> int:
    """Recompute balance rows from the ledger: every one, or those of a brand and/or of some members.

    For writes that bypass ``points_post`` (bulk loads, seeds, a merge moving entries between members). Set-based:
    one DELETE and one INSERT … SELECT … GROUP BY, a row for every (member, brand) with entries, even when they
    sum to 0. Returns the number of balance rows written.

    Meant for rows nobody posts to meanwhile (a merge holds both members' locks, which every new entry's
    foreign key waits for; seeds and loads run alone): a concurrent first post for one of the pairs would make
    the INSERT fail on the unique constraint, never count an entry twice.
    """
    entries, balances = PointsEntry.objects.all(), PointsBalance.objects.all()
    if brand_id is not None:
        entries, balances = entries.filter(brand_id=brand_id), balances.filter(brand_id=brand_id)
    if member_ids is not None:
        member_ids = list(member_ids)
        if not member_ids:
            return 0
        entries, balances = entries.filter(member_id__in=member_ids), balances.filter(member_id__in=member_ids)
    balances.delete()
    sums = entries.order_by().values("member_id", "brand_id").annotate(total=Sum("delta"))
    select, params = sums.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {connection.ops.quote_name(PointsBalance._meta.db_table)} "  # noqa: S608
                       f"(member_id, brand_id, balance) {select}", params)
        return cursor.rowcount
