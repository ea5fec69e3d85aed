"""Admin for members (memberships inline), guide bindings, binding policies, points, merges, and guides' phones."""

from django.contrib import admin
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from members.models import (
    BindingPolicy,
    BrandMembership,
    GuideBinding,
    JoinChannel,
    Member,
    MemberMerge,
    MemberTag,
    PointsBalance,
    PointsEntry,
    TagSource,
    TagValue,
)
from members.selectors import PhoneVisibility, guide_phone_visible, member_journey_states, member_preferences
from retail_crm.admin_scoping import ScopedModelAdmin
from retail_crm.models import Brand, Guide
from retail_crm.phones import InvalidPhone, mask_phone, normalise_phone
from retail_crm.scoping import actor_for, scoped


class BrandMembershipInline(admin.TabularInline):
    model = BrandMembership
    extra = 0
    readonly_fields = ("brand", "joined_at", "join_channel", "store", "tier", "points")
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        # Each membership's points balance in the same query (its balance row; 0 without one).
        balance = PointsBalance.objects.filter(member=OuterRef("member_id"), brand=OuterRef("brand_id"))
        return super().get_queryset(request).annotate(
            points_balance=Coalesce(Subquery(balance.values("balance")[:1]), 0))

    @admin.display(description=_("points"))
    def points(self, obj) -> int:
        return obj.points_balance


class MemberBrandFilter(admin.SimpleListFilter):
    """Members who joined a brand; offers only the brands the viewer's scope covers."""

    title = _("brand")
    parameter_name = "brand"

    def lookups(self, request, model_admin):
        return [(str(brand.pk), brand.name) for brand in scoped(Brand.objects.order_by("code"), request.user)]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        if not self.value().isdigit():
            return queryset.none()
        return queryset.filter(pk__in=BrandMembership.objects.filter(brand_id=int(self.value())).values("member_id"))


class MemberJoinChannelFilter(admin.SimpleListFilter):
    """Members who joined any brand through a channel."""

    title = _("join channel")
    parameter_name = "join_channel"

    def lookups(self, request, model_admin):
        return JoinChannel.choices

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(pk__in=BrandMembership.objects.filter(join_channel=self.value()).values("member_id"))


@admin.register(Member)
class MemberAdmin(ScopedModelAdmin):
    """Members in the viewer's scope. Phones are shown only as members.selectors.PhoneVisibility allows.

    Searching: a term that reads as a phone number is normalised and matched exactly
    (never a LIKE on the phone column); anything else matches the code prefix or the name.
    """

    list_filter = (MemberBrandFilter, MemberJoinChannelFilter, "gender",
                   ("merged_into", admin.EmptyFieldListFilter))
    search_fields = ("^code", "name")
    search_help_text = _("Member code, name, or a whole phone number")
    raw_id_fields = ("merged_into",)
    list_per_page = 50
    inlines = [BrandMembershipInline]
    exclude = ("phone", "unionid", "openid", "oa_openid")

    def _phone_column(self, request):
        # One callable per request: Django compares readonly fields by identity when building the form.
        column = getattr(request, "_member_phone_column", None)
        if column is not None:
            return column

        def phone(obj):
            visibility = getattr(request, "_member_phone_visibility", None)
            if visibility is None or not visibility.covers(obj):
                visibility = PhoneVisibility(actor=actor_for(request.user), user=request.user, members=[obj])
            return visibility.phone(obj)
        phone.short_description = _("phone")
        request._member_phone_column = phone
        return phone

    def _preferences_column(self, request):
        """Stated sizes and preferences beside the values the purchase rules inferred (tags in the viewer's scope)."""
        column = getattr(request, "_member_preferences_column", None)
        if column is not None:
            return column

        def preferences(obj):
            if obj is None or obj.pk is None:
                return "–"
            tags = MemberTag.objects.filter(
                member=obj, source=TagSource.RULE,
                tag_value__in=scoped(TagValue.objects.all(), actor_for(request.user))) \
                .select_related("tag_value__tag_group__brand")
            rows = member_preferences(member=obj, tags=tags)
            stated, inferred = gettext("stated by the member"), gettext("Inferred from purchases")
            return format_html("<table>{}</table>", format_html_join("", (
                "<tr><th>{}</th><td>{} <small>({})</small></td><td>{}: {}</td></tr>"), (
                (r.label, ", ".join(r.declared) or "–", stated, inferred,
                 ", ".join(f"{i.value} ({i.brand_code})" for i in r.inferred) or "–") for r in rows)))
        preferences.short_description = _("sizes and preferences")
        request._member_preferences_column = preferences
        return preferences

    def _journeys_column(self, request):
        """The member's journeys of the brands in the viewer's scope: status, the current step and when it runs,
        entered at, why it ended."""
        column = getattr(request, "_member_journeys_column", None)
        if column is not None:
            return column

        def journeys(obj):
            if obj is None or obj.pk is None:
                return "–"
            brands = scoped(Brand.objects.all(), actor_for(request.user)).values("pk")
            states = member_journey_states(member=obj, brand_ids=brands)
            if not states:
                return gettext("Not on any journey.")
            when = "%Y-%m-%d %H:%M"

            def local(value):
                return timezone.localtime(value).strftime(when) if value else "–"

            header = format_html("<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
                                 gettext("journey"), gettext("status"), gettext("Current step"),
                                 gettext("next at"), gettext("entered at"), gettext("Exit reason"))
            rows = format_html_join("", "<tr data-journey=\"{}\"><td>{} ({})</td><td>{}</td><td>{}</td><td>{}</td>"
                                        "<td>{}</td><td>{}</td></tr>", (
                (s.journey_id, s.journey_name, s.brand_code, s.status_label,
                 f"{s.next_position}. {s.next_step_label}" if s.next_step else "–",
                 local(s.next_run_at), local(s.entered_at), s.exit_reason_label or "–") for s in states))
            return format_html("<table>{}{}</table>", header, rows)
        journeys.short_description = _("journeys")
        request._member_journeys_column = journeys
        return journeys

    def get_list_display(self, request):
        return ("code", "name", self._phone_column(request), "gender", "created_at", "merged_into")

    def get_urls(self):
        from members.admin.importing import member_import_urls  # the "Import members" upload page

        return member_import_urls(self) + super().get_urls()

    def get_readonly_fields(self, request, obj=None):
        return (self._phone_column(request), self._preferences_column(request), self._journeys_column(request))

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        # One visibility decision for the whole page (two queries), not one per row.
        request._member_phone_visibility = PhoneVisibility(actor=actor_for(request.user), user=request.user,
                                                           members=changelist.result_list)
        return changelist

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            phone = normalise_phone(search_term)
        except InvalidPhone:
            return results, may_have_duplicates
        return results | queryset.filter(phone=phone), may_have_duplicates


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


@admin.register(Guide)
class GuideAdmin(ScopedModelAdmin):
    """Guides in the viewer's scope (registered here, not in retail_crm, because the phone rule is the members').
    A guide's own phone is shown (and editable) whole only where the members'
    rule allows (members.selectors.guide_phone_visible); anyone else reads it masked and cannot change it."""

    list_display = ("code", "name", "store", "role", "hired_at", "left_at")
    list_filter = ("role", "store__brand")
    search_fields = ("code", "name")
    list_select_related = ("store",)
    raw_id_fields = ("user",)
    write_roles = frozenset({"hq", "brand_operator", "region_manager", "store_manager"})

    def _phone_hidden(self, request, obj) -> bool:
        """A stored guide's phone the viewer may not see whole (a new guide's phone is typed by the viewer)."""
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
