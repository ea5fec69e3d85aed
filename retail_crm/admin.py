from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from retail_crm.admin_scoping import ScopedModelAdmin
from retail_crm.models import Branch, Brand, Guide, Region, RetailGroup, StaffPasswordReset, StaffProfile, Store
from retail_crm.phones import mask_phone
from retail_crm.scoping import actor_for


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


@admin.register(Guide)
class GuideAdmin(ScopedModelAdmin):
    """Guides in the viewer's scope. A guide's own phone is shown (and editable) whole only where the members'
    rule allows (members.selectors.guide_phone_visible); anyone else reads it masked and cannot change it."""

    list_display = ("code", "name", "store", "role", "hired_at", "left_at")
    list_filter = ("role", "store__brand")
    search_fields = ("code", "name")
    list_select_related = ("store",)
    raw_id_fields = ("user",)
    write_roles = frozenset({"hq", "brand_operator", "region_manager", "store_manager"})

    def _phone_hidden(self, request, obj) -> bool:
        """A stored guide's phone the viewer may not see whole (a new guide's phone is typed by the viewer)."""
        from members.selectors import guide_phone_visible

        if obj is None or not obj.phone:
            return False
        return not guide_phone_visible(actor=actor_for(request.user), user=request.user, guide=obj)

    def _masked_phone_column(self, request):
        # One callable per request: Django compares readonly fields by identity when building the form.
        column = getattr(request, "_guide_phone_column", None)
        if column is None:
            def phone(obj):
                return mask_phone(obj.phone)
            phone.short_description = _("phone")
            column = request._guide_phone_column = phone
        return column

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or ())
        return [*exclude, "phone"] if self._phone_hidden(request, obj) else exclude

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, self._masked_phone_column(request)] if self._phone_hidden(request, obj) else readonly


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
