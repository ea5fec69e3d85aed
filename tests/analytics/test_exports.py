"""Dashboard exports: CSV and XLSX cell values, scope and filters, and large exports run as a Celery job.

Two kinds of test: the export plumbing against a small stand-in table registered for the test (exact
cells, the job path, status page, download, ownership), and the real dashboard tables on the data set
of tests/dashboard_data.py (the same scope and filters as the pages).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from decimal import Decimal

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from analytics import dashboard_tables, exports
from analytics.dashboard_tables import Column, Kind, Table
from retail_crm.scoping import actor_for
from tests.dashboard_data import PASSWORD, PERIOD, build_dashboard_world, build_facts

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def world():
    return build_dashboard_world()


@pytest.fixture
def facts_world(world):
    build_facts()
    return world


def login(client, username):
    assert client.login(username=username, password=PASSWORD)
    return client


def read_csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    text = body.decode("utf-8")
    assert text.startswith("\ufeff")  # BOM: spreadsheet apps read the Chinese right
    return list(csv.reader(io.StringIO(text[1:])))


def read_xlsx(body: bytes) -> list[list]:
    sheet = load_workbook(io.BytesIO(body)).active
    return [[c.value for c in row] for row in sheet.iter_rows()]


# ---------------------------------------------------------------------------- a stand-in table

def stores_of_scope(actor, query, limit):
    """One row per store the viewer may see (name, code, a money, a ratio, a count, a month), by code."""
    from retail_crm.models import Store
    from retail_crm.scoping import scoped

    rows = scoped(Store.objects.all(), actor).order_by("code")
    if query.filters.brand_id:
        rows = rows.filter(brand_id=query.filters.brand_id)
    return [{"name": s.name, "code": s.code, "money": Decimal("1234.5") + i, "ratio": Decimal("0.56"),
             "count": 1000 + i, "month": dt.date(2026, 3, 1), "none": None}
            for i, s in enumerate(rows[: dashboard_tables.ALL_ROWS if limit is None else limit])]


STAND_IN = Table("stand_in", "门店测试", (
    Column("name", "门店"), Column("code", "Code"), Column("money", "Money", Kind.MONEY),
    Column("ratio", "Ratio", Kind.RATIO), Column("count", "Count", Kind.INT), Column("month", "Month", Kind.MONTH),
    Column("none", "Empty", Kind.DECIMAL)), stores_of_scope)


@pytest.fixture
def stand_in(monkeypatch):
    monkeypatch.setitem(dashboard_tables.REGISTRY, "stand_in", STAND_IN)
    return STAND_IN


def test_csv_has_a_header_and_exact_machine_readable_cells(client, world, stand_in):
    response = login(client, "hq").get(reverse("hq:export", args=["stand_in", "csv"]), PERIOD)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="stand_in_2026-03-01_2026-03-31.csv"'
    assert read_csv(response) == [
        ["门店", "Code", "Money", "Ratio", "Count", "Month", "Empty"],
        ["上海一店", "E1", "1234.50", "0.5600", "1000", "2026-03", ""],
        ["上海二店", "E2", "1235.50", "0.5600", "1001", "2026-03", ""],
        ["北京一店", "N1", "1236.50", "0.5600", "1002", "2026-03", ""],
        ["成都一店", "W1", "1237.50", "0.5600", "1003", "2026-03", ""],
    ]


def test_xlsx_keeps_numbers_as_numbers_with_formats(client, world, stand_in):
    response = login(client, "hq").get(reverse("hq:export", args=["stand_in", "xlsx"]), PERIOD)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet.title == "stand_in"
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows == [
        ["门店", "Code", "Money", "Ratio", "Count", "Month", "Empty"],
        ["上海一店", "E1", 1234.5, 0.56, 1000, "2026-03", None],
        ["上海二店", "E2", 1235.5, 0.56, 1001, "2026-03", None],
        ["北京一店", "N1", 1236.5, 0.56, 1002, "2026-03", None],
        ["成都一店", "W1", 1237.5, 0.56, 1003, "2026-03", None],
    ]
    assert sheet["C2"].number_format == "#,##0.00"
    assert sheet["D2"].number_format == "0.00%"
    assert sheet["A1"].font.bold is True


def test_export_is_scoped_to_the_region_manager(client, world, stand_in):
    rows = read_csv(login(client, "rm_east").get(reverse("hq:export", args=["stand_in", "csv"]), PERIOD))

    assert [row[1] for row in rows[1:]] == ["E1", "E2"]


def test_export_keeps_the_filters(client, world, stand_in):
    rows = read_csv(login(client, "hq").get(reverse("hq:export", args=["stand_in", "csv"]), {**PERIOD, "brand": "WB"}))

    assert [row[1] for row in rows[1:]] == ["N1"]


@pytest.mark.parametrize(("params", "message"), [
    ({"from": "2026-02-30"}, "from"),
    ({"from": "2026-03-31", "to": "2026-03-01"}, "from"),
    ({"brand": "WB"}, "brand"),  # outside the regional manager's scope
    ({"store": "W1"}, "store"),  # another region of the same brand
    ({"channel": "fax"}, "channel"),
])
def test_invalid_or_out_of_scope_filters_are_400_with_the_field(client, world, stand_in, params, message):
    response = login(client, "rm_east").get(reverse("hq:export", args=["stand_in", "csv"]), params)

    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert message in response.content.decode()


def test_unknown_table_or_format_is_404(client, world):
    login(client, "hq")
    assert client.get("/hq/export/no_such_table.csv").status_code == 404
    assert client.get("/hq/export/brand_ranking.pdf").status_code == 404


@pytest.mark.parametrize("username", ["sm_e1", "guide_e1"])
def test_store_staff_may_not_export(client, world, stand_in, username):
    response = login(client, username).get(reverse("hq:export", args=["stand_in", "csv"]), PERIOD)

    assert response.status_code == 403


def test_anonymous_export_goes_to_login(client, world, stand_in):
    response = client.get(reverse("hq:export", args=["stand_in", "csv"]), PERIOD)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# ---------------------------------------------------------------------------- large exports: a Celery job

def test_large_export_runs_as_a_job_and_is_downloaded_when_ready(client, world, stand_in, media, settings):
    settings.DASHBOARD_EXPORT_ASYNC_ROWS = 3  # four stores > 3 rows: the job path (Celery runs eagerly in tests)
    login(client, "hq")

    response = client.get(reverse("hq:export", args=["stand_in", "csv"]), PERIOD)

    assert response.status_code == 302
    status_url = response["Location"]
    job_id = status_url.rstrip("/").split("/")[-1]
    assert status_url == f"/hq/exports/{job_id}/"
    state = json.loads((media / "exports" / f"{job_id}.json").read_text(encoding="utf-8"))
    assert state["state"] == "done"
    assert state["rows"] == 4
    assert state["params"] == {"from": "2026-03-01", "to": "2026-03-31"}

    page = client.get(status_url)
    assert page.status_code == 200
    assert b'data-export-state="done"' in page.content
    assert b"http-equiv=\"refresh\"" not in page.content
    download_url = reverse("hq:export_download", args=[job_id])
    assert download_url.encode() in page.content

    polled = client.get(status_url, {"format": "json"}).json()
    assert polled == {"id": job_id, "state": "done", "rows": 4, "table": "stand_in", "format": "csv",
                      "download_url": download_url, "error": ""}

    download = client.get(download_url)
    assert download.status_code == 200
    assert download["Content-Disposition"] == 'attachment; filename="stand_in_2026-03-01_2026-03-31.csv"'
    assert [row[1] for row in read_csv(download)[1:]] == ["E1", "E2", "N1", "W1"]


def test_large_xlsx_export_job_writes_the_workbook(client, world, stand_in, media, settings):
    settings.DASHBOARD_EXPORT_ASYNC_ROWS = 1
    login(client, "op_wa")

    response = client.get(reverse("hq:export", args=["stand_in", "xlsx"]), PERIOD)
    job_id = response["Location"].rstrip("/").split("/")[-1]
    download = client.get(reverse("hq:export_download", args=[job_id]))

    body = b"".join(download.streaming_content)
    assert read_xlsx(body) == [
        ["门店", "Code", "Money", "Ratio", "Count", "Month", "Empty"],
        ["上海一店", "E1", 1234.5, 0.56, 1000, "2026-03", None],
        ["上海二店", "E2", 1235.5, 0.56, 1001, "2026-03", None],
        ["成都一店", "W1", 1236.5, 0.56, 1002, "2026-03", None],
    ]


def test_a_pending_job_refreshes_its_page_and_has_no_download(client, world, stand_in, media):
    user = world.users.hq
    job = exports.job_create(user_id=user.pk, table=stand_in, fmt="csv", params={"from": "2026-03-01"})
    login(client, "hq")

    page = client.get(reverse("hq:export_status", args=[job.id]))

    assert page.status_code == 200
    assert b'data-export-state="pending"' in page.content
    assert b'http-equiv="refresh"' in page.content
    assert client.get(reverse("hq:export_download", args=[job.id])).status_code == 404
    assert client.get(reverse("hq:export_status", args=[job.id]), {"format": "json"}).json()["download_url"] is None


def test_another_users_job_does_not_exist(client, world, stand_in, media, settings):
    settings.DASHBOARD_EXPORT_ASYNC_ROWS = 1
    login(client, "hq")
    job_id = client.get(reverse("hq:export", args=["stand_in", "csv"]), PERIOD)["Location"].rstrip("/").split("/")[-1]
    client.logout()

    login(client, "op_wa")
    assert client.get(reverse("hq:export_status", args=[job_id])).status_code == 404
    assert client.get(reverse("hq:export_download", args=[job_id])).status_code == 404
    assert client.get("/hq/exports/..%2F..%2Fetc%2Fpasswd/").status_code == 404
    assert client.get(reverse("hq:export_status", args=["0" * 32])).status_code == 404


def test_a_job_fails_visibly_when_its_filters_no_longer_hold(client, world, stand_in, media):
    """The job checks scope and filters again when it runs: a brand taken out of the user's scope fails it."""
    from analytics.tasks import export_table

    user = world.users.rm_east
    job = exports.job_create(user_id=user.pk, table=stand_in, fmt="csv", params={"brand": "WB"})

    assert export_table(job.id) == {"job": job.id, "state": "failed", "rows": None}
    assert exports.job_load(job.id).state == "failed"
    assert not job.file_path.exists()
    login(client, "rm_east")
    assert b'data-export-state="failed"' in client.get(reverse("hq:export_status", args=[job.id])).content


