"""Behaviour events: batch ingestion, daily per-member counters, retention, merging.

The mini-program sends events in batches (up to 500), taken in as every client
event batch is (``retail_crm.ingestion``). Each item is validated on its own in
plain Python, without per-item queries: brands are loaded once per batch, share
tokens are checked by signature first and then looked up with one ``IN`` query,
and all valid items go in with one bulk insert. A bad item is reported with its
index and reasons; it never costs the rest of the batch.

Raw events are summarised into :class:`MemberDailyActivity` (one row per member,
brand and local day, group time zone ``settings.TIME_ZONE``), which segmentation
and the dashboard read. Raw rows older than the retention period are purged,
but only for days whose counters match the raw events.

Decisions worth knowing:

* **Revoked share tokens still attribute.** A link shared last month keeps
  circulating after the guide rotates or revokes the token; the event is history
  ("who brought this visit"), so the guide is credited. Revocation only stops new
  *bindings* (``members.guide_tokens``, answered by ``guides``). Forged tokens (bad
  signature) and unknown ones are rejected per item.
* **Cross-brand shares are kept.** A guide of brand A sharing a brand B product is
  the cross-brand guided selling the group wants (DOMAIN.md), so the token's guide
  need not belong to the event's brand.
* **Naive times are local.** ``occurred_at`` without an offset is read in the
  group time zone; ISO 8601 with ``Z`` or an offset is taken as given.
* **Resends are duplicates, not errors.** A ``client_event_id`` seen before for the
  brand (or twice in one batch) is skipped and counted in ``duplicates``.
* **An anonymous batch over the API is one visitor's** (``one_visitor``): the
  mini-program keeps one visitor id per install, so items with another
  ``visitor_id`` than the batch's first are refused by index. A script can no
  longer turn one request into hundreds of share visitors (UV); inventing a new
  id per request meets the rate limits instead (``retail_crm.throttling``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from members.guide_tokens import guide_tokens_guides
from members.models import BehaviourEvent, EventKind, Member, MemberDailyActivity
from retail_crm import events as domain_events
from retail_crm.ingestion import (
    FUTURE_TOLERANCE,
    BatchResult,
    Errors,
    batch_ingest,
    check_batch_size,
    occurred_at_field,
    text_field,
)
from retail_crm.locks import job_lock
from retail_crm.models import Brand

logger = logging.getLogger(__name__)

MAX_AGE = dt.timedelta(days=30)  # offline-queued events older than this would rewrite settled counters
DEFAULT_RETENTION_DAYS = 180
# Purging must never reach days that can still receive events, or their counters would go stale.
MIN_RETENTION_DAYS = MAX_AGE.days + 1

#: counter column of MemberDailyActivity for each kind
COUNTER_OF_KIND: dict[str, str] = {
    EventKind.PRODUCT_VIEW: "product_views",
    EventKind.FAVOURITE: "favourites",
    EventKind.SHARE: "shares",
    EventKind.ADD_TO_CART: "add_to_carts",
    EventKind.ORDER_UNPAID: "orders_unpaid",
    EventKind.LIVE_WATCH: "live_watches",
    EventKind.MATERIAL_VIEW: "material_views",
    EventKind.TRY_ON: "try_ons",
}
COUNTERS: tuple[str, ...] = tuple(COUNTER_OF_KIND.values())
#: kinds staff record (a guide on the workbench), never a client: the mini-program's batches may not carry them
STAFF_KINDS = frozenset({str(EventKind.TRY_ON)})
CLIENT_KINDS: tuple[str, ...] = tuple(str(k) for k in EventKind.values if k not in STAFF_KINDS)
_KINDS = frozenset(CLIENT_KINDS)

_MAX_LEN = {f.name: f.max_length for f in BehaviourEvent._meta.concrete_fields if f.max_length}


# ---------------------------------------------------------------------------- ingestion

class EventRow(NamedTuple):
    """One validated event, in the column order of the insert (a tuple, so it is its own parameter list)."""

    brand_id: int
    member_id: int | None
    visitor_id: str
    kind: str
    occurred_at: dt.datetime
    received_at: dt.datetime
    object_type: str
    object_id: str
    share_token: str
    guide_id: int | None
    client_event_id: str


def _text(item: dict, name: str, errors: Errors, *, required: bool = False) -> str:
    return text_field(item, name, errors, max_length=_MAX_LEN[name], required=required)


def _occurred_at(item: dict, errors: Errors, now: dt.datetime) -> dt.datetime | None:
    value = occurred_at_field(item, errors, now=now)
    if value is not None and "occurred_at" not in errors and value < now - MAX_AGE:
        errors["occurred_at"] = ["Older than 30 days; such events are no longer accepted."]
    return value


def share_token_guides(values: Iterable[str]) -> dict[str, int | None]:
    """Guide id per genuine share token (revoked ones included: see the module docstring)."""
    return guide_tokens_guides(values)


def _strings(items: list[dict], name: str) -> set[str]:
    """The distinct non-empty, NUL-free string values of one field across a batch (stripped)."""
    values = {item[name].strip() for item in items if isinstance(item.get(name), str)}
    return {value for value in values if value and "\x00" not in value}


def event_batch_ingest(*, items: Sequence, member: Member | None = None, now: dt.datetime | None = None,
                       one_visitor: bool = False) -> BatchResult:
    """Validate every item on its own and store all valid ones with one bulk insert.

    ``member`` is the logged-in member (events are theirs); without one each
    item needs a ``visitor_id``. Items with a ``client_event_id`` already stored
    for the brand, or repeated within the batch, are counted as duplicates and
    not stored again. With ``one_visitor`` (an anonymous API batch) every item must carry
    the first item's ``visitor_id``. Queries: brands (one), share tokens (at most one), known
    client ids (at most one), the insert (one), and for a member's batch whether its brands have behaviour tag
    rules (one; the recompute of the member's behaviour tags is queued on commit).
    """
    check_batch_size(items)
    now = now or timezone.now()
    dicts = [item if isinstance(item, dict) else {} for item in items]
    # Only look up values that could be real: PostgreSQL refuses NUL characters in any query parameter.
    codes = {code for code in _strings(dicts, "brand") if len(code) <= Brand._meta.get_field("code").max_length}
    brands_qs = Brand.objects.filter(code__in=codes, is_active=True)
    if member is not None:
        # A member belongs to one group; another group's brand is as unknown to them as a made-up code.
        brands_qs = brands_qs.filter(group_id=member.group_id)
    brand_ids = dict(brands_qs.values_list("code", "pk"))
    tokens = {token for token in _strings(dicts, "share_token") if len(token) <= _MAX_LEN["share_token"]}
    guide_of_token = share_token_guides(tokens) if tokens else {}

    batch_visitor = _batch_visitor(dicts) if one_visitor and member is None else ""

    def validate(item: dict, errors: Errors) -> EventRow | None:
        kind = _text(item, "kind", errors, required=True)
        if kind and "kind" not in errors and kind not in _KINDS:
            errors["kind"] = [f'"{kind}" is not a valid choice.']
        occurred_at = _occurred_at(item, errors, now)
        brand_code = item.get("brand")
        brand_id = None
        if brand_code is None or brand_code == "":
            errors["brand"] = ["This field is required."]
        elif not isinstance(brand_code, str):
            errors["brand"] = ["Expected a string."]
        else:
            brand_id = brand_ids.get(brand_code.strip())
            if brand_id is None:
                errors["brand"] = ["Unknown brand."]
        object_type = _text(item, "object_type", errors)
        object_id = _text(item, "object_id", errors)
        visitor_id = _text(item, "visitor_id", errors, required=member is None)
        if batch_visitor and "visitor_id" not in errors and visitor_id != batch_visitor:
            errors["visitor_id"] = ["An anonymous batch is one visitor's: every item needs the first "
                                    "item's visitor_id."]
        client_event_id = _text(item, "client_event_id", errors)
        share_token = _text(item, "share_token", errors)
        guide_id = None
        if share_token and "share_token" not in errors:
            if share_token not in guide_of_token:
                errors["share_token"] = ["Not a valid share token."]
            else:
                guide_id = guide_of_token[share_token]
        if errors:
            return None
        if member is not None:
            members_of_brand[brand_id].add(member.pk)
        return EventRow(brand_id, member.pk if member else None, visitor_id, kind, occurred_at, now,
                        object_type, object_id, share_token, guide_id, client_event_id)

    members_of_brand: dict[int, set[int]] = defaultdict(set)
    if member is None:  # an anonymous visitor's events name no member: nothing for journeys or tags to react to
        return batch_ingest(items=items, validate=validate, model=BehaviourEvent, key=_client_key,
                            stored_keys=_stored_client_keys)
    with transaction.atomic():
        result = batch_ingest(items=items, validate=validate, model=BehaviourEvent, key=_client_key,
                              stored_keys=_stored_client_keys)
        if result.accepted:
            # Journeys and behaviour tags react within seconds: one event per brand of the batch, naming its
            # members (a member's resent duplicates may be named too: the subscribers are idempotent).
            for brand_id, member_ids in sorted(members_of_brand.items()):
                domain_events.record("behaviour_recorded", brand_id=brand_id, member_ids=sorted(member_ids))
    return result


def try_on_record(*, member: Member, brand_id: int, product_code: str, guide_id: int | None,
                  store_id: int | None, at: dt.datetime | None = None) -> BehaviourEvent:
    """A guide recorded that ``member`` tried ``product_code`` on in ``store_id`` (the caller checked the
    product is the brand's and the member is in the guide's scope). One behaviour event of kind ``try_on``,
    and, in the same transaction, ``try_on_recorded`` for journeys ("tried on, no order of it in N minutes")
    and ``behaviour_recorded`` for behaviour tags."""
    at = at or timezone.now()
    with transaction.atomic():
        event = BehaviourEvent.objects.create(
            brand_id=brand_id, member=member, kind=EventKind.TRY_ON, occurred_at=at, object_type="product",
            object_id=product_code, guide_id=guide_id, store_id=store_id)
        domain_events.record("try_on_recorded", event_id=event.pk, member_id=member.pk, brand_id=brand_id,
                             product_code=product_code, at=at.isoformat())
        domain_events.record("behaviour_recorded", brand_id=brand_id, member_ids=[member.pk])
    return event


def _batch_visitor(items: list[dict]) -> str:
    """The visitor id of the batch: the first one an item carries (stripped); '' when none does."""
    ids = (item["visitor_id"].strip() for item in items if isinstance(item.get("visitor_id"), str))
    return next((value for value in ids if value), "")


def _client_key(event: EventRow) -> tuple[int, str] | None:
    """Client ids are unique per brand."""
    return (event.brand_id, event.client_event_id) if event.client_event_id else None


def _stored_client_keys(keys: set[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which (brand, client id) pairs are stored already: one query for the batch."""
    brand_ids = {b for b, _c in keys}
    client_ids = {c for _b, c in keys}
    # The explicit exclude lets PostgreSQL use the partial unique index even for 500 ids
    # (it stops proving "IN (…) implies <> ''" beyond 100 list items).
    return set(BehaviourEvent.objects.filter(brand_id__in=brand_ids, client_event_id__in=client_ids)
               .exclude(client_event_id="").values_list("brand_id", "client_event_id"))


# ---------------------------------------------------------------------------- daily counters

def _local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_default_timezone())


