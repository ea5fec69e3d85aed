"""Money is Decimal CNY with two places, everywhere."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def money(value) -> Decimal:
    """Two-place Decimal from a database aggregate (None → 0.00).

    SQLite sums decimals in binary floating point (7552908.69999998); rounding
    to the cent restores the exact amount, since every summand had two places.
    """
    if value is None:
        return ZERO
    if not isinstance(value, Decimal):  # a Decimal needs no text round trip (thousands per ranking page)
        value = Decimal(str(value))
    return value.quantize(CENT, rounding=ROUND_HALF_UP)
