from django.contrib import admin

from members.models import BindingPolicy, BrandMembership, GuideBinding, Member, MemberMerge, PointsEntry
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
    list_display = ("code", "name", "masked_phone", "gender", "created_at", "merged_into")
    list_filter = (("merged_into", admin.EmptyFieldListFilter),)
    search_fields = ("code",)
    raw_id_fields = ("merged_into",)
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


@admin.register(BindingPolicy)
class BindingPolicyAdmin(ScopedModelAdmin):
    list_display = ("brand", "protect_first_binding", "service_lapse_days")
    write_roles = frozenset({"hq", "brand_operator"})


@admin.register(PointsEntry)
class PointsEntryAdmin(ScopedModelAdmin):
    list_display = ("member", "brand", "delta", "reason", "order", "created_at")
    list_filter = ("reason", "brand")
    raw_id_fields = ("member", "order")
    list_select_related = ("member", "brand")
    write_roles = frozenset()  # a ledger: corrections are new entries made through services


@admin.register(MemberMerge)
class MemberMergeAdmin(ScopedModelAdmin):
    list_display = ("survivor", "absorbed", "reason", "merged_by", "merged_at")
    raw_id_fields = ("survivor", "absorbed", "merged_by")
    write_roles = frozenset()

# Each area registers its own admin classes.
from members import admin_events, admin_tags, admin_wecom  # noqa: E402,F401