def test_running_the_job_twice_keeps_one_file(client, world, stand_in, media):
    from analytics.tasks import export_table

    job = exports.job_create(user_id=world.users.hq.pk, table=stand_in, fmt="csv", params=PERIOD)
    first = export_table(job.id)
    second = export_table(job.id)

    assert first == second == {"job": job.id, "state": "done", "rows": 4}
    assert sorted(p.name for p in (media / "exports").iterdir()) == [f"{job.id}.csv", f"{job.id}.json"]


def test_old_exports_are_purged(world, stand_in, media):
    from analytics.tasks import exports_purge

    old = exports.job_create(user_id=world.users.hq.pk, table=stand_in, fmt="csv", params={})
    fresh = exports.job_create(user_id=world.users.hq.pk, table=stand_in, fmt="csv", params={})
    week_ago = (dt.datetime.now() - dt.timedelta(days=8)).timestamp()
    os.utime(media / "exports" / f"{old.id}.json", (week_ago, week_ago))

    assert exports_purge() == 1
    assert exports.job_load(old.id) is None
    assert exports.job_load(fresh.id) is not None


def test_export_rows_are_the_pages_rows_for_the_same_actor(world, stand_in):
    """The export writes ``Table.rows`` for the viewer: the same call the page makes."""
    from analytics.filters import parse_filters

    actor = actor_for(world.users.rm_east)
    _form, query = parse_filters(PERIOD, actor=actor)
    body = exports.csv_bytes(stand_in, stand_in.rows(actor, query, None)).decode("utf-8")

    assert body.splitlines()[1:] == ["上海一店,E1,1234.50,0.5600,1000,2026-03,",
                                     "上海二店,E2,1235.50,0.5600,1001,2026-03,"]


