"""Staff mall API (``/api/v1/mall/``): orders, stock and coupon campaigns, every query scoped."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Prefetch
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from mall.checkout import stock_adjust
from mall.coupon_campaigns import coupons_issue_to
from mall.coupons import coupon_template_create
from mall.fulfilment import order_ship
from mall.models import Channel, CouponTemplate, Order, OrderLine, OrderStatus, Sku
from members.models import Member
from members.selectors import PhoneVisibility, member_search
from retail_crm.api.pagination import StandardPagination
from retail_crm.api.views import ScopedMixin
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.idempotency import idempotent
from retail_crm.scoping import scoped
from retail_crm.vocabulary import Segment

CATALOGUE_ROLES = frozenset({"hq", "brand_operator"})


def _require_role(actor, roles: frozenset[str], what: str) -> None:
    if not actor.is_superuser and actor.role not in roles:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, f"Your role may not {what}.", status=403)


# ---------------------------------------------------------------------------- orders

class OrderQuerySerializer(serializers.Serializer):
    class Meta:
        ref_name = "StaffOrderQuery"

    brand = serializers.CharField(required=False, max_length=32)
    store = serializers.CharField(required=False, max_length=32)
    channel = serializers.ChoiceField(required=False, choices=Channel.choices)
    status = serializers.ChoiceField(required=False, choices=OrderStatus.choices)
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)
    order_no = serializers.CharField(required=False, max_length=40)
    member = serializers.CharField(required=False, max_length=40, help_text="Member code")

    def validate(self, attrs):
        if attrs.get("date_from") and attrs.get("date_to") and attrs["date_from"] > attrs["date_to"]:
            raise serializers.ValidationError({"date_to": ["Must not be before date_from."]})
        return attrs


class StaffOrderSerializer(serializers.Serializer):
    class Meta:
        ref_name = "StaffOrder"

    id = serializers.IntegerField()
    order_no = serializers.CharField()
    brand = serializers.CharField(source="brand.code")
    channel = serializers.CharField()
    status = serializers.CharField()
    store = serializers.CharField(source="store.code", allow_null=True, default=None)
    guide = serializers.CharField(source="guide.code", allow_null=True, default=None)
    member_code = serializers.CharField(source="member.code", allow_null=True, default=None)
    member_phone = serializers.SerializerMethodField()
    ordered_at = serializers.DateTimeField()
    paid_at = serializers.DateTimeField(allow_null=True)
    total_amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    paid_amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    refunded_amount = serializers.DecimalField(max_digits=14, decimal_places=2)

    def get_member_phone(self, order) -> str:
        visibility = self.context.get("phones")
        if order.member is None or visibility is None:
            return ""
        return visibility.phone(order.member)


class StaffOrderListApi(ScopedMixin, generics.ListAPIView):
    """Orders in the caller's scope, newest first; phones masked unless the viewer may see them."""

    serializer_class = StaffOrderSerializer
    pagination_class = StandardPagination
    filter_backends: list = []

    @extend_schema(parameters=[OrderQuerySerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = OrderQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        orders = scoped(Order.objects.select_related("brand", "store", "guide", "member"), self.actor)
        tz = timezone.get_default_timezone()
        if "brand" in data:
            orders = orders.filter(brand__code=data["brand"])
        if "store" in data:
            orders = orders.filter(store__code=data["store"])
        for field in ("channel", "status", "order_no"):
            if field in data:
                orders = orders.filter(**{field: data[field]})
        if "member" in data:
            orders = orders.filter(member__code=data["member"])
        if "date_from" in data:
            orders = orders.filter(ordered_at__gte=dt.datetime.combine(data["date_from"], dt.time(), tzinfo=tz))
        if "date_to" in data:
            end = dt.datetime.combine(data["date_to"] + dt.timedelta(days=1), dt.time(), tzinfo=tz)
            orders = orders.filter(ordered_at__lt=end)
        return orders.order_by("-ordered_at", "-pk")

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        members = [o.member for o in page if o.member is not None]
        phones = PhoneVisibility(actor=self.actor, user=request.user, members=members)
        serializer = StaffOrderSerializer(page, many=True, context={"phones": phones})
        return self.get_paginated_response(serializer.data)


class StaffOrderDetailApi(ScopedMixin, APIView):
    """One order with lines, status history, payments and refunds; 404 outside the caller's scope."""

    class OutputSerializer(StaffOrderSerializer):
        class Meta:
            ref_name = "StaffOrderDetail"

        class LineSerializer(serializers.Serializer):
            class Meta:
                ref_name = "StaffOrderLine"

            sku_code = serializers.CharField(source="sku.code", allow_null=True, default=None)
            quantity = serializers.IntegerField()
            list_price = serializers.DecimalField(max_digits=14, decimal_places=2)
            unit_price = serializers.DecimalField(max_digits=14, decimal_places=2)
            discount_amount = serializers.DecimalField(max_digits=14, decimal_places=2)
            amount = serializers.DecimalField(max_digits=14, decimal_places=2)
            refunded_amount = serializers.DecimalField(max_digits=14, decimal_places=2)

        class TransitionSerializer(serializers.Serializer):
            class Meta:
                ref_name = "StaffOrderTransition"

            from_status = serializers.CharField()
            to_status = serializers.CharField()
            at = serializers.DateTimeField()
            by = serializers.SerializerMethodField()
            note = serializers.CharField()

            def get_by(self, transition) -> str:
                if transition.by_user_id:
                    return f"staff:{transition.by_user.get_username()}"
                if transition.by_member_id:
                    return "member"
                return transition.by_system or "system"

        items_amount = serializers.DecimalField(max_digits=14, decimal_places=2)
        coupon_discount = serializers.DecimalField(max_digits=14, decimal_places=2)
        points_used = serializers.IntegerField()
        points_discount = serializers.DecimalField(max_digits=14, decimal_places=2)
        share_token = serializers.CharField()
        lines = LineSerializer(many=True)
        transitions = TransitionSerializer(many=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request, pk: int):
        order = (scoped(Order.objects.select_related("brand", "store", "guide", "member"), self.actor)
                 .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.select_related("sku")),
                                   "transitions__by_user").filter(pk=pk).first())
        if order is None:
            raise ApplicationError(ErrorCode.NOT_FOUND, "No such order.", status=404)
        phones = PhoneVisibility(actor=self.actor, user=request.user,
                                 members=[order.member] if order.member else [])
        return Response(self.OutputSerializer(order, context={"phones": phones}).data)


