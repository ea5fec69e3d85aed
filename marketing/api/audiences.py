"""Staff API for audiences: saved definitions (list, create, read, change, delete), a saved audience's size
now, a live size preview while editing, and the CSV export for ad platforms.

HQ and brand operators only (403 for every other role); an audience of a brand outside the caller's scope
is a 404. The definition format is in ``marketing.audiences``.
"""

from __future__ import annotations

import csv
import io

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from marketing.audiences import (
    EXPORT_COLUMNS,
    audience_access_check,
    audience_brand,
    audience_count,
    audience_create,
    audience_definition_clean,
    audience_delete,
    audience_export_rows,
    audience_get,
    audience_list,
    audience_size,
    audience_update,
)
from retail_crm.api.pagination import StandardPagination
from retail_crm.api.views import ScopedMixin
from retail_crm.throttling import client_throttle

DEFINITION_HELP = ("Conditions ANDed together, e.g. {\"rfml_classes\": [\"important_retain\"], \"behaviour\": "
                   "[{\"event\": \"product_view\", \"products\": [\"P001\"], \"days\": 30, \"min\": 3}]}; "
                   "the keys are documented in marketing/audiences.py. {} is every member of the brand.")
EXAMPLE = OpenApiExample("Viewed a new dress 3 times, no purchase in 30 days", request_only=True, value={
    "brand": "WOM", "name": "新品连衣裙 看了没买",
    "definition": {"behaviour": [{"event": "product_view", "products": ["WOM-D001"], "days": 30, "min": 3}],
                   "purchase": [{"days": 30, "bought": False}], "wecom_friend": True}})


class AudienceOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "Audience"

    id = serializers.IntegerField()
    brand = serializers.CharField(source="brand.code")
    name = serializers.CharField()
    definition = serializers.JSONField(help_text=DEFINITION_HELP)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class AudienceListCreateApi(ScopedMixin, generics.ListAPIView):
    """Saved audiences (HQ and brand operators): list those of the brands in your scope, or save a new one."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "AudienceCreateInput"

        brand = serializers.CharField(required=False, max_length=32,
                                      help_text="Brand code; a brand operator's own brand when left out")
        name = serializers.CharField(max_length=80)
        definition = serializers.JSONField(help_text=DEFINITION_HELP)

    serializer_class = AudienceOutputSerializer
    pagination_class = StandardPagination
    filter_backends: list = []

    def get_queryset(self):
        return audience_list(actor=self.actor)

    @extend_schema(description="Saved audiences of the brands in your scope, by brand and name (403 for roles "
                               "below a brand operator).")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=InputSerializer, responses={201: AudienceOutputSerializer}, examples=[EXAMPLE],
                   description="Save a named definition for a brand (400 with a message per field of the definition; "
                               "409 when the brand has an audience of that name).")
    def post(self, request):
        audience_access_check(self.actor)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        brand = audience_brand(actor=self.actor, code=values.get("brand"))
        audience = audience_create(actor=self.actor, brand=brand, name=values["name"],
                                   definition=values["definition"], user=request.user)
        return Response(AudienceOutputSerializer(audience).data, status=status.HTTP_201_CREATED)


class AudienceDetailApi(ScopedMixin, APIView):
    """One saved audience: read it, change its name or definition (PATCH), or delete it."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "AudienceUpdateInput"

        name = serializers.CharField(required=False, max_length=80)
        definition = serializers.JSONField(required=False, help_text=DEFINITION_HELP)

    @extend_schema(responses=AudienceOutputSerializer)
    def get(self, request, pk: int):
        return Response(AudienceOutputSerializer(audience_get(actor=self.actor, pk=pk)).data)

    @extend_schema(request=InputSerializer, responses=AudienceOutputSerializer)
    def patch(self, request, pk: int):
        audience = audience_get(actor=self.actor, pk=pk)  # 403 for other roles, 404 outside scope, then input
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        audience = audience_update(actor=self.actor, audience=audience, name=values.get("name"),
                                   definition=values.get("definition"))
        return Response(AudienceOutputSerializer(audience).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk: int):
        audience_delete(actor=self.actor, audience=audience_get(actor=self.actor, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AudienceSizeApi(ScopedMixin, APIView):
    """How many members a saved audience holds right now: one COUNT, run when asked (the HQ list page asks for
    each row after it is shown, ``static/js/audience_sizes.js``).

    Nothing is cached: ``counted_at`` is the moment of this count.
    """

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "AudienceSize"

        count = serializers.IntegerField(help_text="Members of the brand the saved definition holds now")
        counted_at = serializers.DateTimeField(help_text="When they were counted")

    @extend_schema(responses=OutputSerializer,
                   description="The saved audience counted now (403 for roles below a brand operator, 404 outside "
                               "your scope; 400 with a message per field of the definition when it no longer fits "
                               "the brand, e.g. a tag value it names was deleted).")
    def get(self, request, pk: int):
        audience = audience_get(actor=self.actor, pk=pk)
        return Response(self.OutputSerializer(audience_size(audience=audience)).data)


class AudiencePreviewApi(ScopedMixin, APIView):
    """How many members a definition holds right now: the live size while an audience is being edited.

    Nothing is saved. Rate-limited per user (``THROTTLE_AUDIENCE_PREVIEW``): 429 with ``Retry-After`` beyond it.
    """

    throttle_classes = [client_throttle("audience_preview")]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "AudiencePreviewInput"

        brand = serializers.CharField(required=False, max_length=32,
                                      help_text="Brand code; a brand operator's own brand when left out")
        definition = serializers.JSONField(help_text=DEFINITION_HELP)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "AudiencePreview"

        count = serializers.IntegerField(help_text="Members of the brand the definition holds now")

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request):
        audience_access_check(self.actor)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        brand = audience_brand(actor=self.actor, code=values.get("brand"))
        definition = audience_definition_clean(brand=brand, definition=values["definition"], actor=self.actor)
        return Response({"count": audience_count(brand=brand, definition=definition)})


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    """Text a spreadsheet will not run as a formula (a name typed as ``=HYPERLINK(…)``)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


class _Line:
    """A write-through buffer for csv.writer: each row becomes one chunk of the streamed response."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()

    def take(self) -> bytes:
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return text.encode("utf-8")


class AudienceExportApi(ScopedMixin, APIView):
    """The audience's members as CSV (UTF-8 with BOM), streamed, one row per member by member id.

    Columns: member_code, name, phone (138****1234 unless your role sees whole numbers), brand, store (where the
    member joined the brand), guide (the current bound guide's code), rfml_class, last_purchase_on.
    Rate-limited per user like the dashboard exports (``THROTTLE_EXPORT``).
    """

    throttle_classes = [client_throttle("export")]

    def perform_content_negotiation(self, request, force=False):
        # The rows are CSV whatever the client accepts; errors are the API's JSON (a client asking only for
        # text/csv gets its 404 or 429 as JSON rather than a 406).
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(responses={(200, "text/csv"): OpenApiResponse(response=str, description="The members, as CSV")})
    def get(self, request, pk: int):
        audience = audience_get(actor=self.actor, pk=pk)
        rows = audience_export_rows(audience=audience, actor=self.actor, user=request.user)

        def lines():
            out = _Line()
            writer = csv.writer(out.buffer)
            out.buffer.write("\ufeff")
            writer.writerow(EXPORT_COLUMNS)
            yield out.take()
            batch = 0
            for row in rows:
                writer.writerow([_cell(row.member_code), _cell(row.name), row.phone, row.brand, _cell(row.store),
                                 _cell(row.guide), row.rfml_class,
                                 row.last_purchase_on.isoformat() if row.last_purchase_on else ""])
                batch += 1
                if batch == 500:
                    yield out.take()
                    batch = 0
            yield out.take()

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        day = timezone.localdate().isoformat()
        response["Content-Disposition"] = f'attachment; filename="audience-{audience.pk}-{day}.csv"'
        return response
