"""Checking the values of imported rows (CSV files and the POS push API), in one place.

Every importer takes rows of text cells. Before a row's values are parsed,
:func:`screen_rows` refuses rows whose cells no column can hold: cells longer
than :data:`MAX_CELL_CHARS`, control characters (NUL, tab, line breaks, DEL,
C1; refused rather than stripped, so what is stored is exactly what the file
said) and text that is not valid Unicode. The parsers below then keep numbers
and dates within what the database column holds, so a value out of range is a
row error (``line N: reason``) and never a database error that abandons the
other rows of the file.

Reasons added here are translated; the older ones kept verbatim (``quantity
'x' is not a whole number`` …) are matched by integrations and stay English.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from django.db import models
from django.utils.translation import gettext as _

from retail_crm.csv_import import UNREADABLE, ImportReport, RowInvalid

# No column of any import holds more than 200 characters; the cap keeps a runaway cell (a whole
# file pasted into one cell) out of the error report and the database.
MAX_CELL_CHARS = 1000
# The largest value an integer column holds on every supported database (PostgreSQL ``integer``).
INT_MAX = 2_147_483_647
# Dates before this are typing mistakes (0001-01-01, 0202-05-01), and near year 1 a local time
# cannot even be converted to UTC.
EARLIEST_DATE = dt.date(1900, 1, 1)


def cell_problem(column: str, value: str) -> str | None:
    """Why this cell cannot be imported into any column, or None."""
    if len(value) > MAX_CELL_CHARS:
        return _("%(column)s is longer than %(limit)d characters") % {"column": column, "limit": MAX_CELL_CHARS}
    for char in value:
        category = unicodedata.category(char)
        if category == "Cc":
            return _("%(column)s contains a control character (U+%(code)04X)") % {"column": column,
                                                                                  "code": ord(char)}
        if category == "Cs":
            return _("%(column)s contains text that is not valid Unicode") % {"column": column}
    return None


def row_problem(row: dict) -> str | None:
    """Why this row cannot be imported at all (its first bad cell), or None."""
    if UNREADABLE in row:
        return row[UNREADABLE]
    for column, value in row.items():
        problem = cell_problem(str(column), value if isinstance(value, str) else str(value))
        if problem:
            return problem
    return None


def screen_rows(rows: Iterable[tuple[int, dict]], report: ImportReport) -> list[tuple[int, dict]]:
    """The rows every cell of which can be imported; the others become row errors in ``report``."""
    clean = []
    for line, row in rows:
        problem = row_problem(row)
        if problem:
            report.add_error(line, problem)
        else:
            clean.append((line, row))
    return clean


def parse_quantity(value: str, *, column: str = "quantity", maximum: int = INT_MAX) -> int:
    """A whole number from 1 to ``maximum`` (what an integer column holds)."""
    try:
        number = int(value)
    except ValueError:
        raise RowInvalid(f"{column} {value!r} is not a whole number") from None
    if number <= 0:
        raise RowInvalid(f"{column} {number} must be at least 1")
    if number > maximum:
        raise RowInvalid(_("%(column)s %(value)s is more than %(maximum)d") % {
            "column": column, "value": value, "maximum": maximum})
    return number


def money_limit(field: models.DecimalField) -> Decimal:
    """The first amount the money column cannot hold (10^12 for 14 digits with 2 decimals)."""
    return Decimal(10) ** (field.max_digits - field.decimal_places)


def parse_money(value: str, *, column: str, field: models.DecimalField, required: bool = True) -> Decimal:
    """A non-negative amount the ``field`` holds (its max_digits and decimal_places); empty is 0 unless required."""
    quantum = Decimal(1).scaleb(-field.decimal_places)
    if not value:
        if required:
            raise RowInvalid(f"{column} is empty")
        return Decimal(0).quantize(quantum)
    try:
        amount = Decimal(value)
    except (InvalidOperation, ValueError):
        raise RowInvalid(f"{column} {value!r} is not a number") from None
    if not amount.is_finite():
        raise RowInvalid(f"{column} {value!r} is not a number")
    if amount < 0:
        raise RowInvalid(f"{column} {value} is negative")
    # Compared before quantize(): 1e308 has more digits than the decimal context holds.
    if amount >= money_limit(field):
        raise RowInvalid(f"{column} {value} is too large")
    if amount != amount.quantize(quantum):
        raise RowInvalid(f"{column} {value} has more than two decimals")
    return amount.quantize(quantum)


def check_date(day: dt.date | dt.datetime, *, column: str, value: str) -> None:
    """Refuse dates before :data:`EARLIEST_DATE` (typing mistakes, and out of range near year 1)."""
    if (day.date() if isinstance(day, dt.datetime) else day) < EARLIEST_DATE:
        raise RowInvalid(_("%(column)s %(value)s is before %(earliest)s") % {
            "column": column, "value": value, "earliest": EARLIEST_DATE.isoformat()})
