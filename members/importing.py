"""Importing members and WeCom friendships from spreadsheets (CSV), row by row.

Both imports follow the org and guide imports (``retail_crm.services``): every
row runs in its own savepoint through :func:`retail_crm.services.import_rows`,
bad rows are reported with their line number and reason, good rows go in, and
importing the same file again reports every row unchanged.

What the file refers to (stores, guides, existing members, their memberships
and bindings) is loaded for the whole file up front in a few queries, so the
per-row work is only the writes a row really needs.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from members.models import BrandMembership, GuideBinding, JoinChannel, Member, WeComFriendship
from members.services import binding_bind
from members.wecom import wecom_friend_add
from retail_crm.csv_import import ImportReport, RowInvalid
from retail_crm.models import Brand, Guide, Store
from retail_crm.phones import InvalidPhone, normalise_phone
from retail_crm.services import import_rows
from retail_crm.validation import check_date, screen_rows

MEMBER_COLUMNS = ["member_code", "phone", "name", "gender", "birthday", "store_code", "guide_code", "joined_at",
                  "join_channel"]
WECOM_FRIEND_COLUMNS = ["member_code", "guide_code", "external_userid", "added_at", "removed_at"]

_MEMBER_CODE = re.compile(r"^[-a-zA-Z0-9_]{1,40}$")
_GENDERS = {"": "", "F": Member.Gender.FEMALE, "M": Member.Gender.MALE, "女": Member.Gender.FEMALE,
            "男": Member.Gender.MALE}
_CHUNK = 2000  # ids per IN (...) list: well under every database's parameter limit


def _chunks(values: Iterable, size: int = _CHUNK):
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _member_code(row: dict, column: str = "member_code") -> str:
    value = row.get(column, "")
    if not value:
        raise RowInvalid(f"{column} is empty")
    if not _MEMBER_CODE.match(value):
        raise RowInvalid(f"{column} {value!r} may only hold letters, digits, '-' and '_' (at most 40)")
    return value


def _when(row: dict, column: str, *, required: bool = False) -> dt.datetime | None:
    """An ISO date (taken as local midnight) or an ISO date-time; never in the future."""
    value = row.get(column, "")
    if not value:
        if required:
            raise RowInvalid(f"{column} is empty")
        return None
    try:
        if len(value) == 10:
            moment = dt.datetime.combine(dt.date.fromisoformat(value), dt.time())
        else:
            moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise RowInvalid(f"{column} {value!r} is not a date (YYYY-MM-DD) or date-time (ISO 8601)") from None
    check_date(moment, column=column, value=value)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    if moment > timezone.now():
        raise RowInvalid(f"{column} {value} is in the future")
    return moment


def _live(member: Member, members_by_pk: dict[int, Member]) -> Member:
    """Follow merge tombstones (preloaded) to the member that absorbed this one."""
    seen = set()
    while member.merged_into_id is not None and member.pk not in seen:
        seen.add(member.pk)
        member = members_by_pk[member.merged_into_id]
    return member


_MEMBER_FIELDS = ("id", "group_id", "code", "phone", "name", "gender", "birthday", "merged_into_id")


def _load_members(group_id: int, codes: set[str], phones: set[str]) -> tuple[dict, dict, dict]:
    """Members of the group with these codes or phones, plus every survivor their tombstones point to.

    Only the columns an import compares are read: loading whole members (with
    their JSON preference lists) costs more than the rest of a 10,000-row import.
    """
    members = Member.objects.only(*_MEMBER_FIELDS)
    by_pk: dict[int, Member] = {}
    for chunk in _chunks(codes):
        by_pk.update({m.pk: m for m in members.filter(group_id=group_id, code__in=chunk)})
    phones = phones - {m.phone for m in by_pk.values()}
    for chunk in _chunks(phones):
        by_pk.update({m.pk: m for m in members.filter(group_id=group_id, phone__in=chunk)})
    missing = {m.merged_into_id for m in by_pk.values() if m.merged_into_id and m.merged_into_id not in by_pk}
    while missing:
        by_pk.update({m.pk: m for m in members.filter(pk__in=missing)})
        missing = {m.merged_into_id for m in by_pk.values() if m.merged_into_id and m.merged_into_id not in by_pk}
    by_code = {m.code: m for m in by_pk.values()}
    by_phone = {m.phone: m for m in by_pk.values() if m.phone}
    return by_pk, by_code, by_phone


# ---------------------------------------------------------------------------- members

@dataclass
class _MemberFile:
    """What a member file refers to, loaded once for the whole file and kept current as rows go in."""

    brand: Brand
    stores: dict[str, Store]
    guides: dict[str, Guide]
    by_pk: dict[int, Member]
    by_code: dict[str, Member]
    by_phone: dict[str, Member]
    memberships: dict[int, BrandMembership] = field(default_factory=dict)
    open_bindings: dict[int, GuideBinding] = field(default_factory=dict)

    @classmethod
    def load(cls, brand: Brand, rows: list[tuple[int, dict]]) -> _MemberFile:
        codes = {row.get("member_code", "") for _, row in rows} - {""}
        phones = set()
        for _, row in rows:
            try:
                phones.add(normalise_phone(row.get("phone", "")))
            except InvalidPhone:
                pass  # reported on its row
        by_pk, by_code, by_phone = _load_members(brand.group_id, codes, phones)
        loaded = cls(
            brand=brand,
            stores={s.code: s for s in Store.objects.filter(brand=brand)},
            guides={g.code: g for g in Guide.objects.filter(store__brand=brand).select_related("store")},
            by_pk=by_pk, by_code=by_code, by_phone=by_phone,
        )
        for chunk in _chunks(by_pk):
            memberships = BrandMembership.objects.only("id", "member_id").filter(brand=brand, member_id__in=chunk)
            loaded.memberships.update({m.member_id: m for m in memberships})
            bindings = GuideBinding.objects.only("id", "member_id", "guide_id").filter(
                brand=brand, member_id__in=chunk, ended_at__isnull=True)
            loaded.open_bindings.update({b.member_id: b for b in bindings})
        return loaded


@dataclass(frozen=True)
class _MemberRow:
    code: str
    phone: str
    name: str
    gender: str | None  # None: the file says nothing, keep what we have
    birthday: dt.date | None
    store: Store | None
    guide: Guide | None
    joined_at: dt.datetime | None
    join_channel: str


def _parse_member_row(row: dict, known: _MemberFile) -> _MemberRow:
    code = _member_code(row)
    phone = row.get("phone", "")
    if phone:
        try:
            phone = normalise_phone(phone)
        except InvalidPhone as exc:
            raise RowInvalid(f"phone: {exc}") from None
    name = row.get("name", "")
    if len(name) > 50:
        raise RowInvalid("name is longer than 50 characters")
    gender_text = row.get("gender", "")
    gender = _GENDERS.get(gender_text.upper() if gender_text.isascii() else gender_text)
    if gender is None:
        raise RowInvalid(f"gender {gender_text!r} is not one of F, M, 女, 男 or empty")
    birthday = None
    if row.get("birthday"):
        try:
            birthday = dt.date.fromisoformat(row["birthday"])
        except ValueError:
            raise RowInvalid(f"birthday {row['birthday']!r} is not a date (YYYY-MM-DD)") from None
        if birthday > timezone.localdate():
            raise RowInvalid(f"birthday {birthday} is in the future")
        check_date(birthday, column="birthday", value=row["birthday"])
    store = None
    if row.get("store_code"):
        store = known.stores.get(row["store_code"])
        if store is None:
            raise RowInvalid(f"store_code {row['store_code']} is not a store of brand {known.brand.code}")
    guide = None
    if row.get("guide_code"):
        guide = known.guides.get(row["guide_code"])
        if guide is None:
            raise RowInvalid(f"guide_code {row['guide_code']} is not a guide of brand {known.brand.code}")
        if guide.left_at is not None:
            raise RowInvalid(f"guide_code {guide.code}: the guide left on {guide.left_at}")
    joined_at = _when(row, "joined_at")
    channel = row.get("join_channel", "") or JoinChannel.IMPORT
    if channel not in JoinChannel.values:
        raise RowInvalid(f"join_channel {channel!r} is not one of {', '.join(JoinChannel.values)}")
    return _MemberRow(code=code, phone=phone, name=name, gender=gender or None, birthday=birthday, store=store,
                      guide=guide, joined_at=joined_at, join_channel=channel)


def _resolve(parsed: _MemberRow, known: _MemberFile) -> Member | None:
    """The live member the row is about (None: a new one); a phone held by someone else is a row error."""
    member = known.by_code.get(parsed.code)
    member = _live(member, known.by_pk) if member is not None else None
    owner = known.by_phone.get(parsed.phone) if parsed.phone else None
    owner = _live(owner, known.by_pk) if owner is not None else None
    if owner is not None and (member is None or owner.pk != member.pk):
        raise RowInvalid(f"phone belongs to member {owner.code}")
    return member


def _profile_changes(parsed: _MemberRow, member: Member) -> dict:
    """The profile fields the row changes: what the file states wins, what it leaves empty is kept."""
    values = {"phone": parsed.phone, "name": parsed.name, "gender": parsed.gender, "birthday": parsed.birthday}
    return {name: value for name, value in values.items() if value and getattr(member, name) != value}


def _changes_nothing(parsed: _MemberRow, member: Member, known: _MemberFile) -> bool:
    """Whether the row is already fully true of the member (then it needs no savepoint and no writes)."""
    binding = known.open_bindings.get(member.pk)
    return (not _profile_changes(parsed, member) and member.pk in known.memberships
            and (parsed.guide is None or (binding is not None and binding.guide_id == parsed.guide.pk)))


def _member_row_import(*, known: _MemberFile, row: dict, report: ImportReport) -> None:
    parsed = _parse_member_row(row, known)
    member = _resolve(parsed, known)

    now = timezone.now()
    created = member is None
    changed = False
    if created:
        member = Member.objects.create(group_id=known.brand.group_id, code=parsed.code, phone=parsed.phone,
                                       name=parsed.name, gender=parsed.gender or "", birthday=parsed.birthday,
                                       created_at=now)
    else:
        # The file is the member system's export: what it states wins, what it leaves empty is kept.
        update = _profile_changes(parsed, member)
        for name, value in update.items():
            setattr(member, name, value)
        if update:
            member.save(update_fields=list(update))
            changed = True

    membership = known.memberships.get(member.pk)
    if membership is None:
        # A member already in the brand keeps their first join (when, where, how), as membership_join does.
        membership = BrandMembership.objects.create(member=member, brand=known.brand,
                                                    joined_at=parsed.joined_at or now,
                                                    join_channel=parsed.join_channel, store=parsed.store)
        changed = True

    binding = known.open_bindings.get(member.pk)
    if parsed.guide is not None and (binding is None or binding.guide_id != parsed.guide.pk):
        # The brand's policy decides: a protected first binding to another guide stays.
        at = (parsed.joined_at or now) if binding is None else now
        outcome = binding_bind(member=member, brand=known.brand, guide=parsed.guide,
                               reason=GuideBinding.Reason.IMPORT, at=at)
        binding = outcome.binding
        changed |= outcome.changed

    # Only now, with every write of the row done, do the in-memory maps learn about it.
    known.by_pk[member.pk] = member
    known.by_code[member.code] = member
    if member.phone:
        known.by_phone[member.phone] = member
    known.memberships[member.pk] = membership
    if binding is not None:
        known.open_bindings[member.pk] = binding
    if created:
        report.created += 1
    elif changed:
        report.updated += 1
    else:
        report.unchanged += 1


def _new_members_bulk(*, known: _MemberFile, new: list[tuple[int, _MemberRow]]) -> bool:
    """Create the file's new members, their memberships and first bindings in a few bulk inserts.

    A new member has no binding yet, so binding them is always a plain new
    binding whatever the brand's policy (``binding_bind`` would decide "new").
    All or nothing: False when the database refused the batch (someone created
    one of these members meanwhile), and the rows then go one by one.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            members = Member.objects.bulk_create(
                [Member(group_id=known.brand.group_id, code=p.code, phone=p.phone, name=p.name, gender=p.gender or "",
                        birthday=p.birthday, created_at=now) for _line, p in new], batch_size=1000)
            memberships = BrandMembership.objects.bulk_create(
                [BrandMembership(member=m, brand=known.brand, joined_at=p.joined_at or now, join_channel=p.join_channel,
                                 store=p.store) for m, (_line, p) in zip(members, new, strict=True)], batch_size=1000)
            bindings = GuideBinding.objects.bulk_create(
                [GuideBinding(member=m, brand=known.brand, guide=p.guide, store=p.guide.store,
                              started_at=p.joined_at or now, reason=GuideBinding.Reason.IMPORT)
                 for m, (_line, p) in zip(members, new, strict=True) if p.guide is not None], batch_size=1000)
    except (IntegrityError, DataError):
        return False
    for member, membership in zip(members, memberships, strict=True):
        known.by_pk[member.pk] = known.by_code[member.code] = member
        if member.phone:
            known.by_phone[member.phone] = member
        known.memberships[member.pk] = membership
    for binding in bindings:
        known.open_bindings[binding.member_id] = binding
    return True


