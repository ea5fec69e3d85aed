"""Staff figures of live sessions (``/api/v1/livestream/``), scoped: one session's figures as the refresh job
last stored them, and per store / brand summaries per week or month (``livestream.metrics``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from livestream.api.sessions import LiveSessionOutputSerializer, _one
from livestream.metrics import live_summary, session_stats_refresh
from livestream.models import LiveSession, SessionStats
from retail_crm.api.views import ScopedMixin
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand, Store
from retail_crm.scoping import scoped


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
