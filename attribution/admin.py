"""Admin for attribution: credit rows are read-only history; settings are edited by HQ and brand operators."""

from __future__ import annotations

from django.contrib import admin

from attribution.models import AttributionSettings, SalesCredit
from retail_crm.admin_scoping import ScopedModelAdmin


@admin.register(SalesCredit)
class SalesCreditAdmin(ScopedModelAdmin):
    """Append-only rows: nobody edits or deletes them here; corrections come from re-running attribution."""

    list_display = ("order", "kind", "brand", "store", "guide", "amount", "order_day", "channel", "rule",
                    "cross_brand", "is_correction")
    list_filter = ("kind", "brand", "channel", "rule", "cross_brand", "is_correction")
    search_fields = ("order__order_no", "guide__code", "store__code")
    date_hierarchy = "order_day"
    list_select_related = ("order", "brand", "store", "guide")
    raw_id_fields = ("order", "member")
    write_roles = frozenset()


@admin.register(AttributionSettings)
class AttributionSettingsAdmin(ScopedModelAdmin):
    """Which credit kinds earn commission and count for KPIs, per brand."""

    list_display = ("brand", "exclusive_earns_commission", "selling_earns_commission", "exclusive_counts_for_kpi",
                    "selling_counts_for_kpi")
    write_roles = frozenset({"hq", "brand_operator"})