def member_import(*, rows: list[tuple[int, dict]], brand: Brand) -> ImportReport:
    """Create or update members, their membership of ``brand`` and their guide binding; idempotent.

    A row's member is found by member code (an absorbed member's code reaches
    the survivor) or created; a phone already held by another member is a row
    error. Stores and guides must belong to the brand; bindings of existing
    members go through :func:`members.services.binding_bind` with reason
    ``import``, so the brand's protected-first-binding policy holds.

    Rows that create a member (most of a first import) are checked first and
    written in bulk; rows already true of their member are counted unchanged
    without a write; the rest, and new ones if the bulk write is refused, run
    one by one in their own savepoints.
    """
    report = ImportReport()
    rows = screen_rows(rows, report)
    known = _MemberFile.load(brand, rows)
    new: list[tuple[int, _MemberRow]] = []
    one_by_one: list[tuple[int, dict]] = []
    seen: dict[str, int] = {}
    claimed_phones: dict[str, str] = {}  # phone → code of an earlier new row in this file
    for line, row in rows:
        code = row.get("member_code", "")
        if code in seen:
            report.add_error(line, f"member_code {code} already given on line {seen[code]}")
            continue
        try:
            parsed = _parse_member_row(row, known)
            member = _resolve(parsed, known)
            if parsed.phone in claimed_phones:
                raise RowInvalid(f"phone belongs to member {claimed_phones[parsed.phone]}")
        except RowInvalid as exc:
            report.add_error(line, str(exc))
            continue
        seen[code] = line
        if member is None:
            new.append((line, parsed))
            if parsed.phone:
                claimed_phones[parsed.phone] = parsed.code
        elif _changes_nothing(parsed, member, known):
            report.unchanged += 1  # the usual case on a second run: nothing to write
        else:
            one_by_one.append((line, row))
    if new and _new_members_bulk(known=known, new=new):
        report.created += len(new)
    elif new:
        rows_by_line = dict(rows)
        one_by_one = sorted(one_by_one + [(line, rows_by_line[line]) for line, _parsed in new],
                            key=lambda numbered: numbered[0])
    rest = import_rows(rows=one_by_one, key_column="member_code",
                       handle_row=lambda row, report: _member_row_import(known=known, row=row, report=report))
    report.created += rest.created
    report.updated += rest.updated
    report.unchanged += rest.unchanged
    report.errors = sorted(report.errors + rest.errors, key=lambda error: error.line)
    return report


