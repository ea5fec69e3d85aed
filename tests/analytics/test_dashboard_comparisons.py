"""同比 and 环比 on the HQ dashboard, their colours, "no data", partial and future periods (issue 23.5, 23.6).

Data: tests/dashboard_data.py. Worked out by hand from its order table:

Period 2026-03-06..03-10 (5 days; 环比 = 03-01..03-05, 同比 = 2025-03-06..03-10):
    this:     o5 500 (POS, E2), o6 400 (mini, W1)            GMV 900.00, sales flow 900.00, unpaid 0/900 = 0.0000,
                                                             refunds 0/900 = 0.0000
    previous: o1 300 (refunded 50), o2 200, o3 120, o4 80 unpaid
                                                             GMV 700.00, sales flow 250+200+120 = 570.00,
                                                             unpaid 80/700 = 0.1143, refunds 50/620 = 0.0806
    change:   GMV (900−700)/700 = +28.6 %, sales flow (900−570)/570 = +57.9 % (good),
              unpaid 0.0000 − 0.1143 = −11.4 pp (down: good), refunds −8.1 pp (down: good)
    last year: no order on 2025-03-06..10 → "no data" (never "0.0 %", never −100 %)

Period 2026-03-03..03-05 (3 days; 环比 = 02-28..03-02):
    this:     o3 120, o4 80 unpaid                           GMV 200.00, sales flow 120.00, unpaid 80/200 = 0.4000
    previous: o1, o2                                         GMV 500.00, sales flow 450.00, unpaid 0/500 = 0.0000,
                                                             refunds 50/500 = 0.1000
    change:   sales flow (120−450)/450 = −73.3 % (bad), unpaid +40.0 pp (up: bad), refunds −10.0 pp (good)
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import translation

import analytics.services
from analytics.dashboard_pages import compare
from analytics.dashboard_tables import Kind
from analytics.metrics import Filters
from tests.dashboard_data import PASSWORD, build_dashboard_world, build_facts

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


def card(html: str, key: str) -> str:
    return html.split(f'data-metric="{key}"', 1)[1].split("</article>", 1)[0]


def comparison(html: str, key: str, which: str) -> tuple[str, str, str]:
    """(shown base, tone, change) of one card's 同比 ("last_year") or 环比 ("previous") line."""
    line = card(html, key).split(f'data-compare="{which}"', 1)[1].split("</div>", 1)[0]
    base = re.sub(r"<[^>]+>", "", re.search(r'<span class="base"[^>]*>(.*?)</span>', line, flags=re.S).group(1))
    tone = re.search(r'data-tone="([a-z]+)"', line)
    change = re.search(r'data-tone="[a-z]+"[^>]*>(.*?)</span>', line, flags=re.S)
    return base.strip(), tone.group(1) if tone else "", change.group(1).strip() if change else ""


def test_previous_period_and_last_year_on_the_overview_cards(client, world):
    html = login(client).get(reverse("hq:overview"), {"from": "2026-03-06", "to": "2026-03-10"}).content.decode()

    assert comparison(html, "gmv", "previous") == ("¥700.00", "good", "▲ +28.6%")
    assert comparison(html, "sales_flow", "previous") == ("¥570.00", "good", "▲ +57.9%")
    assert comparison(html, "unpaid_ratio", "previous") == ("11.4%", "good", "▲ -11.4 个百分点")
    assert comparison(html, "refund_ratio", "previous") == ("8.1%", "good", "▲ -8.1 个百分点")
    # Nothing was sold on 2025-03-06..10: no base, so no change and no colour.
    assert comparison(html, "gmv", "last_year") == ("无数据", "", "")
    assert comparison(html, "refund_ratio", "last_year") == ("无数据", "", "")
    assert "0.0%" not in card(html, "refund_ratio").split('data-compare="last_year"', 1)[1].split("</div>", 1)[0]
    assert "-100" not in html


def test_changes_for_the_worse_are_red_whichever_their_sign(client, world):
    html = login(client).get(reverse("hq:overview"), {"from": "2026-03-03", "to": "2026-03-05"}).content.decode()

    assert comparison(html, "sales_flow", "previous") == ("¥450.00", "bad", "▼ -73.3%")
    assert comparison(html, "unpaid_ratio", "previous") == ("0.0%", "bad", "▼ +40.0 个百分点")
    assert comparison(html, "refund_ratio", "previous") == ("10.0%", "good", "▲ -10.0 个百分点")
    assert 'data-legend' in html and "库存周转天数减少" in html


