"""Staff API for the HQ dashboard's metrics (``/api/v1/analytics/metrics/…``): what a BI tool reads.

Every endpoint takes the dashboard's filters as query parameters — ``from``, ``to``
(local dates, default the last 30 days), ``brand``, ``region``, ``store`` (codes) and
``channel`` — and answers with the numbers of ``analytics.metrics`` (the functions
the dashboard pages and exports call), limited to the caller's scope. Bad filters
answer 400 with a message per field; a brand, region or store outside the caller's
scope answers 404. Amounts and ratios are decimal strings; a ratio whose denominator
is zero is null.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import metrics, services
from mall.models import Channel
from retail_crm.api.views import ScopedMixin
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand
from retail_crm.scoping import scoped

MAX_LIMIT = 500

FILTER_PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.DATE, description="First local day (default: `to` − 29 days)"),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Last local day (default: today; never after today)"),
    OpenApiParameter("brand", OpenApiTypes.STR, description="Brand code"),
    OpenApiParameter("region", OpenApiTypes.STR,
                     description="Region as `BRAND:code` (e.g. `WOM:EAST`, unique across brands), or a bare region "
                                 "code with `brand` (region codes repeat across brands)"),
    OpenApiParameter("store", OpenApiTypes.STR, description="Store code"),
    OpenApiParameter("channel", OpenApiTypes.STR, enum=Channel.values, description="Order channel"),
]
LIMIT_PARAMETER = OpenApiParameter("limit", OpenApiTypes.INT, description=f"Rows (1–{MAX_LIMIT}, default 50)")
ERRORS = {400: OpenApiResponse(description="Bad filters (a message per field)"),
          404: OpenApiResponse(description="Brand, region or store outside your scope")}


def _limit(request, default: int = 50) -> int:
    raw = request.query_params.get("limit")
    if raw in (None, ""):
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        message = f"A whole number from 1 to {MAX_LIMIT}."
        raise ApplicationError(ErrorCode.INVALID, "Invalid limit.", fields={"limit": [message]})
    return int(raw)


@extend_schema_field({"type": "string", "nullable": True, "description": "A decimal number as text"})
class NumberField(serializers.Field):
    """An amount, count or ratio as decimal text (null when undefined): exact, whatever its kind."""

    def to_representation(self, value):
        return None if value is None else str(value)


class FiltersSerializer(serializers.Serializer):
    class Meta:
        ref_name = "MetricFilters"

    date_from = serializers.DateField()
    date_to = serializers.DateField()
    brand_id = serializers.IntegerField(allow_null=True)
    region_id = serializers.IntegerField(allow_null=True)
    store_id = serializers.IntegerField(allow_null=True)
    channel = serializers.CharField(allow_null=True)
    partial = serializers.SerializerMethodField(
        help_text="The period includes today: its figures are not final")
    previous_from = serializers.SerializerMethodField(help_text="First day of the previous period (环比)")
    previous_to = serializers.SerializerMethodField(help_text="Last day of the previous period (环比)")

    def get_partial(self, filters) -> bool:
        return filters.is_partial(services.local_today())

    def get_previous_from(self, filters) -> str:
        return filters.previous().date_from.isoformat()

    def get_previous_to(self, filters) -> str:
        return filters.previous().date_to.isoformat()


class PointSerializer(serializers.Serializer):
    class Meta:
        ref_name = "MetricPoint"

    period = serializers.DateField(help_text="The day, or the first day of the month")
    value = NumberField()
    numerator = NumberField()
    denominator = NumberField()


class MetricLastYearSerializer(serializers.Serializer):
    class Meta:
        ref_name = "MetricLastYear"

    key = serializers.CharField()
    unit = serializers.CharField(help_text="cny, ratio, count, days or per_member")
    value = NumberField()
    numerator = NumberField()
    denominator = NumberField()
    basis = serializers.CharField(help_text=(
        "Member rates only: \"month\" when the period is a calendar month (the monthly definition), \"period\" "
        "for any other period (one window over exactly its days: distinct members of those days); empty for "
        "other metrics"))
    trend = PointSerializer(many=True)


class MetricPreviousSerializer(serializers.Serializer):
    class Meta:
        ref_name = "MetricPrevious"

    value = NumberField()
    numerator = NumberField()
    denominator = NumberField()


class MetricSerializer(MetricLastYearSerializer):
    class Meta:
        ref_name = "Metric"

    last_year = MetricLastYearSerializer(allow_null=True, help_text="同比: the same period one year earlier")
    previous = MetricPreviousSerializer(
        allow_null=True, help_text="环比: the period of the same length just before (null where not computed)")


class ChannelCountSerializer(serializers.Serializer):
    class Meta:
        ref_name = "JoinChannelCount"

    join_channel = serializers.CharField()
    new_members = serializers.IntegerField()
    new_members_last_year = serializers.IntegerField()


class MemberGrowthSerializer(serializers.Serializer):
    class Meta:
        ref_name = "MemberGrowth"

    members = MetricSerializer()
    new_members = MetricSerializer()
    by_join_channel = ChannelCountSerializer(many=True)


def _filters(request, actor) -> metrics.Filters:
    return metrics.parse_filters(request.query_params, actor=actor)


class OverviewApi(ScopedMixin, APIView):
    """The overview page's metrics: sales, ratios, private-domain share, members and member-level rates."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MetricsOverview"

        filters = FiltersSerializer()
        gmv = MetricSerializer()
        sales_flow = MetricSerializer()
        unpaid_ratio = MetricSerializer()
        refund_ratio = MetricSerializer()
        average_order_value = MetricSerializer()
        private_domain_share = MetricSerializer()
        member_growth = MemberGrowthSerializer()
        monthly_repurchase_rate = MetricSerializer()
        purchase_frequency = MetricSerializer()
        cross_purchase_rate = MetricSerializer()
        cross_brand_guided_share = MetricSerializer(help_text=(
            "Share of guided sales whose order brand differs from the credited guide's brand: each guided order's "
            "amount counted once; an order is cross-brand if any credited guide is of another brand"))
        wecom_friend_rate = MetricSerializer()
        member_online_rate = MetricSerializer()
        card_opening_rate = MetricSerializer()

    @extend_schema(parameters=FILTER_PARAMETERS, responses={200: OutputSerializer, **ERRORS})
    def get(self, request):
        filters = _filters(request, self.actor)
        page = metrics.overview_compared(actor=self.actor, filters=filters)
        data = {name: getattr(page, name) for name in self.OutputSerializer().fields if name != "filters"}
        return Response(self.OutputSerializer({"filters": filters, **data}).data)


