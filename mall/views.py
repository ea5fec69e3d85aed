"""HQ coupon issuing (发券) at ``/hq/coupons/``: a template's coupon to a tag, an RFML class or listed members.

The page does what ``POST /api/v1/mall/coupon-templates/{id}/issue/`` does, for HQ, brand operators and
regional managers, within their scope: the same selector finds the members (``members.selectors.member_search``)
and the same service issues (``mall.coupon_campaigns.coupons_issue_to``: a member still holding an unused
coupon of the template gets no second one, so a resubmitted form never doubles a campaign). "Preview" counts
who would get one before anything is issued.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from mall.coupon_campaigns import coupons_issue_to
from mall.models import Coupon, CouponTemplate
from members.models import Member, TagValue
from members.selectors import member_search
from retail_crm.errors import ApplicationError
from retail_crm.scoping import Actor, actor_for, scoped
from retail_crm.vocabulary import Segment

ISSUER_ROLES = frozenset({"hq", "brand_operator", "region_manager"})
WORKBENCH_ROLES = ("store_manager", "guide")
MAX_CODES = 10_000


class CouponIssueForm(forms.Form):
    """Who gets the coupon: exactly one of a tag value, an RFML class or a list of member codes."""

    TARGETS = (("tag", gettext_lazy("Members with a tag")), ("segment", gettext_lazy("An RFML class")),
               ("members", gettext_lazy("Listed member codes")))

    target = forms.ChoiceField(label=gettext_lazy("Issue to"), choices=TARGETS, widget=forms.RadioSelect,
                               initial="tag")
    tag = forms.TypedChoiceField(label=gettext_lazy("Tag"), coerce=int, required=False, empty_value=None)
    segment = forms.ChoiceField(label=gettext_lazy("RFML class"), required=False,
                                choices=[("", "—"), *Segment.choices])
    member_codes = forms.CharField(label=gettext_lazy("Member codes"), required=False,
                                   widget=forms.Textarea(attrs={"rows": 3}),
                                   help_text=gettext_lazy("One code per line, or separated by commas or spaces."))

    def __init__(self, *args, tags: list[TagValue], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tag"].choices = [("", "—")] + [(t.pk, str(t)) for t in tags]

    def clean(self):
        data = super().clean()
        target = data.get("target")
        if target == "tag" and not data.get("tag"):
            self.add_error("tag", _("Choose a tag."))
        elif target == "segment" and not data.get("segment"):
            self.add_error("segment", _("Choose an RFML class."))
        elif target == "members":
            codes = sorted({c for c in data.get("member_codes", "").replace(",", " ").split() if c})
            if not codes:
                self.add_error("member_codes", _("List at least one member code."))
            elif len(codes) > MAX_CODES:
                self.add_error("member_codes", _("At most %(n)s codes at once.") % {"n": f"{MAX_CODES:,}"})
            elif any(len(c) > 40 for c in codes):
                self.add_error("member_codes", _("A member code has at most 40 characters."))
            data["codes"] = codes
        return data


def _issuer(request) -> Actor:
    actor = actor_for(request.user)
    if not actor.is_staff_member or not (actor.role in ISSUER_ROLES or actor.is_superuser):
        raise PermissionDenied
    return actor


def _audience(actor: Actor, template: CouponTemplate, data: dict):
    """The live members in scope the form names, in the template's brand's group."""
    if data["target"] == "members":
        found = scoped(Member.objects.filter(code__in=data["codes"], merged_into__isnull=True), actor)
    elif data["target"] == "tag":
        found = member_search(actor=actor, tag=data["tag"], brand=template.brand.code)
    else:
        found = member_search(actor=actor, segment=data["segment"], brand=template.brand.code)
    return Member.objects.filter(pk__in=found.values("pk"), group_id=template.brand.group_id)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def coupons(request):
    """Coupon templates in scope with how many were issued and used, and the form that issues one."""
    if actor_for(request.user).role in WORKBENCH_ROLES and not request.user.is_superuser:
        return redirect("workbench:home")
    actor = _issuer(request)
    now = timezone.now()
    templates = list(scoped(CouponTemplate.objects.select_related("brand"), actor)
                     .filter(is_active=True).filter(Q(valid_days__isnull=False) | Q(valid_to__gt=now))
                     .annotate(issued=Count("coupons"), used=Count("coupons", filter=Q(coupons__status="used")))
                     .order_by("brand__code", "-created_at"))
    selected = next((t for t in templates if str(t.pk) == (request.POST.get("template")
                                                               or request.GET.get("template"))), None)
    tags = []
    if selected is not None:
        tags = list(scoped(TagValue.objects.filter(Q(tag_group__brand=selected.brand)
                                                   | Q(tag_group__brand__isnull=True)), actor)
                    .select_related("tag_group").order_by("tag_group__code", "sort", "code"))
    form = CouponIssueForm(request.POST or None, tags=tags) if selected else None
    preview, error, status = None, None, 200
    if request.method == "POST":
        if selected is None:
            error, status = _("No such coupon template in your scope."), 404
        elif not form.is_valid():
            status = 400
        else:
            audience = _audience(actor, selected, form.cleaned_data)
            if request.POST.get("action") == "issue":
                try:
                    result = coupons_issue_to(template=selected, members=audience)
                except ApplicationError as refused:
                    error, status = (_("This coupon is no longer issued.") if refused.code.endswith("inactive")
                                     else _("This coupon has expired.")), refused.status
                else:
                    messages.success(request, _("Issued %(issued)s coupons of “%(name)s”; %(skipped)s members "
                                                "already held one and got no second.") % {
                        "issued": f"{result.issued:,}", "name": selected.name,
                        "skipped": f"{result.skipped_holding:,}"})
                    return redirect(f"{reverse('hq-coupons')}?template={selected.pk}")
            else:
                total = audience.count()
                holding = (Coupon.objects.filter(template=selected, member__in=audience, status="available",
                                                 valid_to__gt=now).values("member_id").distinct().count())
                preview = {"total": total, "holding": holding, "new": total - holding}
    return render(request, "mall/coupons.html", {
        "templates": templates, "selected": selected, "form": form, "preview": preview, "error": error,
    }, status=status)