@translation.override("en")
def test_good_or_bad_follows_the_metrics_direction():
    """The issue's own figures: inventory turnover 216 days against 474 is −54.4 % and good (green); unpaid
    ratio +1.2 pp and refund ratio +0.5 pp are bad (red); the cost of goods is neither."""
    turnover = compare("同比", Decimal("216.0"), Decimal("474.0"), kind=Kind.DECIMAL, key="inventory_turnover_days",
                       has_data=True)
    unpaid = compare("同比", Decimal("0.0532"), Decimal("0.0412"), kind=Kind.RATIO, key="unpaid_ratio", has_data=True)
    refunds = compare("同比", Decimal("0.0319"), Decimal("0.0269"), kind=Kind.RATIO, key="refund_ratio", has_data=True)
    cost = compare("同比", Decimal("720.00"), Decimal("600.00"), kind=Kind.MONEY, key="cost_of_goods", has_data=True)
    sales = compare("同比", Decimal("1810.00"), Decimal("1810.00"), kind=Kind.MONEY, key="sales_flow", has_data=True)
    empty = compare("同比", Decimal("1810.00"), Decimal("0.00"), kind=Kind.MONEY, key="sales_flow", has_data=False)

    assert (turnover.change, turnover.tone) == ("-54.4%", "good")
    assert (unpaid.change, unpaid.tone) == ("+1.2 pp", "bad")
    assert (refunds.change, refunds.tone) == ("+0.5 pp", "bad")
    assert (cost.change, cost.tone) == ("+20.0%", "neutral")
    assert (sales.change, sales.tone) == ("0.0%", "flat")
    assert (empty.change, empty.tone, empty.has_data) == ("No data", "nodata", False)


def test_previous_period_in_the_api_and_the_export(client, world):
    login(client)
    params = {"from": "2026-03-06", "to": "2026-03-10"}
    body = client.get("/api/v1/analytics/metrics/overview/", params).json()
    export = client.get(reverse("hq:export", args=["overview_metrics", "csv"]), params).content.decode("utf-8-sig")

    assert body["filters"]["previous_from"] == "2026-03-01" and body["filters"]["previous_to"] == "2026-03-05"
    assert body["gmv"]["previous"] == {"value": "700.00", "numerator": None, "denominator": None}
    assert body["unpaid_ratio"]["previous"] == {"value": "0.1143", "numerator": "80.00", "denominator": "700.00"}
    assert body["gmv"]["last_year"]["value"] == "0.00"
    rows = {line.split(",")[0]: line.split(",") for line in export.strip().splitlines()[1:]}
    header = export.splitlines()[0].split(",")
    assert header[:5] == ["指标键", "指标", "数值", "去年同期", "上期（环比）"]
    # Nothing was sold on 2025-03-06..10: the export leaves last year blank, as the card says "no data".
    assert rows["gmv"][2:5] == ["900.00", "", "700.00"]
    assert rows["refund_ratio"][2:5] == ["0.0000", "", "0.0806"]


def test_core_indicators_previous_period_and_gross_profit(client, world):
    login(client)
    body = client.get("/api/v1/analytics/metrics/core/", {"from": "2026-03-06", "to": "2026-03-10"}).json()
    html = client.get(reverse("hq:core"), {"from": "2026-03-06", "to": "2026-03-10"}).content.decode()

    assert body["sales_revenue"]["previous"]["value"] == "570.00"
    assert body["gross_profit"] == body["operating_profit"]  # the old name stays as a deprecated alias
    assert body["gross_profit"]["key"] == "gross_profit"
    assert "毛利" in html and "经营利润" not in html
    assert 'data-metric="gross_profit"' in html
    # The table under the cards: no sales on 2025-03-06..10, so last year is blank there too, not ¥0.00.
    body = html.split('data-table="core_indicators"', 1)[1].split("<tbody", 1)[1]
    revenue = body.split("销售收入", 1)[1].split("</tr>", 1)[0]
    assert "¥0.00" not in revenue and "¥570.00" in revenue


