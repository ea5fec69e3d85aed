"""Reading spreadsheets exported as CSV, and reporting per-row results.

Imports never stop at the first bad row: each row is checked and written on
its own, bad rows are reported with their line number and reason, good rows
go in. Files exported from Excel (UTF-8 with BOM) read the same as plain UTF-8.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from django.utils.translation import gettext as _

# Reserved row key: the source could not give this row as text cells; the value says why.
# (It starts with NUL, which no header cell can hold, so it never collides with a column.)
UNREADABLE = "\x00unreadable"
# csv refuses cells over 128 KiB with an error that would end the file; up to this bound a long cell is
# read and then refused on its own row (retail_crm.validation.MAX_CELL_CHARS). Beyond it csv's error
# is caught and reported on that line.
CSV_FIELD_LIMIT = 16 * 1024 * 1024


class CsvHeaderError(ValueError):
    """The file's header lacks required columns; nothing was imported."""


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str


@dataclass
class ImportReport:
    """What an import did: counts per outcome and the rows it refused."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok_rows(self) -> int:
        return self.created + self.updated + self.unchanged

    def add_error(self, line: int, reason: str) -> None:
        self.errors.append(RowError(line=line, reason=reason))

    def summary(self) -> str:
        return (f"created {self.created}, updated {self.updated}, unchanged {self.unchanged}, "
                f"rejected {len(self.errors)}")


class RowInvalid(ValueError):
    """One row cannot be imported; the message says why."""


def read_csv_rows(source: str | Path | io.TextIOBase, required: list[str]) -> list[tuple[int, dict[str, str]]]:
    """Read the whole file, check its header, and return (line number, row) pairs.

    Decoding and the header check happen here, before any row is written, so a
    file that is not UTF-8 or lacks a column imports nothing rather than half.
    Line numbers count the header as line 1; values are stripped; blank rows skipped.
    A line csv cannot read comes back as a row holding only :data:`UNREADABLE`
    (and its reason), for the importer to report on that line.
    """
    if isinstance(source, (str, Path)):
        with open(source, encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    else:
        text = source.read()
        if text.startswith("\ufeff"):
            text = text[1:]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in (reader.fieldnames or [])]
    missing = [name for name in required if name not in header]
    if missing:
        raise CsvHeaderError(f"missing column(s): {', '.join(missing)}; expected header: {','.join(required)}")
    reader.fieldnames = header
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)
    rows: list[tuple[int, dict[str, str]]] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # The reader drops the rest of the line it failed on and goes on with the next one. (The
            # DictReader's own line_num only moves on success: the underlying reader's is this line.)
            rows.append((reader.reader.line_num, {UNREADABLE: _("this line cannot be read as CSV (%(error)s)")
                                           % {"error": exc}}))
            continue
        cleaned = {key: (value or "").strip() for key, value in row.items() if key is not None}
        if any(cleaned.values()):
            rows.append((reader.line_num, cleaned))
    return rows