class RankRowSerializer(serializers.Serializer):
    class Meta:
        ref_name = "MetricsRankRow"

    level = serializers.CharField()
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    brand_code = serializers.CharField()
    gmv = serializers.DecimalField(max_digits=16, decimal_places=2)
    sales_flow = serializers.DecimalField(max_digits=16, decimal_places=2)
    paid_orders = serializers.IntegerField()
    average_order_value = serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)
    private_domain_sales = serializers.DecimalField(max_digits=16, decimal_places=2)
    private_domain_share = serializers.DecimalField(max_digits=9, decimal_places=4, allow_null=True)
    refund_ratio = serializers.DecimalField(max_digits=9, decimal_places=4, allow_null=True)
    sales_flow_last_year = serializers.DecimalField(max_digits=16, decimal_places=2)
    growth = serializers.DecimalField(max_digits=16, decimal_places=4, allow_null=True,
                                      help_text="(sales flow − last year's) ÷ last year's")


class _RankingApi(ScopedMixin, APIView):
    level = ""

    def ranked(self, request):
        filters = _filters(request, self.actor)
        rows = metrics.ranking(actor=self.actor, filters=filters, level=self.level, limit=_limit(request))
        return Response(RankRowSerializer(rows, many=True).data)


_RANKING = {"parameters": [*FILTER_PARAMETERS, LIMIT_PARAMETER],
            "responses": {200: RankRowSerializer(many=True), **ERRORS}}


class BrandRankingApi(_RankingApi):
    """Brands of the scope and filters by credited sales flow, with last year's and the growth."""

    level = "brand"

    @extend_schema(**_RANKING)
    def get(self, request):
        return self.ranked(request)


class RegionRankingApi(_RankingApi):
    """Regions (of the credited stores) by sales flow, with last year's and the growth."""

    level = "region"

    @extend_schema(**_RANKING)
    def get(self, request):
        return self.ranked(request)


class StoreRankingApi(_RankingApi):
    """Stores (credited) by sales flow, with last year's and the growth."""

    level = "store"

    @extend_schema(**_RANKING)
    def get(self, request):
        return self.ranked(request)


class StoreMonthRowSerializer(serializers.Serializer):
    class Meta:
        ref_name = "StoreMonthRow"

    store_id = serializers.IntegerField()
    store_code = serializers.CharField()
    store_name = serializers.CharField()
    month = serializers.DateField()
    private_domain_sales = serializers.DecimalField(max_digits=16, decimal_places=2)
    sales_flow = serializers.DecimalField(max_digits=16, decimal_places=2)


