"""The guide workbench (mobile web). Views parse input and call selectors."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from analytics import selectors
from analytics.services import local_today
from members.models import Member
from retail_crm.models import Guide
from retail_crm.scoping import actor_for, scoped


@login_required
def home(request):
    actor = actor_for(request.user)
    if not actor.is_staff_member:
        raise PermissionDenied
    today = local_today()
    month_start = today.replace(day=1)
    guide = Guide.objects.select_related("store", "store__brand").filter(pk=actor.guide_id).first()
    context = {
        "actor": actor,
        "guide": guide,
        "today": selectors.sales_summary(actor=actor, date_from=today, date_to=today),
        "month": selectors.sales_summary(actor=actor, date_from=month_start, date_to=today),
        "member_count": scoped(Member.objects.all(), actor).count(),
    }
    return render(request, "guides/home.html", context)
