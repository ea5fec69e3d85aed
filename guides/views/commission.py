"""Workbench pages for commission (分佣) and withdrawals (提现): my balance and ledger, asking to withdraw,
and the approvers' review list. Views parse input and call guides.withdrawals; they hold no rules.

Every staff login has a ledger: a guide's (or a store manager's) is their guide row's, an office staff
member's (all-staff distribution) is their user's. The withdrawal form carries a hidden request key made
when the form is rendered, so a double tap (or a resent POST) makes one request.
"""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from guides import withdrawals as service
from guides.errors import GuidesErrorCode
from guides.models import CommissionEntry, WithdrawalRequest
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.scoping import actor_for

LEDGER_PAGE = 30
REVIEW_PAGE = 50
DECISIONS = {"approve": service.withdrawal_approve, "reject": service.withdrawal_reject,
             "paid": service.withdrawal_mark_paid}


class WithdrawalForm(forms.Form):
    amount = forms.DecimalField(label=gettext_lazy("Amount (CNY)"), max_digits=14, decimal_places=2,
                                min_value=service.MIN_AMOUNT,
                                widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "0.01",
                                                                "min": "0.01"}))
    request_key = forms.CharField(widget=forms.HiddenInput, max_length=service.MAX_KEY_LENGTH)


class DecisionForm(forms.Form):
    note = forms.CharField(label=gettext_lazy("Note"), max_length=200, required=False)


class RejectForm(forms.Form):
    """Rejecting on the workbench needs a reason: it is stored on the request and shown to the requester."""

    note = forms.CharField(label=gettext_lazy("Reason for rejecting"), max_length=200,
                           error_messages={"required": gettext_lazy("Give the reason for rejecting; the "
                                                                    "requester will see it.")},
                           widget=forms.Textarea(attrs={"rows": 2, "maxlength": 200}))

    def clean_note(self) -> str:
        note = self.cleaned_data["note"].strip()
        if not note:
            raise forms.ValidationError(self.fields["note"].error_messages["required"], code="required")
        return note


def _owner(request) -> service.CommissionOwner:
    owner = service.commission_owner_for(request.user)
    if owner is None:
        raise PermissionDenied
    return owner


def _owner_kwargs(owner: service.CommissionOwner) -> dict:
    return {"guide": owner.guide_id} if owner.guide_id is not None else {"staff_user": owner.staff_user_id}


def _reason(entry: CommissionEntry) -> str:
    """Why a ledger row is there, in a sentence."""
    from attribution.selectors import credit_reason

    kind = CommissionEntry.Kind
    if entry.kind == kind.WITHDRAWAL:
        return _("Withdrawal request #%(id)s (%(status)s)") % {
            "id": entry.withdrawal_id, "status": entry.withdrawal.get_status_display() if entry.withdrawal else "-"}
    if entry.kind == kind.WITHDRAWAL_RETURN:
        return _("Withdrawal request #%(id)s was rejected: the money is back.") % {"id": entry.withdrawal_id}
    if entry.credit is not None:
        return credit_reason(entry.credit.rule, entry.credit.inputs or {})
    if entry.kind == kind.REVERSAL:
        return _("The order was refunded: the commission on your share is taken back.")
    return _("Bought through your share link: distribution commission.")


def _page(request, queryset, size):
    return Paginator(queryset, size).get_page(request.GET.get("page"))


def _render_commission(request, owner: service.CommissionOwner, form: WithdrawalForm, *, status: int = 200):
    actor = actor_for(request.user)
    now = timezone.now()
    balance = service.commission_balance(**_owner_kwargs(owner), at=now)
    ledger = _page(request, service.commission_ledger(owner=owner), LEDGER_PAGE)
    rows = [{"entry": e, "reason": _reason(e), "pending": e.kind == CommissionEntry.Kind.EARN and e.available_at > now,
             "rate": f"{(e.rate * 100).normalize():f}%" if e.rate else ""} for e in ledger]
    context = {
        "wb_tab": "me",
        "balance": balance,
        "ledger": ledger,
        "rows": rows,
        "withdrawals": service.withdrawal_list_own(owner=owner)[:10],
        "form": form,
        "may_review": service.may_decide_withdrawals(actor),
        "is_office_staff": owner.guide_id is None,
    }
    return render(request, "guides/commission.html", context, status=status)


def _new_form() -> WithdrawalForm:
    return WithdrawalForm(initial={"request_key": uuid.uuid4().hex})


@login_required
@require_GET
def commission(request):
    """My balance (pending / available / withdrawn), my ledger and the withdrawal form."""
    return _render_commission(request, _owner(request), _new_form())


@login_required
@require_POST
def commission_withdraw(request):
    """Ask to withdraw; field errors come back on the page (400, or 409 when the balance says no)."""
    owner = _owner(request)
    form = WithdrawalForm(request.POST)
    if not form.is_valid():
        if "request_key" in form.errors:
            # A stale or tampered form: give it a fresh key, so sending it again makes one request.
            data = request.POST.copy()
            data["request_key"] = uuid.uuid4().hex
            form = WithdrawalForm(data)
            form.is_valid()
            form.add_error(None, _("The form had expired; check the amount and send it again."))
        return _render_commission(request, owner, form, status=400)
    try:
        result = service.withdrawal_request(**_owner_kwargs(owner), amount=form.cleaned_data["amount"],
                                            request_key=form.cleaned_data["request_key"])
    except ApplicationError as exc:
        form.add_error(*_form_error(exc, owner))
        return _render_commission(request, owner, form, status=exc.status)
    if result.created:
        messages.success(request, _("Withdrawal of ¥%(amount)s requested; it now waits for approval.")
                         % {"amount": result.withdrawal.amount})
    else:
        messages.info(request, _("This withdrawal was already requested (¥%(amount)s); nothing was added.")
                      % {"amount": result.withdrawal.amount})
    return redirect("workbench:commission")


