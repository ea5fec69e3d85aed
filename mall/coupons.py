"""Coupons: creating templates (their terms checked here), issuing instances to members and reading a
member's coupons.

Checkout (the mall issue) locks and consumes an instance; the model's checks
say how (see :class:`mall.models.Coupon`). Here: the pieces the mini-program
needs now.
"""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Case, CharField, Q, QuerySet, Value, When
from django.utils import timezone

from mall.errors import MallErrorCode
from mall.models import Coupon, CouponStatus, CouponTemplate
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand
from retail_crm.scoping import Actor, scoped


def _coupon_template_errors(*, kind: str, discount_amount: Decimal | None, discount_rate: Decimal | None,
                            valid_from: dt.datetime | None, valid_to: dt.datetime | None,
                            valid_days: int | None) -> dict[str, list[str]]:
    """What is wrong with a template's terms, per field: a threshold coupon takes an amount off, a discount
    coupon a rate (never both), and it is valid for N days from issue or in a window (never both)."""
    errors = {}
    if kind == CouponTemplate.Kind.THRESHOLD:
        if not discount_amount:
            errors["discount_amount"] = ["Required for a threshold coupon."]
        if discount_rate is not None:
            errors["discount_rate"] = ["Only for a discount coupon."]
    else:
        if not discount_rate:
            errors["discount_rate"] = ["Required for a discount coupon."]
        if discount_amount is not None:
            errors["discount_amount"] = ["Only for a threshold coupon."]
    window = valid_from is not None or valid_to is not None
    if bool(valid_days) == window:
        errors["valid_days"] = ["Give either valid_days or valid_from and valid_to."]
    elif window and not (valid_from and valid_to and valid_to > valid_from):
        errors["valid_to"] = ["Give valid_from and a later valid_to."]
    return errors


def coupon_template_create(*, actor: Actor, brand_code: str, name: str, kind: str,
                           threshold_amount: Decimal = Decimal("0.00"), discount_amount: Decimal | None = None,
                           discount_rate: Decimal | None = None, valid_from: dt.datetime | None = None,
                           valid_to: dt.datetime | None = None, valid_days: int | None = None,
                           is_active: bool = True) -> CouponTemplate:
    """Create a coupon template of a brand in the actor's scope.

    400 ``invalid`` with the messages per field when the terms do not fit together (see
    ``_coupon_template_errors``), or when the brand is not in the actor's scope.
    """
    errors = _coupon_template_errors(kind=kind, discount_amount=discount_amount, discount_rate=discount_rate,
                                     valid_from=valid_from, valid_to=valid_to, valid_days=valid_days)
    if errors:
        raise ApplicationError(ErrorCode.INVALID, "Invalid input.", fields=errors)
    brand = scoped(Brand.objects.all(), actor).filter(code=brand_code).first()
    if brand is None:
        raise ApplicationError(ErrorCode.INVALID, "No such brand.", fields={"brand": ["No such brand in your scope."]})
    return CouponTemplate.objects.create(brand=brand, name=name, kind=kind, threshold_amount=threshold_amount,
                                         discount_amount=discount_amount, discount_rate=discount_rate,
                                         valid_from=valid_from, valid_to=valid_to, valid_days=valid_days,
                                         is_active=is_active)


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
