"""Live data API: the mini-program's live list and viewer events (``/api/v1/mp/live/``), and the staff
figures of sessions and their per store / brand summaries (``/api/v1/livestream/``), scoped."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from livestream.api import LiveSessionOutputSerializer, _one
from livestream.metrics import live_summary, session_stats_refresh
from livestream.models import LiveSession, SessionStats, ViewerEvent
from livestream.viewer_events import sessions_for_member, viewer_events_ingest
from members.api.mp_views import MemberApi
from members.auth import MemberPrincipal, MemberTokenAuthentication
from retail_crm.api.ingestion import BatchInputSerializer, batch_response, batch_throttles
from retail_crm.api.pagination import StandardPagination
from retail_crm.api.views import ScopedMixin
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.ingestion import MAX_BATCH
from retail_crm.models import Brand, Store
from retail_crm.scoping import scoped

# ---------------------------------------------------------------------------- mini-program


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



# ---------------------------------------------------------------------------- staff: figures and summaries

class SessionStatsApi(ScopedMixin, APIView):
    """A session's figures (viewers, watch time, interactions, orders, sales, conversion, new members) as last
    stored by the refresh job (every 2 minutes while live); computed on the spot when never stored yet."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "LiveSessionStats"

        session = LiveSessionOutputSerializer()
        viewers = serializers.IntegerField(help_text="UV: distinct viewers present during the run")
        views = serializers.IntegerField(help_text="PV: joins of those viewers")
        peak_concurrent = serializers.IntegerField()
        watch_seconds = serializers.IntegerField()
        avg_watch_seconds = serializers.DecimalField(max_digits=12, decimal_places=2)
        likes = serializers.IntegerField()
        comments = serializers.IntegerField()
        shares = serializers.IntegerField()
        product_clicks = serializers.IntegerField()
        orders = serializers.IntegerField()
        gmv = serializers.DecimalField(max_digits=16, decimal_places=2)
        paid_orders = serializers.IntegerField()
        paid_sales = serializers.DecimalField(max_digits=16, decimal_places=2, help_text="Paid − refunded")
        buyers = serializers.IntegerField()
        conversion = serializers.DecimalField(max_digits=7, decimal_places=4, help_text="buyers ÷ viewers")
        new_members = serializers.IntegerField()
        computed_at = serializers.DateTimeField()

    @extend_schema(responses=OutputSerializer, operation_id="livestream_session_stats")
    def get(self, request, pk: int):
        sessions = scoped(LiveSession.objects.select_related("brand", "host_store", "host_guide"), self.actor)
        session = sessions.filter(pk=pk).first()
        if session is None:
            raise ApplicationError(ErrorCode.NOT_FOUND, "No such session.", status=404)
        stats = SessionStats.objects.filter(session=session).first() or session_stats_refresh(session=session)
        stats.session = session
        return Response(self.OutputSerializer(stats).data)


class LiveSummaryRowSerializer(serializers.Serializer):
    class Meta:
        ref_name = "LiveSummaryRow"

    period_start = serializers.DateField()
    brand = serializers.CharField()
    store = serializers.CharField(allow_null=True)
    planned = serializers.IntegerField(help_text="Sessions not cancelled (held ones included)")
    held = serializers.IntegerField(help_text="Sessions that ended")
    cancelled = serializers.IntegerField()
    live_hours = serializers.DecimalField(max_digits=10, decimal_places=2)
    viewers = serializers.IntegerField()
    views = serializers.IntegerField()
    buyers = serializers.IntegerField()
    orders = serializers.IntegerField()
    gmv = serializers.DecimalField(max_digits=16, decimal_places=2)
    paid_sales = serializers.DecimalField(max_digits=16, decimal_places=2)
    conversion = serializers.DecimalField(max_digits=9, decimal_places=4)
    new_members = serializers.IntegerField()


class LiveSummaryApi(ScopedMixin, APIView):
    """Per brand and per store, per local week (from Monday) or month: sessions planned vs held, hours live,
    viewers, sales and conversion, over the sessions the caller sees planned in [date_from, date_to]
    (default: the last 12 weeks or months). Brand rows cover HQ central and store sessions, store rows the
    store sessions by host store."""

    class QuerySerializer(serializers.Serializer):
        class Meta:
            ref_name = "LiveSummaryQuery"

        brand = serializers.CharField(required=False, max_length=32, help_text="Brand code")
        store = serializers.CharField(required=False, max_length=32, help_text="Store code")
        period = serializers.ChoiceField(choices=[("week", "week"), ("month", "month")], default="week")
        date_from = serializers.DateField(required=False)
        date_to = serializers.DateField(required=False)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "LiveSummary"

        period = serializers.CharField()
        date_from = serializers.DateField()
        date_to = serializers.DateField()
        brands = LiveSummaryRowSerializer(many=True)
        stores = LiveSummaryRowSerializer(many=True)

    @extend_schema(parameters=[QuerySerializer], responses=OutputSerializer, operation_id="livestream_summary")
    def get(self, request):
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        v = query.validated_data
        actor = self.actor
        brand = _one(scoped(Brand.objects.all(), actor), "brand", code=v["brand"]) if v.get("brand") else None
        store = _one(scoped(Store.objects.all(), actor), "store", code=v["store"]) if v.get("store") else None
        summary = live_summary(actor=actor, period=v["period"], date_from=v.get("date_from"),
                               date_to=v.get("date_to"), brand=brand, store=store)
        rows = summary.brands + summary.stores
        brand_codes = dict(Brand.objects.filter(pk__in={r.brand_id for r in rows}).values_list("pk", "code"))
        store_codes = dict(Store.objects.filter(pk__in={r.store_id for r in rows if r.store_id})
                           .values_list("pk", "code"))

        def out(row) -> dict:
            data = {**vars(row), "brand": brand_codes[row.brand_id], "store": store_codes.get(row.store_id)}
            return LiveSummaryRowSerializer(data).data

        return Response({"period": summary.period.value, "date_from": summary.date_from.isoformat(),
                         "date_to": summary.date_to.isoformat(), "brands": [out(r) for r in summary.brands],
                         "stores": [out(r) for r in summary.stores]})
