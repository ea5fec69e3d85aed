"""HQ dashboard pages through the Django test client: who may see them, filters, scope, drill-down, figures.

The data set is tests/dashboard_data.py. Worked out for March 2026 (no attribution has run, so every order
is filed under its own store and guide):

    order  brand store  member channel  status           total   paid  refunded   net (sales flow)
    o1     WA    E1     m1     POS      paid            300.00 300.00    50.00   250.00
    o2     WA    E1     m1     mini     paid            200.00 200.00             200.00
    o3     WA    E1     m2     POS      completed       120.00 120.00             120.00
    o4     WA    E1     m2     mini     pending          80.00   0.00               -     (unpaid)
    o5     WA    E2     m3     POS      paid            500.00 500.00             500.00
    o6     WA    W1     m4     mini     paid            400.00 400.00             400.00
    o7     WB    N1     m1     POS      paid            250.00 250.00             250.00
    o8     WB    N1     -      POS      paid             90.00  90.00              90.00

    HQ (whole group):   GMV 1940.00, sales flow 1810.00, 7 paid orders, AOV 1810/7 = 258.57,
                        unpaid 80/1940 = 0.0412, refunds 50/1860 = 0.0269,
                        private domain (mini-program) 600/1810 = 0.3315,
                        card opening: POS paid orders with a member 4 of 5 = 0.8000,
                        repurchase: m1 bought 3 times, m2, m3, m4 once → 1/4 = 0.2500; frequency 6/4 = 1.5;
                        cross purchase: m1 (POS and mini) → 1/4 = 0.2500.
                        Last year (March 2025): GMV 400.00, sales flow 400.00.
    region East (E1+E2): GMV 1200.00, sales flow 250+200+120+500 = 1070.00; stores E1 570.00, E2 500.00.
    brand WA:            GMV 1600.00, sales flow 1470.00; regions East 1070.00, West 400.00.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.dashboard_data import PASSWORD, PERIOD, build_dashboard_world, build_facts
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PAGES = ["hq:overview", "hq:brands", "hq:regions", "hq:stores", "hq:guides", "hq:segments", "hq:livestream",
         "hq:core"]


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


def metric_values(html: str) -> dict[str, str]:
    """{metric key: raw value} of the metric cards on a page."""
    return dict(re.findall(r'data-metric="([a-z_]+)">\s*<h3>[^<]*</h3>\s*<div class="value" data-value="([^"]*)"',
                           html))


def table_rows(html: str, key: str) -> list[list[str]]:
    """The visible cells of the table ``key`` (tags stripped)."""
    section = html.split(f'data-table="{key}"', 1)[1].split("</section>", 1)[0]
    body = section.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S):
        rows.append([re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)])
    return rows


# ---------------------------------------------------------------------------- who may look

@pytest.mark.parametrize("username", ["hq", "op_wa", "rm_east"])
def test_every_page_renders_for_the_dashboard_roles(client, facts_world, username):
    login(client, username)
    for page in PAGES:
        response = client.get(reverse(page), PERIOD)

        assert response.status_code == 200, page
        html = response.content.decode()
        assert '<script src="/static/vendor/echarts/echarts.min.js"></script>' in html
        assert '<script src="/static/js/dashboard.js"></script>' in html
        assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # no third party
        exports = re.findall(r'href="(/hq/export/[a-z_]+\.(?:csv|xlsx)\?[^"]*)"', html)
        assert exports, page
        for export in exports:
            assert "from=2026-03-01" in export and "to=2026-03-31" in export


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("username", ["sm_e1", "guide_e1"])
def test_store_managers_and_guides_are_sent_to_their_workbench(client, world, page, username):
    response = login(client, username).get(reverse(page), PERIOD)

    assert response.status_code == 302
    assert response["Location"] == reverse("workbench:home")


def test_a_login_without_a_staff_profile_is_forbidden(client, world):
    UserFactory(username="nobody")
    response = login(client, "nobody").get(reverse("hq:overview"))

    assert response.status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(client, world):
    response = client.get(reverse("hq:stores"), PERIOD)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/hq/stores/%3Ffrom%3D2026-03-01%26to%3D2026-03-31"


def test_pages_answer_get_only(client, world):
    assert login(client, "hq").post(reverse("hq:overview")).status_code == 405


# ---------------------------------------------------------------------------- filters

@pytest.mark.parametrize(("params", "field", "message"), [
    ({"from": "2026-02-30"}, "from", "有效的日期"),
    ({"from": "yesterday"}, "from", "有效的日期"),
    ({"from": "2026-03-31", "to": "2026-03-01"}, "from", ""),
    ({"from": "2024-01-01", "to": "2026-03-31"}, "to", "367"),
    ({"brand": "NOPE"}, "brand", ""),
    ({"brand": "WA", "region": "north"}, "region", ""),
    ({"brand": "WB", "store": "E1"}, "store", ""),
    ({"channel": "fax"}, "channel", "fax"),
    ({"store": "x" * 40}, "store", "32"),
])
def test_invalid_filters_are_form_errors_with_status_400(client, world, params, field, message):
    response = login(client, "hq").get(reverse("hq:overview"), params)

    assert response.status_code == 400
    form = response.context["form"]
    assert field in form.errors
    assert message in " ".join(form.errors[field])
    html = response.content.decode()
    assert 'class="field-error error"' in html
    assert 'data-metric="' not in html  # no figures for a question that was not understood


@pytest.mark.parametrize(("params", "field"), [
    ({"brand": "WB"}, "brand"),
    ({"region": "west"}, "region"),
    ({"store": "W1"}, "store"),
    ({"store": "N1"}, "store"),
])
def test_filters_outside_the_region_managers_scope_are_form_errors(client, world, params, field):
    response = login(client, "rm_east").get(reverse("hq:stores"), params)

    assert response.status_code == 400
    assert list(response.context["form"].errors) == [field]


def test_filter_choices_are_the_viewers_scope(client, world):
    html = login(client, "rm_east").get(reverse("hq:overview"), PERIOD).content.decode()

    brand_options = re.findall(r'<option value="([^"]*)"', html.split('name="brand"', 1)[1].split("</select>", 1)[0])
    region_options = re.findall(r'<option value="([^"]*)"', html.split('name="region"', 1)[1].split("</select>", 1)[0])
    store_hints = re.findall(r'<option value="([^"]*)">', html.split('<datalist id="store-codes">', 1)[1]
                             .split("</datalist>", 1)[0])
    assert brand_options == ["", "WA"]
    assert region_options == ["", "WA:east"]  # BRAND:code: region codes repeat across brands
    assert store_hints == ["E1", "E2"]


def test_a_regions_code_alone_is_enough_inside_a_brand(client, facts_world):
    """A brand operator's region code is unambiguous: the page fills in the brand for links and the API."""
    response = login(client, "op_wa").get(reverse("hq:stores"), {**PERIOD, "region": "west"})

    assert response.status_code == 200
    # The region is written BRAND:code from then on (the codes repeat across brands).
    assert response.context["query"].params() == {"from": "2026-03-01", "to": "2026-03-31", "brand": "WA",
                                                  "region": "WA:west"}