# ---------------------------------------------------------------------------- the real tables

def test_store_ranking_csv_for_the_region_manager(client, facts_world):
    """East's stores only: E1 570.00 (o1 250 + o2 200 + o3 120; GMV adds o4's unpaid 80), E2 500.00; last year E1
    had ly1 100.00 → growth (570 − 100) ÷ 100 = 4.7000."""
    rows = read_csv(login(client, "rm_east").get(reverse("hq:export", args=["store_ranking", "csv"]), PERIOD))

    assert rows[0] == dashboard_tables.REGISTRY["store_ranking"].header()
    assert len(rows[0]) == 14
    # The last two columns are the previous period's (2026-01-29..02-28: no sales, so no growth to show).
    assert [row[1:] for row in rows[1:]] == [
        ["E1", "WA", "570.00", "700.00", "3", "190.00", "200.00", "0.3509", "0.0806", "100.00", "4.7000", "0.00", ""],
        ["E2", "WA", "500.00", "500.00", "1", "500.00", "0.00", "0.0000", "0.0000", "0.00", "", "0.00", ""],
    ]


def test_overview_metrics_xlsx_for_hq(client, facts_world):
    response = login(client, "hq").get(reverse("hq:export", args=["overview_metrics", "xlsx"]), PERIOD)

    rows = read_xlsx(response.content)
    by_key = {row[0]: row[2:4] for row in rows[1:]}
    assert by_key["gmv"] == [1940, 400]
    assert by_key["sales_flow"] == [1810, 400]
    assert by_key["average_order_value"] == [258.57, 200]
    assert by_key["unpaid_ratio"] == [0.0412, 0]
    assert by_key["private_domain_share"] == [0.3315, 0]
    assert by_key["card_opening_rate"] == [0.8, 1]
    assert len(rows) == 16


