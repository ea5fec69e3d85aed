"""Behaviour tags: tag values members hold for what they did lately ("interested in sneakers: ≥ 3 sneaker
views in 14 days"), written with source ``behaviour`` from :class:`members.models.BehaviourTagRule`.

A rule counts a member's raw behaviour events of one kind in one brand over the last ``window_days``
local days (today included; group time zone ``settings.TIME_ZONE``, as the daily counters), optionally
only those on some products (``object_type`` "product" and the product code in ``object_id``, as the
mini-program sends them) or on products of some categories (the codes come from the catalogue through the
``brand_product_codes`` hook mall answers). Only members of the brand are tagged.

Kept current two ways:

* **After events arrive**: an ingestion batch of a member's events records the domain event
  ``behaviour_recorded`` (brand, members) in its transaction; ``members.handlers.behaviour_tags_after_events``
  then recomputes those members' behaviour tags of that brand, so a third view gives the tag within moments
  (through the outbox: a batch stored while Redis is down is caught up when it is back).
* **Nightly** (beat, ``members.tasks.behaviour_tags_recompute_all_brands``): every rule of every brand for
  all members, so a tag whose window has passed is removed even when the member sends nothing new.

Set-based: one grouped query per active rule, one read of the brand's behaviour tags and one of the same
values held from other sources, then bulk writes (delete, update, insert); no per-member queries. The
same code on PostgreSQL and SQLite. Running it twice writes nothing the second time.

Ownership: a recompute owns only ``behaviour`` rows of the brand's tag groups. A member holding the same
value from another source (manual, import, rule) keeps that row untouched, and no behaviour row is added
beside it (one row per member and value, ``member_tag_unique``); a rule switched off loses its tags at
the next recompute. When two rules give one value, the earlier rule (lower id) writes the reason.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef
from django.utils import timezone

from members.models import BehaviourEvent, BehaviourTagRule, BrandMembership, Member, MemberTag, TagSource
from members.tag_labels import TagReason
from retail_crm import hooks
from retail_crm.models import Brand

logger = logging.getLogger(__name__)

_LOCK_CLASS = 7302  # advisory-lock namespace for behaviour tag recomputes (PostgreSQL); rule tags use 7301
_CHUNK = 5000

hooks.declare(
    "brand_product_codes",
    "brand_id: int, categories: tuple[str, ...] -> list[str]: the codes of the brand's products whose "
    "category is one of ``categories`` (exact names). One query. Exactly one provider.")


@dataclass(frozen=True)
class BehaviourTagResult:
    """What one recompute did: rows written per kind, members holding a behaviour tag after it, rules run."""

    created: int
    updated: int
    deleted: int
    members: int
    rules: int


def _local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_default_timezone())


def local_today() -> dt.date:
    return timezone.localdate(timezone.now(), timezone=timezone.get_default_timezone())


def behaviour_window(rule: BehaviourTagRule, today: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the rule's window: the last ``window_days`` local days up to and including ``today``."""
    first_day = today - dt.timedelta(days=rule.window_days - 1)
    return _local_midnight(first_day), _local_midnight(today + dt.timedelta(days=1))


def _rule_counts(rule: BehaviourTagRule, today: dt.date, member_ids: list[int] | None) -> list[tuple[int, int]]:
    """(member_id, events counted) of the members the rule tags: one grouped query."""
    start, end = behaviour_window(rule, today)
    events = BehaviourEvent.objects.filter(brand_id=rule.brand_id, kind=rule.kind, member__isnull=False,
                                           occurred_at__gte=start, occurred_at__lt=end)
    codes = rule.product_code_list
    if not codes and rule.category_list:
        codes = tuple(hooks.call_one("brand_product_codes", brand_id=rule.brand_id, categories=rule.category_list))
        if not codes:
            return []  # no product of those categories (yet): nothing counts
    if codes:
        events = events.filter(object_type="product", object_id__in=codes)
    if member_ids is not None:
        events = events.filter(member_id__in=member_ids)
    events = events.filter(Exists(BrandMembership.objects.filter(member_id=OuterRef("member_id"),
                                                                 brand_id=rule.brand_id)))
    rows = events.order_by().values("member_id").annotate(n=Count("pk")).filter(n__gte=rule.min_count)
    if rule.max_count is not None:
        rows = rows.filter(n__lte=rule.max_count)
    return [(int(m), int(n)) for m, n in rows.values_list("member_id", "n")]


def _reason(rule: BehaviourTagRule, count: int) -> tuple[dict, dict]:
    """Reason parameters (rendered in the viewer's language by members.tag_labels) and evidence."""
    params = {"rule": rule.name, "kind": rule.kind, "count": count, "days": rule.window_days}
    evidence = {"rule": rule.pk, "count": count}
    return params, evidence


def _lock(brand: Brand, *, whole_brand: bool) -> None:
    # A brand-wide run diffs the whole brand, so it waits for member runs and they wait for it; member runs
    # share the lock among themselves (their inserts ignore a row a concurrent run just wrote).
    if connection.vendor == "postgresql":
        function = "pg_advisory_xact_lock" if whole_brand else "pg_advisory_xact_lock_shared"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {function}(%s, %s)", [_LOCK_CLASS, brand.pk])


