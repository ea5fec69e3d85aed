"""Batch ingestion of client events: the one way behaviour events (``members.events``) and live viewer events
(``livestream.viewer_events``) go in.

A client sends up to 500 items at a time. Each kind brings its own per-item validation and its own table;
what they share is here:

* every item is checked on its own, in plain Python, without per-item queries: a bad item is reported
  with its index and the reasons per field, and never costs the rest of the batch;
* an item carrying a client key (``client_event_id``) already stored, or repeated within the batch, is a
  duplicate: counted, not stored again (so resending a batch is safe);
* all the valid, new items go in with one multi-row insert (``retail_crm.bulk_sql.insert_new_rows``, which
  also settles two clients resending at once).

The API side (throttles, the response body) is ``retail_crm.api.ingestion``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

from django.db.models import Model
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from retail_crm.bulk_sql import insert_new_rows

MAX_BATCH = 500
FUTURE_TOLERANCE = dt.timedelta(minutes=5)  # phones' clocks drift; further ahead is a broken client

Row = TypeVar("Row", bound=NamedTuple)
#: per-field messages of one item, filled in by a validator
Errors = dict[str, list[str]]


@dataclass(frozen=True)
class RejectedItem:
    """One refused item of a batch: its position and the reasons per field."""

    index: int
    errors: dict[str, list[str]]


@dataclass(frozen=True)
class BatchResult:
    """What became of a batch: stored, skipped as already stored, and refused items."""

    accepted: int
    duplicates: int
    rejected: list[RejectedItem] = field(default_factory=list)


def check_batch_size(items: Sequence) -> None:
    """``ValueError`` for more than ``MAX_BATCH`` items (the API refuses them before they get here)."""
    if len(items) > MAX_BATCH:
        raise ValueError(f"a batch holds at most {MAX_BATCH} events")


def text_field(item: dict, name: str, errors: Errors, *, max_length: int, required: bool = False) -> str:
    """A string field of an item: '' when absent; an error when the wrong type, too long, or with NUL."""
    value = item.get(name)
    if value is None or value == "":
        if required:
            errors[name] = ["This field is required."]
        return ""
    if not isinstance(value, str):
        errors[name] = ["Expected a string."]
        return ""
    value = value.strip()
    if "\x00" in value:
        # PostgreSQL refuses NUL in text; refuse the item rather than fail the whole insert.
        errors[name] = ["Null characters are not allowed."]
    elif len(value) > max_length:
        errors[name] = [f"Ensure this field has no more than {max_length} characters."]
    elif required and not value:
        errors[name] = ["This field is required."]
    return value


def occurred_at_field(item: dict, errors: Errors, *, now: dt.datetime) -> dt.datetime | None:
    """An item's ``occurred_at``: ISO 8601, naive times read in the group time zone, at most
    ``FUTURE_TOLERANCE`` ahead of ``now``. None (with the error) when missing or not a date-time; a time too
    far ahead comes back with its error, so the kind's own range check is skipped."""
    raw = item.get("occurred_at")
    if raw is None or raw == "":
        errors["occurred_at"] = ["This field is required."]
        return None
    if not isinstance(raw, str):
        errors["occurred_at"] = ["Expected an ISO 8601 date-time string."]
        return None
    try:
        value = parse_datetime(raw.strip())
        if value is not None and timezone.is_naive(value):
            value = timezone.make_aware(value, timezone.get_default_timezone())
    except (ValueError, OverflowError):
        value = None
    if value is None:
        errors["occurred_at"] = ["Not a valid ISO 8601 date-time."]
        return None
    if value > now + FUTURE_TOLERANCE:
        errors["occurred_at"] = ["Lies in the future (more than 5 minutes ahead of the server clock)."]
    return value


def drop_known(rows: Sequence[Row], *, key: Callable[[Row], Hashable | None],
               stored_keys: Callable[[set], set]) -> tuple[list[Row], int]:
    """The rows not stored yet, and how many were duplicates: one ``stored_keys`` look-up for the batch's
    client keys (rows whose ``key`` is None are always new); repeats inside the batch are dropped too."""
    keys = {k for k in map(key, rows) if k is not None}
    known = stored_keys(keys) if keys else set()
    fresh, duplicates = [], 0
    for row in rows:
        k = key(row)
        if k is not None:
            if k in known:
                duplicates += 1
                continue
            known.add(k)
        fresh.append(row)
    return fresh, duplicates


def batch_ingest(*, items: Sequence, validate: Callable[[dict, Errors], Row], model: type[Model],
                 key: Callable[[Row], Hashable | None], stored_keys: Callable[[set], set]) -> BatchResult:
    """Validate every item on its own and store the valid, new ones in ``model`` with one insert.

    ``validate(item, errors)`` checks one item (a dict) and returns its row, the insert's named tuple; an
    item it leaves ``errors`` on is rejected with them. ``key`` gives a row's client key (None without one)
    and ``stored_keys`` the keys among a set that are stored already (one query). Call
    :func:`check_batch_size` first, before any query the kind makes for the batch.
    """
    rejected: list[RejectedItem] = []
    valid: list[Row] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            rejected.append(RejectedItem(index, {"non_field_errors": ["Expected an object."]}))
            continue
        errors: Errors = {}
        row = validate(item, errors)
        if errors:
            rejected.append(RejectedItem(index, errors))
            continue
        valid.append(row)
    accepted, duplicates = insert_new_rows(model, valid,
                                           lambda rows: drop_known(rows, key=key, stored_keys=stored_keys))
    return BatchResult(accepted=accepted, duplicates=duplicates, rejected=rejected)
