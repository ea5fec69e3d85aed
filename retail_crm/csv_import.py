"""Reading spreadsheets exported as CSV, and reporting per-row results.

Imports never stop at the first bad row: each row is checked and written on
its own, bad rows are reported with their line number and reason, good rows
go in. Files exported from Excel (UTF-8 with BOM) read the same as plain UTF-8.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
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


def read_csv_rows(source: str | Path | io.TextIOBase, required: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) with every value stripped; line numbers count the header as 1."""
    handle = open(source, encoding="utf-8-sig", newline="") if isinstance(source, (str, Path)) else source
    try:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in (reader.fieldnames or [])]
        missing = [name for name in required if name not in header]
        if missing:
            raise CsvHeaderError(f"missing column(s): {', '.join(missing)}; expected header: {','.join(required)}")
        reader.fieldnames = header
        for row in reader:
            cleaned = {key: (value or "").strip() for key, value in row.items() if key is not None}
            if not any(cleaned.values()):
                continue
            yield reader.line_num, cleaned
    finally:
        if isinstance(source, (str, Path)):
            handle.close()