# ---------------------------------------------------------------------------- WeCom friendships

def _overlaps(a_from, a_to, b_from, b_to) -> bool:
    return a_from < (b_to or dt.datetime.max.replace(tzinfo=dt.UTC)) and \
        b_from < (a_to or dt.datetime.max.replace(tzinfo=dt.UTC))


def _friend_row_import(*, guides: dict[str, Guide], members: dict[tuple[int, str], Member],
                       by_pk: dict[int, Member], pairs: dict[tuple[int, int], list[WeComFriendship]],
                       row: dict, report: ImportReport) -> None:
    code = _member_code(row)
    guide = guides.get(row.get("guide_code", ""))
    if guide is None:
        raise RowInvalid(f"guide_code {row.get('guide_code', '')!r} is not a known guide")
    member = members.get((guide.store.brand.group_id, code))
    if member is None:
        raise RowInvalid(f"member_code {code} is not a known member")
    member = _live(member, by_pk)
    external_userid = row.get("external_userid", "")
    if len(external_userid) > 64:
        raise RowInvalid("external_userid is longer than 64 characters")
    added_at = _when(row, "added_at", required=True)
    removed_at = _when(row, "removed_at")
    if removed_at is not None and removed_at < added_at:
        raise RowInvalid("removed_at is before added_at")

    rows = pairs.setdefault((member.pk, guide.pk), [])
    same = next((f for f in rows if f.added_at == added_at), None)
    if same is not None:
        update = {}
        if external_userid and not same.external_userid:
            update["external_userid"] = external_userid
        if removed_at != same.removed_at:
            if same.removed_at is not None:
                raise RowInvalid(f"this friendship was removed at {timezone.localtime(same.removed_at).isoformat()}, "
                                 f"not {timezone.localtime(removed_at).isoformat() if removed_at else 'still open'}")
            update["removed_at"] = removed_at
        for name, value in update.items():
            setattr(same, name, value)
        if update:
            same.save(update_fields=list(update))
            report.updated += 1
        else:
            report.unchanged += 1
        return
    open_row = next((f for f in rows if f.removed_at is None), None)
    if removed_at is None and open_row is not None:
        report.unchanged += 1  # already friends: the earlier recorded start stands, as with wecom_friend_add
        return
    clash = next((f for f in rows if _overlaps(f.added_at, f.removed_at, added_at, removed_at)), None)
    if clash is not None:
        raise RowInvalid(f"overlaps the friendship recorded from {timezone.localtime(clash.added_at).isoformat()}")
    if removed_at is None:
        friendship, _created = wecom_friend_add(member=member, guide=guide, external_userid=external_userid,
                                                at=added_at, source=WeComFriendship.Source.IMPORT)
    else:
        # A friendship that has already ended is history: recorded as it was.
        friendship = WeComFriendship.objects.create(member=member, guide=guide, external_userid=external_userid,
                                                    added_at=added_at, removed_at=removed_at,
                                                    source=WeComFriendship.Source.IMPORT)
    rows.append(friendship)
    report.created += 1


