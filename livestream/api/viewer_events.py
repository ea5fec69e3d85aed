"""The mini-program's live API (``/api/v1/mp/live/``): a member's live list and the viewer events of a
session, sent in batches. The staff figures computed from those events are in ``livestream.api.figures``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from livestream.models import LiveSession, ViewerEvent
from livestream.viewer_events import sessions_for_member, viewer_events_ingest
from members.api.mp_views import MemberApi
from members.auth import MemberPrincipal, MemberTokenAuthentication
from retail_crm.api.ingestion import BatchInputSerializer, batch_response, batch_throttles
from retail_crm.api.pagination import StandardPagination
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.ingestion import MAX_BATCH


class MpLiveSessionListApi(MemberApi):
    """Upcoming and live sessions of the member's brands (HQ central and store sessions), live ones first,
    then those of the stores of the member's bound guides, then by planned start; with the products shown."""

    pagination_class = StandardPagination

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MpLiveSession"

        class ProductSerializer(serializers.Serializer):
            class Meta:
                ref_name = "MpLiveProduct"

            id = serializers.IntegerField()
            code = serializers.CharField()
            name = serializers.CharField()
            image = serializers.SerializerMethodField()

            def get_image(self, product) -> str | None:
                images = product.images.all()  # prefetched, sorted
                return images[0].url if images else None

        id = serializers.IntegerField()
        brand = serializers.CharField(source="brand.code")
        brand_name = serializers.CharField(source="brand.name")
        kind = serializers.CharField(help_text="hq_central or store")
        title = serializers.CharField()
        status = serializers.CharField(help_text="planned or live")
        platform = serializers.CharField()
        host_store = serializers.CharField(source="host_store.code", allow_null=True, default=None)
        host_store_name = serializers.CharField(source="host_store.name", allow_null=True, default=None)
        follows = serializers.IntegerField(source="follows_id", allow_null=True)
        planned_start = serializers.DateTimeField()
        planned_end = serializers.DateTimeField()
        actual_start = serializers.DateTimeField(allow_null=True)
        my_store = serializers.SerializerMethodField(help_text="Hosted by the store of one of my bound guides")
        products = ProductSerializer(many=True)

        def get_my_store(self, session) -> bool:
            return session.mine_first == 0

    @extend_schema(responses=OutputSerializer(many=True), operation_id="mp_live_sessions_list")
    def get(self, request):
        sessions = sessions_for_member(member=self.member)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(sessions, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


@extend_schema_field({"type": "string", "enum": list(ViewerEvent.Kind.values)})
class _ViewerEventKindField(serializers.CharField):
    """Inline enum in the schema: a named component would collide with the other ``kind`` choice sets."""


class ViewerEventItemDocSerializer(serializers.Serializer):
    """The shape of one item (documentation; validation happens in ``viewer_events_ingest``)."""

    class Meta:
        ref_name = "MpViewerEventIn"

    kind = _ViewerEventKindField()
    occurred_at = serializers.DateTimeField(help_text="ISO 8601, inside the session's window (an hour before its "
                                                      "start to an hour after its end), at most 5 minutes ahead")
    product_id = serializers.IntegerField(required=False, help_text="product_click only: a product of the session")
    viewer_id = serializers.CharField(required=False, max_length=59,
                                      help_text="Anonymous viewers only (required then); ignored with a member "
                                                "token, whose member code is the viewer")
    client_event_id = serializers.CharField(required=False, max_length=64,
                                            help_text="Unique per session; makes resending safe")


class ViewerEventBatchDocSerializer(serializers.Serializer):
    class Meta:
        ref_name = "MpViewerEventBatchIn"

    events = serializers.ListField(child=ViewerEventItemDocSerializer(), min_length=1, max_length=MAX_BATCH)


class MpViewerEventBatchApi(APIView):
    """Store a batch of 1–500 viewer events of one session; bad items are reported by index, the rest stored.

    With a member token (``Authorization: Member <token>``) the events are the member's; anonymously every
    item needs a ``viewer_id``. A resent ``client_event_id`` is counted in ``duplicates``. 409 when the
    session takes no events now: cancelled (``session_cancelled``), not open yet (``session_not_open``) or
    closed more than a day ago (``session_closed``). 404 for an unknown session or another group's.
    Rate-limited per client (the member, or the IP with the batch's ``viewer_id``) and, anonymously, per
    IP: 429 with ``Retry-After`` beyond it (README "Rate limits").
    """

    authentication_classes = [MemberTokenAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = batch_throttles("live_events", anonymous_id_field="viewer_id")
    parser_classes = [JSONParser]

    class OutputSerializer(serializers.Serializer):
        class RejectedSerializer(serializers.Serializer):
            class Meta:
                ref_name = "MpViewerEventRejected"

            index = serializers.IntegerField()
            errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))

        class Meta:
            ref_name = "MpViewerEventBatchOut"

        accepted = serializers.IntegerField()
        duplicates = serializers.IntegerField()
        rejected = RejectedSerializer(many=True)

    @extend_schema(request=ViewerEventBatchDocSerializer, responses={200: OutputSerializer},
                   operation_id="mp_live_events_ingest")
    def post(self, request, pk: int):
        principal = request.user
        member = principal.member if isinstance(principal, MemberPrincipal) else None
        sessions = LiveSession.objects.select_related("brand").filter(pk=pk, brand__is_active=True)
        if member is not None:
            sessions = sessions.filter(brand__group_id=member.group_id)
        session = sessions.first()
        if session is None:
            raise ApplicationError(ErrorCode.NOT_FOUND, "No such session.", status=404)
        serializer = BatchInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = viewer_events_ingest(session=session, items=serializer.validated_data["events"], member=member)
        return batch_response(result)
