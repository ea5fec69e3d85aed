"""livestream.viewer_events: the mini-program side of live data.

Viewers' events (join, leave, like, comment, share, product click) arrive in batches of up to 500, taken
in as behaviour events are (``retail_crm.ingestion``): every item is validated on its own in plain Python,
a bad item is reported with its index and reasons and never costs the rest of the batch, a resent
``client_event_id`` is counted as a duplicate and not stored twice, and all valid items go in with one
multi-row insert. Queries per batch: the session's product ids (only when the batch has product clicks),
the known client ids (only when items carry one), the insert.

Decisions worth knowing:

* **Who the viewer is.** With a member token the events are the member's: ``viewer_id`` is the member
  code and any ``viewer_id`` in the items is ignored. Without a token (a live room opened from a shared
  link before logging in) every item needs the mini-program's anonymous ``viewer_id``; it is stored as
  ``anon:<id>`` so that an anonymous id can never pose as a member code. A viewer who logs in mid-session
  therefore counts as two viewers; the mini-program keeps that rare by asking for login on entry.
* **The acceptance window.** Events are taken from an hour before the session starts (the lobby opens
  with a countdown) until an hour after it ends, where start is the earlier of the planned and actual
  start, and end is the actual end, or the planned end for a session that never started; a session still
  live has no end yet. An item outside the window, or more than 5 minutes in the server's future, is
  refused on its own (``occurred_at``). Batches for a cancelled session are refused whole with 409
  ``session_cancelled``; before the window opens with 409 ``session_not_open``; and more than 24 hours
  after it closed (the longest a phone queues events offline) with 409 ``session_closed``, so the figures
  of an ended session become final.
* **Product clicks** name a product shown in the session; other kinds carry no product.
* **Naive times are local** (the group time zone), as for behaviour events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import NamedTuple

from django.db.models import Case, IntegerField, Prefetch, Q, QuerySet, Value, When
from django.utils import timezone

from livestream.errors import LivestreamErrorCode
from livestream.models import LiveSession, ViewerEvent
from mall.models import Product, ProductImage
from members.models import GuideBinding, Member
from retail_crm.errors import ApplicationError
from retail_crm.ingestion import (
    FUTURE_TOLERANCE,
    MAX_BATCH,
    BatchResult,
    Errors,
    batch_ingest,
    check_batch_size,
    occurred_at_field,
    text_field,
)

__all__ = ["MAX_BATCH", "ANONYMOUS_PREFIX", "LOBBY", "TAIL", "LATE_GRACE", "EventWindow",
           "event_window", "viewer_events_ingest", "sessions_for_member"]

ANONYMOUS_PREFIX = "anon:"
LOBBY = dt.timedelta(hours=1)  # the live room opens with a countdown before the start
TAIL = dt.timedelta(hours=1)  # viewers still leave (and late events still happen) after the end
LATE_GRACE = dt.timedelta(hours=24)  # offline-queued batches still accepted this long after the window

_KINDS = frozenset(str(k) for k in ViewerEvent.Kind.values)
_MAX_LEN = {f.name: f.max_length for f in ViewerEvent._meta.concrete_fields if f.max_length}
_MAX_ANON_LEN = _MAX_LEN["viewer_id"] - len(ANONYMOUS_PREFIX)
_PRODUCT_ID_MAX = 2**63 - 1


class EventWindow(NamedTuple):
    """When a session accepts events: from ``opens`` to ``closes`` (None while it is still live)."""

    opens: dt.datetime
    closes: dt.datetime | None


def event_window(session: LiveSession) -> EventWindow:
    """The session's acceptance window (see the module docstring)."""
    start = min(session.planned_start, session.actual_start or session.planned_start)
    if session.actual_end is not None:
        closes = session.actual_end + TAIL
    elif session.status == LiveSession.Status.LIVE:
        closes = None
    else:
        closes = session.planned_end + TAIL
    return EventWindow(opens=start - LOBBY, closes=closes)


def _local(value: dt.datetime) -> str:
    """A time in messages: ISO 8601 in the group's time zone, as the mini-program shows it."""
    return timezone.localtime(value, timezone.get_default_timezone()).isoformat()


def _session_open(session: LiveSession, window: EventWindow, now: dt.datetime) -> None:
    """Refuse the whole batch (409) when the session takes no events at all now."""
    if session.status == LiveSession.Status.CANCELLED:
        raise ApplicationError(LivestreamErrorCode.SESSION_CANCELLED,
                               f"Session #{session.pk} was cancelled; it takes no viewer events.", status=409)
    if now + FUTURE_TOLERANCE < window.opens:
        raise ApplicationError(LivestreamErrorCode.SESSION_NOT_OPEN,
                               f"Session #{session.pk} opens for viewers at {_local(window.opens)}.",
                               status=409)
    if window.closes is not None and now > window.closes + LATE_GRACE:
        raise ApplicationError(LivestreamErrorCode.SESSION_CLOSED,
                               f"Session #{session.pk} closed for viewer events at "
                               f"{_local(window.closes + LATE_GRACE)}.", status=409)


class ViewerEventRow(NamedTuple):
    """One validated event, in the column order of the insert."""

    session_id: int
    member_id: int | None
    viewer_id: str
    kind: str
    occurred_at: dt.datetime
    received_at: dt.datetime
    product_id: int | None
    client_event_id: str


