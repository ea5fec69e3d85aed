from django.contrib import admin

from members.models import BrandMembership, GuideBinding, Member
from retail_crm.admin_scoping import ScopedModelAdmin
from retail_crm.phones import mask_phone


class BrandMembershipInline(admin.TabularInline):
    model = BrandMembership
    extra = 0
    readonly_fields = ("brand", "joined_at", "join_channel", "store", "tier")
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Member)
class MemberAdmin(ScopedModelAdmin):
    list_display = ("code", "name", "masked_phone", "gender", "created_at")
    search_fields = ("code",)
    list_per_page = 50
    inlines = [BrandMembershipInline]
    exclude = ("phone", "unionid", "openid")
    readonly_fields = ("masked_phone",)

    @admin.display(description="phone")
    def masked_phone(self, obj):
        # Personal data: masked in the admin; whole numbers only through role-checked views.
        return mask_phone(obj.phone)


@admin.register(GuideBinding)
class GuideBindingAdmin(ScopedModelAdmin):
    list_display = ("member", "brand", "guide", "started_at", "ended_at", "reason")
    list_filter = ("reason", "brand")
    raw_id_fields = ("member", "guide")
    list_select_related = ("member", "brand", "guide")
    write_roles = frozenset()
