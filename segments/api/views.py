"""Staff API for RFML and care lists (``/api/v1/analytics/…``, where they were first published), scoped to the caller.

A brand named in the query must exist (400 otherwise) and lie in the caller's
scope (404 otherwise); rows are limited by ``retail_crm.scoping.scoped``.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from retail_crm import selectors as org_selectors
from retail_crm.api.views import ScopedMixin
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand
from segments import selectors
from segments.care import care_item_done
from segments.models import CareItem, LifecycleStage, Segment
from segments.rfm import local_today


def _brand_in_scope(code: str, actor) -> Brand:
    """The brand of ``code``: 400 when no such brand exists, 404 when it lies outside the caller's scope."""
    brand = Brand.objects.filter(code=code).first()
    if brand is None:
        raise ApplicationError(ErrorCode.INVALID, "Unknown brand.", fields={"brand": [f"No brand {code!r}."]})
    if not org_selectors.brand_list(actor=actor).filter(pk=brand.pk).exists():
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such brand.", status=404)
    return brand


class RfmLatestRunApi(ScopedMixin, APIView):
    """The latest RFML run of a brand: as-of date, window, thresholds, counts per class and stage, cycle."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RfmLatestRunQuery"

        brand = serializers.SlugField(max_length=32, help_text="Brand code")

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RfmRunSummary"

        id = serializers.IntegerField()
        brand = serializers.CharField(source="brand.code")
        as_of = serializers.DateField()
        window_days = serializers.IntegerField()
        median_recency_days = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)
        median_frequency = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)
        median_monetary = serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)
        members = serializers.IntegerField(help_text="Members classified")
        lapsed = serializers.IntegerField()
        counts = serializers.DictField(child=serializers.IntegerField(), help_text="Members per RFML class")
        stage_counts = serializers.DictField(child=serializers.IntegerField(),
                                             help_text="Members per lifecycle stage")
        cycle_days = serializers.DecimalField(max_digits=8, decimal_places=2, allow_null=True,
                                              help_text="The brand's consumption cycle")
        started_at = serializers.DateTimeField()
        duration_ms = serializers.IntegerField()

    @extend_schema(parameters=[InputSerializer], responses={200: OutputSerializer,
                                                            404: OpenApiResponse(description="No run yet")})
    def get(self, request):
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        brand = _brand_in_scope(query.validated_data["brand"], self.actor)
        run = selectors.rfm_latest_run(brand=brand)
        if run is None:
            raise ApplicationError(ErrorCode.NOT_FOUND, "This brand has no RFML run yet.", status=404)
        return Response(self.OutputSerializer(run).data)


class RfmMemberListApi(ScopedMixin, generics.ListAPIView):
    """Members of a brand with their current RFML figures, optionally of one class or stage (paginated)."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RfmMemberQuery"

        brand = serializers.SlugField(max_length=32, help_text="Brand code")
        segment = serializers.ChoiceField(required=False, choices=Segment.choices, help_text="RFML class slug")
        stage = serializers.ChoiceField(required=False, choices=LifecycleStage.choices, help_text="Lifecycle stage")

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RfmMemberRow"

        member_code = serializers.CharField(source="member.code")
        recency_days = serializers.IntegerField(allow_null=True)
        frequency = serializers.IntegerField()
        monetary = serializers.DecimalField(max_digits=14, decimal_places=2)
        lifetime_days = serializers.IntegerField()
        purchases_total = serializers.IntegerField()
        first_purchase_on = serializers.DateField(allow_null=True)
        last_purchase_on = serializers.DateField(allow_null=True)
        segment = serializers.CharField()
        lifecycle_stage = serializers.CharField()
        cycle_days = serializers.DecimalField(max_digits=8, decimal_places=2, allow_null=True)
        next_expected_on = serializers.DateField(allow_null=True)

    serializer_class = OutputSerializer
    filter_backends: list = []

    @extend_schema(parameters=[InputSerializer])
    def get(self, request, *args, **kwargs):
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        brand = _brand_in_scope(data["brand"], self.actor)
        rows = selectors.rfm_member_list(actor=self.actor, brand=brand, segment=data.get("segment"),
                                             stage=data.get("stage"))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(self.OutputSerializer(page, many=True).data)


class _CareItemSerializer(serializers.Serializer):
    class Meta:
        ref_name = "CareItem"

    id = serializers.IntegerField()
    day = serializers.DateField()
    brand = serializers.CharField(source="brand.code")
    guide = serializers.CharField(source="guide.code")
    member_code = serializers.CharField(source="member.code")
    member_name = serializers.CharField(source="member.name")
    kind = serializers.CharField()
    reason = serializers.CharField(source="reason_text", help_text="In the request's language")
    suggested_action = serializers.CharField(source="action_text", help_text="In the request's language")
    important = serializers.BooleanField(help_text="Important-class member: call in person")
    done_at = serializers.DateTimeField(allow_null=True)
    outcome = serializers.CharField()


class CareItemListApi(ScopedMixin, generics.ListAPIView):
    """The care list of a day (default today): a guide sees their own, managers their scope."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CareItemQuery"

        day = serializers.DateField(required=False, help_text="YYYY-MM-DD (default: today)")
        brand = serializers.SlugField(required=False, max_length=32, help_text="Brand code")
        kind = serializers.ChoiceField(required=False, choices=CareItem.Kind.choices)

    serializer_class = _CareItemSerializer
    filter_backends: list = []

    @extend_schema(parameters=[InputSerializer])
    def get(self, request, *args, **kwargs):
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        brand = _brand_in_scope(data["brand"], self.actor) if data.get("brand") else None
        rows = selectors.care_item_list(actor=self.actor, day=data.get("day") or local_today(), brand=brand,
                                            kind=data.get("kind"))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(self.serializer_class(page, many=True).data)


class CareItemDoneApi(ScopedMixin, APIView):
    """Mark a care item done; the contact counts as service on the member's binding. 404 outside scope."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CareItemDoneInput"

        outcome = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")

    @extend_schema(request=InputSerializer, responses={200: _CareItemSerializer})
    def post(self, request, pk: int):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        # Ids beyond the bigint range exist nowhere (and would overflow the database driver).
        item = CareItem.objects.filter(pk=pk).first() if pk < 2**63 else None
        if item is None:
            raise ApplicationError(ErrorCode.NOT_FOUND, "No such care item.", status=404)
        item = care_item_done(item=item, user=request.user, outcome=body.validated_data["outcome"])
        return Response(_CareItemSerializer(item).data)
