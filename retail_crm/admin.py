from django.contrib import admin

from retail_crm.admin_scoping import ScopedModelAdmin
from retail_crm.models import Branch, Brand, Region, RetailGroup, StaffPasswordReset, StaffProfile, Store


@admin.register(RetailGroup)
class RetailGroupAdmin(ScopedModelAdmin):
    list_display = ("code", "name", "created_at")
    write_roles = frozenset()


@admin.register(Brand)
class BrandAdmin(ScopedModelAdmin):
    list_display = ("code", "name", "category", "is_active")
    list_filter = ("category", "is_active")
    search_fields = ("code", "name")


@admin.register(Region)
class RegionAdmin(ScopedModelAdmin):
    list_display = ("code", "name", "brand")
    list_filter = ("brand",)
    search_fields = ("code", "name")
    write_roles = frozenset({"hq", "brand_operator"})


@admin.register(Branch)
class BranchAdmin(ScopedModelAdmin):
    list_display = ("code", "name", "region")
    write_roles = frozenset({"hq", "brand_operator", "region_manager"})


@admin.register(Store)
class StoreAdmin(ScopedModelAdmin):
    list_display = ("code", "name", "brand", "region", "kind", "city", "is_active")
    list_filter = ("brand", "kind", "is_active")
    search_fields = ("code", "name", "city")
    list_select_related = ("brand", "region")
    write_roles = frozenset({"hq", "brand_operator", "region_manager"})


@admin.register(StaffProfile)
class StaffProfileAdmin(ScopedModelAdmin):
    list_display = ("user", "role", "brand", "region", "store", "guide")
    list_filter = ("role",)
    raw_id_fields = ("user", "guide")


@admin.register(StaffPasswordReset)
class StaffPasswordResetAdmin(ScopedModelAdmin):
    """The audit of managers' password resets: read only, for everyone (superusers too)."""

    list_display = ("created_at", "reset_by", "user", "guide", "channel")
    list_filter = ("channel",)
    search_fields = ("reset_by__username", "user__username", "guide__code", "guide__name")
    list_select_related = ("reset_by", "user", "guide")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