class StaffOrderShipApi(ScopedMixin, APIView):
    """Mark a paid order shipped, with the carrier's tracking number (HQ and brand operators: the warehouse)."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StaffOrderShipInput"

        tracking_no = serializers.CharField(max_length=60, required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses=StaffOrderSerializer)
    def post(self, request, pk: int):
        order = scoped(Order.objects.all(), self.actor).filter(pk=pk).first()
        if order is None:
            raise ApplicationError(ErrorCode.NOT_FOUND, "No such order.", status=404)
        _require_role(self.actor, CATALOGUE_ROLES, "ship orders")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order_ship(order=order, by_user=request.user, tracking_no=data.validated_data["tracking_no"])
        order = Order.objects.select_related("brand", "store", "guide", "member").get(pk=pk)
        phones = PhoneVisibility(actor=self.actor, user=request.user, members=[order.member] if order.member else [])
        return Response(StaffOrderSerializer(order, context={"phones": phones}).data)


# ---------------------------------------------------------------------------- stock

class StockAdjustApi(ScopedMixin, APIView):
    """Add or remove units of a SKU in the online warehouse (HQ and brand operators)."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StockAdjustInput"

        delta = serializers.IntegerField(min_value=-1_000_000, max_value=1_000_000)
        note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StockLevel"

        sku_code = serializers.CharField()
        quantity = serializers.IntegerField()

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request, sku_id: int):
        sku = scoped(Sku.objects.all(), self.actor).filter(pk=sku_id).first()
        if sku is None:
            raise ApplicationError(ErrorCode.NOT_FOUND, "No such SKU.", status=404)
        _require_role(self.actor, CATALOGUE_ROLES, "adjust stock")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        stock = stock_adjust(sku=sku, delta=data.validated_data["delta"], user=request.user,
                             note=data.validated_data["note"])
        return Response(self.OutputSerializer({"sku_code": sku.code, "quantity": stock.quantity}).data)