def test_default_period_is_the_last_30_days_to_today(client, facts_world, monkeypatch):
    import datetime as dt

    import analytics.services

    monkeypatch.setattr(analytics.services, "local_today", lambda: dt.date(2026, 3, 31))
    response = login(client, "hq").get(reverse("hq:overview"))

    assert response.status_code == 200
    query = response.context["query"]
    assert (query.date_from, query.date_to) == (dt.date(2026, 3, 2), dt.date(2026, 3, 31))


# ---------------------------------------------------------------------------- figures and scope

def test_overview_figures_for_hq(client, facts_world):
    html = login(client, "hq").get(reverse("hq:overview"), PERIOD).content.decode()

    values = metric_values(html)
    assert values["gmv"] == "1940.00"
    assert values["sales_flow"] == "1810.00"
    assert values["unpaid_ratio"] == "0.0412"
    assert values["refund_ratio"] == "0.0269"
    assert values["average_order_value"] == "258.57"
    assert values["private_domain_share"] == "0.3315"
    assert values["card_opening_rate"] == "0.8000"
    assert values["monthly_repurchase_rate"] == "0.2500"
    assert values["cross_purchase_rate"] == "0.2500"
    assert '<div class="chart spark" data-chart="trend-sales_flow-data"' in html
    assert 'id="trend-sales_flow-data" type="application/json"' in html


def test_overview_shows_last_years_figures(client, facts_world):
    html = login(client, "hq").get(reverse("hq:overview"), PERIOD).content.decode()

    last_year = dict(re.findall(r'data-metric="([a-z_]+)">.*?data-last-year="([^"]*)"', html, flags=re.S))
    assert last_year["gmv"] == "400.00"
    assert last_year["sales_flow"] == "400.00"


def test_region_manager_sees_only_their_regions_figures_and_stores(client, facts_world):
    login(client, "rm_east")
    overview = client.get(reverse("hq:overview"), PERIOD).content.decode()
    stores = client.get(reverse("hq:stores"), PERIOD).content.decode()

    assert metric_values(overview)["sales_flow"] == "1070.00"
    assert metric_values(overview)["gmv"] == "1200.00"
    ranking = table_rows(stores, "store_ranking")
    assert [(row[0], row[1], row[3]) for row in ranking] == [("上海一店", "E1", "¥570.00"),
                                                             ("上海二店", "E2", "¥500.00")]
    for other in ("成都一店", "北京一店"):
        assert other not in stores
    # Codes are checked in the table, not the page: a random CSRF token can contain "W1".
    assert {row[1] for row in ranking} == {"E1", "E2"}