def _occurred_at(item: dict, errors: Errors, now: dt.datetime, window: EventWindow) -> dt.datetime | None:
    value = occurred_at_field(item, errors, now=now)
    if value is None or "occurred_at" in errors:
        return value
    if value < window.opens or (window.closes is not None and value > window.closes):
        until = _local(window.closes) if window.closes is not None else "its end"
        errors["occurred_at"] = [f"Outside the session's window ({_local(window.opens)} to {until})."]
    return value


def _product_id(item: dict, kind: str, errors: dict, shown: set[int] | None) -> int | None:
    raw = item.get("product_id")
    if kind != ViewerEvent.Kind.PRODUCT_CLICK:
        if raw is not None:
            errors["product_id"] = ["Only product_click events name a product."]
        return None
    if raw is None:
        errors["product_id"] = ["This field is required."]
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 < raw <= _PRODUCT_ID_MAX:
        errors["product_id"] = ["A valid product id is required."]
        return None
    if shown is not None and raw not in shown:
        errors["product_id"] = ["Not a product shown in this session."]
        return None
    return raw


def viewer_events_ingest(*, session: LiveSession, items: Sequence, member: Member | None = None,
                         now: dt.datetime | None = None) -> BatchResult:
    """Validate every item of a batch on its own and store the valid ones with one insert.

    ``member`` is the logged-in viewer (the events are theirs, ``viewer_id`` = member code); without one
    each item needs a ``viewer_id`` (stored as ``anon:<id>``). Raises 409 (``ApplicationError``) when the
    session takes no events now (cancelled, not open yet, closed: see the module docstring) and
    ``ValueError`` for more than ``MAX_BATCH`` items. Items whose ``client_event_id`` is already stored for
    the session, or repeated within the batch, are counted in ``duplicates`` and not stored again.
    """
    check_batch_size(items)
    now = now or timezone.now()
    window = event_window(session)
    _session_open(session, window, now)
    shown: set[int] | None = None
    if any(isinstance(item, dict) and item.get("kind") == ViewerEvent.Kind.PRODUCT_CLICK for item in items):
        shown = set(session.products.values_list("pk", flat=True))

    def validate(item: dict, errors: Errors) -> ViewerEventRow | None:
        kind = text_field(item, "kind", errors, max_length=_MAX_LEN["kind"], required=True)
        if kind and "kind" not in errors and kind not in _KINDS:
            errors["kind"] = [f'"{kind}" is not a valid choice.']
        occurred_at = _occurred_at(item, errors, now, window)
        product_id = _product_id(item, kind, errors, shown) if "kind" not in errors else None
        client_event_id = text_field(item, "client_event_id", errors, max_length=_MAX_LEN["client_event_id"])
        if member is None:
            viewer_id = ANONYMOUS_PREFIX + text_field(item, "viewer_id", errors, max_length=_MAX_ANON_LEN,
                                                      required=True)
        else:
            viewer_id = member.code
        if errors:
            return None
        return ViewerEventRow(session.pk, member.pk if member else None, viewer_id, kind, occurred_at,
                              now, product_id, client_event_id)

    def stored_keys(client_ids: set[str]) -> set[str]:
        # The explicit exclude lets PostgreSQL use the partial unique index for long IN lists.
        return set(ViewerEvent.objects.filter(session_id=session.pk, client_event_id__in=client_ids)
                   .exclude(client_event_id="").values_list("client_event_id", flat=True))

    return batch_ingest(items=items, validate=validate, model=ViewerEvent, stored_keys=stored_keys,
                        key=lambda event: event.client_event_id or None)  # client ids are unique per session


def sessions_for_member(*, member: Member, now: dt.datetime | None = None) -> QuerySet[LiveSession]:
    """Upcoming and live sessions of the brands the member belongs to, for the mini-program's live list.

    Upcoming = planned and not past its planned end; HQ central and store sessions alike. Order: live
    sessions first, then sessions of the stores of the member's bound guides, then by planned start.
    Products (with images) and the host store come along without extra queries per session.
    """
    now = now or timezone.now()
    brand_ids = member.memberships.values("brand_id")
    my_stores = list(GuideBinding.objects.filter(member=member, ended_at__isnull=True)
                     .values_list("store_id", flat=True))
    return (LiveSession.objects
            .filter(brand_id__in=brand_ids, brand__is_active=True)
            .filter(Q(status=LiveSession.Status.LIVE)
                    | Q(status=LiveSession.Status.PLANNED, planned_end__gt=now))
            .annotate(live_first=Case(When(status=LiveSession.Status.LIVE, then=Value(0)), default=Value(1),
                                      output_field=IntegerField()),
                      mine_first=Case(When(host_store_id__in=my_stores or [0], then=Value(0)), default=Value(1),
                                      output_field=IntegerField()))
            .select_related("brand", "host_store")
            .prefetch_related(Prefetch("products", queryset=Product.objects.filter(is_active=True).order_by("pk")
                                       .prefetch_related(Prefetch("images", queryset=ProductImage.objects
                                                                  .order_by("sort", "pk")))))
            .order_by("live_first", "mine_first", "planned_start", "pk"))


def live_viewer_merge(*, survivor: Member, absorbed: Member) -> dict[str, int]:
    """A member merge (``member_merge`` hook): the absorbed member's viewer events become the survivor's (one
    viewer, not two)."""
    moved = ViewerEvent.objects.filter(member=absorbed).update(member=survivor, viewer_id=survivor.code)
    return {"live_viewer_events": moved}
