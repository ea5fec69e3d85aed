"""The HQ dashboard in a real headless Chromium (Debian's, driven by Playwright; see tests/browser.py).

An HQ user logs in through the login form, opens the overview, follows the brand ranking's drill-down
(brand → regions → stores) and looks at a store page on a tablet. On every page each chart container
holds an ECharts canvas, the console shows no error, no request leaves the project's own server and no
request fails. Screenshots go to $SCREENSHOT_DIR (default artifacts/screenshots/), whose path is printed.

Data: tests/dashboard_data.py, facts built for March 2025 and March 2026.
"""

from __future__ import annotations

import pytest

from tests.browser import browser_page, screenshot, screenshot_dir
from tests.dashboard_data import PASSWORD, build_dashboard_world, build_facts

pytestmark = [pytest.mark.browser]

QUERY = "from=2026-03-01&to=2026-03-31"
DESKTOP = (1440, 900)
TABLET = (1024, 768)


def charts_drawn(page) -> list[bool]:
    """Whether each chart container on the page holds a drawn canvas (ECharts' canvas renderer)."""
    page.wait_for_selector("html[data-charts-ready]")
    return page.eval_on_selector_all(
        ".chart[data-chart]",
        "els => els.map(el => { const c = el.querySelector('canvas'); return !!c && c.width > 0 && c.height > 0; })")


def assert_clean(watch) -> None:
    assert watch.console_errors == []
    assert watch.foreign_requests == []
    assert watch.failed_requests == []


@pytest.mark.django_db(transaction=True)
def test_hq_overview_and_drill_down_render_their_charts(live_server):
    build_dashboard_world()
    build_facts()

    with browser_page(live_server.url, viewport=DESKTOP) as watch:
        page = watch.page
        page.goto(f"{live_server.url}/accounts/login/?next=/hq/%3F{QUERY.replace('&', '%26')}")
        page.fill("input[name=username]", "hq")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"**/hq/?{QUERY}")

        drawn = charts_drawn(page)
        assert len(drawn) >= 15  # one trend per headline metric, the sales chart and the join channels
        assert all(drawn)
        assert page.locator('[data-metric="sales_flow"] .value').inner_text() == "¥1,810.00"
        screenshot(page, "dashboard-overview")

        page.click("nav.dash-nav a[href^='/hq/brands/']")
        page.wait_for_url("**/hq/brands/**")
        assert all(charts_drawn(page))
        page.click('#table-brand_ranking a:text("雅致女装")')
        page.wait_for_url("**/hq/regions/**brand=WA**")
        drawn = charts_drawn(page)
        assert drawn and all(drawn)
        assert page.locator("#table-region_ranking tbody tr").count() == 2
        screenshot(page, "dashboard-regions-of-brand")

        page.click('#table-region_ranking a:text("华东")')
        page.wait_for_url("**/hq/stores/**region=WA:east**")  # regions are BRAND:code (codes repeat)
        assert page.locator("select[name=region] option:checked").inner_text() == "雅致女装 · 华东"
        assert all(charts_drawn(page))
        assert page.locator("#table-store_ranking tbody tr").count() == 2
        screenshot(page, "dashboard-stores-of-region")
        assert_clean(watch)

    with browser_page(live_server.url, viewport=TABLET) as watch:
        page = watch.page
        page.goto(f"{live_server.url}/accounts/login/?next=/hq/stores/")
        page.fill("input[name=username]", "hq")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/hq/stores/")
        page.goto(f"{live_server.url}/hq/stores/?{QUERY}")
        drawn = charts_drawn(page)
        assert drawn and all(drawn)
        # Usable on a tablet: the page does not scroll sideways (wide tables scroll inside their card).
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        screenshot(page, "dashboard-stores-tablet")
        assert_clean(watch)

    print(f"dashboard screenshots: {screenshot_dir()}")


def login(page, base_url: str, next_path: str) -> None:
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.fill("input[name=username]", "hq")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{next_path}")


def store_codes(page) -> list[str]:
    return page.eval_on_selector_all("#table-store_ranking tbody tr td:nth-child(2)",
                                     "tds => tds.map(td => td.textContent.trim())")


