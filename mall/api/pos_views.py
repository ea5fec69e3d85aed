"""Staff API for POS systems that push their sales instead of exporting files."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from mall.importing import ORDER_COLUMNS, order_import
from retail_crm.api.views import ScopedMixin
from retail_crm.csv_import import UNREADABLE
from retail_crm.models import Brand, Store
from retail_crm.scoping import scoped

MAX_ROWS = 10_000


@extend_schema_field(OpenApiTypes.STR)
class _Cell(serializers.Field):
    """A cell of the file, as given: text or a number (null is empty).

    Taken as it comes so that every problem with it (too long, a NUL or
    another control character, out of range, a list instead of text) is the
    importer's row error, and one bad row never turns the whole push into a 400.
    """

    def __init__(self):
        super().__init__(required=False, default="", allow_null=True)

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


def _cell() -> _Cell:
    return _Cell()


def _row_cells(row: dict) -> dict[str, str]:
    """The row as the importer's text cells; a value that is not text or a number makes the row unreadable."""
    cells = {}
    for column in ORDER_COLUMNS:
        value = row.get(column, "")
        if value is None:
            value = ""
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return {UNREADABLE: _("%(column)s is not text or a number") % {"column": column}}
        cells[column] = str(value).strip()
    return cells


class PosOrderImportApi(ScopedMixin, APIView):
    """Import order lines (the ``import_orders`` CSV columns, as JSON) for one brand.

    Idempotent by order number; bad rows come back with their index (counted
    from 1, like the lines of a file without its header) and reason while good
    orders go in. A caller may push only for stores in their scope.
    """

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PosOrderImportInput"

        class RowSerializer(serializers.Serializer):
            class Meta:
                ref_name = "PosOrderLineRow"

            order_no = _cell()
            ordered_at = _cell()
            channel = _cell()
            store_code = _cell()
            guide_code = _cell()
            member_code = _cell()
            member_phone = _cell()
            sku_code = _cell()
            quantity = _cell()
            unit_price = _cell()
            paid_amount = _cell()
            refunded_amount = _cell()

        brand = serializers.CharField(max_length=32)
        rows = RowSerializer(many=True, allow_empty=False, max_length=MAX_ROWS)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PosOrderImportResult"

        class ErrorSerializer(serializers.Serializer):
            class Meta:
                ref_name = "PosOrderImportError"

            row = serializers.IntegerField()
            reason = serializers.CharField()

        created = serializers.IntegerField()
        updated = serializers.IntegerField()
        unchanged = serializers.IntegerField()
        rejected = ErrorSerializer(many=True)

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        brand = get_object_or_404(scoped(Brand.objects.all(), self.actor), code=data.validated_data["brand"])
        store_ids = set(scoped(Store.objects.filter(brand=brand), self.actor).values_list("pk", flat=True))
        rows = [(index, _row_cells(row)) for index, row in enumerate(data.validated_data["rows"], start=1)]
        report = order_import(brand=brand, rows=rows, allowed_store_ids=store_ids).report
        body = {"created": report.created, "updated": report.updated, "unchanged": report.unchanged,
                "rejected": [{"row": e.line, "reason": e.reason} for e in report.errors]}
        return Response(self.OutputSerializer(body).data)
