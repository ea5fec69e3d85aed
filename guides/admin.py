"""Admin of the guides app: the workbench's library, materials and tasks (HQ and brand operators write), read-only
assignments and shares, and guide tokens with rotate / revoke actions. Scoped like every admin page.

A brand operator sees group-wide (HQ) materials and tasks (the scope rule lets every brand use them) but may
write only their own brand's; HQ writes both. Tasks change their audience and assignees only as drafts: once
published, the assignments were made from them.

Commission: rules (HQ and brand operators write), the ledger (read-only: rows are posted by attribution and
withdrawals, never typed), and withdrawal requests with approve / reject / mark-paid actions that go through
guides.withdrawals, so the same approver rules apply (in scope, not one's own).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from guides import library
from guides import withdrawals as service
from guides.models import (
    CommissionEntry,
    CommissionRule,
    GuideTask,
    GuideToken,
    Material,
    Share,
    TaskAssignment,
    WithdrawalRequest,
)
from guides.services import guide_token_revoke, guide_token_rotate
from retail_crm.admin_scoping import READ_ONLY, ScopedModelAdmin
from retail_crm.errors import ApplicationError
from retail_crm.models import RetailGroup
from retail_crm.scoping import scoped
from segments.models import Segment

LIBRARY_ROLES = frozenset({"hq", "brand_operator"})
TOKEN_ROLES = frozenset({"hq", "brand_operator", "region_manager", "store_manager"})
RULE_ROLES = frozenset({"hq", "brand_operator"})


class _LibraryAdmin(ScopedModelAdmin):
    """Materials and tasks: group-wide rows are HQ's to write, brand rows their brand's."""

    write_roles = LIBRARY_ROLES

    def _may_write(self, request, obj=None) -> bool:
        if not super()._may_write(request, obj):
            return False
        if obj is not None and obj.brand_id is None and not request.user.is_superuser:
            return self._actor(request).role == "hq"
        return True

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "brand" and field is not None and self._actor(request).role == "brand_operator":
            field.required = True  # a brand operator's rows belong to their brand
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        related = db_field.related_model
        if getattr(related, "scope_paths", None) is not None and not request.user.is_superuser:
            kwargs["queryset"] = scoped(related._default_manager.all(), request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def _group_of(self, request, obj):
        if obj.brand_id is not None:
            return obj.brand.group
        actor = self._actor(request)
        return RetailGroup.objects.filter(pk=actor.group_id).first()

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.admin_group = staticmethod(lambda instance: self._group_of(request, instance))
        return form

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        obj.group = self._group_of(request, obj)
        super().save_model(request, obj, form, change)


class MaterialForm(forms.ModelForm):
    video_url = forms.URLField(label=_("video link"), required=False, assume_scheme="https")

    class Meta:
        model = Material
        fields = ("brand", "kind", "title", "body", "image", "video_url", "product", "is_active")

    def clean(self):
        data = super().clean()
        self.instance.brand = data.get("brand")
        group = self.admin_group(self.instance)
        if group is None:
            raise forms.ValidationError(_("Your login belongs to no group."))
        errors = library.material_errors(group=group, kind=data.get("kind", ""), title=data.get("title", ""),
                                         brand=data.get("brand"), body=data.get("body", ""),
                                         image=data.get("image"), video_url=data.get("video_url", ""),
                                         product=data.get("product"))
        for field, messages_ in errors.items():
            if field not in self.errors:  # Django's own message for the field already says it
                self.add_error(field if field in self.fields else None, messages_)
        return data


@admin.register(Material)
class MaterialAdmin(_LibraryAdmin):
    form = MaterialForm
    list_display = ("title", "brand", "kind", "product", "is_active", "created_at")
    list_filter = ("kind", "brand", "is_active")
    search_fields = ("title", "body")
    raw_id_fields = ("product",)
    list_select_related = ("brand", "product")


class GuideTaskForm(forms.ModelForm):
    audience_segments = forms.MultipleChoiceField(
        label=_("audience RFML classes"), choices=Segment.choices, required=False,
        widget=forms.CheckboxSelectMultiple, help_text=_("Empty: every RFML class"))

    class Meta:
        model = GuideTask
        fields = ("brand", "title", "copy_text", "materials", "product", "live_session", "audience_tags",
                  "audience_segments", "assign_brands", "assign_regions", "assign_stores", "starts_at", "deadline")

    def clean(self):
        data = super().clean()

        def current(name):
            # Fields frozen after publishing are not on the form: check the stored values.
            if name in self.fields:
                return data.get(name)
            value = getattr(self.instance, name, None)
            return list(value.all()) if hasattr(value, "all") and self.instance.pk else value

        brand = current("brand")
        self.instance.brand = brand
        group = self.admin_group(self.instance)
        if group is None:
            raise forms.ValidationError(_("Your login belongs to no group."))
        errors = library.task_errors(
            group=group, title=data.get("title", ""), copy_text=data.get("copy_text", ""),
            starts_at=current("starts_at"), deadline=data.get("deadline"), brand=brand,
            materials=data.get("materials") or [], product=data.get("product"),
            live_session=data.get("live_session"), audience_segments=current("audience_segments") or [],
            assign_brands=current("assign_brands") or [], assign_regions=current("assign_regions") or [],
            assign_stores=current("assign_stores") or [])
        for field, messages_ in errors.items():
            if field not in self.errors:  # Django's own message for the field already says it
                self.add_error(field if field in self.fields else None, messages_)
        return data


@admin.register(GuideTask)
class GuideTaskAdmin(_LibraryAdmin):
    form = GuideTaskForm
    list_display = ("title", "brand", "status", "starts_at", "deadline", "assigned", "executed")
    list_filter = ("status", "brand")
    search_fields = ("title", "copy_text")
    raw_id_fields = ("product", "live_session")
    filter_horizontal = ("materials", "audience_tags", "assign_brands", "assign_regions", "assign_stores")
    list_select_related = ("brand",)
    actions = ["publish", "close"]
    FROZEN_WHEN_PUBLISHED = ("brand", "audience_tags", "audience_segments", "assign_brands", "assign_regions",
                             "assign_stores", "starts_at")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_assigned=Count("assignments", distinct=True),
            n_executed=Count("assignments", filter=Q(assignments__executed_at__isnull=False), distinct=True))

    @admin.display(description=_("assigned"), ordering="n_assigned")
    def assigned(self, obj):
        return obj.n_assigned

    @admin.display(description=_("executed"), ordering="n_executed")
    def executed(self, obj):
        return obj.n_executed

    def get_readonly_fields(self, request, obj=None):
        readonly = ["status"]
        if obj is not None and obj.status != GuideTask.Status.DRAFT:
            readonly += self.FROZEN_WHEN_PUBLISHED
        return readonly

    def has_delete_permission(self, request, obj=None):
        # A published task carries its execution history: close it instead.
        return super().has_delete_permission(request, obj) and (obj is None or obj.status == GuideTask.Status.DRAFT)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def _writable(self, request, queryset):
        return [task for task in queryset if self._may_write(request, task)]

    @admin.action(description=_("Publish: assign to the guides"), permissions=["change"])
    def publish(self, request, queryset):
        for task in self._writable(request, queryset):
            try:
                added = library.task_publish(task=task)
            except ApplicationError as error:
                self.message_user(request, f"{task.title}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, ngettext("%(task)s: %(n)d guide assigned.",
                                                    "%(task)s: %(n)d guides assigned.", added)
                                  % {"task": task.title, "n": added}, messages.SUCCESS)

    @admin.action(description=_("Close: stop execution"), permissions=["change"])
    def close(self, request, queryset):
        for task in self._writable(request, queryset):
            library.task_close(task=task)
        self.message_user(request, _("Closed."), messages.SUCCESS)


class _ReadOnlyAdmin(ScopedModelAdmin):
    write_roles = frozenset()

    def has_add_permission(self, request):
        return False


@admin.register(TaskAssignment)
class TaskAssignmentAdmin(_ReadOnlyAdmin):
    list_display = ("task", "guide", "assigned_at", "audience_size", "executed_at", "reached")
    list_filter = ("task__brand", ("executed_at", admin.EmptyFieldListFilter))
    search_fields = ("task__title", "guide__code", "guide__name")
    list_select_related = ("task", "guide")
    raw_id_fields = ("task", "guide", "share")


@admin.register(Share)
class ShareAdmin(_ReadOnlyAdmin):
    list_display = ("created_at", "target", "guide", "staff_user", "brand", "product", "material", "task")
    list_filter = ("target", "brand")
    search_fields = ("code", "guide__code", "guide__name")
    date_hierarchy = "created_at"
    list_select_related = ("guide", "staff_user", "brand", "product", "material", "task")
    raw_id_fields = ("guide_token", "guide", "staff_user", "product", "material", "live_session", "task")


@admin.register(GuideToken)
class GuideTokenAdmin(ScopedModelAdmin):
    """Tokens are issued by the workbench; here managers rotate or revoke them (e.g. a lost printed code)."""

    list_display = ("guide", "staff_user", "created_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("guide__code", "guide__name", "staff_user__username")
    list_select_related = ("guide", "staff_user")
    readonly_fields = ("token", "guide", "staff_user", "created_at", "revoked_at")
    actions = ["rotate", "revoke"]
    write_roles = TOKEN_ROLES

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # shares and bindings point at tokens: history is kept

    @admin.action(description=_("Issue a new token to each owner (old ones keep working)"), permissions=["change"])
    def rotate(self, request, queryset):
        owners = {(t.guide_id, t.staff_user_id): t for t in queryset.select_related("guide", "staff_user")}
        for token in owners.values():
            if token.guide_id is not None:
                guide_token_rotate(guide=token.guide)
            else:
                guide_token_rotate(staff_user=token.staff_user)
        self.message_user(request, ngettext("%(n)d new token issued.", "%(n)d new tokens issued.", len(owners))
                          % {"n": len(owners)}, messages.SUCCESS)

    @admin.action(description=_("Revoke: stop binding new members"), permissions=["change"])
    def revoke(self, request, queryset):
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            guide_token_revoke(token=token)
            revoked += 1
        self.message_user(request, ngettext("%(n)d token revoked.", "%(n)d tokens revoked.", revoked)
                          % {"n": revoked}, messages.SUCCESS)


# ---------------------------------------------------------------------------- commission and withdrawals


@admin.register(CommissionRule)
class CommissionRuleAdmin(ScopedModelAdmin):
    """Rates per brand, optionally per product category and/or channel; the most specific active rule wins."""

    list_display = ("brand", "category", "channel", "rate", "is_active")
    list_filter = ("brand", "channel", "is_active")
    search_fields = ("category",)
    list_select_related = ("brand",)
    write_roles = RULE_ROLES


@admin.register(CommissionEntry)
class CommissionEntryAdmin(ScopedModelAdmin):
    """The append-only ledger: corrections are new rows, so nobody edits or deletes here."""

    list_display = ("created_at", "guide", "staff_user", "brand", "kind", "amount", "order", "rate", "available_at")
    list_filter = ("kind", "brand")
    search_fields = ("guide__code", "staff_user__username", "order__order_no")
    date_hierarchy = "created_at"
    list_select_related = ("guide", "staff_user", "brand", "order")
    raw_id_fields = ("guide", "staff_user", "order", "credit", "withdrawal")
    readonly_fields = [f.name for f in CommissionEntry._meta.fields]
    write_roles = READ_ONLY


def _decide(modeladmin, request, queryset, decide, done_label):
    done, refused = 0, []
    for withdrawal in queryset.order_by("pk"):
        try:
            decide(withdrawal=withdrawal, user=request.user)
            done += 1
        except ApplicationError as exc:
            refused.append(f"#{withdrawal.pk}: {exc.message}")
    if done:
        modeladmin.message_user(request, _("%(count)d withdrawal(s) %(done)s.") % {"count": done, "done": done_label},
                                messages.SUCCESS)
    for line in refused:
        modeladmin.message_user(request, line, messages.ERROR)


@admin.register(WithdrawalRequest)
class WithdrawalRequestAdmin(ScopedModelAdmin):
    """Requests in scope; status changes only through the actions (someone other than the requester)."""

    list_display = ("pk", "guide", "staff_user", "brand", "amount", "status", "requested_at", "decided_by",
                    "decided_at", "paid_at")
    list_filter = ("status", "brand")
    search_fields = ("guide__code", "staff_user__username")
    date_hierarchy = "requested_at"
    list_select_related = ("guide", "staff_user", "brand", "decided_by")
    readonly_fields = [f.name for f in WithdrawalRequest._meta.fields]
    write_roles = READ_ONLY
    actions = ["approve", "reject", "mark_paid"]

    @admin.action(description=_("Approve selected withdrawals"))
    def approve(self, request, queryset):
        _decide(self, request, queryset, service.withdrawal_approve, _("approved"))

    @admin.action(description=_("Reject selected withdrawals (the money returns to the balance)"))
    def reject(self, request, queryset):
        _decide(self, request, queryset, service.withdrawal_reject, _("rejected"))

    @admin.action(description=_("Mark selected withdrawals paid"))
    def mark_paid(self, request, queryset):
        _decide(self, request, queryset, service.withdrawal_mark_paid, _("marked paid"))
