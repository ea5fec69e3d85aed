"""The API side of batch ingestion (``retail_crm.ingestion``): the same throttles, input and answer for
every kind of client event batch (behaviour events, live viewer events)."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.response import Response

from retail_crm.ingestion import MAX_BATCH, BatchResult
from retail_crm.throttling import ScopedRateThrottle, anonymous_ip_throttle, client_throttle


def batch_throttles(scope: str, *, anonymous_id_field: str) -> list[type[ScopedRateThrottle]]:
    """Per IP for anonymous callers (``<scope>_ip``; first, so it counts even a body that does not parse), then
    per client, in a burst and over the hour (``<scope>_burst``, ``<scope>_sustained``): the member, or the IP
    with the batch's anonymous id (``anonymous_id_field`` of the first item)."""
    return [anonymous_ip_throttle(f"{scope}_ip"),
            client_throttle(f"{scope}_burst", anonymous_id_field=anonymous_id_field),
            client_throttle(f"{scope}_sustained", anonymous_id_field=anonymous_id_field)]


class BatchInputSerializer(serializers.Serializer):
    # No child field: items are validated one by one in the service, so one bad item
    # is reported with its index instead of failing the whole request.
    events = serializers.ListField(allow_empty=False, max_length=MAX_BATCH)


def batch_response(result: BatchResult) -> Response:
    """``{"accepted", "duplicates", "rejected": [{"index", "errors"}]}``, built by hand: an output serializer
    would cost more than the insert for a 500-item batch."""
    return Response({"accepted": result.accepted, "duplicates": result.duplicates,
                     "rejected": [{"index": r.index, "errors": r.errors} for r in result.rejected]})
