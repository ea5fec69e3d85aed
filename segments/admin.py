"""Admin for RFML runs, member classes, class history, segmentation settings and care lists.

Computed rows (runs, member RFML, changes, care items) are read-only: they are rewritten by the
RFML run and the care-list build. Segmentation settings are per-brand configuration that HQ and
the brand's operators may change.
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from retail_crm.admin_scoping import ScopedModelAdmin
from segments.models import CareItem, MemberRfm, RfmClassChange, RfmRun, SegmentationSettings


class _ReadOnly(ScopedModelAdmin):
    write_roles = frozenset()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SegmentationSettings)
class SegmentationSettingsAdmin(ScopedModelAdmin):
    list_display = ("brand", "window_days", "mature_after_days", "cycle_days", "care_days", "marketing_offset_days",
                    "lapse_factor")
    write_roles = frozenset({"hq", "brand_operator"})


@admin.register(RfmRun)
class RfmRunAdmin(_ReadOnly):
    list_display = ("brand", "as_of", "window_days", "members", "lapsed", "median_recency_days", "median_frequency",
                    "median_monetary", "cycle_days", "duration_ms", "started_at")
    list_filter = ("brand",)
    date_hierarchy = "as_of"


@admin.register(MemberRfm)
class MemberRfmAdmin(_ReadOnly):
    list_display = ("member", "brand", "segment", "lifecycle_stage", "recency_days", "frequency", "monetary",
                    "lifetime_days", "last_purchase_on", "next_expected_on")
    list_filter = ("brand", "segment", "lifecycle_stage")
    list_select_related = ("member", "brand")
    search_fields = ("member__code",)
    raw_id_fields = ("member", "run")


@admin.register(RfmClassChange)
class RfmClassChangeAdmin(_ReadOnly):
    list_display = ("member", "brand", "changed_on", "from_segment", "to_segment", "from_stage", "to_stage")
    list_filter = ("brand", "to_segment")
    list_select_related = ("member", "brand")
    search_fields = ("member__code",)
    raw_id_fields = ("member", "run")


@admin.register(CareItem)
class CareItemAdmin(_ReadOnly):
    list_display = ("day", "guide", "member", "brand", "kind", "important", "display_reason", "done_at")
    list_filter = ("brand", "kind", "important")
    list_select_related = ("guide", "member", "brand")
    search_fields = ("member__code", "guide__code")
    raw_id_fields = ("member", "guide", "done_by")
    date_hierarchy = "day"

    @admin.display(description=_("reason"))
    def display_reason(self, obj: CareItem) -> str:
        return obj.reason_text