@pytest.mark.django_db(transaction=True)
def test_hq_sorts_a_table_picks_a_preset_and_opens_a_guide(live_server):
    """Click a sortable header (twice: largest first, then the other way), a period preset, a guide's name;
    the comparisons carry their good/bad colours and the livestream quantities have a chart each. Then a look
    (and a screenshot) at the RFML page, the gross-profit page and the coupon page."""
    world = build_dashboard_world()
    build_facts()
    from mall.models import CouponTemplate

    template = CouponTemplate.objects.create(brand=world.wa, name="满200减30", kind="threshold",
                                             threshold_amount="200.00", discount_amount="30.00", valid_days=30)

    with browser_page(live_server.url, viewport=DESKTOP) as watch:
        page = watch.page
        login(page, live_server.url, "/hq/stores/")
        page.goto(f"{live_server.url}/hq/stores/?{QUERY}")
        assert store_codes(page) == ["E1", "E2", "W1", "N1"]

        page.click('#table-store_ranking th a[data-sort="paid_orders"]')
        page.wait_for_url("**sort=store_ranking:-paid_orders**")
        assert store_codes(page) == ["E1", "N1", "E2", "W1"]  # 3, 2, 1, 1 paid orders
        assert page.locator('#table-store_ranking th[aria-sort="descending"]').count() == 1
        assert all(charts_drawn(page))
        page.locator("#table-store_ranking").scroll_into_view_if_needed()
        screenshot(page, "dashboard-stores-sorted-by-paid-orders")
        page.click('#table-store_ranking th a[data-sort="paid_orders"]')
        page.wait_for_url("**sort=store_ranking:paid_orders**")
        assert store_codes(page)[:2] == ["E2", "W1"]
        assert page.locator('#table-store_ranking th[aria-sort="ascending"]').count() == 1

        # A preset: this month, which includes today, so the period is marked partial.
        page.click('nav.presets a[data-preset="this_month"]')
        page.wait_for_url("**/hq/stores/?from=**")
        assert page.locator('nav.presets a[data-preset="this_month"].active').count() == 1
        assert page.locator("[data-partial]").count() == 1
        assert all(charts_drawn(page))
        screenshot(page, "dashboard-stores-preset-this-month")

        # The overview of March 2026: 环比 beside 同比, coloured by the metric's direction.
        page.goto(f"{live_server.url}/hq/?from=2026-03-03&to=2026-03-05")
        assert all(charts_drawn(page))
        unpaid = page.locator('[data-metric="unpaid_ratio"] [data-compare="previous"] .tone')
        assert unpaid.get_attribute("data-tone") == "bad"
        assert unpaid.evaluate("el => getComputedStyle(el).color") == "rgb(198, 40, 40)"
        refunds = page.locator('[data-metric="refund_ratio"] [data-compare="previous"] .tone')
        assert refunds.evaluate("el => getComputedStyle(el).color") == "rgb(29, 122, 62)"
        screenshot(page, "dashboard-overview-comparisons")

        page.goto(f"{live_server.url}/hq/guides/?{QUERY}")
        page.click('#table-guide_kpis a:text("王芳")')
        page.wait_for_url("**/hq/guides/E1-G1/**")
        assert all(charts_drawn(page))
        assert page.locator('[data-metric="sales"] .value').inner_text() == "¥700.00"
        screenshot(page, "dashboard-guide-page")

        page.fill("form.dash-search input[name=q]", "上海")
        page.click("form.dash-search button")
        page.wait_for_url("**/hq/search/**")
        assert page.locator("#search-stores li").count() == 2
        screenshot(page, "dashboard-search")

        page.goto(f"{live_server.url}/hq/livestream/?{QUERY}")
        drawn = charts_drawn(page)
        assert drawn and all(drawn)
        split = "#live-split-sessions canvas, #live-split-hours canvas, #live-split-buyers canvas"
        assert page.locator(split).count() == 3
        screenshot(page, "dashboard-livestream-split-charts")

        # RFML of WA: the class history of the two March runs, the class sizes and the transitions between them.
        page.goto(f"{live_server.url}/hq/segments/?{QUERY}&brand=WA")
        drawn = charts_drawn(page)
        assert drawn and all(drawn)
        assert page.locator("select[name=from_run] option").count() == 2
        screenshot(page, "dashboard-segments-rfml-history")

        page.goto(f"{live_server.url}/hq/core/?{QUERY}")
        assert all(charts_drawn(page))
        assert "毛利" in page.inner_text("main")
        screenshot(page, "dashboard-core-gross-profit")

        page.goto(f"{live_server.url}/hq/coupons/?template={template.pk}")
        assert page.inner_text("h1.schedule-title") == "发放优惠券"
        assert page.locator("section.plan-form form").count() == 1
        screenshot(page, "hq-coupons")
        assert_clean(watch)
