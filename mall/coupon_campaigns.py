"""Issuing one coupon template to many members at once: a tag, an RFML class or a list of member codes."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import NamedTuple

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from mall.errors import MallErrorCode
from mall.models import Coupon, CouponStatus, CouponTemplate
from members.models import Member
from retail_crm.bulk_sql import insert_rows
from retail_crm.errors import ApplicationError


@dataclass(frozen=True)
class CampaignResult:
    issued: int
    skipped_holding: int  # members who already hold an unused coupon of this template


@transaction.atomic
def coupons_issue_to(*, template: CouponTemplate, members: QuerySet[Member], at: dt.datetime | None = None,
                     once_per_member: bool = True) -> CampaignResult:
    """Give every member in ``members`` (already scoped by the caller) one coupon of ``template``, in bulk.

    With ``once_per_member`` a member who still holds an available coupon of this
    template gets no second one, so re-running a campaign never doubles it.
    """
    at = at or timezone.now()
    if not template.is_active:
        raise ApplicationError(MallErrorCode.COUPON_TEMPLATE_INACTIVE, f"Coupon {template.name!r} is no longer issued.",
                               status=409)
    if template.valid_days:
        valid_from, valid_to = at, at + dt.timedelta(days=template.valid_days)
    else:
        valid_from, valid_to = template.valid_from, template.valid_to
        if valid_to <= at:
            raise ApplicationError(MallErrorCode.COUPON_TEMPLATE_EXPIRED, f"Coupon {template.name!r} has expired.",
                                   status=409)
    member_ids = set(members.filter(group_id=template.brand.group_id).values_list("pk", flat=True))
    holding: set[int] = set()
    if once_per_member:
        holding = set(Coupon.objects.filter(template=template, member_id__in=member_ids, status="available",
                                            valid_to__gt=at).values_list("member_id", flat=True))
    targets = sorted(member_ids - holding)
    # Rows as tuples in multi-row INSERTs: a campaign's dispatcher issues a coupon with every message it sends,
    # and building model instances for them cost more than storing them.
    rows = [_CouponRow(template.pk, pk, "C" + secrets.token_hex(6).upper(), at, valid_from, valid_to,
                       CouponStatus.AVAILABLE) for pk in targets]
    for start in range(0, len(rows), 1000):
        insert_rows(Coupon, rows[start:start + 1000])
    return CampaignResult(issued=len(targets), skipped_holding=len(holding))


class _CouponRow(NamedTuple):
    template_id: int
    member_id: int
    code: str
    issued_at: dt.datetime
    valid_from: dt.datetime
    valid_to: dt.datetime
    status: str
