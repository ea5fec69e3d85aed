"""The HQ region filter names one brand's region (issue 23.1): page, export and API.

Region codes repeat across brands (every brand has an East). The data set of tests/dashboard_data.py gets a
second "east": brand WB's region east with store NE1 and one paid POS order of 70.00 on 2026-03-15. The filter
value is ``BRAND:code``, so "雅致女装 · 华东" (``WA:east``) with no brand chosen means WA's East: stores E1
(sales flow 570.00) and E2 (500.00) — never NE1.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.urls import reverse

from mall.models import Channel, OrderStatus
from tests.dashboard_data import PASSWORD, PERIOD, build_dashboard_world, build_facts, local
from tests.factories import GuideFactory, OrderFactory, RegionFactory, StoreFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    world = build_dashboard_world()
    wb_east = RegionFactory(brand=world.wb, code="east", name="华东")
    ne1 = StoreFactory(region=wb_east, code="NE1", name="杭州运动店")
    guide = GuideFactory(store=ne1, code="NE1-G1", name="周杰")
    OrderFactory(order_no="o9", brand=world.wb, store=ne1, guide=guide, channel=Channel.STORE_POS,
                 status=OrderStatus.PAID, ordered_at=local("2026-03-15"), paid_at=local("2026-03-15"), member=None,
                 total_amount="70.00", paid_amount="70.00", refunded_amount="0.00")
    build_facts()
    world.wb_east, world.ne1 = wb_east, ne1
    return world


def login(client, username="hq"):
    assert client.login(username=username, password=PASSWORD)
    return client


def table_rows(html: str, key: str) -> list[list[str]]:
    body = html.split(f'data-table="{key}"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)]


def region_options(html: str) -> list[tuple[str, bool, str]]:
    """(value, selected, label) of the region box's options."""
    box = html.split('name="region"', 1)[1].split("</select>", 1)[0]
    return [(value, bool(selected), label) for value, selected, label in
            re.findall(r'<option value="([^"]*)"( selected)?>([^<]*)</option>', box)]


def test_region_options_are_unique_per_brand(client, world):
    html = login(client).get(reverse("hq:stores"), PERIOD).content.decode()

    assert region_options(html) == [("", True, "全部大区"), ("WA:east", False, "雅致女装 · 华东"),
                                    ("WA:west", False, "雅致女装 · 华西"), ("WB:east", False, "动力运动 · 华东"),
                                    ("WB:north", False, "动力运动 · 华北")]


def test_a_region_chosen_without_a_brand_shows_only_that_brands_stores(client, world):
    response = login(client).get(reverse("hq:stores"), {**PERIOD, "region": "WA:east"})
    html = response.content.decode()

    assert response.status_code == 200
    assert [(row[1], row[3]) for row in table_rows(html, "store_ranking")] == [("E1", "¥570.00"),
                                                                               ("E2", "¥500.00")]
    assert ("WA:east", True, "雅致女装 · 华东") in region_options(html)
    assert [value for value, selected, _label in region_options(html) if selected] == ["WA:east"]

    other = login(client).get(reverse("hq:stores"), {**PERIOD, "region": "WB:east"}).content.decode()
    assert [(row[1], row[3]) for row in table_rows(other, "store_ranking")] == [("NE1", "¥70.00")]


def test_drilling_brand_then_region_keeps_the_right_region_selected(client, world):
    login(client)
    regions = client.get(reverse("hq:regions"), {**PERIOD, "brand": "WA"}).content.decode()
    link = re.search(r'<a href="(/hq/stores/\?[^"]*)">华东</a>', regions).group(1).replace("&amp;", "&")
    assert link == "/hq/stores/?from=2026-03-01&to=2026-03-31&brand=WA&region=WA:east"

    stores = client.get(link).content.decode()
    assert [value for value, selected, _label in region_options(stores) if selected] == ["WA:east"]
    assert [row[1] for row in table_rows(stores, "store_ranking")] == ["E1", "E2"]
    # The export links carry the same unique region.
    csv_link = re.search(r'<a href="([^"]*)" data-export="csv">', stores).group(1).replace("&amp;", "&")
    assert csv_link == "/hq/export/store_ranking.csv?from=2026-03-01&to=2026-03-31&brand=WA&region=WA:east"


def test_a_bare_code_shared_by_two_brands_is_refused_and_a_foreign_pair_too(client, world):
    login(client)
    ambiguous = client.get(reverse("hq:stores"), {**PERIOD, "region": "east"})
    mismatch = client.get(reverse("hq:stores"), {**PERIOD, "brand": "WB", "region": "WA:east"})

    assert ambiguous.status_code == 400
    assert mismatch.status_code == 400
    assert "store_ranking" not in mismatch.content.decode()


def test_the_export_is_scoped_by_the_regions_brand(client, world):
    response = login(client).get(reverse("hq:export", args=["store_ranking", "csv"]), {**PERIOD, "region": "WA:east"})

    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert response.status_code == 200
    assert [(row[1], row[3]) for row in rows[1:]] == [("E1", "570.00"), ("E2", "500.00")]


def test_the_api_is_scoped_by_the_regions_brand(client, world):
    login(client)
    url = "/api/v1/analytics/metrics/stores/"

    wa_east = client.get(url, {**PERIOD, "region": "WA:east"})
    wb_east = client.get(url, {**PERIOD, "region": "WB:east"})
    overview = client.get("/api/v1/analytics/metrics/overview/", {**PERIOD, "region": "WA:east"})
    ambiguous = client.get(url, {**PERIOD, "region": "east"})
    mismatch = client.get(url, {**PERIOD, "brand": "WB", "region": "WA:east"})

    assert [(r["code"], r["sales_flow"]) for r in wa_east.json()] == [("E1", "570.00"), ("E2", "500.00")]
    assert [(r["code"], r["sales_flow"]) for r in wb_east.json()] == [("NE1", "70.00")]
    assert overview.json()["filters"]["region_id"] == world.east.pk
    assert overview.json()["sales_flow"]["value"] == "1070.00"
    assert ambiguous.status_code == 400 and "region" in ambiguous.json()["error"]["fields"]
    assert mismatch.status_code == 400 and "region" in mismatch.json()["error"]["fields"]


def test_the_region_manager_keeps_their_bare_code_and_cannot_reach_the_other_east(client, world):
    login(client, "rm_east")
    own = client.get("/api/v1/analytics/metrics/stores/", {**PERIOD, "region": "WA:east"})
    other = client.get("/api/v1/analytics/metrics/stores/", {**PERIOD, "region": "WB:east"})
    page = client.get(reverse("hq:stores"), {**PERIOD, "region": "WB:east"})

    assert [r["code"] for r in own.json()] == ["E1", "E2"]
    assert other.status_code == 404
    assert page.status_code == 400
