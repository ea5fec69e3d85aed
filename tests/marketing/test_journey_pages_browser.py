"""The journey pages in a real headless Chromium at desktop size, in Chinese, as WA's brand operator.

tests/marketing/pages_world.py's members; m2 and m4 have their birthday today. The operator creates a birthday
journey in the editor (the inputs of the chosen trigger and step kind only, static/js/journey_editor.js):
step 1 a coupon, then "add a step" and step 2 a tag. Saved, the journey's page shows the preview: about 2
members would enter today. Activated (confirmed), the daily scan enrols m2 and m4 (no holdout), the executor
issues and tags, and the results show 2 entered, each step entered 2 and acted 2.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from marketing.journeys import journeys_advance, journeys_daily
from marketing.models import Journey
from tests.browser import browser_page, screenshot
from tests.factories import UserFactory
from tests.marketing.pages_world import build_world

pytestmark = [pytest.mark.browser]
PASSWORD = "journey-pass-2026"


@pytest.mark.django_db(transaction=True)
def test_a_brand_operator_builds_activates_and_reads_a_journey(live_server):
    from retail_crm.models import StaffProfile

    w = build_world()
    today = timezone.localdate()
    birthday = today if not (today.month == 2 and today.day == 29) else today - dt.timedelta(days=1)
    for member in (w.m2, w.m4):
        member.birthday = dt.date(1992, birthday.month, birthday.day)
        member.save(update_fields=["birthday"])
    user = UserFactory(username="op-wa", first_name="", last_name="")
    user.set_password(PASSWORD)
    user.save()
    StaffProfile.objects.create(user=user, role="brand_operator", group=w.group, brand=w.wa)
    base = live_server.url

    with browser_page(base, viewport=(1440, 900)) as watch:
        page = watch.page
        page.goto(f"{base}/accounts/login/?next=/hq/marketing/journeys/")
        page.fill("input[name=username]", "op-wa")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/hq/marketing/journeys/")
        assert page.locator("h1").inner_text() == "旅程"

        page.click("text=新建旅程")
        page.wait_for_url(f"{base}/hq/marketing/journeys/new/")
        page.fill("input[name=name]", "生日礼")
        page.select_option("select[name=trigger]", "birthday")
        assert page.locator("input[name=days_before]").is_visible()
        assert not page.locator("input[name=views]").is_visible()
        page.fill("input[name=holdout_percent]", "0")
        page.select_option("select[name=s0-kind]", "coupon")
        assert not page.locator("input[name=s0-wait_amount]").is_visible()
        page.select_option("select[name=s0-coupon_template]", str(w.template.pk))
        page.click("#add-step")
        page.wait_for_selector("select[name=s1-kind]")
        assert page.locator("select[name=s0-coupon_template]").input_value() == str(w.template.pk)
        page.select_option("select[name=s1-kind]", "tag_add")
        page.select_option("select[name=s1-tag_value]", str(w.tag_vip.pk))
        screenshot(page, "journeys-01-editor")

        page.click("#save-journey")
        page.wait_for_url(re.compile(r".*/hq/marketing/journeys/\d+/$"))
        journey = Journey.objects.get()
        assert page.locator("p.notice").inner_text() == "已保存旅程“生日礼”。"
        assert page.locator("#journey-preview .value").inner_text() == "2"
        assert "今天约有 2 位会员进入。" in page.locator("#journey-preview").inner_text()
        screenshot(page, "journeys-02-preview")

        page.click("#journey-activate summary")
        page.click("#journey-activate button[value=activate]")
        page.wait_for_selector("p.notice")
        assert page.locator("p.notice").inner_text() == "已启用旅程“生日礼”。"
        assert page.locator("#journey-status").inner_text() == "进行中"

        assert journeys_daily().entered == 2  # the executor is kicked on commit (eager tasks here) …
        journeys_advance()  # … and this finds nothing left to do
        page.goto(f"{base}/hq/marketing/journeys/{journey.pk}/")
        page.wait_for_selector("html[data-charts-ready]")
        assert page.locator("[data-figure=entered] .value").inner_text() == "2"
        rows = page.locator("#journey-steps tbody tr")
        assert [rows.nth(i).locator("td.entered").inner_text() for i in range(2)] == ["2", "2"]
        assert [rows.nth(i).locator("td.acted").inner_text() for i in range(2)] == ["2", "2"]
        screenshot(page, "journeys-03-results")

        page.click("nav.sub-nav a >> text=旅程")
        page.wait_for_url(f"{base}/hq/marketing/journeys/")
        row = page.locator(f"tr[data-journey='{journey.pk}']")
        assert row.locator("td.entered").inner_text() == "2"
        screenshot(page, "journeys-04-list")

        assert watch.console_errors == []
        assert watch.foreign_requests == []
        assert watch.failed_requests == []
