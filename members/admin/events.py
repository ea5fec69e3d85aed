"""Admin for behaviour events and daily counters: read-only (they come from the mini-program and jobs)."""

from django.contrib import admin

from members.models import BehaviourEvent, MemberDailyActivity
from retail_crm.admin_scoping import ScopedModelAdmin


@admin.register(BehaviourEvent)
class BehaviourEventAdmin(ScopedModelAdmin):
    list_display = ("occurred_at", "kind", "brand", "member", "visitor_id", "object_type", "object_id", "guide")
    list_filter = ("kind", "brand")
    # Exact matches only: the table holds months of raw events, a LIKE scan would not return.
    search_fields = ("=visitor_id", "=client_event_id", "=member__code", "=object_id")
    raw_id_fields = ("member", "guide")
    list_select_related = ("brand", "member", "guide")
    show_full_result_count = False
    list_per_page = 50
    write_roles = frozenset()


@admin.register(MemberDailyActivity)
class MemberDailyActivityAdmin(ScopedModelAdmin):
    list_display = ("day", "member", "brand", "product_views", "favourites", "shares", "add_to_carts",
                    "orders_unpaid", "live_watches", "material_views")
    list_filter = ("brand",)
    search_fields = ("=member__code",)
    raw_id_fields = ("member",)
    list_select_related = ("brand", "member")
    show_full_result_count = False
    list_per_page = 50
    write_roles = frozenset()
