"""Issuing a coupon to a saved audience: one coupon per member of the audience now, through mall's issuing.

The members are the audience's members at the moment of issuing (``marketing.audiences.audience_members``);
``mall.coupon_campaigns.coupons_issue_to`` gives each one a coupon unless they still hold an unused one of
that template, so issuing the same coupon to the same audience twice never doubles it. The preview counts
the same two sets first, for the confirmation.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone

from mall.coupon_campaigns import CampaignResult, coupons_issue_to
from mall.models import Coupon, CouponStatus, CouponTemplate
from marketing.audiences import audience_access_check, audience_members, audience_query_settings
from marketing.models import Audience
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.scoping import Actor, scoped


@dataclass(frozen=True)
class AudienceCouponPreview:
    """How many members the audience holds now, and how many of them would get a coupon."""

    members: int
    holding: int  # already hold an unused coupon of the template: they get no second one

    @property
    def new(self) -> int:
        return self.members - self.holding


def coupon_templates_issuable(*, actor: Actor) -> QuerySet[CouponTemplate]:
    """The coupon templates in the actor's scope that can be issued now (active, not expired), newest first."""
    audience_access_check(actor)
    return (scoped(CouponTemplate.objects.filter(is_active=True), actor).select_related("brand")
            .exclude(valid_days__isnull=True, valid_to__lte=timezone.now()).order_by("-created_at", "pk"))


def audience_coupon_templates(*, actor: Actor, audience: Audience) -> QuerySet[CouponTemplate]:
    """The audience's brand's coupon templates the actor sees that can be issued now (active, not expired)."""
    return coupon_templates_issuable(actor=actor).filter(brand_id=audience.brand_id)


def audience_coupon_template(*, actor: Actor, audience: Audience, pk) -> CouponTemplate:
    """One issuable template of the audience's brand; 404 for any other (another brand's, expired, inactive)."""
    template = (audience_coupon_templates(actor=actor, audience=audience).filter(pk=pk).first()
                if str(pk).isdigit() else None)
    if template is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such coupon template for this audience.", status=404,
                               fields={"template": ["No such coupon template for this audience."]})
    return template


def audience_coupon_preview(*, actor: Actor, audience: Audience, template: CouponTemplate) -> AudienceCouponPreview:
    """Count the audience's members now and those of them still holding an unused coupon of ``template``."""
    audience_access_check(actor)
    members = audience_members(brand=audience.brand, definition=audience.definition)
    with audience_query_settings():
        total = members.count()
        holding = (Coupon.objects.filter(template=template, member__in=members, status=CouponStatus.AVAILABLE,
                                         valid_to__gt=timezone.now())
                   .values("member_id").distinct().count())
    return AudienceCouponPreview(members=total, holding=holding)


def audience_coupon_issue(*, actor: Actor, audience: Audience, template: CouponTemplate) -> CampaignResult:
    """Give each member of the audience now one coupon of ``template`` (none to those still holding one)."""
    audience_access_check(actor)
    if template.brand_id != audience.brand_id:
        raise ApplicationError(ErrorCode.INVALID, "The coupon template belongs to another brand.",
                               fields={"template": ["The coupon template belongs to another brand."]})
    members = audience_members(brand=audience.brand, definition=audience.definition)
    with audience_query_settings():
        return coupons_issue_to(template=template, members=members)