def _rules(brand: Brand) -> list[BehaviourTagRule]:
    """The brand's active rules the engine can apply (a rule saved around the form's checks is skipped)."""
    rules = BehaviourTagRule.objects.select_related("tag_value__tag_group") \
        .filter(brand=brand, is_active=True, tag_value__tag_group__brand=brand,
                tag_value__tag_group__multi_valued=True).order_by("pk")
    return [rule for rule in rules if rule.max_count is None or rule.max_count >= rule.min_count]


def _recompute(brand: Brand, member_ids: list[int] | None, today: dt.date | None) -> BehaviourTagResult:
    today = today or local_today()
    now = timezone.now()
    _lock(brand, whole_brand=member_ids is None)
    rules = _rules(brand)
    wanted: dict[tuple[int, int], tuple[dict, dict]] = {}
    for rule in rules:
        for member_id, count in _rule_counts(rule, today, member_ids):
            wanted.setdefault((member_id, rule.tag_value_id), _reason(rule, count))

    owned = MemberTag.objects.filter(source=TagSource.BEHAVIOUR, tag_value__tag_group__brand=brand)
    if member_ids is not None:
        owned = owned.filter(member_id__in=member_ids)
    existing = {(m, v): (pk, code, params, evidence) for pk, m, v, code, params, evidence in
                owned.values_list("pk", "member_id", "tag_value_id", "reason_code", "reason_params", "evidence")}
    held = MemberTag.objects.filter(tag_value_id__in={v for _m, v in wanted}).exclude(source=TagSource.BEHAVIOUR)
    if member_ids is not None:
        held = held.filter(member_id__in=member_ids)
    held_elsewhere = set(held.values_list("member_id", "tag_value_id")) if wanted else set()

    to_create, to_update = [], []
    for key, (params, evidence) in wanted.items():
        if key in held_elsewhere:
            continue  # the same value from a person or another engine: theirs stays, ours is not added
        row = existing.get(key)
        if row is None:
            to_create.append(MemberTag(member_id=key[0], tag_value_id=key[1], source=TagSource.BEHAVIOUR,
                                       assigned_at=now, reason="", reason_code=TagReason.BEHAVIOUR_WINDOW,
                                       reason_params=params, evidence=evidence))
        elif (row[1], row[2], row[3]) != (TagReason.BEHAVIOUR_WINDOW, params, evidence):
            to_update.append(MemberTag(pk=row[0], reason_code=TagReason.BEHAVIOUR_WINDOW, reason_params=params,
                                       evidence=evidence))
    to_delete = [row[0] for key, row in existing.items() if key not in wanted]

    deleted = 0
    for start in range(0, len(to_delete), _CHUNK):
        # ``source`` again: a row an operator just confirmed by hand is theirs now and stays.
        deleted += MemberTag.objects.filter(pk__in=to_delete[start:start + _CHUNK],
                                            source=TagSource.BEHAVIOUR).delete()[0]
    MemberTag.objects.bulk_update(to_update, ["reason_code", "reason_params", "evidence"], batch_size=2000)
    # A concurrent member run (or a hand assignment) may have written the same pair since the read: skip it.
    MemberTag.objects.bulk_create(to_create, batch_size=_CHUNK, ignore_conflicts=True)
    holders = len({m for (m, _v) in wanted})
    logger.info("behaviour tags, brand %s, %s members: %d rules, +%d ~%d -%d", brand.pk,
                "all" if member_ids is None else len(member_ids), len(rules), len(to_create), len(to_update), deleted)
    return BehaviourTagResult(created=len(to_create), updated=len(to_update), deleted=deleted, members=holders,
                              rules=len(rules))


@transaction.atomic
def brand_behaviour_tags_recompute(brand: Brand, *, today: dt.date | None = None) -> BehaviourTagResult:
    """Re-evaluate every behaviour rule of ``brand`` for all its members as of the local day ``today``
    (default: today); nightly, so tags whose window has passed are removed. Idempotent."""
    return _recompute(brand, None, today)


@transaction.atomic
def members_behaviour_tags_recompute(*, brand: Brand, member_ids: Iterable[int],
                                     today: dt.date | None = None) -> BehaviourTagResult:
    """Re-evaluate the behaviour rules of ``brand`` for ``member_ids`` only (after their events arrive)."""
    ids = sorted({int(m) for m in member_ids})
    if not ids:
        return BehaviourTagResult(created=0, updated=0, deleted=0, members=0, rules=0)
    return _recompute(brand, ids, today)


def brand_has_rules(brand_id: int) -> bool:
    """Whether the brand has an active behaviour rule (after an event batch, nothing else is done without one)."""
    return BehaviourTagRule.objects.filter(brand_id=brand_id, is_active=True).exists()


def resolve_member_ids(member_ids: Iterable[int]) -> list[int]:
    """Member ids with merged-away members replaced by their survivors (a task queued before a merge)."""
    ids = set(member_ids)
    out: set[int] = set()
    for _hop in range(10):  # merge chains are short; bounded so a bad row cannot loop
        rows = dict(Member.objects.filter(pk__in=ids).values_list("pk", "merged_into_id"))
        out |= {pk for pk, into in rows.items() if into is None}
        ids = {into for into in rows.values() if into is not None}
        if not ids:
            break
    return sorted(out)
