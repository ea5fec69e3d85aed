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
    rows = []
    for row in reader:
        cleaned = {key: (value or "").strip() for key, value in row.items() if key is not None}
        if any(cleaned.values()):
            rows.append((reader.line_num, cleaned))
    return rows
