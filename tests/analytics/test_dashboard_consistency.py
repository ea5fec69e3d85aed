"""The dashboard page, its CSV export and the staff API return the same numbers for the same filters.

For each viewer and filter set below, every figure the page hands its template (the raw value before
formatting), every cell of the table's CSV export and the matching field of ``/api/v1/analytics/metrics/…``
are compared as exact decimals. The data set is tests/dashboard_data.py; a few anchors are worked out by
hand there and in tests/analytics/test_dashboard_pages.py, so "the same" is also "right".
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from analytics.dashboard_tables import REGISTRY
from tests.dashboard_data import PASSWORD, PERIOD, build_dashboard_world, build_facts

pytestmark = pytest.mark.django_db

VIEWS = [
    ("hq", {}),
    ("hq", {"brand": "WA"}),
    ("hq", {"channel": "store_pos"}),
    ("op_wa", {"region": "east"}),
    ("rm_east", {}),
    ("rm_east", {"store": "E1"}),
]
API = "/api/v1/analytics/metrics/"


@pytest.fixture
def world():
    world = build_dashboard_world()
    build_facts()
    return world


def login(client, username):
    assert client.login(username=username, password=PASSWORD)
    return client


def number(value):
    """An exact comparable value: Decimal for numbers (whatever their text), None for empty, else the text."""
    if value is None or value == "":
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return str(value)


def page_table(client, page: str, key: str, params: dict) -> list[dict]:
    """The rows the page renders for table ``key``: {column key: raw value} (before formatting)."""
    response = client.get(reverse(page), params)
    assert response.status_code == 200
    table = REGISTRY[key]
    # The page shows labels, not machine codes: its columns are the table's page columns.
    return [{column.key: number(value) for column, (value, _kind) in zip(table.page_columns, row["cells"], strict=True)}
            for row in response.context["tables"][key]["rows"]]


def export_table(client, key: str, params: dict) -> list[dict]:
    """The rows of the table's CSV export: {column key: value}."""
    response = client.get(reverse("hq:export", args=[key, "csv"]), params)
    assert response.status_code == 200
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8").lstrip("\ufeff"))))
    table = REGISTRY[key]
    assert lines[0] == table.header()
    return [{column.key: number(value) for column, value in zip(table.columns, line, strict=True)}
            for line in lines[1:]]


def shown_comparison(compared: dict | None):
    """What a metric table shows for a comparison period (as the cards say): blank when it has no figures: a
    ratio without a denominator, an amount or count of 0."""
    if not compared or compared["value"] is None:
        return None
    if compared.get("denominator") is not None:  # a ratio
        return number(compared["value"]) if Decimal(str(compared["denominator"])) != 0 else None
    return number(compared["value"]) if Decimal(str(compared["value"])) != 0 else None


def api(client, path: str, params: dict, **extra):
    response = client.get(API + path, {**params, **extra})
    assert response.status_code == 200, response.content
    return response.json()


def metric_cards(client, page: str, params: dict) -> dict[str, tuple]:
    response = client.get(reverse(page), params)
    assert response.status_code == 200
    return {card["key"]: (number(card["value"]), number(card["last_year"])) for card in response.context["metrics"]}


def test_overview_page_export_and_api_agree(client, world):
    for username, extra in VIEWS:
        check_overview(client, username, {**PERIOD, **extra})


def check_overview(client, username, params):
    client.logout()
    login(client, username)

    cards = metric_cards(client, "hq:overview", params)
    exported = {row["key"]: (row["display_value"], row["display_last_year"], row["numerator"], row["denominator"])
                for row in export_table(client, "overview_metrics", params)}
    body = api(client, "overview/", params)
    from_api = {}
    for name, metric in body.items():
        if name == "filters":
            continue
        if name == "member_growth":
            for inner in ("members", "new_members"):
                m = metric[inner]
                from_api[m["key"]] = m
            continue
        from_api[metric["key"]] = metric

    assert len(cards) == len(exported) == len(from_api) == 15
    for key, (value, last_year) in cards.items():
        m = from_api[key]
        api_last_year = number(m["last_year"]["value"]) if m["last_year"] else None
        assert (value, last_year) == (number(m["value"]), api_last_year), key
        assert exported[key][:2] == (value, shown_comparison(m["last_year"])), key
        assert exported[key][2:] == (number(m["numerator"]), number(m["denominator"])), key

    channels = export_table(client, "new_members_by_join_channel", params)
    assert [(r["join_channel"], r["new_members"], r["new_members_last_year"]) for r in channels] == [
        (c["join_channel"], c["new_members"], c["new_members_last_year"])
        for c in body["member_growth"]["by_join_channel"]]


RANK_FIELDS = ("code", "sales_flow", "gmv", "paid_orders", "average_order_value", "private_domain_sales",
               "private_domain_share", "refund_ratio", "sales_flow_last_year", "growth")


def test_rankings_agree(client, world):
    for username, extra in VIEWS:
        for page, key, path in (("hq:brands", "brand_ranking", "brands/"), ("hq:regions", "region_ranking", "regions/"),
                                ("hq:stores", "store_ranking", "stores/")):
            check_ranking(client, username, {**PERIOD, **extra}, page, key, path)


def check_ranking(client, username, params, page, key, path):
    client.logout()
    login(client, username)

    on_page = [tuple(row[f] for f in RANK_FIELDS) for row in page_table(client, page, key, params)]
    exported = [tuple(row[f] for f in RANK_FIELDS) for row in export_table(client, key, params)]
    from_api = [tuple(number(row[f]) for f in RANK_FIELDS) for row in api(client, path, params, limit=500)]

    assert on_page == exported == from_api
    assert on_page  # every view of the data set has sales


