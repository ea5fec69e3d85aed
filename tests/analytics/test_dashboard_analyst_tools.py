"""Analyst basics on the HQ dashboard (issue 23.6): period presets, sortable tables (page and export), a page
per guide, search, labels instead of raw keys, one chart per livestream quantity.

Data: tests/dashboard_data.py, March 2026. Store ranking for HQ by sales flow: E1 570.00 (3 paid orders),
E2 500.00 (1), W1 400.00 (1), N1 340.00 (2: o7 250 + o8 90). Guide sales (tests/analytics/test_exports.py): E1-G1 700.00
(o1 250 + o2 200 on 03-02, o7 250 on 03-12; online 200, offline 500), E2-G1 500.00, W1-G1 400.00, E1-G2 120.00,
N1-G1 (brand WB) 90.00.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import pytest
from django.urls import reverse

import analytics.services
from tests.dashboard_data import PASSWORD, PERIOD, build_dashboard_world, build_facts

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(monkeypatch):
    monkeypatch.setattr(analytics.services, "local_today", lambda: dt.date(2026, 4, 15))
    world = build_dashboard_world()
    build_facts()
    return world


def login(client, username="hq"):
    assert client.login(username=username, password=PASSWORD)
    return client


def table_rows(html: str, key: str) -> list[list[str]]:
    body = html.split(f'data-table="{key}"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)]


def headers(html: str, key: str) -> list[str]:
    head = html.split(f'data-table="{key}"', 1)[1].split("<thead>", 1)[1].split("</thead>", 1)[0]
    return [re.sub(r"<[^>]+>", "", th).strip() for th in re.findall(r"<th[^>]*>(.*?)</th>", head, flags=re.S)]


# ---------------------------------------------------------------------------- presets

def test_period_presets_link_to_their_dates_and_keep_the_other_filters(client, world):
    html = login(client).get(reverse("hq:stores"), {**PERIOD, "brand": "WA"}).content.decode()

    presets = dict(re.findall(r'<a href="\?([^"]*)" data-preset="([a-z_0-9]+)"', html)[i][::-1]
                   for i in range(5))
    assert {key: value.replace("&amp;", "&") for key, value in presets.items()} == {
        "yesterday": "from=2026-04-14&to=2026-04-14&brand=WA",
        "last_7_days": "from=2026-04-09&to=2026-04-15&brand=WA",
        "this_month": "from=2026-04-01&to=2026-04-15&brand=WA",
        "last_month": "from=2026-03-01&to=2026-03-31&brand=WA",
        "last_30_days": "from=2026-03-17&to=2026-04-15&brand=WA",
    }
    # March 2026 is "last month" on 15 April: that preset is the active one.
    assert re.search(r'data-preset="last_month" class="active"', html)
    last_month = client.get(f"{reverse('hq:stores')}?{presets['last_month'].replace('&amp;', '&')}")
    assert [row[1] for row in table_rows(last_month.content.decode(), "store_ranking")] == ["E1", "E2", "W1"]


# ---------------------------------------------------------------------------- sorting

def test_a_header_sorts_the_table_and_again_the_other_way(client, world):
    login(client)
    default = client.get(reverse("hq:stores"), PERIOD).content.decode()
    by_orders = client.get(reverse("hq:stores"), {**PERIOD, "sort": "store_ranking:-paid_orders"}).content.decode()
    by_code = client.get(reverse("hq:stores"), {**PERIOD, "sort": "store_ranking:code"}).content.decode()

    assert [row[1] for row in table_rows(default, "store_ranking")] == ["E1", "E2", "W1", "N1"]
    # 3, 2, 1, 1 paid orders; E2 and W1 tie and keep the ranking's order.
    assert [(row[1], row[5]) for row in table_rows(by_orders, "store_ranking")] == [
        ("E1", "3"), ("N1", "2"), ("E2", "1"), ("W1", "1")]
    assert [row[1] for row in table_rows(by_code, "store_ranking")] == ["E1", "E2", "N1", "W1"]
    # The sorted header says so and links to the other direction; the others start from the largest.
    header = re.search(r'<th class="num" scope="col" aria-sort="descending"><a class="sort" href="([^"]*)" '
                       r'data-sort="paid_orders"', by_orders).group(1).replace("&amp;", "&")
    assert header == "?from=2026-03-01&to=2026-03-31&sort=store_ranking:paid_orders#table-store_ranking"
    gmv = re.search(r'href="([^"]*)" data-sort="gmv"', default).group(1).replace("&amp;", "&")
    assert gmv == "?from=2026-03-01&to=2026-03-31&sort=store_ranking:-gmv#table-store_ranking"
    ascending = client.get(reverse("hq:stores") + header.split("#")[0]).content.decode()
    assert [row[1] for row in table_rows(ascending, "store_ranking")][:2] == ["E2", "W1"]


def test_the_export_is_sorted_like_the_page(client, world):
    login(client)
    page = client.get(reverse("hq:stores"), {**PERIOD, "sort": "store_ranking:-paid_orders"}).content.decode()
    link = re.search(r'<a href="([^"]*)" data-export="csv">', page.split('data-table="store_ranking"', 1)[1]).group(1)
    response = client.get(link.replace("&amp;", "&"))

    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [(row[1], row[5]) for row in rows[1:]] == [("E1", "3"), ("N1", "2"), ("E2", "1"), ("W1", "1")]


@pytest.mark.parametrize("sort", ["store_ranking:-nope", "nope:gmv", "store_ranking", "store_ranking:-<x>"])
def test_a_bad_sort_is_a_form_error(client, world, sort):
    response = login(client).get(reverse("hq:stores"), {**PERIOD, "sort": sort})

    assert response.status_code == 400
    assert "请按表格中的某一列排序。" in response.content.decode()


# ---------------------------------------------------------------------------- one guide

def test_guide_names_link_to_the_guides_page(client, world):
    html = login(client).get(reverse("hq:guides"), PERIOD).content.decode()

    link = re.search(r'<a href="([^"]*)">王芳</a>', html).group(1).replace("&amp;", "&")
    assert link == "/hq/guides/E1-G1/?from=2026-03-01&to=2026-03-31"


def test_the_guide_page_shows_kpis_store_rank_and_trend(client, world):
    html = login(client, "op_wa").get(reverse("hq:guide", args=["E1-G1"]), PERIOD).content.decode()

    assert "王芳" in html and "上海一店 (E1)" in html
    values = dict(re.findall(r'data-metric="([a-z_]+)">\s*<h3>[^<]*</h3>\s*<div class="value" data-value="([^"]*)"',
                             html))
    assert (values["sales"], values["online_sales"], values["offline_sales"]) == ("700.00", "200.00", "500.00")
    assert values["members_served"] == "1"  # m1
    rank = re.sub(r"\s+", " ", re.search(r"<p class=\"guide-rank\" data-rank>(.*?)</p>", html, flags=re.S).group(1))
    assert rank.strip() == "门店内销售额排名：第 1 名，共 2 人 · 品牌内（您的权限范围）：第 1 名，共 4 人"
    spec = json.loads(re.search(r'id="guide-sales-data" type="application/json">(.*?)</script>', html).group(1))
    data = spec["series"][0]["data"]
    assert len(data) == 31 and data[1] == "450.00" and data[11] == "250.00"
    assert sum(float(v) for v in data) == 700.0

    other = client.get(reverse("hq:guide", args=["E1-G2"]), PERIOD).content.decode()
    rank = re.sub(r"\s+", " ", re.search(r"<p class=\"guide-rank\" data-rank>(.*?)</p>", other, flags=re.S).group(1))
    assert rank.strip() == "门店内销售额排名：第 2 名，共 2 人 · 品牌内（您的权限范围）：第 4 名，共 4 人"


def test_a_guide_outside_the_viewers_scope_is_not_found(client, world):
    login(client, "rm_east")

    assert client.get(reverse("hq:guide", args=["E1-G2"]), PERIOD).status_code == 200
    assert client.get(reverse("hq:guide", args=["W1-G1"]), PERIOD).status_code == 404
    assert client.get(reverse("hq:guide", args=["N1-G1"]), PERIOD).status_code == 404
    assert client.get(reverse("hq:guide", args=["NOBODY"]), PERIOD).status_code == 404


# ---------------------------------------------------------------------------- search

def test_search_finds_stores_and_guides_in_scope_only(client, world):
    login(client, "rm_east")
    by_name = client.get(reverse("hq:search"), {"q": "上海", **PERIOD}).content.decode()
    by_code = client.get(reverse("hq:search"), {"q": "g1"}).content.decode()
    outside = client.get(reverse("hq:search"), {"q": "成都"}).content.decode()
    too_long = client.get(reverse("hq:search"), {"q": "x" * 65})

    link = r'<a href="([^"]*)">([^<]*)</a>'
    stores = re.findall(link, by_name.split('id="search-stores"', 1)[1].split("</section>")[0])
    assert [(url.replace("&amp;", "&"), name) for url, name in stores] == [
        ("/hq/guides/?from=2026-03-01&to=2026-03-31&brand=WA&store=E1", "上海一店"),
        ("/hq/guides/?from=2026-03-01&to=2026-03-31&brand=WA&store=E2", "上海二店")]
    guides = re.findall(link, by_code.split('id="search-guides"', 1)[1].split("</section>")[0])
    assert [name for _url, name in guides] == ["王芳", "张伟"]  # E1-G1, E2-G1; not W1-G1 or N1-G1
    assert guides[0][0] == "/hq/guides/E1-G1/?"
    assert "没有匹配的门店。" in outside and "成都一店" not in outside
    assert too_long.status_code == 400


# ---------------------------------------------------------------------------- labels and charts

def test_tables_lead_with_labels_not_raw_keys(client, world):
    login(client)
    overview = client.get(reverse("hq:overview"), PERIOD).content.decode()
    segments = client.get(reverse("hq:segments"), {**PERIOD, "brand": "WA"}).content.decode()
    live = client.get(reverse("hq:livestream"), PERIOD).content.decode()

    rows = table_rows(overview, "overview_metrics")
    assert rows[0][:3] == ["成交总额(GMV)", "¥1,940.00", "¥400.00"]
    assert headers(overview, "overview_metrics")[:4] == ["指标", "数值", "去年同期", "上期（环比）"]
    assert all(row[0] not in ("gmv", "sales_flow") for row in rows)
    for key in ("segment_sizes", "segment_sales"):
        assert all(not re.fullmatch(r"[a-z_]+", cell) for row in table_rows(segments, key) for cell in row)
    assert [row[0] for row in table_rows(live, "live_split")][0] == "全部场次"
    assert "central" not in "".join("".join(row) for row in table_rows(live, "live_split"))


def test_livestream_sessions_hours_and_buyers_have_a_chart_each(client, world):
    html = login(client).get(reverse("hq:livestream"), PERIOD).content.decode()

    specs = {cid: json.loads(body) for cid, body in
             re.findall(r'id="(live-split-[a-z]+)-data" type="application/json">(.*?)</script>', html)}
    assert set(specs) == {"live-split-money", "live-split-sessions", "live-split-hours", "live-split-buyers"}
    assert [s["data"] for s in specs["live-split-sessions"]["series"]] == [[1, 1]]
    assert [s["data"] for s in specs["live-split-hours"]["series"]] == [["2.00", "1.50"]]
    assert [s["data"] for s in specs["live-split-buyers"]["series"]] == [[5, 2]]


def test_the_new_dashboard_words_are_translated_to_english(client, world):
    client.cookies["django_language"] = "en"
    login(client)
    html = client.get(reverse("hq:guide", args=["E1-G1"]), PERIOD, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    core = client.get(reverse("hq:core"), PERIOD, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "Rank by sales in the store: 1 of 2" in html
    assert "Last month" in html and "Previous period" in html
    assert "Gross profit" in core and "Operating profit" not in core