def local_today() -> dt.date:
    return timezone.localdate(timezone.now(), timezone=timezone.get_default_timezone())


def _local_day():
    return TruncDate("occurred_at", tzinfo=timezone.get_default_timezone())


def _counts_by_kind() -> dict:
    return {column: Count("id", filter=Q(kind=kind)) for kind, column in COUNTER_OF_KIND.items()}


@dataclass(frozen=True)
class ActivitySummaryResult:
    """A rebuild of daily counters: the (brand, day) pairs rebuilt and the rows replaced and written."""

    date_from: dt.date
    date_to: dt.date
    brand_days: int
    rows_deleted: int
    rows_written: int


@transaction.atomic
def activity_summarise(*, date_from: dt.date, date_to: dt.date, brand_id: int | None = None) -> ActivitySummaryResult:
    """Rebuild MemberDailyActivity for the local days [date_from, date_to] from the raw events.

    Idempotent: the counters of every (brand, day) that still has raw events
    are replaced by one grouped query's result, written with bulk inserts.
    Days whose raw events were purged keep their counters (they cannot be
    rebuilt); days purged never receive new events (ingestion refuses events
    older than 30 days, purging keeps at least 31). The job lock keeps an
    hourly and a nightly run from interleaving.
    """
    if date_to < date_from:
        raise ValueError("date_to is before date_from")
    job_lock("members.activity_summarise")
    events = BehaviourEvent.objects.filter(occurred_at__gte=_local_midnight(date_from),
                                           occurred_at__lt=_local_midnight(date_to + dt.timedelta(days=1)))
    if brand_id is not None:
        events = events.filter(brand_id=brand_id)
    brand_days = set(events.annotate(day=_local_day()).values_list("brand_id", "day").distinct().order_by())
    if not brand_days:
        return ActivitySummaryResult(date_from, date_to, 0, 0, 0)
    days_by_brand: dict[int, list[dt.date]] = defaultdict(list)
    for brand, day in brand_days:
        days_by_brand[brand].append(day)
    stale = Q()
    for brand, days in days_by_brand.items():
        stale |= Q(brand_id=brand, day__in=days)
    deleted, _ = MemberDailyActivity.objects.filter(stale).delete()
    rows = (events.filter(member__isnull=False).annotate(day=_local_day())
            .values("member_id", "brand_id", "day").annotate(**_counts_by_kind()).order_by())
    written = 0
    chunk: list[MemberDailyActivity] = []
    for row in rows.iterator(chunk_size=5000):
        chunk.append(MemberDailyActivity(**row))
        if len(chunk) >= 5000:
            MemberDailyActivity.objects.bulk_create(chunk)
            written += len(chunk)
            chunk = []
    MemberDailyActivity.objects.bulk_create(chunk)
    written += len(chunk)
    return ActivitySummaryResult(date_from, date_to, len(brand_days), deleted, written)


