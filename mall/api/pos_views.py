"""Staff API for POS systems that push their sales instead of exporting files."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from mall.importing import ORDER_COLUMNS, order_import
from retail_crm.api.views import ScopedMixin
from retail_crm.models import Brand, Store
from retail_crm.scoping import scoped

MAX_ROWS = 10_000


def _cell() -> serializers.CharField:
    # Every cell is optional text, as in the CSV: the importer reports missing or bad values per row,
    # so one bad row never turns the whole push into a 400.
    return serializers.CharField(max_length=100, allow_blank=True, required=False, default="")


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
        rows = [(index, {column: str(row.get(column, "")).strip() for column in ORDER_COLUMNS})
                for index, row in enumerate(data.validated_data["rows"], start=1)]
        report = order_import(brand=brand, rows=rows, allowed_store_ids=store_ids).report
        body = {"created": report.created, "updated": report.updated, "unchanged": report.unchanged,
                "rejected": [{"row": e.line, "reason": e.reason} for e in report.errors]}
        return Response(self.OutputSerializer(body).data)
