"""Staff KPI API for store livestreams (``/api/v1/livestream/``): phase targets, store phases and progress,
coaching notes, and sharing HQ resources with a store session. Scoped: outside the scope is 404."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from livestream.coaching import MAX_NOTE_LENGTH, coaching_note_add, coaching_notes_for_session
from livestream.models import CoachingNote, LivePhase, LiveSession
from livestream.phases import (
    MEASURE_CHOICES,
    PhaseTargetInput,
    StoreLiveProgress,
    brand_store_progress,
    phase_targets_for_brand,
    phase_targets_set,
    store_phase_get,
    store_phase_set,
    store_progress,
)
from livestream.resources import session_resources_share
from retail_crm.api.views import ScopedMixin
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand, Store
from retail_crm.scoping import scoped


def _one(queryset, what: str, **lookup):
    """The single scoped row matching ``lookup``, or 404 (rows outside the scope look absent)."""
    obj = queryset.filter(**lookup).first()
    if obj is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, f"No such {what}.", status=404)
    return obj


# ---------------------------------------------------------------------------- phase targets

class PhaseTargetSerializer(serializers.Serializer):
    class Meta:
        ref_name = "LivePhaseTarget"

    phase = serializers.ChoiceField(choices=LivePhase.choices)
    sessions_per_month = serializers.IntegerField(min_value=0, max_value=1000, default=0)
    hours_per_month = serializers.DecimalField(max_digits=6, decimal_places=1, min_value=0, default=0)
    sales_per_month = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0, default=0)
    conversion = serializers.DecimalField(max_digits=5, decimal_places=4, min_value=0, max_value=1, default=0,
                                          help_text="Buyers ÷ viewers, 0 to 1")


class BrandPhaseTargetsApi(ScopedMixin, APIView):
    """A brand's monthly targets for phases 1–3 (read: anyone who sees the brand; write: HQ, brand operators).

    A phase never set reads as zeros; a zero target is not judged. PUT writes the phases given.
    """

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "LivePhaseTargetsInput"

        targets = PhaseTargetSerializer(many=True, allow_empty=False, max_length=3)

    @extend_schema(responses=PhaseTargetSerializer(many=True))
    def get(self, request, brand_code: str):
        brand = _one(scoped(Brand.objects.all(), self.actor), "brand", code=brand_code)
        return Response(PhaseTargetSerializer(phase_targets_for_brand(brand=brand, actor=self.actor), many=True).data)

    @extend_schema(request=InputSerializer, responses=PhaseTargetSerializer(many=True))
    def put(self, request, brand_code: str):
        brand = _one(scoped(Brand.objects.all(), self.actor), "brand", code=brand_code)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        targets = [PhaseTargetInput(**item) for item in data.validated_data["targets"]]
        saved = phase_targets_set(brand=brand, targets=targets, actor=self.actor)
        return Response(PhaseTargetSerializer(saved, many=True).data)


# ---------------------------------------------------------------------------- a store's phase

class StorePhaseOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "StoreLivePhase"

    store = serializers.CharField(source="store.code")
    phase = serializers.IntegerField()
    since = serializers.DateField(allow_null=True)
    updated_by = serializers.CharField(source="updated_by.username", allow_null=True, default=None)


class StorePhaseApi(ScopedMixin, APIView):
    """The phase a store is in (phase 1 until moved); HQ and brand operators move it (PUT)."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StoreLivePhaseInput"

        phase = serializers.ChoiceField(choices=LivePhase.choices)
        since = serializers.DateField(required=False, allow_null=True, default=None,
                                      help_text="From when; today if left out (kept when the phase is unchanged)")

    def _store(self, store_code: str) -> Store:
        return _one(scoped(Store.objects.all(), self.actor), "store", code=store_code)

    @extend_schema(responses=StorePhaseOutputSerializer)
    def get(self, request, store_code: str):
        phase = store_phase_get(store=self._store(store_code), actor=self.actor)
        return Response(StorePhaseOutputSerializer(phase).data)

    @extend_schema(request=InputSerializer, responses=StorePhaseOutputSerializer)
    def put(self, request, store_code: str):
        store = self._store(store_code)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        phase = store_phase_set(store=store, phase=data.validated_data["phase"], since=data.validated_data["since"],
                                actor=self.actor)
        return Response(StorePhaseOutputSerializer(phase).data)


# ---------------------------------------------------------------------------- progress

class MonthQuerySerializer(serializers.Serializer):
    class Meta:
        ref_name = "LiveMonthQuery"

    month = serializers.RegexField(r"^(19|20|21)\d{2}-(0[1-9]|1[0-2])$", required=False,
                                   error_messages={"invalid": "Give the month as YYYY-MM."})

    def month_start(self) -> dt.date:
        value = self.validated_data.get("month")
        if not value:
            return timezone.localdate().replace(day=1)
        year, month = value.split("-")
        return dt.date(int(year), int(month), 1)


MONTH_PARAMETER = OpenApiParameter("month", str, description="YYYY-MM, a local month; the current one if left out")


class TargetProgressSerializer(serializers.Serializer):
    class Meta:
        ref_name = "LiveTargetProgress"

    measure = serializers.ChoiceField(choices=MEASURE_CHOICES)
    # Each in its measure's own precision: sessions whole, hours to 0.01, sales to the cent, conversion to 0.0001.
    target = serializers.DecimalField(max_digits=None, decimal_places=None)
    actual = serializers.DecimalField(max_digits=None, decimal_places=None, allow_null=True)
    ratio = serializers.DecimalField(max_digits=12, decimal_places=4, allow_null=True,
                                     help_text="actual ÷ target")
    met = serializers.BooleanField()