# Named after its parts so a duplicate reads "member_code|guide_code|added_at M1|G1|2024-05-01 already given…".
_FRIEND_KEY = "member_code|guide_code|added_at"


def wecom_friend_import(*, rows: list[tuple[int, dict]]) -> ImportReport:
    """Record WeCom friendships (open or already ended) from a file; idempotent.

    A row is keyed by member, guide and ``added_at``: the same row again is
    unchanged, a removal date added later closes the friendship, and a period
    overlapping another recorded one is refused.
    """
    screened = ImportReport()
    rows = screen_rows(rows, screened)
    guide_codes = {row.get("guide_code", "") for _, row in rows} - {""}
    guides = {g.code: g for g in Guide.objects.filter(code__in=guide_codes).select_related("store__brand")}
    codes = {row.get("member_code", "") for _, row in rows} - {""}
    by_pk: dict[int, Member] = {}
    for group_id in {g.store.brand.group_id for g in guides.values()}:
        group_by_pk, _by_code, _by_phone = _load_members(group_id, codes, set())
        by_pk.update(group_by_pk)
    members = {(m.group_id, m.code): m for m in by_pk.values()}
    pairs: dict[tuple[int, int], list[WeComFriendship]] = {}
    for chunk in _chunks(by_pk):
        for friendship in WeComFriendship.objects.filter(member_id__in=chunk).order_by("added_at"):
            pairs.setdefault((friendship.member_id, friendship.guide_id), []).append(friendship)
    keyed = [(line, {**row, _FRIEND_KEY: "|".join((row.get("member_code", ""), row.get("guide_code", ""),
                                               row.get("added_at", "")))}) for line, row in rows]
    report = import_rows(rows=keyed, key_column=_FRIEND_KEY,
                         handle_row=lambda row, report: _friend_row_import(guides=guides, members=members,
                                                                           by_pk=by_pk, pairs=pairs, row=row,
                                                                           report=report))
    report.errors = sorted(screened.errors + report.errors, key=lambda error: error.line)
    return report
