"""Staff API for commission and withdrawals (``/api/v1/guides/``): my balance and ledger, asking to withdraw
(idempotent by request key or Idempotency-Key), and approving, rejecting and marking paid in scope.

The rules live in guides.withdrawals; these views parse, call it and serialise.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from guides import withdrawals as service
from guides.models import CommissionEntry, WithdrawalRequest
from retail_crm.api.pagination import StandardPagination
from retail_crm.api.views import ScopedMixin
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.idempotency import HEADER, idempotent
from retail_crm.scoping import scoped

LEDGER_ROWS = 50
OWN_WITHDRAWALS = 20


class WithdrawalSerializer(serializers.Serializer):
    class Meta:
        ref_name = "Withdrawal"

    id = serializers.IntegerField()
    guide = serializers.CharField(source="guide.code", allow_null=True, default=None)
    staff_user = serializers.CharField(source="staff_user.username", allow_null=True, default=None)
    brand = serializers.CharField(source="brand.code")
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    status = serializers.ChoiceField(choices=WithdrawalRequest.Status.choices)
    requested_at = serializers.DateTimeField()
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True, default=None)
    decided_at = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)
    note = serializers.CharField()


class CommissionEntrySerializer(serializers.Serializer):
    class Meta:
        ref_name = "CommissionEntry"

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=CommissionEntry.Kind.choices)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    brand = serializers.CharField(source="brand.code")
    order_no = serializers.CharField(source="order.order_no", allow_null=True, default=None)
    credit_kind = serializers.CharField(source="credit.kind", allow_null=True, default=None)
    rule = serializers.CharField(source="credit.rule", allow_null=True, default=None)
    rate = serializers.DecimalField(max_digits=5, decimal_places=4, allow_null=True)
    withdrawal = serializers.IntegerField(source="withdrawal_id", allow_null=True)
    available_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    note = serializers.CharField()


class BalanceSerializer(serializers.Serializer):
    class Meta:
        ref_name = "CommissionBalance"

    pending = serializers.DecimalField(max_digits=14, decimal_places=2,
                                       help_text="Earnings still in their return window")
    available = serializers.DecimalField(max_digits=14, decimal_places=2,
                                         help_text="What can be withdrawn now (may be negative after refunds)")
    withdrawn = serializers.DecimalField(max_digits=14, decimal_places=2,
                                         help_text="Taken out by requests not rejected (in review + paid out)")
    in_review = serializers.DecimalField(max_digits=14, decimal_places=2)
    paid_out = serializers.DecimalField(max_digits=14, decimal_places=2)
    total = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="pending + available")


class CommissionApi(ScopedMixin, APIView):
    """My commission: the balance, the newest ledger rows (50) and my newest withdrawals (20)."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MyCommission"

        owner = serializers.CharField(help_text='"guide:<code>" or "staff:<username>" (all-staff distribution)')
        balance = BalanceSerializer()
        entries = CommissionEntrySerializer(many=True)
        withdrawals = WithdrawalSerializer(many=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        owner = service.commission_owner_for(request.user)
        entries = service.commission_ledger(owner=owner)[:LEDGER_ROWS]
        withdrawals = service.withdrawal_list_own(owner=owner).select_related(
            "guide", "staff_user", "brand", "decided_by")[:OWN_WITHDRAWALS]
        balance = service.commission_balance(**_owner_kwargs(owner))
        label = (f"guide:{_guide_code(owner.guide_id)}" if owner.guide_id is not None
                 else f"staff:{request.user.get_username()}")
        data = {"owner": label, "balance": {**balance.__dict__, "total": balance.total}, "entries": entries,
                "withdrawals": withdrawals}
        return Response(self.OutputSerializer(data).data)


def _owner_kwargs(owner: service.CommissionOwner) -> dict:
    return {"guide": owner.guide_id} if owner.guide_id is not None else {"staff_user": owner.staff_user_id}


def _guide_code(guide_id: int) -> str:
    from retail_crm.models import Guide

    return Guide.objects.filter(pk=guide_id).values_list("code", flat=True).first() or str(guide_id)


class WithdrawalFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=WithdrawalRequest.Status.choices)

    class Meta:
        model = WithdrawalRequest
        fields = ["status"]


class WithdrawalListCreateApi(ScopedMixin, generics.ListAPIView):
    """GET: withdrawals I may decide (store manager and above, in scope). POST: ask to withdraw.

    A POST needs a ``request_key`` in the body or an ``Idempotency-Key`` header: the same key again answers
    200 with the request it made (no second request); more than the available balance is a 409.
    """

    serializer_class = WithdrawalSerializer
    filterset_class = WithdrawalFilter
    pagination_class = StandardPagination

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "WithdrawalRequestInput"

        amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=service.MIN_AMOUNT)
        request_key = serializers.CharField(max_length=service.MAX_KEY_LENGTH, required=False, allow_blank=True,
                                            default="", help_text=f"Defaults to the {HEADER} header")
        note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    def get_queryset(self):
        return service.withdrawals_for_review(actor=self.actor)

    @extend_schema(request=InputSerializer, responses={201: WithdrawalSerializer, 200: WithdrawalSerializer,
                                                       409: OpenApiResponse(description="Over the balance")},
                   parameters=[OpenApiParameter(HEADER, str, OpenApiParameter.HEADER, required=False,
                                                description="Any unique string (≤ 100 characters) per withdrawal")])
    @idempotent("withdrawal_request")
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        key = values["request_key"].strip() or request.headers.get(HEADER, "").strip()
        if not key:
            raise ApplicationError(ErrorCode.INVALID, f"Send a request_key or an {HEADER} header.",
                                   fields={"request_key": ["This field is required."]})
        owner = service.commission_owner_for(request.user)
        result = service.withdrawal_request(**_owner_kwargs(owner), amount=values["amount"], request_key=key,
                                            note=values["note"])
        withdrawal = WithdrawalRequest.objects.select_related("guide", "staff_user", "brand", "decided_by").get(
            pk=result.withdrawal.pk)
        return Response(WithdrawalSerializer(withdrawal).data,
                        status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class WithdrawalDecisionApi(ScopedMixin, APIView):
    """Approve, reject (the money returns to the balance) or mark paid. 404 outside my scope; 403 for guides
    and for the requester; 409 when the status does not allow it."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "WithdrawalDecisionInput"

        note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    decision: str = ""

    @extend_schema(request=InputSerializer, responses={200: WithdrawalSerializer,
                                                       409: OpenApiResponse(description="Not in a status for this")})
    def post(self, request, pk: int):
        withdrawal = scoped(WithdrawalRequest.objects.all(), self.actor).filter(pk=pk).first()
        if withdrawal is None:
            raise ApplicationError(ErrorCode.NOT_FOUND, "No such withdrawal.", status=404)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decide = {"approve": service.withdrawal_approve, "reject": service.withdrawal_reject,
                  "paid": service.withdrawal_mark_paid}[self.decision]
        done = decide(withdrawal=withdrawal, user=request.user, note=data.validated_data["note"])
        withdrawal = WithdrawalRequest.objects.select_related("guide", "staff_user", "brand", "decided_by").get(
            pk=done.pk)
        return Response(WithdrawalSerializer(withdrawal).data)