def test_brand_ranking_drills_down_to_regions_stores_and_guides(client, facts_world):
    login(client, "hq")
    brands = client.get(reverse("hq:brands"), PERIOD).content.decode()
    link = re.search(r'<a href="(/hq/regions/\?[^"]*brand=WA[^"]*)">雅致女装</a>', brands).group(1)
    assert link == "/hq/regions/?from=2026-03-01&amp;to=2026-03-31&amp;brand=WA"

    regions = client.get(link.replace("&amp;", "&")).content.decode()
    assert [(row[0], row[3]) for row in table_rows(regions, "region_ranking")] == [("华东", "¥1,070.00"),
                                                                                  ("华西", "¥400.00")]
    link = re.search(r'<a href="(/hq/stores/\?[^"]*region=WA:east[^"]*)">华东</a>', regions).group(1)
    assert link == "/hq/stores/?from=2026-03-01&amp;to=2026-03-31&amp;brand=WA&amp;region=WA:east"

    stores = client.get(link.replace("&amp;", "&")).content.decode()
    assert [row[1] for row in table_rows(stores, "store_ranking")] == ["E1", "E2"]
    assert '<nav class="crumbs"' in stores and ">雅致女装</a>" in stores and ">华东</a>" in stores
    link = re.search(r'<a href="(/hq/guides/\?[^"]*store=E1[^"]*)">上海一店</a>', stores).group(1)

    guides = client.get(link.replace("&amp;", "&")).content.decode()
    assert sorted(row[1] for row in table_rows(guides, "guide_kpis")) == ["E1-G1", "E1-G2"]


def test_channel_filter_narrows_the_figures(client, facts_world):
    html = login(client, "hq").get(reverse("hq:overview"), {**PERIOD, "channel": "mini_program"}).content.decode()

    assert metric_values(html)["sales_flow"] == "600.00"


def test_export_links_carry_the_pages_filters(client, facts_world):
    html = login(client, "hq").get(reverse("hq:stores"), {**PERIOD, "brand": "WA", "channel": "store_pos"}) \
        .content.decode()

    assert ('href="/hq/export/store_ranking.csv?from=2026-03-01&amp;to=2026-03-31&amp;brand=WA&amp;'
            'channel=store_pos"') in html
    assert ('href="/hq/export/store_ranking.xlsx?from=2026-03-01&amp;to=2026-03-31&amp;brand=WA&amp;'
            'channel=store_pos"') in html


def test_pages_are_translated_to_english(client, facts_world):
    login(client, "hq")
    client.post("/i18n/setlang/", {"language": "en", "next": "/hq/"})
    html = client.get(reverse("hq:overview"), PERIOD).content.decode()

    assert "Sales flow" in html and "Last year" in html and "Key figures" in html
    chinese = client.get(reverse("hq:overview"), {**PERIOD}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert chinese.status_code == 200


def test_livestream_page_figures_and_store_phases(client, facts_world):
    """HQ: 2 sessions, 2.0 + 1.5 = 3.5 hours, 120 viewers, 7 buyers → conversion 7/120 = 0.0583, GMV 1300.00.
    The regional manager sees only E1's store session (HQ central sessions have no host store)."""
    login(client, "hq")
    html = client.get(reverse("hq:livestream"), {**PERIOD, "brand": "WA"}).content.decode()

    values = metric_values(html)
    assert (values["sessions"], values["hours"], values["viewers"]) == ("2", "3.50", "120")
    assert (values["conversion"], values["gmv"], values["paid_sales"]) == ("0.0583", "1300.00", "1200.00")
    phases = table_rows(html, "live_store_phases")
    # E1 held one session (1.5 h) in March: neither phase-1 target (4 sessions, 6 hours) is met.
    assert [(row[1], row[2], row[6], row[7], row[14], row[15], row[16]) for row in phases] == [
        ("E1", "2026-03", "1", "1.5", "0", "2", "否"), ("E2", "2026-03", "0", "0.0", "0", "2", "否"),
        ("W1", "2026-03", "0", "0.0", "0", "2", "否")]

    client.logout()
    login(client, "rm_east")
    html = client.get(reverse("hq:livestream"), PERIOD).content.decode()
    values = metric_values(html)
    assert (values["sessions"], values["viewers"], values["gmv"]) == ("1", "20", "300.00")
    assert [row[1] for row in table_rows(html, "live_store_phases")] == ["E1", "E2"]


def test_segments_compare_two_runs_and_reject_foreign_run_ids(client, facts_world):
    from segments.models import RfmRun

    first, second = RfmRun.objects.filter(brand__code="WA").order_by("as_of")
    login(client, "hq")

    page = client.get(reverse("hq:segments"), {**PERIOD, "brand": "WA"})
    assert page.status_code == 200
    assert page.context["chosen_runs"] == {"from_run": str(first.pk), "to_run": str(second.pk)}
    assert 'data-chart="segments-transitions-data"' in page.content.decode()
    assert f"from_run={first.pk}&amp;to_run={second.pk}" in page.content.decode()  # export links keep the pair

    bad = client.get(reverse("hq:segments"), {**PERIOD, "brand": "WA", "from_run": "999999", "to_run": "x"})
    assert bad.status_code == 400
    assert set(bad.context["run_errors"]) == {"from_run", "to_run"}
    export = client.get(reverse("hq:export", args=["segment_transitions", "csv"]),
                        {**PERIOD, "brand": "WA", "from_run": "999999"})
    assert export.status_code == 400