def late_event_days(*, received_since: dt.datetime, before: dt.date) -> list[dt.date]:
    """Local days before ``before`` that received events since ``received_since`` (late, offline-queued).

    Bounded by the ingestion window, so the scan stays on the occurred_at index.
    """
    window_start = received_since - MAX_AGE - FUTURE_TOLERANCE
    days = (BehaviourEvent.objects.filter(occurred_at__gte=window_start, occurred_at__lt=_local_midnight(before),
                                          received_at__gte=received_since)
            .annotate(day=_local_day()).values_list("day", flat=True).distinct().order_by("day"))
    return list(days)


# ---------------------------------------------------------------------------- retention

@dataclass(frozen=True)
class PurgeResult:
    """A purge: raw events deleted, and (brand, day) pairs kept because their counters do not match yet."""

    cutoff: dt.datetime
    deleted: int
    unsummarised: list[tuple[int, dt.date]]


def events_purge(*, before: dt.date | None = None, days: int = DEFAULT_RETENTION_DAYS) -> PurgeResult:
    """Delete raw events of local days before ``before`` (default: today − ``days``), summarised days only.

    A (brand, day) counts as summarised when its member events, counted per
    kind, equal the sums of its daily counters; other days are kept and
    reported (run ``activity_summarise`` for them, then purge again).
    Anonymous events have no counters; they go with their day.
    """
    if days < MIN_RETENTION_DAYS:
        raise ValueError(f"retention must be at least {MIN_RETENTION_DAYS} days (the ingestion window)")
    latest_allowed = local_today() - dt.timedelta(days=days)
    before = min(before or latest_allowed, latest_allowed)
    cutoff = _local_midnight(before)
    old = BehaviourEvent.objects.filter(occurred_at__lt=cutoff)
    raw = {(r.pop("brand_id"), r.pop("day")): r for r in
           old.filter(member__isnull=False).annotate(day=_local_day()).values("brand_id", "day")
           .annotate(**_counts_by_kind()).order_by()}
    summed = {(r.pop("brand_id"), r.pop("day")): r for r in
              MemberDailyActivity.objects.filter(day__lt=before, brand_id__in={b for b, _d in raw} or [0])
              .values("brand_id", "day").annotate(**{c: Sum(c) for c in COUNTERS}).order_by()}
    unsummarised = sorted(key for key, counts in raw.items() if summed.get(key) != counts)
    if unsummarised:
        logger.warning("events_purge: %d brand-days not summarised yet, kept: %s", len(unsummarised),
                       unsummarised[:10])
    deleted = 0
    with transaction.atomic():
        purgeable = old
        for brand, day in unsummarised:
            purgeable = purgeable.exclude(brand_id=brand, occurred_at__gte=_local_midnight(day),
                                          occurred_at__lt=_local_midnight(day + dt.timedelta(days=1)))
        deleted, _ = purgeable.delete()
    return PurgeResult(cutoff=cutoff, deleted=deleted, unsummarised=unsummarised)


# ---------------------------------------------------------------------------- merging

def member_events_merge(*, survivor: Member, absorbed: Member) -> int:
    """Move the absorbed member's events and daily counters to the survivor; returns the events moved.

    Where both have a counter row for the same brand and day, the absorbed
    counts are added to the survivor's row and the absorbed row is dropped, so
    nothing is lost or counted twice. Set-based: a fixed number of statements
    whatever the history. Called inside ``member_merge``'s transaction.
    """
    with transaction.atomic():
        moved = BehaviourEvent.objects.filter(member=absorbed).update(member=survivor)
        theirs = MemberDailyActivity.objects.filter(member=absorbed, brand_id=OuterRef("brand_id"),
                                                    day=OuterRef("day"))
        mine = MemberDailyActivity.objects.filter(member=survivor, brand_id=OuterRef("brand_id"),
                                                  day=OuterRef("day"))
        MemberDailyActivity.objects.filter(member=survivor).filter(Exists(theirs)).update(
            **{c: F(c) + Subquery(theirs.values(c)[:1]) for c in COUNTERS})
        MemberDailyActivity.objects.filter(member=absorbed).filter(Exists(mine)).delete()
        MemberDailyActivity.objects.filter(member=absorbed).update(member=survivor)
    return moved
