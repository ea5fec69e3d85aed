"""Staff livestream API (``/api/v1/livestream/``): schedule sessions and read a store's week plan, scoped."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from livestream.errors import LivestreamErrorCode
from livestream.models import LiveSession
from livestream.selectors import brand_week_summary, store_schedule
from livestream.services import (
    SCHEDULER_ROLES,
    session_cancel,
    session_end,
    session_schedule,
    session_start,
)
from retail_crm.api.views import ScopedMixin
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand, Guide, Store
from retail_crm.scoping import scoped


class LiveSessionOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "LiveSession"

    id = serializers.IntegerField()
    brand = serializers.CharField(source="brand.code")
    kind = serializers.CharField()
    title = serializers.CharField()
    status = serializers.CharField()
    platform = serializers.CharField()
    host_store = serializers.CharField(source="host_store.code", allow_null=True, default=None)
    host_guide = serializers.CharField(source="host_guide.code", allow_null=True, default=None)
    follows = serializers.IntegerField(source="follows_id", allow_null=True)
    planned_start = serializers.DateTimeField()
    planned_end = serializers.DateTimeField()
    actual_start = serializers.DateTimeField(allow_null=True)
    actual_end = serializers.DateTimeField(allow_null=True)


def _one(queryset, what: str, **lookup):
    """The single scoped row matching ``lookup``, or 404 (rows outside the scope look absent)."""
    obj = queryset.filter(**lookup).first()
    if obj is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, f"No such {what}.", status=404)
    return obj


class LiveSessionScheduleApi(ScopedMixin, APIView):
    """Plan a live session (HQ and brand operators); 409 when the store or guide is already busy."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "LiveSessionScheduleInput"

        brand = serializers.CharField(max_length=32)
        kind = serializers.ChoiceField(choices=LiveSession.Kind.choices)
        title = serializers.CharField(max_length=120)
        planned_start = serializers.DateTimeField()
        planned_end = serializers.DateTimeField()
        host_store = serializers.CharField(max_length=32, required=False, allow_null=True, default=None)
        host_guide = serializers.CharField(max_length=32, required=False, allow_null=True, default=None)
        follows = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
        platform = serializers.ChoiceField(choices=LiveSession.Platform.choices,
                                           default=LiveSession.Platform.MINI_PROGRAM)
        product_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), max_length=200,
                                            required=False, default=list)

    @extend_schema(request=InputSerializer, responses={201: LiveSessionOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        actor = self.actor
        brand = _one(scoped(Brand.objects.all(), actor), "brand", code=v["brand"])
        store = _one(scoped(Store.objects.all(), actor), "store", code=v["host_store"]) if v["host_store"] else None
        guide = (_one(scoped(Guide.objects.select_related("store"), actor), "guide", code=v["host_guide"])
                 if v["host_guide"] else None)
        follows = _one(scoped(LiveSession.objects.all(), actor), "session", pk=v["follows"]) if v["follows"] else None
        session = session_schedule(brand=brand, kind=v["kind"], title=v["title"], planned_start=v["planned_start"],
                                   planned_end=v["planned_end"], host_store=store, host_guide=guide, follows=follows,
                                   platform=v["platform"], product_ids=v["product_ids"], actor=actor)
        return Response(LiveSessionOutputSerializer(session).data, status=status.HTTP_201_CREATED)


class StoreScheduleApi(ScopedMixin, APIView):
    """A store's week plan: its sessions starting in the 7 local days from ``week_start``."""

    class QuerySerializer(serializers.Serializer):
        class Meta:
            ref_name = "StoreScheduleQuery"

        week_start = serializers.DateField()

    @extend_schema(parameters=[OpenApiParameter("week_start", str, description="YYYY-MM-DD, first day of the week",
                                                required=True)],
                   responses=LiveSessionOutputSerializer(many=True))
    def get(self, request, store_code: str):
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        store = _one(scoped(Store.objects.all(), self.actor), "store", code=store_code)
        sessions = store_schedule(actor=self.actor, store=store, week_start=query.validated_data["week_start"])
        return Response(LiveSessionOutputSerializer(sessions.select_related("brand", "host_store"), many=True).data)


class LiveSessionTransitionApi(ScopedMixin, APIView):
    """Start, end or cancel a session. Anyone who sees the session may start or end it (the host store runs
    it); only HQ and brand operators may cancel, since cancelling frees the slot in the schedule."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "LiveSessionTransitionInput"

        at = serializers.DateTimeField(required=False, allow_null=True, default=None,
                                       help_text="When it happened; now if left out (start and end only)")

    transition: str = ""

    @extend_schema(request=InputSerializer, responses=LiveSessionOutputSerializer)
    def post(self, request, pk: int):
        session = _one(scoped(LiveSession.objects.all(), self.actor), "session", pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        when = data.validated_data["at"] or timezone.now()
        if self.transition == "start":
            session = session_start(session, when)
        elif self.transition == "end":
            session = session_end(session, when)
        else:
            if not self.actor.is_superuser and self.actor.role not in SCHEDULER_ROLES:
                raise ApplicationError(LivestreamErrorCode.SCHEDULE_FORBIDDEN,
                                       "Only HQ or brand operators can cancel live sessions.", status=403)
            session = session_cancel(session)
        return Response(LiveSessionOutputSerializer(session).data)


class BrandWeekSummaryApi(ScopedMixin, APIView):
    """Per store of a brand: sessions planned vs held and planned vs live hours in one local week."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "LiveStoreWeekSummary"

        store = serializers.CharField()
        planned = serializers.IntegerField()
        held = serializers.IntegerField()
        cancelled = serializers.IntegerField()
        planned_hours = serializers.DecimalField(max_digits=8, decimal_places=2)
        live_hours = serializers.DecimalField(max_digits=8, decimal_places=2)

    @extend_schema(parameters=[OpenApiParameter("week_start", str, description="YYYY-MM-DD, first day of the week",
                                                required=True)],
                   responses=OutputSerializer(many=True))
    def get(self, request, brand_code: str):
        query = StoreScheduleApi.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        brand = _one(scoped(Brand.objects.all(), self.actor), "brand", code=brand_code)
        rows = brand_week_summary(actor=self.actor, brand=brand, week_start=query.validated_data["week_start"])
        codes = dict(Store.objects.filter(pk__in=[r.store_id for r in rows]).values_list("pk", "code"))
        return Response(self.OutputSerializer([{**vars(r), "store": codes[r.store_id]} for r in rows], many=True).data)
