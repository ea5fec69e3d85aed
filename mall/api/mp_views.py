"""The mini-program's mall API (``/api/v1/mp/``): catalogue, cart, orders, coupons. One view per operation."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from mall import catalogue, checkout
from mall.coupons import coupons_for_member
from mall.fulfilment import order_confirm_receipt
from mall.models import CartItem, CouponStatus, CouponTemplate, Order, OrderStatus, Sku
from members.api.mp_views import BrandRefSerializer, MemberApi
from members.auth import MemberPrincipal, MemberTokenAuthentication
from retail_crm.api.pagination import StandardPagination
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.idempotency import idempotent


def _not_found(what: str) -> ApplicationError:
    return ApplicationError(ErrorCode.NOT_FOUND, f"No such {what}.", status=404)


# ---------------------------------------------------------------------------- catalogue

class CatalogueQuerySerializer(serializers.Serializer):
    class Meta:
        ref_name = "MallCatalogueQuery"

    brand = serializers.CharField(required=False, help_text="Brand code; several separated by commas")
    category = serializers.CharField(required=False, max_length=40)
    price_min = serializers.DecimalField(required=False, max_digits=12, decimal_places=2, min_value=0)
    price_max = serializers.DecimalField(required=False, max_digits=12, decimal_places=2, min_value=0)
    size = serializers.CharField(required=False, max_length=20, help_text="Only products with this size in stock")
    q = serializers.CharField(required=False, max_length=60, help_text="Search in name, code and category")

    def validate(self, attrs):
        low, high = attrs.get("price_min"), attrs.get("price_max")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"price_max": ["Must not be below price_min."]})
        return attrs


class ProductListApi(generics.ListAPIView):
    """The group mall: active products of every brand, filterable; open to visitors and members alike."""

    authentication_classes = [MemberTokenAuthentication]
    permission_classes = [AllowAny]
    filter_backends: list = []
    pagination_class = StandardPagination

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MallProductListItem"

        id = serializers.IntegerField()
        code = serializers.CharField()
        name = serializers.CharField()
        brand = serializers.CharField(source="brand.code")
        brand_name = serializers.CharField(source="brand.name")
        category = serializers.CharField()
        season = serializers.CharField()
        price_from = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
        member_price_from = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
        in_stock = serializers.IntegerField()
        image = serializers.CharField(allow_null=True)

    serializer_class = OutputSerializer

    @extend_schema(parameters=[CatalogueQuerySerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = CatalogueQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        user = self.request.user
        group_id = user.member.group_id if isinstance(user, MemberPrincipal) else None
        brands = tuple(code.strip() for code in data.get("brand", "").split(",") if code.strip())
        return catalogue.product_list(filters=catalogue.CatalogueFilter(
            group_id=group_id, brands=brands, category=data.get("category", ""), price_min=data.get("price_min"),
            price_max=data.get("price_max"), size=data.get("size", ""), q=data.get("q", "")))


class ProductDetailApi(generics.GenericAPIView):
    """A product with every SKU's prices and stock."""

    authentication_classes = [MemberTokenAuthentication]
    permission_classes = [AllowAny]
    filter_backends: list = []

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MallProductDetail"

        class SkuSerializer(serializers.Serializer):
            class Meta:
                ref_name = "MallSku"

            id = serializers.IntegerField()
            code = serializers.CharField()
            colour = serializers.CharField()
            size = serializers.CharField()
            material = serializers.CharField()
            list_price = serializers.DecimalField(max_digits=14, decimal_places=2)
            member_price = serializers.DecimalField(max_digits=14, decimal_places=2)
            stock = serializers.SerializerMethodField()

            def get_stock(self, sku) -> int:
                # A SKU nobody has stocked yet has no stock row (the reverse one-to-one raises).
                return sku.stock.quantity if hasattr(sku, "stock") else 0

        id = serializers.IntegerField()
        code = serializers.CharField()
        name = serializers.CharField()
        brand = serializers.CharField(source="brand.code")
        brand_name = serializers.CharField(source="brand.name")
        category = serializers.CharField()
        season = serializers.CharField()
        description = serializers.CharField()
        images = serializers.SerializerMethodField()
        skus = SkuSerializer(many=True)

        def get_images(self, product) -> list[str]:
            return [image.url for image in product.images.all()]

    serializer_class = OutputSerializer

    def get(self, request, pk: int):
        user = request.user
        group_id = user.member.group_id if isinstance(user, MemberPrincipal) else None
        product = catalogue.product_detail(product_id=pk, group_id=group_id)
        if product is None:
            raise _not_found("product")
        return Response(self.OutputSerializer(product).data)