def test_store_months_and_guide_kpis_agree(client, world):
    for username, extra in VIEWS:
        check_store_months_and_guides(client, username, {**PERIOD, **extra})


def check_store_months_and_guides(client, username, params):
    client.logout()
    login(client, username)

    months = ("store_code", "month", "private_domain_sales", "sales_flow")
    on_page = [tuple(row[f] for f in months) for row in page_table(client, "hq:stores", "store_monthly_sales", params)]
    exported = [tuple(row[f] for f in months) for row in export_table(client, "store_monthly_sales", params)]
    from_api = [(row["store_code"], row["month"][:7], number(row["private_domain_sales"]), number(row["sales_flow"]))
                for row in api(client, "store-months/", params, limit=500)["rows"]]
    assert [(c, str(m)[:7], p, s) for c, m, p, s in on_page] == exported == from_api
    assert on_page

    kpi_keys = [column.key for column in REGISTRY["guide_kpis"].columns]
    on_page = [tuple(row[k] for k in kpi_keys) for row in page_table(client, "hq:guides", "guide_kpis", params)]
    exported = [tuple(row[k] for k in kpi_keys) for row in export_table(client, "guide_kpis", params)]
    from_api = [tuple(number(row[k]) for k in kpi_keys) for row in api(client, "guides/", params, limit=500)]
    assert on_page == exported == from_api
    assert on_page


def test_livestream_and_core_indicators_agree(client, world):
    for username, extra in VIEWS:
        check_livestream_and_core(client, username, {**PERIOD, **extra})


def check_livestream_and_core(client, username, params):
    client.logout()
    login(client, username)

    figures = ("sessions", "hours", "viewers", "buyers", "conversion", "gmv", "paid_sales")
    body = api(client, "livestream/", params)
    split = {row["key"]: tuple(row[f"figures.{f}"] for f in figures)
             for row in export_table(client, "live_split", params)}
    on_page = [tuple(row[f"figures.{f}"] for f in figures)
               for row in page_table(client, "hq:livestream", "live_split", params)]
    assert on_page == list(split.values())
    for part in ("total", "central", "store", "total_last_year"):
        assert split[part] == tuple(number(body[part][f]) for f in figures), part
    for key, api_key in (("live_by_brand", "by_brand"), ("live_by_store", "by_store")):
        exported = [(row["code"], *(row[f"figures.{f}"] for f in figures)) for row in export_table(client, key, params)]
        assert exported == [(row["code"], *(number(row["figures"][f]) for f in figures)) for row in body[api_key]]
    cards = metric_cards(client, "hq:livestream", params)
    assert {k: v[0] for k, v in cards.items()} == {f: number(body["total"][f]) for f in figures if f != "buyers"}

    core = api(client, "core/", params)
    exported = {row["key"]: (row["display_value"], row["display_last_year"])
                for row in export_table(client, "core_indicators", params)}
    cards = metric_cards(client, "hq:core", params)
    assert core.pop("operating_profit") == core["gross_profit"]  # the deprecated alias
    del core["filters"]
    for key, metric in core.items():
        api_value = (number(metric["value"]), number(metric["last_year"]["value"]) if metric["last_year"] else None)
        assert cards[key] == api_value, key
        assert exported[key] == (api_value[0], shown_comparison(metric["last_year"])), key


def test_segments_agree(client, world):
    for username, extra in (("hq", {"brand": "WA"}), ("op_wa", {}), ("rm_east", {})):
        check_segments(client, username, {**PERIOD, **extra})


def check_segments(client, username, params):
    client.logout()
    login(client, username)

    body = api(client, "segments/", params)
    sizes = [(r["brand_code"], r["as_of"], r["segment"], r["members"]) for r in export_table(client, "segment_sizes",
                                                                                              params)]
    assert sizes == [(r["brand_code"], number(r["as_of"]), r["segment"], number(r["members"])) for r in body["sizes"]]
    sales = [(r["segment"], r["members"], r["buyers"], r["purchases"], r["sales_flow"])
             for r in export_table(client, "segment_sales", params)]
    assert sales == [(r["segment"], *(number(r[f]) for f in ("members", "buyers", "purchases", "sales_flow")))
                     for r in body["sales"]]
    care = export_table(client, "care_list_completion", params)
    assert [(r["period"], r["numerator"], r["denominator"], r["value"]) for r in care] == [
        (number(p["period"]), number(p["numerator"]), number(p["denominator"]), number(p["value"]))
        for p in body["care_list_completion"]["trend"]]


def test_class_transitions_agree_between_page_export_and_api(client, world):
    from segments.models import RfmRun

    first, second = RfmRun.objects.filter(brand__code="WA").order_by("as_of")
    params = {**PERIOD, "brand": "WA", "from_run": first.pk, "to_run": second.pk}
    login(client, "hq")

    response = client.get(reverse("hq:segments"), {**PERIOD, "brand": "WA"})
    assert response.context["query"].params()["from_run"] == str(first.pk)  # default: the two latest runs
    on_page = page_table(client, "hq:segments", "segment_transitions", params)
    exported = export_table(client, "segment_transitions", params)
    from_api = api(client, "segments/transitions/", params)
    rows = [(r["from_segment"], r["to_segment"], r["members"]) for r in exported]
    # The page shows the classes' labels (the codes are in the export only).
    assert [(r["from_label"], r["to_label"], r["members"]) for r in exported] == [
        (r["from_label"], r["to_label"], r["members"]) for r in on_page]
    assert rows == [(r["from_segment"] or None, r["to_segment"] or None, number(r["members"]))
                    for r in (from_api if isinstance(from_api, list) else from_api["rows"])]
    assert sum(r[2] for r in rows) >= 1