class StoreMonthsApi(ScopedMixin, APIView):
    """Store monthly private-domain sales (单店月效): per store and calendar month, and their average."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StoreMonths"

        average = MetricSerializer(help_text="Average private-domain sales per store-month with sales")
        rows = StoreMonthRowSerializer(many=True)

    @extend_schema(parameters=[*FILTER_PARAMETERS, LIMIT_PARAMETER], responses={200: OutputSerializer, **ERRORS})
    def get(self, request):
        filters = _filters(request, self.actor)
        limit = _limit(request, default=100)
        average = metrics.store_monthly_private_domain_sales(actor=self.actor, filters=filters)
        rows = metrics.store_month_rows(actor=self.actor, filters=filters, limit=limit)
        return Response(self.OutputSerializer({"average": average, "rows": rows}).data)


class GuideKpisApi(ScopedMixin, APIView):
    """Guide KPIs (sales online/offline, members served, new members, WeCom friends, shares, PV/UV, tasks,
    commission), ranked by ``order_by``."""

    ORDER_BY = list(metrics.GUIDE_KPI_ORDER)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "GuideKpiRow"

        guide_id = serializers.IntegerField()
        guide_code = serializers.CharField()
        guide_name = serializers.CharField()
        store_code = serializers.CharField()
        store_name = serializers.CharField()
        brand_code = serializers.CharField()
        online_sales = serializers.DecimalField(max_digits=16, decimal_places=2)
        offline_sales = serializers.DecimalField(max_digits=16, decimal_places=2)
        sales = serializers.DecimalField(max_digits=16, decimal_places=2)
        cross_brand_sales = serializers.DecimalField(max_digits=16, decimal_places=2)
        members_served = serializers.IntegerField()
        new_members = serializers.IntegerField()
        wecom_friends_added = serializers.IntegerField()
        shares = serializers.IntegerField()
        share_pv = serializers.IntegerField()
        share_uv = serializers.IntegerField()
        material_pv = serializers.IntegerField()
        material_uv = serializers.IntegerField()
        tasks_assigned = serializers.IntegerField()
        tasks_executed = serializers.IntegerField()
        task_execution_rate = serializers.DecimalField(max_digits=9, decimal_places=4, allow_null=True)
        commission = serializers.DecimalField(max_digits=16, decimal_places=2)

    @extend_schema(parameters=[*FILTER_PARAMETERS, LIMIT_PARAMETER,
                               OpenApiParameter("order_by", OpenApiTypes.STR, enum=ORDER_BY,
                                                description="Rank by this KPI, largest first (default sales)")],
                   responses={200: OutputSerializer(many=True), **ERRORS})
    def get(self, request):
        filters = _filters(request, self.actor)
        order_by = request.query_params.get("order_by") or "sales"
        if order_by not in self.ORDER_BY:
            raise ApplicationError(ErrorCode.INVALID, "Invalid order_by.",
                                   fields={"order_by": [f"One of: {', '.join(self.ORDER_BY)}."]})
        rows = metrics.guide_kpis(actor=self.actor, filters=filters, limit=_limit(request), order_by=order_by)
        return Response(self.OutputSerializer(rows, many=True).data)


class SegmentSizeSerializer(serializers.Serializer):
    class Meta:
        ref_name = "SegmentSize"

    brand_code = serializers.CharField()
    run_id = serializers.IntegerField()
    as_of = serializers.DateField()
    segment = serializers.CharField()
    members = serializers.IntegerField()


class SegmentSalesSerializer(serializers.Serializer):
    class Meta:
        ref_name = "SegmentSales"

    segment = serializers.CharField()
    members = serializers.IntegerField()
    buyers = serializers.IntegerField()
    purchases = serializers.IntegerField()
    sales_flow = serializers.DecimalField(max_digits=16, decimal_places=2)


class CycleSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ConsumptionCycle"

    brand_code = serializers.CharField()
    brand_name = serializers.CharField()
    as_of = serializers.DateField(allow_null=True)
    cycle_days = serializers.DecimalField(max_digits=8, decimal_places=2, allow_null=True)
    override_days = serializers.IntegerField(allow_null=True)


class SegmentsApi(ScopedMixin, APIView):
    """RFML class sizes per run, sales per class, consumption cycles per brand and care-list completion."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Segments"

        sizes = SegmentSizeSerializer(many=True)
        sales = SegmentSalesSerializer(many=True)
        cycles = CycleSerializer(many=True)
        care_list_completion = MetricSerializer()

    @extend_schema(parameters=FILTER_PARAMETERS, responses={200: OutputSerializer, **ERRORS})
    def get(self, request):
        filters = _filters(request, self.actor)
        data = {"sizes": metrics.segment_sizes(actor=self.actor, filters=filters),
                "sales": metrics.segment_sales(actor=self.actor, filters=filters),
                "cycles": metrics.consumption_cycles(actor=self.actor, filters=filters),
                "care_list_completion": metrics.care_list_completion(actor=self.actor, filters=filters)}
        return Response(self.OutputSerializer(data).data)


