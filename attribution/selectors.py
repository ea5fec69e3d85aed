"""Reads over sales credits for the workbench, the dashboard and the staff API, always scoped.

A credit of (order, kind, target) is the sum of its rows; these selectors add the rows up and
say in a sentence why the sale counts (or stopped counting) for that store or guide.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, QuerySet, Sum
from django.utils.translation import gettext as _

from attribution.models import AttributionSettings, SalesCredit
from attribution.services import KIND_EXCLUSIVE, KIND_SELLING, KIND_STORE, Rule
from mall.models import Channel
from members.models import GuideBinding
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Guide
from retail_crm.money import money
from retail_crm.scoping import Actor, scoped

_REVERSALS = frozenset({Rule.REVERSAL_NOT_PURCHASE, Rule.REVERSAL_TARGET_CHANGED})


def attribution_settings_for(*, brand_id: int) -> AttributionSettings:
    """The brand's settings row, or an unsaved row holding the defaults (DOMAIN.md) when it has none."""
    return AttributionSettings.objects.filter(brand_id=brand_id).first() or AttributionSettings(brand_id=brand_id)


def _label(choices, value: str | None) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return value or "-"


def credit_reason(rule: str, inputs: dict) -> str:
    """"Why it counts": the rule and its inputs as one short sentence in the active language."""
    session = inputs.get("live_session") or {}
    values = {
        "channel": _label(Channel, inputs.get("channel")),
        "store": inputs.get("store") or session.get("host_store") or "-",
        "host": session.get("host_guide") or "-",
        "guide": inputs.get("bound_guide") or "-",
        "binding_store": inputs.get("binding_store") or "-",
        "since": (inputs.get("binding_started_at") or "-")[:10],
        "reason": _label(GuideBinding.Reason, inputs.get("binding_reason")),
        "seller": inputs.get("order_guide") or "-",
    }
    sentences = {
        Rule.OFFLINE_POS_STORE: _("Bought at the POS of store %(store)s: the sale belongs to that store."),
        Rule.STORE_LIVE_HOST: _("Bought in store %(store)s's livestream: the sale belongs to the host store."),
        Rule.ONLINE_BOUND_GUIDE_STORE: _("Bought online (%(channel)s); the member's guide %(guide)s is of store "
                                         "%(binding_store)s, so the sale belongs to that store."),
        Rule.ONLINE_UNBOUND_HQ_POOL: _("Bought online (%(channel)s) by a member with no guide for this brand: "
                                       "the sale goes to the HQ pool."),
        Rule.EXCLUSIVE_BOUND_GUIDE: _("The member has been bound to %(guide)s since %(since)s (%(reason)s): "
                                      "exclusive credit."),
        Rule.EXCLUSIVE_CROSS_BRAND_GUIDE: _("The member's guide %(guide)s (bound since %(since)s) works for "
                                            "another brand: the credit follows the guide across brands."),
        Rule.SELLING_NAMED_GUIDE: _("The order came through %(seller)s's share link or POS entry (the member's "
                                    "own guide: %(guide)s): selling credit."),
        Rule.STORE_LIVE_HOST_GUIDE: _("Bought in store %(store)s's livestream hosted by %(host)s; the member's own "
                                      "guide (%(guide)s) is not of that store: selling credit to the host."),
        Rule.REVERSAL_NOT_PURCHASE: _("The order was refunded or is no longer paid: the credit is taken back."),
        Rule.REVERSAL_TARGET_CHANGED: _("A re-run credited this sale elsewhere (binding or rule corrected): "
                                        "the credit is taken back here."),
    }
    sentence = sentences.get(rule)
    return sentence % values if sentence else rule


@dataclass(frozen=True)
class GuideCredit:
    """A guide's credit for one order and kind: the sum of its rows, and why it counts."""

    order_id: int
    order_no: str
    order_day: dt.date
    brand_code: str
    channel: str
    kind: str
    amount: Decimal
    rule: str
    why: str
    cross_brand: bool
    counts_for_kpi: bool
    earns_commission: bool


