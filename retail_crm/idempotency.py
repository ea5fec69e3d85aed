"""Idempotency-Key for API operations that must not happen twice (creating an order, requesting a refund).

The same key with the same body returns the first response again, without
running the operation; the same key with a different body is a 422; a key
whose first request is still running is a 409. Records are kept at least 24
hours (``idempotency_purge`` removes older ones). A request that fails with
an error keeps no record, so the client can fix it and retry with the key.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.response import Response

from retail_crm.errors import ApplicationError

HEADER = "Idempotency-Key"
KEEP = dt.timedelta(hours=24)
MAX_KEY_LENGTH = 100


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
    from mall.models import IdempotencyRecord

    def decorate(method):
        @functools.wraps(method)
        def wrapper(view, request, *args, **kwargs):
            key = request.headers.get(HEADER, "").strip()
            if not key:
                return method(view, request, *args, **kwargs)
            if len(key) > MAX_KEY_LENGTH or not key.isprintable():
                raise ApplicationError("invalid", f"{HEADER} must be printable and at most {MAX_KEY_LENGTH} "
                                       "characters.", fields={HEADER: ["Invalid key."]})
            owner, fingerprint = _owner(request), _fingerprint(request, kwargs)
            record = None
            for _attempt in range(2):
                try:
                    with transaction.atomic():
                        record = IdempotencyRecord.objects.create(owner=owner, scope=scope, key=key,
                                                                  request_hash=fingerprint)
                    break
                except IntegrityError:
                    # A key past its keeping period (not yet purged) is free again; anything younger replays.
                    stale = IdempotencyRecord.objects.filter(owner=owner, scope=scope, key=key,
                                                             created_at__lt=timezone.now() - KEEP).delete()[0]
                    if not stale:
                        break
            if record is None:
                record = IdempotencyRecord.objects.get(owner=owner, scope=scope, key=key)
                if record.request_hash != fingerprint:
                    raise ApplicationError("idempotency_key_reused",
                                           f"This {HEADER} was used for a different request.", status=422,
                                           fields={HEADER: ["Used with another body."]}) from None
                if record.status_code is None:
                    raise ApplicationError("idempotency_in_progress",
                                           f"A request with this {HEADER} is still being processed.",
                                           status=409) from None
                replay = Response(record.response, status=record.status_code)
                replay["Idempotent-Replayed"] = "true"
                return replay
            try:
                response = method(view, request, *args, **kwargs)
            except BaseException:
                record.delete()
                raise
            if response.status_code >= 400:
                record.delete()
                return response
            record.status_code = response.status_code
            record.response = json.loads(json.dumps(response.data, cls=DjangoJSONEncoder))
            record.save(update_fields=["status_code", "response"])
            return response

        return wrapper

    return decorate


def idempotency_purge(*, now: dt.datetime | None = None) -> int:
    """Delete records older than the keeping period; returns how many."""
    from mall.models import IdempotencyRecord

    cutoff = (now or timezone.now()) - KEEP
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
