"""Admin for tags: HQ and brand operators define tag groups, values and rules here, without code.

A rule is a form (tag group, field, aggregation, threshold, window, category
filter); saving it takes effect at the next recompute, which the "recompute
now" action queues at once. A behaviour tag rule (tag value, event kind,
products or categories, count, window) is applied as the members' events
arrive and nightly; its "recompute now" action re-evaluates its brands at once.
Member tags are read-only here: hand tags go through the staff API (with a
reason), computed ones through the recompute.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from members.models import BehaviourTagRule, MemberTag, TagGroup, TagRule, TagValue
from retail_crm.admin_scoping import ScopedModelAdmin
from retail_crm.scoping import actor_for

DEFINERS = frozenset({"hq", "brand_operator"})


class TagValueInline(admin.TabularInline):
    model = TagValue
    extra = 0
    fields = ("code", "name", "sort")


class TagGroupForm(forms.ModelForm):
    class Meta:
        model = TagGroup
        fields = ("group", "brand", "code", "name", "multi_valued")

    def clean(self):
        cleaned = super().clean()
        actor = getattr(self, "actor", None)
        # Group-wide groups concern every brand: only HQ (or a platform operator) defines them.
        if actor is not None and not actor.is_superuser and actor.role != "hq" and not cleaned.get("brand"):
            self.add_error("brand", _("Choose your brand; only HQ defines group-wide tag groups."))
        brand = cleaned.get("brand")
        if brand is not None and cleaned.get("group") is not None and brand.group_id != cleaned["group"].pk:
            self.add_error("brand", _("The brand belongs to another group."))
        return cleaned


@admin.register(TagGroup)
class TagGroupAdmin(ScopedModelAdmin):
    form = TagGroupForm
    list_display = ("display_name", "code", "brand", "multi_valued", "created_at")
    list_filter = ("multi_valued", "brand")
    search_fields = ("code", "name")
    list_select_related = ("brand",)
    inlines = [TagValueInline]
    write_roles = DEFINERS

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.actor = actor_for(request.user)
        return form

    @admin.display(description=_("name"), ordering="name")
    def display_name(self, obj: TagGroup) -> str:
        return obj.label


@admin.register(TagValue)
class TagValueAdmin(ScopedModelAdmin):
    list_display = ("display_name", "code", "tag_group", "sort")
    list_filter = ("tag_group",)
    search_fields = ("code", "name")
    list_select_related = ("tag_group",)
    write_roles = DEFINERS

    @admin.display(description=_("name"), ordering="name")
    def display_name(self, obj: TagValue) -> str:
        return obj.label


@admin.action(description=_("Recompute the tags of these rules' brands now"))
def recompute_now(modeladmin, request, queryset):
    from members.tasks import tags_recompute_brand

    brand_ids = sorted(set(queryset.values_list("brand_id", flat=True)))
    for brand_id in brand_ids:
        transaction.on_commit(lambda brand_id=brand_id: tags_recompute_brand.delay(brand_id))
    modeladmin.message_user(request, _("Recompute queued for %(count)d brand(s).") % {"count": len(brand_ids)},
                            messages.SUCCESS)


@admin.register(TagRule)
class TagRuleAdmin(ScopedModelAdmin):
    list_display = ("display_name", "brand", "tag_group", "field", "aggregation", "threshold", "lookback_days",
                    "category_filter", "is_active", "sort")
    list_filter = ("is_active", "brand", "field", "aggregation")
    list_editable = ("is_active",)
    search_fields = ("name",)
    list_select_related = ("brand", "tag_group")
    actions = [recompute_now]
    write_roles = DEFINERS
    fieldsets = (
        (None, {"fields": ("brand", "tag_group", "name", "is_active", "sort")}),
        (_("What to compute"), {"fields": ("field", "aggregation", "threshold", "min_quantity")}),
        (_("Which lines"), {"fields": ("lookback_days", "category_filter", "category_mode")}),
        (_("Share of spend"), {"fields": ("compare_value", "value_code", "value_name")}),
        (_("Bands"), {"fields": ("bands",)}),
    )

    @admin.display(description=_("name"), ordering="name")
    def display_name(self, obj: TagRule) -> str:
        return obj.label


@admin.action(description=_("Recompute the behaviour tags of these rules' brands now"))
def behaviour_recompute_now(modeladmin, request, queryset):
    from members.tasks import behaviour_tags_recompute_brand

    brand_ids = sorted(set(queryset.values_list("brand_id", flat=True)))
    for brand_id in brand_ids:
        transaction.on_commit(lambda brand_id=brand_id: behaviour_tags_recompute_brand.delay(brand_id))
    modeladmin.message_user(request, _("Recompute queued for %(count)d brand(s).") % {"count": len(brand_ids)},
                            messages.SUCCESS)


@admin.register(BehaviourTagRule)
class BehaviourTagRuleAdmin(ScopedModelAdmin):
    list_display = ("name", "brand", "tag_value", "kind", "min_count", "max_count", "window_days",
                    "product_codes", "categories", "is_active")
    list_filter = ("is_active", "brand", "kind")
    list_editable = ("is_active",)
    search_fields = ("name",)
    list_select_related = ("brand", "tag_value__tag_group")
    actions = [behaviour_recompute_now]
    write_roles = DEFINERS
    fieldsets = (
        (None, {"fields": ("brand", "tag_value", "name", "is_active")}),
        (_("Which events"), {"fields": ("kind", "product_codes", "categories")}),
        (_("How many, how recently"), {"fields": ("min_count", "max_count", "window_days")}),
    )

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "tag_value" and field is not None:
            # Only values a behaviour rule can give: multi-valued groups of a brand.
            field.queryset = field.queryset.filter(tag_group__brand__isnull=False, tag_group__multi_valued=True) \
                .select_related("tag_group")
        return field


@admin.register(MemberTag)
class MemberTagAdmin(ScopedModelAdmin):
    list_display = ("member", "tag_value", "source", "assigned_at", "display_reason", "assigned_by")
    list_filter = ("source", "tag_value__tag_group")
    search_fields = ("=member__code",)
    raw_id_fields = ("member", "tag_value", "assigned_by")
    list_select_related = ("member", "tag_value__tag_group", "assigned_by")
    show_full_result_count = False
    list_per_page = 50
    write_roles = frozenset()

    @admin.display(description=_("reason"))
    def display_reason(self, obj: MemberTag) -> str:
        return obj.reason_text
