"""Reads for the mini-program: what a member sees about themself.

Every function takes the authenticated member and reads only that member's
rows, so there is no staff scope to apply here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import F, QuerySet, Sum, Window

from members.models import BrandMembership, GuideBinding, Member, PointsEntry
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand


@dataclass(frozen=True)
class BoundGuide:
    code: str
    name: str
    store: str


@dataclass(frozen=True)
class MembershipView:
    """One brand membership as the member sees it."""

    brand: Brand
    joined_at: dt.datetime
    join_channel: str
    tier: str
    points: int
    guide: BoundGuide | None


def membership_list_for_member(*, member: Member) -> list[MembershipView]:
    """The member's brands with points balance and bound guide: three queries however many brands."""
    memberships = list(BrandMembership.objects.filter(member=member).select_related("brand")
                       .order_by("joined_at", "pk"))
    points = dict(PointsEntry.objects.filter(member=member).values("brand_id").annotate(total=Sum("delta"))
                  .values_list("brand_id", "total"))
    guides = {b.brand_id: BoundGuide(code=b.guide.code, name=b.guide.name, store=b.guide.store.name)
              for b in GuideBinding.objects.filter(member=member, ended_at__isnull=True)
              .select_related("guide", "guide__store")}
    return [MembershipView(brand=m.brand, joined_at=m.joined_at,
                           join_channel=m.join_channel, tier=m.tier, points=points.get(m.brand_id) or 0,
                           guide=guides.get(m.brand_id)) for m in memberships]


def brand_for_member(*, member: Member, code: str) -> Brand:
    """A brand of the member's group by code; 404 for unknown codes and other groups' brands alike."""
    brand = Brand.objects.filter(group_id=member.group_id, code=code).first()
    if brand is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, f"No brand {code!r}.", status=404,
                               fields={"brand": ["Unknown brand."]})
    return brand


def points_ledger_for_member(*, member: Member, brand: Brand) -> QuerySet[PointsEntry]:
    """The member's points entries in one brand, newest first, each with the balance after it.

    The running balance is a window sum over the whole ledger in posting order,
    computed before pagination cuts the page, so every page shows true balances.
    """
    return (PointsEntry.objects.filter(member=member, brand=brand)
            .annotate(balance_after=Window(Sum("delta"), order_by=[F("created_at").asc(), F("pk").asc()]))
            .order_by("-created_at", "-pk"))


def points_total_for_member(*, member: Member, brand: Brand) -> int:
    return PointsEntry.objects.filter(member=member, brand=brand).aggregate(total=Sum("delta"))["total"] or 0