class SegmentTransitionsApi(ScopedMixin, APIView):
    """Members per (RFML class at run A, class at run B) for one brand ("" = no class)."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "SegmentTransition"

        from_segment = serializers.CharField(allow_blank=True)
        to_segment = serializers.CharField(allow_blank=True)
        members = serializers.IntegerField()

    @extend_schema(parameters=[
        OpenApiParameter("brand", OpenApiTypes.STR, required=True, description="Brand code"),
        OpenApiParameter("from_run", OpenApiTypes.INT, required=True, description="RFML run A (the earlier)"),
        OpenApiParameter("to_run", OpenApiTypes.INT, required=True, description="RFML run B (the later)")],
        responses={200: OutputSerializer(many=True), 400: OpenApiResponse(description="Missing or bad parameters"),
                   404: OpenApiResponse(description="Brand or run outside your scope")})
    def get(self, request):
        params = request.query_params
        errors = {}
        code = params.get("brand") or ""
        if not code or len(code) > 32 or not metrics.CODE_PATTERN.fullmatch(code):
            errors["brand"] = ["A brand code is required."]
        runs = {}
        for name in ("from_run", "to_run"):
            raw = params.get(name) or ""
            if not raw.isdigit() or not 0 < int(raw) < 2**31:
                errors[name] = ["A run id is required."]
            else:
                runs[name] = int(raw)
        if errors:
            raise ApplicationError(ErrorCode.INVALID, "Invalid parameters.", fields=errors)
        brand = Brand.objects.filter(code=code).first()
        if brand is None:
            raise ApplicationError(ErrorCode.INVALID, "Unknown brand.", fields={"brand": ["No brand with this code."]})
        if not scoped(Brand.objects.filter(pk=brand.pk), self.actor).exists():
            raise ApplicationError(ErrorCode.NOT_FOUND, "No such brand.", status=404)
        rows = metrics.segment_transitions(actor=self.actor, brand_id=brand.pk, from_run_id=runs["from_run"],
                                           to_run_id=runs["to_run"])
        return Response(self.OutputSerializer(rows, many=True).data)


class LiveFiguresSerializer(serializers.Serializer):
    class Meta:
        ref_name = "LiveFigures"

    sessions = serializers.IntegerField()
    hours = serializers.DecimalField(max_digits=12, decimal_places=2)
    viewers = serializers.IntegerField()
    buyers = serializers.IntegerField()
    conversion = serializers.DecimalField(max_digits=12, decimal_places=4, allow_null=True)
    gmv = serializers.DecimalField(max_digits=16, decimal_places=2)
    paid_sales = serializers.DecimalField(max_digits=16, decimal_places=2)


class LiveRowSerializer(serializers.Serializer):
    class Meta:
        ref_name = "LiveRow"

    level = serializers.CharField()
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    figures = LiveFiguresSerializer()


class LivestreamApi(ScopedMixin, APIView):
    """Livestream sessions, hours, viewers, conversion and GMV: all, HQ central vs store (1+N), per brand and
    host store, and last year's total."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "LivestreamMetrics"

        total = LiveFiguresSerializer()
        central = LiveFiguresSerializer()
        store = LiveFiguresSerializer()
        by_brand = LiveRowSerializer(many=True)
        by_store = LiveRowSerializer(many=True)
        total_last_year = LiveFiguresSerializer()

    @extend_schema(parameters=FILTER_PARAMETERS, responses={200: OutputSerializer, **ERRORS})
    def get(self, request):
        filters = _filters(request, self.actor)
        return Response(self.OutputSerializer(metrics.livestream_summary(actor=self.actor, filters=filters)).data)


class CoreIndicatorsApi(ScopedMixin, APIView):
    """The three core indicators: sales revenue, gross profit (毛利 = sales revenue − cost of goods sold; no
    expenses deducted) with the cost of goods, and inventory turnover days. Each with 同比 and 环比."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CoreIndicators"

        filters = FiltersSerializer()
        sales_revenue = MetricSerializer()
        cost_of_goods = MetricSerializer()
        gross_profit = MetricSerializer(help_text="毛利: sales revenue − cost of goods sold (no expenses)")
        operating_profit = MetricSerializer(
            help_text="Deprecated: the same figure as `gross_profit` under its old, misleading name")
        inventory_turnover_days = MetricSerializer()

    @extend_schema(parameters=FILTER_PARAMETERS, responses={200: OutputSerializer, **ERRORS})
    def get(self, request):
        filters = _filters(request, self.actor)
        core = metrics.core_indicators_compared(actor=self.actor, filters=filters)
        data = {"filters": filters, "sales_revenue": core.sales_revenue, "cost_of_goods": core.cost_of_goods,
                "gross_profit": core.gross_profit, "operating_profit": core.gross_profit,
                "inventory_turnover_days": core.inventory_turnover_days}
        return Response(self.OutputSerializer(data).data)
