"""Admin for commission: rules (HQ and brand operators write), the ledger (read-only: rows are posted by
attribution and withdrawals, never typed), and withdrawal requests with approve / reject / mark-paid actions
that go through guides.withdrawals, so the same approver rules apply (in scope, not one's own). Registered by
the import in guides/admin.py.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from guides import withdrawals as service
from guides.models import CommissionEntry, CommissionRule, WithdrawalRequest
from retail_crm.admin_scoping import READ_ONLY, ScopedModelAdmin
from retail_crm.errors import ApplicationError

RULE_ROLES = frozenset({"hq", "brand_operator"})


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
