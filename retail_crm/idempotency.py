"""Idempotency-Key for API operations that must not happen twice (creating an order, requesting a refund).

The same key with the same body returns the first response again, without
running the operation; the same key with a different body is a 422. The
record is written in the operation's own transaction, so a second request
with the key while the first is still running waits for it and then replays
its response. Records are kept at least 24 hours (``idempotency_purge``
removes older ones). A request that fails with an error keeps no record, so
the client can fix it and retry with the key.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import hashlib
import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.response import Response

from retail_crm import rawsql
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import IdempotencyRecord

HEADER = "Idempotency-Key"
KEEP = dt.timedelta(hours=24)
MAX_KEY_LENGTH = 100

# True while an idempotent operation runs inside the wrapper's transaction (see ``atomic_operation``).
_IN_WRAPPER = contextvars.ContextVar("idempotent_operation", default=False)


def atomic_operation(func):
    """``transaction.atomic`` for a service an idempotent view calls, without a savepoint inside the wrapper.

    Outside the wrapper this is plain ``transaction.atomic``. Inside it the
    wrapper's own transaction (or savepoint) already encloses the operation and
    rolls all of it back on any error, so the operation's savepoint would be
    two wasted round trips on the hottest path (order creation).
    """
    @functools.wraps(func)
    def inner(*args, **kwargs):
        with transaction.atomic(savepoint=not _IN_WRAPPER.get()):
            return func(*args, **kwargs)

    return inner


def _owner(request) -> str:
    member = getattr(request.user, "member", None)
    if member is not None and not getattr(request.user, "pk", None):
        return f"member:{member.pk}"
    return f"user:{request.user.pk}"


def _fingerprint(request, kwargs: dict) -> str:
    body = json.dumps({"path": kwargs, "data": request.data}, sort_keys=True, cls=DjangoJSONEncoder,
                      ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def idempotent(scope: str):
    """Decorate a DRF view method so an ``Idempotency-Key`` header makes it safe to retry."""
    def decorate(method):
        @functools.wraps(method)
        def wrapper(view, request, *args, **kwargs):
            key = request.headers.get(HEADER, "").strip()
            if not key:
                return method(view, request, *args, **kwargs)
            if len(key) > MAX_KEY_LENGTH or not key.isprintable():
                raise ApplicationError(ErrorCode.INVALID, f"{HEADER} must be printable and at most {MAX_KEY_LENGTH} "
                                       "characters.", fields={HEADER: ["Invalid key."]})
            owner, fingerprint = _owner(request), _fingerprint(request, kwargs)
            # One transaction for the record and the operation: the record commits with the operation's
            # effects and its response, or not at all. A concurrent request with the same key waits on the
            # unique index until this one ends, then replays its response (or runs, if this one failed).
            with transaction.atomic():
                record = _claim(owner=owner, scope=scope, key=key, fingerprint=fingerprint)
                if record.status_code is not None:
                    replay = Response(record.response, status=record.status_code)
                    replay["Idempotent-Replayed"] = "true"
                    return replay
                flag = _IN_WRAPPER.set(True)
                try:
                    response = method(view, request, *args, **kwargs)
                finally:
                    _IN_WRAPPER.reset(flag)
                if response.status_code >= 400:
                    transaction.set_rollback(True)  # a refused request keeps no record: fix it and retry
                    return response
                record.status_code = response.status_code
                record.response = json.loads(json.dumps(response.data, cls=DjangoJSONEncoder))
                rawsql.update(record, ("status_code", "response"))
                return response

        return wrapper

    return decorate


def _claim(*, owner: str, scope: str, key: str, fingerprint: str):
    """This request's new record, or the finished record of an earlier request with the same key.

    ``INSERT … ON CONFLICT DO NOTHING`` claims the key in one statement and needs
    no savepoint: on a conflict with a request still running it waits for that
    request's transaction, then finds its finished record.
    """

    table = connection.ops.quote_name(IdempotencyRecord._meta.db_table)
    for _attempt in range(2):
        now = timezone.now()
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (owner, scope, key, request_hash, created_at) VALUES (%s, %s, %s, %s, %s) "  # noqa: S608 - table name from the model
                "ON CONFLICT (owner, scope, key) DO NOTHING RETURNING id",
                [owner, scope, key, fingerprint, connection.ops.adapt_datetimefield_value(now)])
            row = cursor.fetchone()
        if row is not None:
            record = IdempotencyRecord(id=row[0], owner=owner, scope=scope, key=key, request_hash=fingerprint,
                                       created_at=now)
            record._state.adding = False
            return record
        # A key past its keeping period (not yet purged) is free again; anything younger replays.
        stale = IdempotencyRecord.objects.filter(owner=owner, scope=scope, key=key,
                                                 created_at__lt=timezone.now() - KEEP).delete()[0]
        if stale:
            continue
        record = IdempotencyRecord.objects.get(owner=owner, scope=scope, key=key)
        if record.request_hash != fingerprint:
            raise ApplicationError(ErrorCode.IDEMPOTENCY_KEY_REUSED, f"This {HEADER} was used for a different request.",
                                   status=422, fields={HEADER: ["Used with another body."]})
        if record.status_code is None:  # only visible if a record was committed without its response
            raise ApplicationError(ErrorCode.IDEMPOTENCY_IN_PROGRESS,
                                   f"A request with this {HEADER} is still being processed.", status=409)
        return record
    raise ApplicationError(ErrorCode.CONFLICT, "Could not claim the Idempotency-Key; try again.", status=409)


def idempotency_purge(*, now: dt.datetime | None = None) -> int:
    """Delete records older than the keeping period; returns how many."""

    cutoff = (now or timezone.now()) - KEEP
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
