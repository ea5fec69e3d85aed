"""HQ dashboard pages. Views parse filters and call selectors; nothing else."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from analytics import selectors
from analytics.services import local_today
from mall.models import Channel
from members.models import Member
from retail_crm.models import Guide, Store
from retail_crm.scoping import actor_for, scoped


def _period(request) -> tuple[dt.date, dt.date]:
    today = local_today()
    try:
        date_to = dt.date.fromisoformat(request.GET.get("to", "")) if request.GET.get("to") else today
        date_from = (dt.date.fromisoformat(request.GET["from"]) if request.GET.get("from")
                     else date_to - dt.timedelta(days=29))
    except ValueError:
        date_to, date_from = today, today - dt.timedelta(days=29)
    if date_from > date_to:
        date_from, date_to = date_to, date_from
    return date_from, date_to


@login_required
def overview(request):
    actor = actor_for(request.user)
    if not actor.is_staff_member:
        raise PermissionDenied
    date_from, date_to = _period(request)
    channel_labels = dict(Channel.choices)
    context = {
        "actor": actor,
        "date_from": date_from,
        "date_to": date_to,
        "summary": selectors.sales_summary(actor=actor, date_from=date_from, date_to=date_to),
        "by_brand": selectors.sales_by(actor=actor, date_from=date_from, date_to=date_to, dimension="brand"),
        "by_store": selectors.sales_by(actor=actor, date_from=date_from, date_to=date_to, dimension="store", limit=10),
        "by_channel": [
            (channel_labels.get(row.key, row.key), row)
            for row in selectors.sales_by(actor=actor, date_from=date_from, date_to=date_to, dimension="channel")
        ],
        "store_count": scoped(Store.objects.all(), actor).count(),
        "guide_count": scoped(Guide.objects.filter(left_at__isnull=True), actor).count(),
        "member_count": scoped(Member.objects.all(), actor).count(),
    }
    return render(request, "analytics/overview.html", context)
