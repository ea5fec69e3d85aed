"""Refund endpoints: the member asks (with an Idempotency-Key), staff in scope list, approve and reject."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import django_filters
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from mall import refunds
from mall.errors import MallErrorCode
from mall.models import Order, Refund
from members.api.mp_views import MemberApi
from retail_crm.api.pagination import StandardPagination
from retail_crm.api.views import ScopedMixin
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.idempotency import idempotent
from retail_crm.scoping import actor_for, scoped


class RefundSerializer(serializers.Serializer):
    """A refund as both the member and staff see it."""

    class Meta:
        ref_name = "Refund"

    class LineSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RefundLine"

        order_line_id = serializers.IntegerField()
        sku_code = serializers.CharField(source="order_line.sku.code", default="")
        amount = serializers.DecimalField(max_digits=14, decimal_places=2)
        quantity = serializers.IntegerField()

    id = serializers.IntegerField()
    refund_no = serializers.CharField()
    order_no = serializers.CharField(source="order.order_no")
    kind = serializers.ChoiceField(choices=Refund.Kind.choices)
    status = serializers.ChoiceField(choices=Refund.Status.choices)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    reason = serializers.CharField()
    requested_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_note = serializers.CharField()
    refunded_at = serializers.DateTimeField(allow_null=True)
    lines = LineSerializer(many=True, source="lines.all")


def _with_related(queryset):
    return queryset.select_related("order").prefetch_related("lines__order_line__sku")


# ---------------------------------------------------------------------------- member

class OrderRefundRequestApi(MemberApi):
    """Ask for a refund or a 7-day no-reason return of my paid order: whole (no ``lines``) or per line.

    Send an ``Idempotency-Key`` header: a retry with the same key and body gets the
    same answer without a second refund; the same key with another body is a 422.
    """

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MpRefundRequestInput"

        class LineSerializer(serializers.Serializer):
            class Meta:
                ref_name = "MpRefundRequestLine"

            order_line_id = serializers.IntegerField(min_value=1)
            amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"),
                                              required=False, help_text="Omit for all that is left on the line")
            quantity = serializers.IntegerField(min_value=0, max_value=999, default=0,
                                                help_text="Units sent back")

        kind = serializers.ChoiceField(choices=Refund.Kind.choices, default=Refund.Kind.REFUND)
        reason = serializers.CharField(max_length=200, allow_blank=True, default="")
        lines = LineSerializer(many=True, required=False, allow_empty=False, max_length=50)

    @extend_schema(request=InputSerializer, responses={201: RefundSerializer}, parameters=[
        OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
                         description="Any unique string (≤ 100 characters) per intended refund request")])
    @idempotent("refund_request")
    def post(self, request, order_no: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = Order.objects.filter(member=self.member, order_no=order_no).first()
        if order is None:
            raise ApplicationError(MallErrorCode.ORDER_NOT_FOUND, "No such order.", status=404)
        lines = data.validated_data.get("lines")
        refund = refunds.refund_request(
            order=order, member=self.member, kind=data.validated_data["kind"], reason=data.validated_data["reason"],
            lines=None if lines is None else [refunds.RefundLineRequest(
                order_line_id=line["order_line_id"], amount=line.get("amount"), quantity=line["quantity"])
                for line in lines])
        return Response(RefundSerializer(_with_related(Refund.objects.filter(pk=refund.pk)).get()).data,
                        status=201)


# ---------------------------------------------------------------------------- staff

class NotGuide(BasePermission):
    """Refund decisions belong to store managers and above, not to guides."""

    message = "Guides cannot decide refunds."

    def has_permission(self, request, view) -> bool:
        return actor_for(request.user).role != "guide"


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 bound, compared in UTC (PostgreSQL refuses offsets Python accepts, such as -20:56)."""

    def filter(self, qs, value):
        if value is not None:
            try:
                value = value.astimezone(dt.UTC)
            except (OverflowError, ValueError):
                raise ValidationError({self.field_name: ["Date and time out of range."]}) from None
        return super().filter(qs, value)


class RefundFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Refund.Status.choices)
    kind = django_filters.ChoiceFilter(choices=Refund.Kind.choices)
    brand = django_filters.CharFilter(field_name="order__brand__code")
    store = django_filters.CharFilter(field_name="order__store__code")
    order_no = django_filters.CharFilter(field_name="order__order_no")
    requested_from = UtcDateTimeFilter(field_name="requested_at", lookup_expr="gte")
    requested_to = UtcDateTimeFilter(field_name="requested_at", lookup_expr="lt")

    class Meta:
        model = Refund
        fields = ["status", "kind", "brand", "store", "order_no", "requested_from", "requested_to"]


class RefundListApi(ScopedMixin, generics.ListAPIView):
    """Refunds in the caller's scope, newest first, with filters."""

    serializer_class = RefundSerializer
    filterset_class = RefundFilter
    pagination_class = StandardPagination

    def get_queryset(self):
        return _with_related(scoped(Refund.objects.all(), self.actor)).order_by("-requested_at", "-pk")


class _RefundDecisionApi(ScopedMixin, APIView):
    permission_classes = [*ScopedMixin.permission_classes, NotGuide]

    def _refund(self, pk: int) -> Refund:
        refund = scoped(Refund.objects.all(), self.actor).filter(pk=pk).first()
        if refund is None:
            raise ApplicationError(ErrorCode.NOT_FOUND, "No such refund.", status=404)
        return refund

    def _answer(self, refund: Refund) -> Response:
        return Response(RefundSerializer(_with_related(Refund.objects.filter(pk=refund.pk)).get()).data)


class RefundApproveApi(_RefundDecisionApi):
    """Approve a requested refund: the money goes back through the provider and the refund is booked."""

    @extend_schema(request=None, responses={200: RefundSerializer})
    def post(self, request, pk: int):
        return self._answer(refunds.refund_approve(refund=self._refund(pk), user=request.user))


class RefundRejectApi(_RefundDecisionApi):
    """Turn down a requested refund, saying why."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RefundRejectInput"

        note = serializers.CharField(max_length=200)

    @extend_schema(request=InputSerializer, responses={200: RefundSerializer})
    def post(self, request, pk: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        refund = self._refund(pk)
        return self._answer(refunds.refund_reject(refund=refund, user=request.user,
                                                  note=data.validated_data["note"]))
