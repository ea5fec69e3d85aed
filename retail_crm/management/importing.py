"""Shared plumbing for CSV import commands: read, run, report, exit status."""

from __future__ import annotations

import csv
import sys

from django.core.management.base import CommandError

from retail_crm.csv_import import CsvHeaderError, ImportReport


def run_import(command, *, path: str, columns: list[str], importer, report_path: str | None = None) -> None:
    from retail_crm.csv_import import read_csv_rows

    try:
        rows = read_csv_rows(path, columns)
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file") from None
    except CsvHeaderError as exc:
        raise CommandError(f"{path}: {exc}") from None
    except UnicodeDecodeError:
        raise CommandError(f"{path}: not UTF-8 text (save the sheet as CSV UTF-8)") from None
    report: ImportReport = importer(rows)
    for error in report.errors:
        command.stderr.write(f"line {error.line}: {error.reason}")
    if report_path:
        with open(report_path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["line", "reason"])
            writer.writerows([(e.line, e.reason) for e in report.errors])
    command.stdout.write(f"{path}: {report.summary()}")
    if report.errors:
        # Good rows are committed; the non-zero status tells automation that some were not.
        sys.exit(1)
