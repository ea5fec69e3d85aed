"""Formatting of dashboard figures: money with thousands separators, ratios as percentages, '–' for none."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import template
from django.utils.translation import gettext as _

from analytics.dashboard_tables import Kind

register = template.Library()

DASH = "–"


@register.filter
def figure(value, kind: str = Kind.TEXT) -> str:
    """A value as the dashboard shows it (the export keeps the raw value)."""
    if value is None or value == "":
        return DASH
    # Both languages write 1,234.50: grouped by thousands with a comma, a point before the decimals.
    if kind == Kind.MONEY:
        return f"¥{Decimal(value):,.2f}"
    if kind == Kind.RATIO:
        return f"{Decimal(value) * 100:.1f}%"
    if kind == Kind.INT:
        return f"{int(value):,}"
    if kind == Kind.DECIMAL:
        return f"{Decimal(value):,.1f}"
    if kind == Kind.NUMBER:
        return f"{Decimal(value):,}"
    if kind == Kind.MONTH and isinstance(value, dt.date):
        return value.strftime("%Y-%m")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


@register.filter
def change(current, previous) -> str:
    """Relative change against last year (+12.5%), '–' when last year had nothing to compare with."""
    if current is None or previous in (None, "", 0) or Decimal(previous) == 0:
        return DASH
    ratio = (Decimal(current) - Decimal(previous)) / abs(Decimal(previous)) * 100
    return f"{ratio:+.1f}%"


@register.filter
def trend_class(current, previous) -> str:
    if current is None or previous in (None, ""):
        return ""
    diff = Decimal(current) - Decimal(previous)
    return "up" if diff > 0 else "down" if diff < 0 else ""


@register.filter
def ratio_points(current, previous) -> str:
    """Change of a rate against last year in percentage points (+2.3 pp)."""
    if current is None or previous in (None, ""):
        return DASH
    points = (Decimal(current) - Decimal(previous)) * 100
    return _("%(points)s pp") % {"points": f"{points:+.1f}"}


NUMERIC_KINDS = frozenset({Kind.INT, Kind.MONEY, Kind.RATIO, Kind.DECIMAL, Kind.NUMBER, Kind.ROW})


@register.filter
def numeric(kind: str) -> bool:
    """Whether a column of this kind is right-aligned as a number."""
    return kind in NUMERIC_KINDS
