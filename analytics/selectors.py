"""Reads over the fact tables for the dashboard, always scoped to the viewer."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Sum

from analytics.models import SalesFact
from retail_crm.money import money
from retail_crm.scoping import Actor, scoped

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class SalesSummary:
    """Totals over a period; GMV counts every order, sales flow is paid − refunded."""

    orders: int
    gmv: Decimal
    paid_orders: int
    sales_flow: Decimal
    refunded_amount: Decimal

    @property
    def average_order_value(self) -> Decimal | None:
        if not self.paid_orders:
            return None
        return (self.sales_flow / self.paid_orders).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class SalesRow:
    key: str
    label: str
    paid_orders: int
    sales_flow: Decimal


def _facts(actor: Actor, date_from: dt.date, date_to: dt.date):
    return scoped(SalesFact.objects.filter(day__gte=date_from, day__lte=date_to), actor)


def sales_summary(*, actor: Actor, date_from: dt.date, date_to: dt.date) -> SalesSummary:
    totals = _facts(actor, date_from, date_to).aggregate(
        orders=Sum("orders"), gmv=Sum("gmv"), paid_orders=Sum("paid_orders"),
        sales_flow=Sum("sales_flow"), refunded=Sum("refunded_amount"),
    )
    return SalesSummary(
        orders=totals["orders"] or 0, gmv=money(totals["gmv"]), paid_orders=totals["paid_orders"] or 0,
        sales_flow=money(totals["sales_flow"]), refunded_amount=money(totals["refunded"]),
    )


def sales_by(*, actor: Actor, date_from: dt.date, date_to: dt.date, dimension: str, limit: int = 20) -> list[SalesRow]:
    """Sales flow grouped by brand, store, guide or channel, largest first."""
    keys = {
        "brand": ("brand__code", "brand__name"),
        "store": ("store__code", "store__name"),
        "guide": ("guide__code", "guide__name"),
        "channel": ("channel", "channel"),
    }
    if dimension not in keys:
        raise ValueError(f"unknown dimension {dimension!r}")
    key_field, label_field = keys[dimension]
    rows = (
        _facts(actor, date_from, date_to)
        .filter(**{f"{key_field}__isnull": False})
        .values(key_field, label_field)
        .annotate(paid=Sum("paid_orders"), flow=Sum("sales_flow"))
        .order_by("-flow", key_field)[:limit]
    )
    return [SalesRow(key=r[key_field], label=r[label_field], paid_orders=r["paid"] or 0, sales_flow=money(r["flow"]))
            for r in rows]
