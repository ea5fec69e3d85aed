"""Reads of the marketing app, always through the one scoping helper."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.utils import timezone

from marketing.models import Campaign, Delivery
from retail_crm.scoping import Actor, scoped


def delivery_list(*, actor: Actor, source: str | None = None, member_code: str | None = None,
                  channel: str | None = None, status: str | None = None, kind: str | None = None,
                  date_from: dt.date | None = None, date_to: dt.date | None = None) -> QuerySet[Delivery]:
    """Every message sent or held back in the actor's scope, newest plan first, filtered as asked.

    Dates are local days of ``planned_at`` (both ends included).
    """
    rows = Delivery.objects.all()
    if source:
        rows = rows.filter(source=source)
    if member_code:
        rows = rows.filter(member__code=member_code)
    if channel:
        rows = rows.filter(channel=channel)
    if status:
        rows = rows.filter(status=status)
    if kind:
        rows = rows.filter(kind=kind)
    if date_from:
        rows = rows.filter(planned_at__gte=timezone.make_aware(dt.datetime.combine(date_from, dt.time.min)))
    if date_to:
        end = timezone.make_aware(dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min))
        rows = rows.filter(planned_at__lt=end)
    return scoped(rows, actor).select_related("member", "brand").order_by("-planned_at", "-pk")


def campaign_list(*, actor: Actor, status: str | None = None, brand_code: str | None = None) -> QuerySet[Campaign]:
    """Campaigns in the actor's scope (HQ: the group's; a brand operator: the brand's), newest first."""
    rows = Campaign.objects.all()
    if status:
        rows = rows.filter(status=status)
    if brand_code:
        rows = rows.filter(brand__code=brand_code)
    return (scoped(rows, actor).select_related("brand", "audience", "coupon_template")
            .prefetch_related("variants").order_by("-created_at", "-pk"))