def credits_for_guide(*, actor: Actor, guide_id: int, date_from: dt.date, date_to: dt.date) -> list[GuideCredit]:
    """The guide's exclusive and selling credits for orders placed on [date_from, date_to], newest first.

    404 when the guide is outside the actor's scope (a guide sees only themself). Each line's
    rule and sentence come from its latest row that is not a reversal (the rule that granted
    it), or from the reversal when the whole credit was taken back.
    """
    if not scoped(Guide.objects.filter(pk=guide_id), actor).exists():
        raise ApplicationError(ErrorCode.NOT_FOUND, "Guide not found.", status=404)
    rows = (scoped(SalesCredit.objects.filter(guide_id=guide_id, order_day__gte=date_from,
                                              order_day__lte=date_to), actor)
            .select_related("order", "brand").order_by("order_id", "kind", "pk"))
    lines: dict[tuple[int, str], list[SalesCredit]] = {}
    for row in rows:
        lines.setdefault((row.order_id, row.kind), []).append(row)
    settings = {}
    result = []
    for (_order_id, kind), group in lines.items():
        amount = money(sum((r.amount for r in group), Decimal("0")))
        granting = [r for r in group if r.rule not in _REVERSALS]
        deciding = group[-1] if amount == 0 or not granting else granting[-1]
        first = group[0]
        brand_settings = settings.get(first.brand_id) or settings.setdefault(
            first.brand_id, attribution_settings_for(brand_id=first.brand_id))
        exclusive = kind == KIND_EXCLUSIVE
        result.append(GuideCredit(
            order_id=first.order_id, order_no=first.order.order_no, order_day=first.order_day,
            brand_code=first.brand.code, channel=first.channel, kind=kind, amount=amount, rule=deciding.rule,
            why=credit_reason(deciding.rule, deciding.inputs), cross_brand=any(r.cross_brand for r in group),
            counts_for_kpi=brand_settings.exclusive_counts_for_kpi if exclusive
            else brand_settings.selling_counts_for_kpi,
            earns_commission=brand_settings.exclusive_earns_commission if exclusive
            else brand_settings.selling_earns_commission,
        ))
    result.sort(key=lambda c: (c.order_day, c.order_id, c.kind), reverse=True)
    return result


@dataclass(frozen=True)
class StoreCredit:
    """Credited sales of one store (``store_id`` None: the HQ pool) over a period."""

    store_id: int | None
    store_code: str | None
    store_name: str | None
    orders: int
    amount: Decimal


def credits_by_store(*, actor: Actor, date_from: dt.date, date_to: dt.date, brand_id: int | None = None,
                     kind: str = KIND_STORE) -> list[StoreCredit]:
    """Credited sales per store for orders placed on [date_from, date_to], largest first (one grouped query).

    ``kind`` "store" gives the store credits (each purchase once, the HQ pool included);
    "exclusive"/"selling" give the guide credits grouped by the credited guide's store.
    ``orders`` counts the orders with rows in the period, refunded ones included.
    """
    if kind not in (KIND_STORE, KIND_EXCLUSIVE, KIND_SELLING):
        raise ApplicationError(ErrorCode.INVALID, "Unknown credit kind.", fields={"kind": [f"Unknown: {kind}"]})
    rows = scoped(SalesCredit.objects.filter(kind=kind, order_day__gte=date_from, order_day__lte=date_to), actor)
    if brand_id is not None:
        rows = rows.filter(brand_id=brand_id)
    grouped = (rows.values("store_id", "store__code", "store__name")
               .annotate(amount=Sum("amount"), orders=Count("order_id", distinct=True)).order_by())
    result = [StoreCredit(store_id=r["store_id"], store_code=r["store__code"], store_name=r["store__name"],
                          orders=r["orders"], amount=money(r["amount"])) for r in grouped]
    result.sort(key=lambda s: (-s.amount, s.store_code or ""))
    return result


def credit_list(*, actor: Actor, brand_id: int | None = None, store_id: int | None = None,
                guide_id: int | None = None, kind: str | None = None, channel: str | None = None,
                date_from: dt.date | None = None, date_to: dt.date | None = None) -> QuerySet[SalesCredit]:
    """Credit rows the actor may see, filtered, newest first (for the staff API and exports)."""
    rows = scoped(SalesCredit.objects.all(), actor)
    filters = {"brand_id": brand_id, "store_id": store_id, "guide_id": guide_id, "kind": kind, "channel": channel,
               "order_day__gte": date_from, "order_day__lte": date_to}
    rows = rows.filter(**{k: v for k, v in filters.items() if v is not None})
    return rows.select_related("order", "brand", "store", "guide").order_by("-order_day", "-pk")


def credits_for_order(*, actor: Actor, order_id: int) -> QuerySet[SalesCredit]:
    """An order's credit rows the actor may see, in the order they were written."""
    return (scoped(SalesCredit.objects.filter(order_id=order_id), actor)
            .select_related("order", "brand", "store", "guide").order_by("pk"))
