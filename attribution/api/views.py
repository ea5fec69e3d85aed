"""Staff API for sales credits (``/api/v1/analytics/…``), scoped to the caller.

Filters naming an unknown brand, store or guide answer 400; rows outside the caller's scope
are simply not there (a guide sees only their own credits); an order or guide the caller
cannot see answers 404.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from attribution import selectors
from attribution.models import SalesCredit
from mall.models import Channel, Order
from retail_crm.api.pagination import StandardPagination
from retail_crm.api.views import ScopedMixin
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand, Guide, Store
from retail_crm.scoping import in_scope


class DateRangeSerializer(serializers.Serializer):
    """An optional local-day range; ``date_from`` may not be after ``date_to``."""

    date_from = serializers.DateField(required=False, help_text="First local order day (YYYY-MM-DD)")
    date_to = serializers.DateField(required=False, help_text="Last local order day (YYYY-MM-DD)")

    def validate(self, attrs):
        if "date_from" in attrs and "date_to" in attrs and attrs["date_from"] > attrs["date_to"]:
            raise serializers.ValidationError({"date_to": ["date_to is before date_from."]})
        return attrs


class CreditRowSerializer(serializers.Serializer):
    """One credit row as written, with the sentence saying why it counts."""

    class Meta:
        ref_name = "SalesCreditRow"

    id = serializers.IntegerField()
    order_id = serializers.IntegerField()
    order_no = serializers.CharField(source="order.order_no")
    kind = serializers.CharField()
    brand = serializers.CharField(source="brand.code")
    store = serializers.CharField(source="store.code", allow_null=True, default=None,
                                  help_text="Empty on a store credit: the HQ pool")
    guide = serializers.CharField(source="guide.code", allow_null=True, default=None)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    order_day = serializers.DateField()
    channel = serializers.CharField()
    rule = serializers.CharField()
    why = serializers.SerializerMethodField()
    cross_brand = serializers.BooleanField()
    is_correction = serializers.BooleanField()
    booked_at = serializers.DateTimeField()

    def get_why(self, row: SalesCredit) -> str:
        return selectors.credit_reason(row.rule, row.inputs)


_MAX_ID = 2**63 - 1  # bigint primary keys; a larger id in the path names nothing (404, not an overflow)


def _pk_of(model, code: str, field: str) -> int:
    pk = model.objects.filter(code=code).values_list("pk", flat=True).first()
    if pk is None:
        raise ApplicationError(ErrorCode.INVALID, f"Unknown {field}.", fields={field: [f"No {field} {code!r}."]})
    return pk


class CreditListApi(ScopedMixin, generics.ListAPIView):
    """Credit rows in the caller's scope, newest order day first, with filters (paginated)."""

    class InputSerializer(DateRangeSerializer):
        class Meta:
            ref_name = "SalesCreditQuery"

        brand = serializers.SlugField(max_length=32, required=False, help_text="Brand code")
        store = serializers.SlugField(max_length=32, required=False, help_text="Store code")
        guide = serializers.SlugField(max_length=32, required=False, help_text="Guide code")
        kind = serializers.ChoiceField(choices=SalesCredit.Kind.choices, required=False)
        channel = serializers.ChoiceField(choices=Channel.choices, required=False)

    serializer_class = CreditRowSerializer
    pagination_class = StandardPagination
    filter_backends: list = []

    @extend_schema(parameters=[InputSerializer], responses={
        200: CreditRowSerializer(many=True), 400: OpenApiResponse(description="Bad filter")})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = self.InputSerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        return selectors.credit_list(
            actor=self.actor,
            brand_id=_pk_of(Brand, data["brand"], "brand") if "brand" in data else None,
            store_id=_pk_of(Store, data["store"], "store") if "store" in data else None,
            guide_id=_pk_of(Guide, data["guide"], "guide") if "guide" in data else None,
            kind=data.get("kind"), channel=data.get("channel"),
            date_from=data.get("date_from"), date_to=data.get("date_to"))


class OrderCreditsApi(ScopedMixin, APIView):
    """An order's credit rows (the caller's share of them) with their rules; 404 when the caller sees neither."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "OrderCredits"

        order_id = serializers.IntegerField()
        order_no = serializers.CharField()
        brand = serializers.CharField()
        channel = serializers.CharField()
        net_amount = serializers.DecimalField(max_digits=14, decimal_places=2)
        credits = CreditRowSerializer(many=True)

    @extend_schema(responses={200: OutputSerializer,
                              404: OpenApiResponse(description="No such order, or none of it in your scope")})
    def get(self, request, order_id: int):
        if order_id > _MAX_ID:
            raise ApplicationError(ErrorCode.NOT_FOUND, "Order not found.", status=404)
        rows = list(selectors.credits_for_order(actor=self.actor, order_id=order_id))
        order = Order.objects.select_related("brand").filter(pk=order_id).first()
        if order is None or (not rows and not in_scope(order, self.actor)):
            raise ApplicationError(ErrorCode.NOT_FOUND, "Order not found.", status=404)
        data = {"order_id": order.pk, "order_no": order.order_no, "brand": order.brand.code,
                "channel": order.channel, "net_amount": order.net_amount, "credits": rows}
        return Response(self.OutputSerializer(data).data)


class GuideCreditsApi(ScopedMixin, APIView):
    """A guide's credits per order and kind over a period, each with why it counts (the workbench's list)."""

    class InputSerializer(DateRangeSerializer):
        class Meta:
            ref_name = "GuideCreditsQuery"

        date_from = serializers.DateField(help_text="First local order day (YYYY-MM-DD)")
        date_to = serializers.DateField(help_text="Last local order day (YYYY-MM-DD)")

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "GuideCredit"

        order_id = serializers.IntegerField()
        order_no = serializers.CharField()
        order_day = serializers.DateField()
        brand = serializers.CharField(source="brand_code")
        channel = serializers.CharField()
        kind = serializers.CharField()
        amount = serializers.DecimalField(max_digits=14, decimal_places=2)
        rule = serializers.CharField()
        why = serializers.CharField()
        cross_brand = serializers.BooleanField()
        counts_for_kpi = serializers.BooleanField()
        earns_commission = serializers.BooleanField()

    @extend_schema(parameters=[InputSerializer], responses={
        200: OutputSerializer(many=True), 400: OpenApiResponse(description="Missing or bad dates"),
        404: OpenApiResponse(description="Guide outside your scope")})
    def get(self, request, guide_id: int):
        if guide_id > _MAX_ID:
            raise ApplicationError(ErrorCode.NOT_FOUND, "Guide not found.", status=404)
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        lines = selectors.credits_for_guide(actor=self.actor, guide_id=guide_id,
                                            date_from=query.validated_data["date_from"],
                                            date_to=query.validated_data["date_to"])
        return Response(self.OutputSerializer(lines, many=True).data)
