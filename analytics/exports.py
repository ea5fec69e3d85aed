"""CSV and XLSX exports of the dashboard's tables, and the state of large exports run as a job.

An export writes exactly the rows the page shows for the same viewer and filters (the same
``Table.rows``). Small exports stream straight back; one over :func:`async_threshold` rows runs as a
Celery job (``analytics.tasks.export_table``) that writes the file under
``MEDIA_ROOT/exports/`` and is downloaded from its status page when ready.

Job state lives in a small JSON file next to the export (``<uuid>.json``), not in a model: it needs no
migration, survives restarts, is readable by every web process and worker sharing MEDIA_ROOT, and is
removed with the file (``purge_old_exports``). Only the user who asked may read a job or its file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from analytics.dashboard_tables import Kind, Row, Table, cell, cell_kind, export_value, safe_text

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
DEFAULT_ASYNC_THRESHOLD = 20_000
KEEP_DAYS = 7
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


def async_threshold() -> int:
    """Row count above which an export runs as a job (setting ``DASHBOARD_EXPORT_ASYNC_ROWS``)."""
    return int(getattr(settings, "DASHBOARD_EXPORT_ASYNC_ROWS", DEFAULT_ASYNC_THRESHOLD))


def export_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "exports"


def export_filename(table: Table, params: dict, fmt: str) -> str:
    """``<table>_<from>_<to>.<fmt>``: what the download is called on the user's disk."""
    span = "_".join(v for v in (params.get("from"), params.get("to")) if v)
    return f"{table.key}{'_' + span if span else ''}.{fmt}"


# ---------------------------------------------------------------------------- writers

def write_csv(table: Table, rows: Iterable[Row], out) -> int:
    """Write a header and the rows to a text stream; UTF-8 with BOM so spreadsheet apps read Chinese right."""
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(table.header())
    count = 0
    for row in rows:
        writer.writerow([export_value(cell(row, column), cell_kind(row, column)) for column in table.columns])
        count += 1
    return count


def csv_bytes(table: Table, rows: Iterable[Row]) -> bytes:
    buffer = io.StringIO()
    write_csv(table, rows, buffer)
    return buffer.getvalue().encode("utf-8")


_XLSX_FORMATS = {Kind.MONEY: "#,##0.00", Kind.RATIO: "0.00%", Kind.INT: "0", Kind.DATE: "yyyy-mm-dd"}


def _xlsx_value(value, kind: str):
    if value is None:
        return None
    if kind in (Kind.MONEY, Kind.RATIO, Kind.DECIMAL, Kind.NUMBER):
        return Decimal(value)
    if kind == Kind.MONTH:
        return value.strftime("%Y-%m")
    if kind == Kind.INT:
        return int(value)
    if kind == Kind.DATE:
        return value
    return safe_text(str(value))


def write_xlsx(table: Table, rows: Iterable[Row], path_or_stream) -> int:
    """One sheet, a bold header, typed cells (numbers stay numbers, ratios formatted as %)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=table.key[:31])
    header = []
    for label in table.header():
        header_cell = WriteOnlyCell(sheet, value=label)
        header_cell.font = Font(bold=True)
        header.append(header_cell)
    sheet.append(header)
    count = 0
    for row in rows:
        cells = []
        for column in table.columns:
            kind = cell_kind(row, column)
            value_cell = WriteOnlyCell(sheet, value=_xlsx_value(cell(row, column), kind))
            if kind in _XLSX_FORMATS:
                value_cell.number_format = _XLSX_FORMATS[kind]
            cells.append(value_cell)
        sheet.append(cells)
        count += 1
    workbook.save(path_or_stream)
    return count


def xlsx_bytes(table: Table, rows: Iterable[Row]) -> bytes:
    buffer = io.BytesIO()
    write_xlsx(table, rows, buffer)
    return buffer.getvalue()


def write_export(table: Table, rows: Iterable[Row], fmt: str, path: Path) -> int:
    """Write rows to ``path`` atomically (a temporary name, then rename) so a half file is never served."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    if fmt == "csv":
        with open(partial, "w", encoding="utf-8", newline="") as out:
            count = write_csv(table, rows, out)
    else:
        count = write_xlsx(table, rows, str(partial))
    os.replace(partial, path)
    return count


# ---------------------------------------------------------------------------- job state

@dataclass
class ExportJob:
    """A large export's state, kept as ``MEDIA_ROOT/exports/<id>.json``."""

    id: str
    user_id: int
    table: str
    format: str
    params: dict
    filename: str
    state: str = "pending"  # pending → running → done | failed
    rows: int | None = None
    error: str = ""
    created_at: str = ""
    finished_at: str = ""

    @property
    def file_path(self) -> Path:
        return export_dir() / f"{self.id}.{self.format}"

    @property
    def ready(self) -> bool:
        return self.state == "done" and self.file_path.exists()


def _state_path(job_id: str) -> Path:
    return export_dir() / f"{job_id}.json"


def job_save(job: ExportJob) -> None:
    path = _state_path(job.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(asdict(job), ensure_ascii=False), encoding="utf-8")
    os.replace(partial, path)


def job_create(*, user_id: int, table: Table, fmt: str, params: dict) -> ExportJob:
    job = ExportJob(id=uuid.uuid4().hex, user_id=user_id, table=table.key, format=fmt, params=params,
                    filename=export_filename(table, params, fmt), created_at=timezone.now().isoformat())
    job_save(job)
    return job


def job_load(job_id: str) -> ExportJob | None:
    """The job with this id, or None (unknown id, malformed id, unreadable state)."""
    if not _JOB_ID.match(job_id or ""):
        return None
    try:
        data = json.loads(_state_path(job_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return ExportJob(**data)


def job_for_user(job_id: str, user_id: int) -> ExportJob | None:
    """Another user's job does not exist for you."""
    job = job_load(job_id)
    return job if job is not None and job.user_id == user_id else None


def purge_old_exports(*, keep_days: int = KEEP_DAYS, now: dt.datetime | None = None) -> int:
    """Delete export files and their state older than ``keep_days``; returns how many files went."""
    folder = export_dir()
    if not folder.exists():
        return 0
    cutoff = (now or timezone.now()).timestamp() - keep_days * 86400
    removed = 0
    for path in folder.iterdir():
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