def _form_error(exc: ApplicationError, owner: service.CommissionOwner) -> tuple[str | None, str]:
    """The service's refusal as a translated message on the right field."""
    if exc.code == GuidesErrorCode.INSUFFICIENT_BALANCE:
        available = max(service.commission_balance(**_owner_kwargs(owner)).available, service.ZERO)
        return "amount", _("Only ¥%(amount)s is available to withdraw.") % {"amount": available}
    if exc.code == GuidesErrorCode.REQUEST_KEY_REUSED:
        return None, _("This form was already used for another amount; reload the page and try again.")
    if exc.code == GuidesErrorCode.INVALID_AMOUNT:
        return "amount", _("Enter an amount of more than 0 with at most two decimal places.")
    return None, exc.message


@login_required
@require_GET
def withdrawal_detail(request, pk: int):
    """One withdrawal: mine, or one I may decide (404 otherwise)."""
    try:
        withdrawal = service.withdrawal_visible(user=request.user, pk=pk)
    except ApplicationError:
        raise Http404 from None
    actions = service.withdrawal_actions_for(withdrawal=withdrawal, user=request.user)
    context = {"wb_tab": "me", "withdrawal": withdrawal, "mine": actions.own, "actions": actions,
               "entries": withdrawal.entries.order_by("pk"), "decision_form": DecisionForm(),
               "reject_form": RejectForm(auto_id="reject-%s")}
    return render(request, "guides/withdrawal_detail.html", context)


def _may_review(request):
    actor = actor_for(request.user)
    if not service.may_decide_withdrawals(actor):
        raise PermissionDenied
    return actor


def _render_review(request, actor, *, status: int = 200, error: str = "", failed: tuple | None = None):
    """The review list; ``failed`` is (withdrawal id, its reject form) when a rejection came back with errors."""
    chosen = request.GET.get("status", "open")
    queryset = service.withdrawals_for_review(actor=actor)
    if chosen == "open":
        queryset = queryset.filter(status__in=[WithdrawalRequest.Status.REQUESTED, WithdrawalRequest.Status.APPROVED])
    elif chosen in WithdrawalRequest.Status.values:
        queryset = queryset.filter(status=chosen)
    else:
        chosen = "all"
    page = _page(request, queryset, REVIEW_PAGE)
    actions = service.withdrawal_actions(withdrawals=list(page), user=request.user)
    for withdrawal in page:
        withdrawal.actions = actions[withdrawal.pk]
    context = {"wb_tab": "me", "page": page, "chosen": chosen, "error": error,
               "statuses": [("open", _("Open")), *WithdrawalRequest.Status.choices, ("all", _("All"))],
               "decision_form": DecisionForm(),
               "failed_id": failed[0] if failed else None, "failed_form": failed[1] if failed else None}
    return render(request, "guides/withdrawals_review.html", context, status=status)


@login_required
@require_GET
def withdrawals_review(request):
    """Withdrawals in my scope for a store manager or above, open ones first by default."""
    return _render_review(request, _may_review(request))


@login_required
@require_POST
def withdrawal_decide(request, pk: int, action: str):
    """Approve, reject or mark paid; refusals come back on the review page with their status (403 / 409)."""
    actor = _may_review(request)
    decide = DECISIONS.get(action)
    withdrawal = service.withdrawals_for_review(actor=actor).filter(pk=pk).first()
    if decide is None or withdrawal is None:
        raise Http404
    form = (RejectForm if action == "reject" else DecisionForm)(request.POST)
    if not form.is_valid() and action == "reject":
        return _render_review(request, actor, status=400, error=" ".join(form.errors["note"]),
                              failed=(withdrawal.pk, form))
    note = form.cleaned_data.get("note") or ""
    try:
        done = decide(withdrawal=withdrawal, user=request.user, note=note)
    except ApplicationError as exc:
        if exc.status == 404:
            raise Http404 from None
        return _render_review(request, actor, status=exc.status, error=_decision_error(exc))
    messages.success(request, _("Withdrawal #%(id)s: %(status)s.") % {"id": done.pk,
                                                                      "status": done.get_status_display()})
    return redirect(request.POST.get("next") if _safe_next(request) else "workbench:withdrawals_review")


def _safe_next(request) -> bool:
    from django.utils.http import url_has_allowed_host_and_scheme

    target = request.POST.get("next", "")
    return bool(target) and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                            require_https=request.is_secure())


def _decision_error(exc: ApplicationError) -> str:
    if exc.code == GuidesErrorCode.OWN_WITHDRAWAL:
        return _("You cannot decide your own withdrawal; someone else must.")
    if exc.code == ErrorCode.INVALID_TRANSITION:
        return _("This withdrawal was already decided or paid; the page was out of date.")
    if exc.code == GuidesErrorCode.NOT_APPROVER:
        return _("Only a store manager or above may decide withdrawals.")
    return exc.message