# ---------------------------------------------------------------------------- cart

class CartItemOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "MallCartItem"

    sku_id = serializers.IntegerField()
    sku_code = serializers.CharField(source="sku.code")
    product_id = serializers.IntegerField(source="sku.product_id")
    product_name = serializers.CharField(source="sku.product.name")
    brand = serializers.CharField(source="sku.brand.code")
    colour = serializers.CharField(source="sku.colour")
    size = serializers.CharField(source="sku.size")
    list_price = serializers.DecimalField(source="sku.list_price", max_digits=14, decimal_places=2)
    member_price = serializers.DecimalField(source="sku.member_price", max_digits=14, decimal_places=2)
    quantity = serializers.IntegerField()
    share_token = serializers.CharField()


def _cart(member) -> Response:
    items = (CartItem.objects.filter(member=member).select_related("sku__product", "sku__brand")
             .order_by("added_at", "pk"))
    return Response(CartItemOutputSerializer(items, many=True).data)


class CartApi(MemberApi):
    """The member's cart, every brand's items together."""

    @extend_schema(responses=CartItemOutputSerializer(many=True))
    def get(self, request):
        return _cart(self.member)


class CartItemSetApi(MemberApi):
    """Set how many of a SKU are in the cart (0 removes it)."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MallCartItemSetInput"

        sku_id = serializers.IntegerField(min_value=1)
        quantity = serializers.IntegerField(min_value=0, max_value=checkout.MAX_QUANTITY)
        share_token = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses=CartItemOutputSerializer(many=True))
    def put(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sku = Sku.objects.select_related("product", "brand").filter(
            pk=data.validated_data["sku_id"], brand__group_id=self.member.group_id).first()
        if sku is None:
            raise ApplicationError(ErrorCode.INVALID, "No such item.", fields={"sku_id": ["Unknown SKU."]})
        checkout.cart_set(member=self.member, sku=sku, quantity=data.validated_data["quantity"],
                          share_token=data.validated_data["share_token"])
        return _cart(self.member)


# ---------------------------------------------------------------------------- orders

class OrderOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "MallOrder"

    class LineSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MallOrderLine"

        sku_id = serializers.IntegerField()
        sku_code = serializers.CharField(source="sku.code")
        product_name = serializers.CharField(source="sku.product.name")
        colour = serializers.CharField(source="sku.colour")
        size = serializers.CharField(source="sku.size")
        quantity = serializers.IntegerField()
        list_price = serializers.DecimalField(max_digits=14, decimal_places=2)
        unit_price = serializers.DecimalField(max_digits=14, decimal_places=2)
        discount_amount = serializers.DecimalField(max_digits=14, decimal_places=2)
        amount = serializers.DecimalField(max_digits=14, decimal_places=2)
        refunded_amount = serializers.DecimalField(max_digits=14, decimal_places=2)

    order_no = serializers.CharField()
    brand = serializers.CharField(source="brand.code")
    status = serializers.CharField()
    channel = serializers.CharField()
    ordered_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)
    shipped_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    items_amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    member_price_applied = serializers.BooleanField()
    coupon_discount = serializers.DecimalField(max_digits=14, decimal_places=2)
    points_used = serializers.IntegerField()
    points_discount = serializers.DecimalField(max_digits=14, decimal_places=2)
    total_amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    paid_amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    refunded_amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    lines = LineSerializer(many=True)

    def to_representation(self, order: Order) -> dict:
        """The declared fields' output, written out: building ~35 field objects per order cost more than the
        rest of the response on the busiest endpoint (order creation). A test checks it equals
        ``super().to_representation`` field for field."""
        return {
            "order_no": order.order_no, "brand": order.brand.code, "status": order.status,
            "channel": order.channel, "ordered_at": _when(order.ordered_at), "expires_at": _when(order.expires_at),
            "paid_at": _when(order.paid_at), "shipped_at": _when(order.shipped_at),
            "delivered_at": _when(order.delivered_at), "items_amount": _money(order.items_amount),
            "member_price_applied": order.member_price_applied, "coupon_discount": _money(order.coupon_discount),
            "points_used": order.points_used, "points_discount": _money(order.points_discount),
            "total_amount": _money(order.total_amount), "paid_amount": _money(order.paid_amount),
            "refunded_amount": _money(order.refunded_amount),
            "lines": [{
                "sku_id": line.sku_id, "sku_code": line.sku.code, "product_name": line.sku.product.name,
                "colour": line.sku.colour, "size": line.sku.size, "quantity": line.quantity,
                "list_price": _money(line.list_price), "unit_price": _money(line.unit_price),
                "discount_amount": _money(line.discount_amount), "amount": _money(line.amount),
                "refunded_amount": _money(line.refunded_amount),
            } for line in order.lines.all()],
        }


_CENT = Decimal("0.01")


def _money(value: Decimal) -> str:
    """As DRF's DecimalField(decimal_places=2) writes it."""
    return f"{Decimal(value).quantize(_CENT, rounding=ROUND_HALF_UP):f}"