def test_future_periods_are_refused_with_a_clear_message(client, world):
    login(client)
    page = client.get(reverse("hq:overview"), {"from": "2026-04-01", "to": "2027-01-31"})
    starts_later = client.get(reverse("hq:overview"), {"from": "2026-04-16"})
    api = client.get("/api/v1/analytics/metrics/overview/", {"from": "2026-04-10", "to": "2026-04-16"})
    export = client.get(reverse("hq:export", args=["overview_metrics", "csv"]), {"to": "2026-05-01"})

    assert page.status_code == 400
    assert "今天（2026-04-15）之后的日期还没有数据" in page.content.decode()
    assert starts_later.status_code == 400
    assert api.status_code == 400
    assert api.json()["error"]["fields"]["to"] == [
        "今天（2026-04-15）之后的日期还没有数据：请选择在今天或更早结束的时间段。"]
    assert export.status_code == 400
    # Today itself is fine.
    assert client.get(reverse("hq:overview"), {"from": "2026-04-01", "to": "2026-04-15"}).status_code == 200


def test_a_period_including_today_is_marked_partial(client, world, monkeypatch):
    monkeypatch.setattr(analytics.services, "local_today", lambda: dt.date(2026, 3, 10))
    login(client)
    html = client.get(reverse("hq:overview"), {"from": "2026-03-01", "to": "2026-03-10"}).content.decode()
    closed = client.get(reverse("hq:overview"), {"from": "2026-03-01", "to": "2026-03-09"}).content.decode()
    api = client.get("/api/v1/analytics/metrics/overview/", {"from": "2026-03-01", "to": "2026-03-10"}).json()

    assert "data-partial" in html and "未完结时段：包含今天" in html
    assert "data-partial" not in closed
    assert api["filters"]["partial"] is True
    daily = json.loads(re.search(r'id="trend-sales_flow-data" type="application/json">(.*?)</script>', html).group(1))
    assert daily["partial"] == 9 and daily["x"][9] == "03-10 (未完结)" and daily["x"][8] == "03-09"
    # The monthly repurchase rate trends by month: March, the month of today, is partial.
    monthly = json.loads(re.search(r'id="trend-monthly_repurchase_rate-data" type="application/json">(.*?)</script>',
                                   html).group(1))
    assert monthly["x"] == ["2026-03 (未完结)"] and monthly["partial"] == 0
    closed_daily = json.loads(re.search(r'id="trend-sales_flow-data" type="application/json">(.*?)</script>',
                                        closed).group(1))
    assert "partial" not in closed_daily


def test_a_monthly_trend_ending_inside_a_month_marks_that_month_partial(client, world):
    """A 120-day period trends by month; it stops on 03-20, so its March point is partial (not the whole month)."""
    html = login(client).get(reverse("hq:overview"), {"from": "2025-11-21", "to": "2026-03-20"}).content.decode()

    spec = json.loads(re.search(r'id="trend-sales_flow-data" type="application/json">(.*?)</script>', html).group(1))
    assert spec["x"] == ["2025-11", "2025-12", "2026-01", "2026-02", "2026-03 (未完结)"]
    assert spec["partial"] == 4


@pytest.mark.parametrize(("date_from", "date_to", "previous"), [
    ("2026-06-01", "2026-06-30", ("2026-05-01", "2026-05-31")),  # a month: the month before, 31 days
    ("2026-03-01", "2026-03-31", ("2026-02-01", "2026-02-28")),
    ("2026-04-01", "2026-06-30", ("2026-01-01", "2026-03-31")),  # a quarter: the quarter before
    ("2026-01-01", "2026-01-31", ("2025-12-01", "2025-12-31")),
    ("2026-03-06", "2026-03-10", ("2026-03-01", "2026-03-05")),  # any other period: the same length before
    ("2026-06-01", "2026-06-20", ("2026-05-12", "2026-05-31")),  # a month so far: the same number of days
])
def test_the_previous_period_of_whole_months_is_as_many_whole_months(date_from, date_to, previous):
    filters = Filters(date_from=dt.date.fromisoformat(date_from), date_to=dt.date.fromisoformat(date_to))
    before = filters.previous()
    assert (before.date_from.isoformat(), before.date_to.isoformat()) == previous
