"""Mini-program API: batch ingestion of behaviour events (``POST /api/v1/mp/events/``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from members.auth import MemberPrincipal, MemberTokenAuthentication
from members.events import CLIENT_KINDS, event_batch_ingest
from retail_crm.api.ingestion import BatchInputSerializer, batch_response, batch_throttles
from retail_crm.ingestion import MAX_BATCH


@extend_schema_field({"type": "string", "enum": list(CLIENT_KINDS)})
class _EventKindField(serializers.CharField):
    """Inline enum in the schema: a named component would collide with the other ``kind`` choice sets."""


class EventItemDocSerializer(serializers.Serializer):
    """The shape of one item (documentation; validation happens in ``event_batch_ingest``)."""

    class Meta:
        ref_name = "MpBehaviourEventIn"

    kind = _EventKindField()
    occurred_at = serializers.DateTimeField(help_text="ISO 8601; at most 5 minutes ahead, at most 30 days old")
    brand = serializers.CharField(help_text="Brand code")
    object_type = serializers.CharField(required=False, max_length=20)
    object_id = serializers.CharField(required=False, max_length=64)
    share_token = serializers.CharField(required=False, max_length=100, help_text="Guide share token")
    visitor_id = serializers.CharField(required=False, max_length=64,
                                       help_text="Required when anonymous, and the same on every item of the batch")
    client_event_id = serializers.CharField(required=False, max_length=64,
                                            help_text="Unique per brand; makes resending safe")


class EventBatchDocSerializer(serializers.Serializer):
    class Meta:
        ref_name = "MpEventBatchIn"

    events = serializers.ListField(child=EventItemDocSerializer(), min_length=1, max_length=MAX_BATCH)


class EventBatchIngestApi(APIView):
    """Store a batch of 1–500 behaviour events; bad items are reported by index, the rest are stored.

    Call it with a member token (``Authorization: Member <token>``) or
    anonymously, in which case every item needs a ``visitor_id``, the same in
    the whole batch (one install's; another id is refused by index). A resent
    ``client_event_id`` is counted in ``duplicates`` and not stored twice.

    Rate-limited per client (the member, or the IP with the batch's ``visitor_id``) and, anonymously, per
    IP: 429 with ``Retry-After`` beyond it (README "Rate limits").
    """

    authentication_classes = [MemberTokenAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = batch_throttles("events", anonymous_id_field="visitor_id")
    parser_classes = [JSONParser]  # the batch is JSON; a form post gets 415, not a half-read batch

    class OutputSerializer(serializers.Serializer):
        class RejectedSerializer(serializers.Serializer):
            class Meta:
                ref_name = "MpEventRejected"

            index = serializers.IntegerField()
            errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))

        class Meta:
            ref_name = "MpEventBatchOut"

        accepted = serializers.IntegerField()
        duplicates = serializers.IntegerField()
        rejected = RejectedSerializer(many=True)

    @extend_schema(request=EventBatchDocSerializer, responses={200: OutputSerializer},
                   operation_id="mp_events_ingest")
    def post(self, request):
        serializer = BatchInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        principal = request.user
        member = principal.member if isinstance(principal, MemberPrincipal) else None
        result = event_batch_ingest(items=serializer.validated_data["events"], member=member, one_visitor=True)
        return batch_response(result)