class StoreProgressSerializer(serializers.Serializer):
    class Meta:
        ref_name = "StoreLiveProgress"

    store = serializers.CharField(source="store_code")
    store_name = serializers.CharField()
    month = serializers.DateField(help_text="First day of the month")
    phase = serializers.IntegerField()
    phase_since = serializers.DateField(allow_null=True)
    sessions_planned = serializers.IntegerField()
    sessions_held = serializers.IntegerField()
    hours_live = serializers.DecimalField(max_digits=10, decimal_places=2)
    live_sales = serializers.DecimalField(max_digits=16, decimal_places=2)
    viewers = serializers.IntegerField()
    buyers = serializers.IntegerField()
    conversion = serializers.DecimalField(max_digits=7, decimal_places=4, allow_null=True)
    coaching_notes = serializers.IntegerField()
    average_rating = serializers.DecimalField(max_digits=4, decimal_places=2, allow_null=True)
    targets = TargetProgressSerializer(many=True)
    all_met = serializers.BooleanField(allow_null=True, help_text="Every judged target met; null: none set")


def _progress_data(rows: list[StoreLiveProgress]):
    return StoreProgressSerializer(rows, many=True).data


class StoreProgressApi(ScopedMixin, APIView):
    """A store's month against the targets of its phase: sessions, hours, live sales, conversion, coaching."""

    @extend_schema(parameters=[MONTH_PARAMETER], responses=StoreProgressSerializer)
    def get(self, request, store_code: str):
        query = MonthQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        store = _one(scoped(Store.objects.select_related("brand"), self.actor), "store", code=store_code)
        progress = store_progress(store=store, month=query.month_start(), actor=self.actor)
        return Response(StoreProgressSerializer(progress).data)


class BrandStoreProgressApi(ScopedMixin, APIView):
    """Every store of a brand the caller sees, by code, with its phase and its month's progress."""

    @extend_schema(parameters=[MONTH_PARAMETER], responses=StoreProgressSerializer(many=True))
    def get(self, request, brand_code: str):
        query = MonthQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        brand = _one(scoped(Brand.objects.all(), self.actor), "brand", code=brand_code)
        return Response(_progress_data(brand_store_progress(brand=brand, month=query.month_start(),
                                                            actor=self.actor)))


# ---------------------------------------------------------------------------- coaching notes

class CoachingNoteOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "LiveCoachingNote"

    id = serializers.IntegerField()
    session = serializers.IntegerField(source="session_id")
    aspect = serializers.ChoiceField(choices=CoachingNote.Aspect.choices)
    text = serializers.CharField()
    rating = serializers.IntegerField(allow_null=True)
    author = serializers.CharField(source="author.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()


class SessionCoachingNotesApi(ScopedMixin, APIView):
    """A session's coaching notes, newest first (everyone who sees the session); HQ and brand operators add one."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "LiveCoachingNoteInput"

        aspect = serializers.ChoiceField(choices=CoachingNote.Aspect.choices)
        text = serializers.CharField(max_length=MAX_NOTE_LENGTH)
        rating = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True, default=None)

    def _session(self, pk: int) -> LiveSession:
        return _one(scoped(LiveSession.objects.all(), self.actor), "session", pk=pk)

    @extend_schema(responses=CoachingNoteOutputSerializer(many=True))
    def get(self, request, pk: int):
        notes = coaching_notes_for_session(session=self._session(pk), actor=self.actor)
        return Response(CoachingNoteOutputSerializer(notes, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: CoachingNoteOutputSerializer})
    def post(self, request, pk: int):
        session = self._session(pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        note = coaching_note_add(session=session, actor=self.actor, **data.validated_data)
        return Response(CoachingNoteOutputSerializer(note).data, status=status.HTTP_201_CREATED)


# ---------------------------------------------------------------------------- HQ resources

class SessionShareResourcesApi(ScopedMixin, APIView):
    """HQ shares a central session's products, script and materials with a store session, which then follows it."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "LiveShareResourcesInput"

        central = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False, allow_null=True,
                                           default=None,
                                           help_text="The HQ central session; the one it follows if left out")
        replace_script = serializers.BooleanField(default=False,
                                                  help_text="Overwrite the store session's own script")

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "LiveSharedResources"

        session = serializers.IntegerField(source="session.pk")
        follows = serializers.IntegerField(source="central.pk")
        products_added = serializers.IntegerField()
        materials_added = serializers.IntegerField()
        script_copied = serializers.BooleanField()
        products = serializers.ListField(child=serializers.IntegerField())
        materials = serializers.ListField(child=serializers.IntegerField())

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request, pk: int):
        session = _one(scoped(LiveSession.objects.all(), self.actor), "session", pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        shared = session_resources_share(session=session, central_id=data.validated_data["central"],
                                         replace_script=data.validated_data["replace_script"], actor=self.actor)
        out = {**vars(shared), "products": sorted(shared.session.products.values_list("pk", flat=True)),
               "materials": sorted(shared.session.materials.values_list("pk", flat=True))}
        return Response(self.OutputSerializer(out).data)
