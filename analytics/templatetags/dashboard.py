"""Formatting of dashboard figures: money with thousands separators, ratios as percentages, '–' for none."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import template
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from analytics.dashboard_tables import Kind

register = template.Library()

DASH = "–"


@register.filter
def figure(value, kind: str = Kind.TEXT) -> str:
    """A value as the dashboard shows it (the export keeps the raw value)."""
    if value is None or value == "":
        return DASH
    if kind == Kind.MONEY:
        return "¥" + number_format(Decimal(value), decimal_pos=2, force_grouping=True)
    if kind == Kind.RATIO:
        return number_format(Decimal(value) * 100, decimal_pos=1) + "%"
    if kind == Kind.INT:
        return number_format(int(value), force_grouping=True)
    if kind == Kind.DECIMAL:
        return number_format(Decimal(value), decimal_pos=1, force_grouping=True)
    if kind == Kind.NUMBER:
        return number_format(Decimal(value), force_grouping=True)
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
    sign = "+" if ratio > 0 else ""
    return f"{sign}{number_format(ratio, decimal_pos=1)}%"


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
    sign = "+" if points > 0 else ""
    return _("%(points)s pp") % {"points": f"{sign}{number_format(points, decimal_pos=1)}"}
