"""Coupons: issuing instances to members and reading a member's coupons.

Checkout (the mall issue) locks and consumes an instance; the model's checks
say how (see :class:`mall.models.Coupon`). Here: the pieces the mini-program
needs now.
"""

from __future__ import annotations

import datetime as dt
import secrets

from django.db import IntegrityError, transaction
from django.db.models import Case, CharField, Q, QuerySet, Value, When
from django.utils import timezone

from mall.errors import MallErrorCode
from mall.models import Coupon, CouponStatus, CouponTemplate
from retail_crm.errors import ApplicationError, ErrorCode


def _new_coupon_code() -> str:
    # Random, so concurrent issues never compute the same code; unambiguous upper-case hex.
    return "C" + secrets.token_hex(6).upper()


def coupon_issue(*, template: CouponTemplate, member, at: dt.datetime | None = None) -> Coupon:
    """Give the member one coupon of this template, valid for the template's window or days from now."""
    at = at or timezone.now()
    if not template.is_active:
        raise ApplicationError(MallErrorCode.COUPON_TEMPLATE_INACTIVE, f"Coupon {template.name!r} is no longer issued.",
                               status=409)
    if template.brand.group_id != member.group_id:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such coupon template.", status=404)
    if template.valid_days:
        valid_from, valid_to = at, at + dt.timedelta(days=template.valid_days)
    else:
        valid_from, valid_to = template.valid_from, template.valid_to
        if valid_to <= at:
            raise ApplicationError(MallErrorCode.COUPON_TEMPLATE_EXPIRED, f"Coupon {template.name!r} has expired.",
                                   status=409)
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return Coupon.objects.create(template=template, member=member, code=_new_coupon_code(),
                                             issued_at=at, valid_from=valid_from, valid_to=valid_to)
        except IntegrityError:
            continue  # A code clash (one in 2^48): draw another.
    raise ApplicationError(ErrorCode.CONFLICT, "Could not allocate a coupon code; try again.", status=409)


def coupons_for_member(*, member, status: str | None = None, at: dt.datetime | None = None) -> QuerySet[Coupon]:
    """The member's coupons, newest first, each annotated with ``effective_status``.

    A coupon past its ``valid_to`` that no job has marked yet counts as expired,
    so the member never sees a dead coupon as available.
    """
    at = at or timezone.now()
    lapsed = Q(status=CouponStatus.AVAILABLE, valid_to__lte=at)
    qs = (Coupon.objects.filter(member=member)
          .select_related("template", "template__brand")
          .annotate(effective_status=Case(When(lapsed, then=Value(CouponStatus.EXPIRED.value)),
                                          default="status", output_field=CharField()))
          .order_by("-issued_at", "-pk"))
    if status == CouponStatus.AVAILABLE:
        qs = qs.filter(status=CouponStatus.AVAILABLE, valid_to__gt=at)
    elif status == CouponStatus.EXPIRED:
        qs = qs.filter(Q(status=CouponStatus.EXPIRED) | lapsed)
    elif status:
        qs = qs.filter(status=status)
    return qs


def coupons_move(*, survivor, absorbed) -> int:
    """A member merge: the absorbed member's coupons now belong to the survivor; how many moved."""
    return Coupon.objects.filter(member=absorbed).update(member=survivor)


def coupons_member_merge(*, survivor, absorbed) -> dict[str, int]:
    """The ``member_merge`` hook: the absorbed member's coupons follow the survivor."""
    return {"coupons": coupons_move(survivor=survivor, absorbed=absorbed)}
