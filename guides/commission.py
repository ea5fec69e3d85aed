"""Commission (分佣) from sales credits: one ledger row per credit row that earns commission.

Attribution books credits as append-only rows (a refund adds a negative row);
this turns each such row of a guide credit kind that earns commission (per the
brand's AttributionSettings: exclusive yes, selling no by default) into one
CommissionEntry: an earning for a positive row, a reversal for a negative one.

The rate is the most specific active CommissionRule of the order's brand:
category and channel > category > channel > brand-wide. The category is the
product category of the order's first line (lowest line id): a mall order is of
one brand, and its commission is judged by the item it was built around; a
mixed-category order therefore takes the rate of its first line's category.

An entry becomes available at the end of the return window: the order's
delivery (or, before delivery, its payment) plus MallSettings.return_days.
The unique key (credit, kind) makes posting idempotent: run it again, after
every attribution, from any number of workers, and nothing is paid twice.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.utils import timezone

from guides.models import CommissionEntry, CommissionRule

CENT = Decimal("0.01")


def commission_rule_for(*, brand_id: int, category: str, channel: str) -> CommissionRule | None:
    """The most specific active rule for a category and channel of a brand (None: no commission)."""
    rules = {(r.category, r.channel): r for r in CommissionRule.objects.filter(
        brand_id=brand_id, is_active=True, category__in={category, ""}, channel__in={channel, ""})}
    for key in ((category, channel), (category, ""), ("", channel), ("", "")):
        if key in rules and (key[0] == "" or category) and (key[1] == "" or channel):
            return rules[key]
    return None


def _commission_kinds(brand_id: int) -> list[str]:
    from analytics.models import AttributionSettings, SalesCredit

    settings_ = AttributionSettings.objects.filter(brand_id=brand_id).first() or AttributionSettings()
    kinds = []
    if settings_.exclusive_earns_commission:
        kinds.append(SalesCredit.Kind.EXCLUSIVE)
    if settings_.selling_earns_commission:
        kinds.append(SalesCredit.Kind.SELLING)
    return kinds


@transaction.atomic
def commission_post_for_credits(*, order) -> list[CommissionEntry]:
    """Post the commission entries the order's credit rows call for and do not have yet.

    Returns the entries it posted (rows another worker posted first are dropped by the unique key).
    """
    from analytics.models import SalesCredit
    from mall.checkout import mall_settings_for
    from mall.models import OrderLine

    kinds = _commission_kinds(order.brand_id)
    if not kinds:
        return []
    credits = list(SalesCredit.objects.filter(order_id=order.pk, kind__in=kinds, guide__isnull=False)
                   .exclude(commission_entries__isnull=False).order_by("pk"))
    if not credits:
        return []
    category = (OrderLine.objects.filter(order_id=order.pk).order_by("pk")
                .values_list("sku__product__category", flat=True).first()) or ""
    rule = commission_rule_for(brand_id=order.brand_id, category=category, channel=order.channel)
    if rule is None or rule.rate == 0:
        return []
    basis = order.delivered_at or order.paid_at or timezone.now()
    available_at = basis + dt.timedelta(days=mall_settings_for(order.brand_id).return_days)
    entries = []
    for credit in credits:
        amount = (credit.amount * rule.rate).quantize(CENT, rounding=ROUND_HALF_UP)
        if amount == 0:
            continue
        entries.append(CommissionEntry(
            guide_id=credit.guide_id, brand_id=credit.brand_id, order_id=order.pk, credit=credit, rate=rule.rate,
            kind=CommissionEntry.Kind.EARN if amount > 0 else CommissionEntry.Kind.REVERSAL, amount=amount,
            available_at=available_at, note=f"{order.order_no} {credit.kind} {credit.rule}"[:200]))
    # Another worker may have posted the same credit rows meanwhile: the unique key drops the duplicates.
    CommissionEntry.objects.bulk_create(entries, ignore_conflicts=True)
    return entries
