"""Demo commission: rules per brand, office-staff shares, and withdrawals for the demo guide (run by the
``guides.commission`` job).

Commission needs the credits attribution writes, so this runs as a job after
attribution rather than in the seed. Both steps touch only the demo group and
are idempotent: rules are added to a demo brand that has none, and the demo
guide gets withdrawals only while they have none.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_DOWN, Decimal

from django.db import transaction
from django.utils import timezone

DEMO_GUIDE = "WOM-E001-G02"
DEMO_OFFICE = "brand_wom"  # the brand operator shares too (all-staff distribution)
DEMO_OFFICE_ORDERS = 12
DEMO_APPROVER = "WOM-E001-G01"  # the store manager of the same store
# Online sales earn 3% (mini-program 5%, to push the group mall); offline POS sales are paid through store
# wages, not commission (DOMAIN.md: "online sales earn the credited guide a commission").
DEMO_RULES = (("", Decimal("0.0300")), ("mini_program", Decimal("0.0500")), ("store_pos", Decimal("0.0000")))


def demo_commission_rules() -> int:
    """Add the demo rules to every demo brand without a rule; returns how many rules were added."""
    from guides.models import CommissionRule
    from retail_crm.demo.seed import DEMO_GROUP_CODE
    from retail_crm.models import Brand

    brands = Brand.objects.filter(group__code=DEMO_GROUP_CODE).exclude(commission_rules__isnull=False)
    rules = [CommissionRule(brand=brand, channel=channel, rate=rate) for brand in brands
             for channel, rate in DEMO_RULES]
    CommissionRule.objects.bulk_create(rules)
    return len(rules)


@transaction.atomic
def demo_office_shares() -> int:
    """Give the demo brand operator a share token and let a dozen recent unguided mini-program orders of their
    brand have come through it, once; the commission build then pays them distribution commission."""
    from django.contrib.auth import get_user_model

    from guides.models import GuideToken
    from guides.services import guide_token_issue
    from mall.models import Channel, Order

    user = get_user_model().objects.filter(username=DEMO_OFFICE).select_related("staff_profile").first()
    if user is None or GuideToken.objects.filter(staff_user=user).exists():
        return 0
    token = guide_token_issue(staff_user=user)
    # Spread over the last 60 days: most of it due already, the latest still in the return window.
    candidates = list(Order.objects.filter(
        brand_id=user.staff_profile.brand_id, channel=Channel.MINI_PROGRAM, guide__isnull=True, share_token="",
        paid_at__isnull=False, ordered_at__gte=timezone.now() - dt.timedelta(days=60)).order_by("ordered_at", "pk")
        .values_list("pk", flat=True))
    picked = {candidates[i * len(candidates) // DEMO_OFFICE_ORDERS] for i in range(DEMO_OFFICE_ORDERS)
              if candidates}
    return Order.objects.filter(pk__in=picked).update(share_token=token.token)


def _ten_yuan(amount: Decimal) -> Decimal:
    return (amount / 10).quantize(Decimal("1"), rounding=ROUND_DOWN) * 10


@transaction.atomic
def demo_withdrawals() -> int:
    """Give the demo guide a paid withdrawal (12 days ago) and one waiting for approval, once.

    Together they take about 60% of the available balance, so the page still
    shows money to withdraw. Returns how many requests were made.
    """
    from guides.models import CommissionEntry, WithdrawalRequest
    from guides.withdrawals import commission_balance, withdrawal_approve, withdrawal_mark_paid, withdrawal_request
    from retail_crm.models import Guide

    guide = Guide.objects.filter(code=DEMO_GUIDE).select_related("store").first()
    approver = Guide.objects.filter(code=DEMO_APPROVER).values_list("user", flat=True).first()
    if guide is None or approver is None or WithdrawalRequest.objects.filter(guide=guide).exists():
        return 0
    from django.contrib.auth import get_user_model

    manager = get_user_model().objects.get(pk=approver)
    available = commission_balance(guide=guide).available
    paid_amount, open_amount = _ten_yuan(available * Decimal("0.4")), _ten_yuan(available * Decimal("0.2"))
    made = 0
    if paid_amount > 0:
        paid = withdrawal_request(guide=guide, amount=paid_amount, request_key="demo-withdrawal-paid").withdrawal
        withdrawal_approve(withdrawal=paid, user=manager, note="月度提现")
        withdrawal_mark_paid(withdrawal=paid, user=manager)
        # Back-date the first one: it was asked for, approved and paid before this month's.
        now = timezone.now()
        WithdrawalRequest.objects.filter(pk=paid.pk).update(
            requested_at=now - dt.timedelta(days=12), decided_at=now - dt.timedelta(days=11),
            paid_at=now - dt.timedelta(days=10))
        CommissionEntry.objects.filter(withdrawal=paid).update(created_at=now - dt.timedelta(days=12),
                                                               available_at=now - dt.timedelta(days=12))
        made += 1
    if open_amount > 0:
        withdrawal_request(guide=guide, amount=open_amount, request_key="demo-withdrawal-open")
        made += 1
    return made