# ---------------------------------------------------------------------------- coupon templates and campaigns

class CouponTemplateSerializer(serializers.Serializer):
    class Meta:
        ref_name = "CouponTemplate"

    id = serializers.IntegerField(read_only=True)
    brand = serializers.CharField(max_length=32, source="brand.code")
    name = serializers.CharField(max_length=60)
    kind = serializers.ChoiceField(choices=CouponTemplate.Kind.choices)
    threshold_amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0"),
                                                default=Decimal("0.00"))
    discount_amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"),
                                               required=False, allow_null=True)
    discount_rate = serializers.DecimalField(max_digits=4, decimal_places=3, min_value=Decimal("0.001"),
                                             max_value=Decimal("0.999"), required=False, allow_null=True)
    valid_from = serializers.DateTimeField(required=False, allow_null=True)
    valid_to = serializers.DateTimeField(required=False, allow_null=True)
    valid_days = serializers.IntegerField(min_value=1, max_value=3650, required=False, allow_null=True)
    is_active = serializers.BooleanField(default=True)


class CouponTemplateListCreateApi(ScopedMixin, APIView):
    """Coupon templates of the brands in scope; HQ and brand operators create them."""

    @extend_schema(responses=CouponTemplateSerializer(many=True))
    def get(self, request):
        templates = scoped(CouponTemplate.objects.select_related("brand"), self.actor).order_by("-created_at")
        return Response(CouponTemplateSerializer(templates, many=True).data)

    @extend_schema(request=CouponTemplateSerializer, responses={201: CouponTemplateSerializer})
    def post(self, request):
        _require_role(self.actor, CATALOGUE_ROLES, "create coupon templates")
        data = CouponTemplateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        template = coupon_template_create(actor=self.actor, brand_code=values.pop("brand")["code"], **values)
        return Response(CouponTemplateSerializer(template).data, status=status.HTTP_201_CREATED)


class CouponIssueApi(ScopedMixin, APIView):
    """Issue a template's coupon to members in scope: by tag, RFML class or member codes. Idempotent by key."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CouponIssueInput"

        tag = serializers.CharField(required=False, max_length=120, help_text="Tag value id or group:value")
        segment = serializers.ChoiceField(required=False, choices=Segment.choices, help_text="RFML class slug")
        member_codes = serializers.ListField(child=serializers.CharField(max_length=40), required=False,
                                             max_length=10_000, allow_empty=False)

        def validate(self, attrs):
            if sum(1 for key in ("tag", "segment", "member_codes") if attrs.get(key)) != 1:
                raise serializers.ValidationError({"non_field_errors": ["Give one of tag, segment, member_codes."]})
            return attrs

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CouponIssueResult"

        issued = serializers.IntegerField()
        skipped_holding = serializers.IntegerField()

    @extend_schema(request=InputSerializer, responses=OutputSerializer,
                   parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)])
    @idempotent("coupon_issue")
    def post(self, request, pk: int):
        template = scoped(CouponTemplate.objects.select_related("brand"), self.actor).filter(pk=pk).first()
        if template is None:
            raise ApplicationError(ErrorCode.NOT_FOUND, "No such coupon template.", status=404)
        _require_role(self.actor, CATALOGUE_ROLES | {"region_manager", "store_manager"}, "issue coupons")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if values.get("member_codes"):
            members = scoped(Member.objects.filter(code__in=values["member_codes"], merged_into__isnull=True),
                             self.actor)
        else:
            tag = values.get("tag")
            if tag is not None:
                tag = int(tag) if tag.isdigit() else tuple(tag.split(":", 1)) if ":" in tag else None
                if tag is None:
                    raise ApplicationError(ErrorCode.INVALID, "Tag must be an id or group:value.",
                                           fields={"tag": ["Use an id or group:value."]})
            members = member_search(actor=self.actor, tag=tag, segment=values.get("segment"),
                                    brand=template.brand.code)
        result = coupons_issue_to(template=template, members=Member.objects.filter(pk__in=members.values("pk")))
        return Response(self.OutputSerializer(result).data)