def _when(value: dt.datetime | None) -> str | None:
    """As DRF's DateTimeField writes it: ISO 8601 in the current time zone, UTC as Z."""
    if value is None:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class OrderCreateApi(MemberApi):
    """Create a pending order (reserves stock, locks the coupon, spends points). Send an Idempotency-Key."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MallOrderCreateInput"

        class LineSerializer(serializers.Serializer):
            class Meta:
                ref_name = "MallOrderCreateLine"

            sku_id = serializers.IntegerField(min_value=1)
            quantity = serializers.IntegerField(min_value=1, max_value=checkout.MAX_QUANTITY)

        lines = LineSerializer(many=True, required=False, max_length=checkout.MAX_LINES)
        from_cart_brand = serializers.CharField(required=False, max_length=32,
                                                help_text="Check out the cart's items of this brand instead")
        coupon_code = serializers.CharField(required=False, allow_blank=True, max_length=32, default="")
        points = serializers.IntegerField(required=False, min_value=0, max_value=10_000_000, default=0)
        share_token = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
        live_session_id = serializers.IntegerField(required=False, min_value=1, allow_null=True, default=None)

        def validate(self, attrs):
            if bool(attrs.get("lines")) == bool(attrs.get("from_cart_brand")):
                raise serializers.ValidationError({"lines": ["Give either lines or from_cart_brand."]})
            return attrs

    @extend_schema(request=InputSerializer, responses={201: OrderOutputSerializer},
                   parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
                   examples=[
                       OpenApiExample("Two lines, a coupon and points", request_only=True, value={
                           "lines": [{"sku_id": 101, "quantity": 1}, {"sku_id": 102, "quantity": 2}],
                           "coupon_code": "WOM-SPRING-8F2K", "points": 500}),
                       OpenApiExample("The cart's items of one brand", request_only=True,
                                      value={"from_cart_brand": "WOM"}),
                   ])
    @idempotent("order_create")
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        common = {"member": self.member, "coupon_code": values["coupon_code"], "points": values["points"],
                  "share_token": values["share_token"], "live_session_id": values["live_session_id"]}
        if values.get("from_cart_brand"):
            order = checkout.order_create_from_cart(brand_code=values["from_cart_brand"], **common)
        else:
            order = checkout.order_create(lines=[checkout.LineRequest(**line) for line in values["lines"]], **common)
        return Response(OrderOutputSerializer(order).data, status=status.HTTP_201_CREATED)


class OrderListApi(MemberApi, generics.ListAPIView):
    """The member's orders, newest first; filter by status."""

    pagination_class = StandardPagination
    serializer_class = OrderOutputSerializer

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=OrderStatus.values)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        status_ = self.request.query_params.get("status", "")
        if status_ and status_ not in OrderStatus.values:
            raise ApplicationError(ErrorCode.INVALID, "Unknown status.",
                                   fields={"status": [f"One of: {', '.join(OrderStatus.values)}."]})
        return catalogue.orders_for_member(member=self.member, status=status_)