def test_livestream_split_csv_is_scoped(client, facts_world):
    rows = read_csv(login(client, "rm_east").get(reverse("hq:export", args=["live_split", "csv"]), PERIOD))

    assert [row[1:] for row in rows[1:]] == [
        ["total", "1", "1.50", "20", "2", "0.1000", "300.00", "300.00"],
        ["central", "0", "0.00", "0", "0", "", "0.00", "0.00"],
        ["store", "1", "1.50", "20", "2", "0.1000", "300.00", "300.00"],
        ["total_last_year", "0", "0.00", "0", "0", "", "0.00", "0.00"],
    ]


def test_guide_kpis_export_of_one_store(client, facts_world):
    """E1's guides: E1-G1 o1 250 (POS) + o2 200 (mini) + o7 250 (brand WB's POS sale to m1, whose bound guide
    E1-G1 is: credit follows the bound guide across brands) = 700.00, 250.00 of it cross-brand; E1-G2 o3 120."""
    rows = read_csv(login(client, "op_wa").get(reverse("hq:export", args=["guide_kpis", "csv"]),
                                                {**PERIOD, "store": "E1"}))

    assert [tuple(row[1:2] + row[4:8]) for row in rows[1:]] == [("E1-G1", "700.00", "200.00", "500.00", "250.00"),
                                                                ("E1-G2", "120.00", "0.00", "120.00", "0.00")]


def test_large_guide_export_goes_through_the_job_for_real_rows(client, facts_world, media, settings):
    settings.DASHBOARD_EXPORT_ASYNC_ROWS = 2  # brand WA has four guides: the size bound says "job"
    login(client, "op_wa")

    response = client.get(reverse("hq:export", args=["guide_kpis", "csv"]), PERIOD)

    assert response.status_code == 302
    job_id = response["Location"].rstrip("/").split("/")[-1]
    rows = read_csv(client.get(reverse("hq:export_download", args=[job_id])))
    assert sorted(row[1] for row in rows[1:]) == ["E1-G1", "E1-G2", "E2-G1", "W1-G1"]


def test_text_that_looks_like_a_formula_is_not_run_by_spreadsheets(client, world, stand_in):
    world.e1.name = '=HYPERLINK("http://x","点我")'
    world.e1.save()
    login(client, "rm_east")

    rows = read_csv(client.get(reverse("hq:export", args=["stand_in", "csv"]), PERIOD))
    cells = read_xlsx(client.get(reverse("hq:export", args=["stand_in", "xlsx"]), PERIOD).content)

    assert rows[1][0] == "'=HYPERLINK(\"http://x\",\"点我\")"
    assert cells[1][0] == "'=HYPERLINK(\"http://x\",\"点我\")"
    assert rows[1][2] == "1234.50"  # numbers are left alone