class OrderDetailApi(MemberApi):
    """One of the member's orders; another member's order is 404."""

    @extend_schema(responses=OrderOutputSerializer)
    def get(self, request, order_no: str):
        order = catalogue.order_for_member(member=self.member, order_no=order_no)
        if order is None:
            raise _not_found("order")
        return Response(OrderOutputSerializer(order).data)


class OrderCancelApi(MemberApi):
    """Cancel an unpaid order (409 once paid); its stock, coupon and points are given back."""

    @extend_schema(request=None, responses=OrderOutputSerializer)
    def post(self, request, order_no: str):
        order = Order.objects.filter(member=self.member, order_no=order_no).first()
        if order is None:
            raise _not_found("order")
        checkout.order_cancel(order=order, by_member=self.member, reason="cancelled by the member")
        return Response(OrderOutputSerializer(catalogue.order_for_member(member=self.member,
                                                                         order_no=order_no)).data)


class OrderConfirmReceiptApi(MemberApi):
    """The member received a shipped order (确认收货): completed; the 7-day return window starts now."""

    @extend_schema(request=None, responses=OrderOutputSerializer)
    def post(self, request, order_no: str):
        order = Order.objects.filter(member=self.member, order_no=order_no).first()
        if order is None:
            raise _not_found("order")
        order_confirm_receipt(order=order, by_member=self.member)
        return Response(OrderOutputSerializer(catalogue.order_for_member(member=self.member,
                                                                         order_no=order_no)).data)


# ---------------------------------------------------------------------------- coupons

class CouponListApi(MemberApi, generics.ListAPIView):
    """My coupons, newest first; ``status`` filters (a coupon past its end date counts as expired)."""

    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MpCouponFilter"

        status = serializers.ChoiceField(choices=CouponStatus.choices, required=False)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MpCoupon"

        code = serializers.CharField()
        name = serializers.CharField(source="template.name")
        brand = BrandRefSerializer(source="template.brand")
        kind = serializers.ChoiceField(source="template.kind", choices=CouponTemplate.Kind.choices)
        threshold_amount = serializers.DecimalField(source="template.threshold_amount", max_digits=14,
                                                    decimal_places=2)
        discount_amount = serializers.DecimalField(source="template.discount_amount", max_digits=14,
                                                   decimal_places=2, allow_null=True)
        discount_rate = serializers.DecimalField(source="template.discount_rate", max_digits=4, decimal_places=3,
                                                 allow_null=True)
        valid_from = serializers.DateTimeField()
        valid_to = serializers.DateTimeField()
        status = serializers.ChoiceField(source="effective_status", choices=CouponStatus.choices)
        used_at = serializers.DateTimeField(allow_null=True)

    serializer_class = OutputSerializer

    @extend_schema(parameters=[FilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = self.FilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return coupons_for_member(member=self.member, status=params.validated_data.get("status"))
