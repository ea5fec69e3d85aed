"""The HQ scheduling calendar in a real headless Chromium: plan a session, see it, and see a clash refused.

An HQ user logs in through the form, opens the brand's week, plans a store session, then tries a second
one for the same store overlapping it: the page answers with the refusal naming the first session, in
Chinese, and the week still shows one session. No console error, no foreign or failed request.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from livestream.models import LiveSession
from retail_crm.models import StaffProfile
from tests.browser import browser_page, screenshot
from tests.factories import BrandFactory, RegionFactory, StoreFactory, UserFactory

pytestmark = [pytest.mark.browser]
PASSWORD = "calendar-pass-2026"


@pytest.mark.django_db(transaction=True)
def test_hq_plans_a_session_and_a_clash_is_refused_in_the_browser(live_server):
    brand = BrandFactory(code="WA", name="雅致女装")
    StoreFactory(region=RegionFactory(brand=brand, code="east"), code="SA", name="上海一店")
    user = UserFactory(username="hq-cal")
    user.set_password(PASSWORD)
    user.save()
    StaffProfile.objects.create(user=user, role="hq", group=brand.group)
    day = timezone.localdate() + dt.timedelta(days=1)

    with browser_page(live_server.url, viewport=(1440, 900)) as watch:
        page = watch.page
        page.goto(f"{live_server.url}/accounts/login/?next=/hq/live-schedule/")
        page.fill("input[name=username]", "hq-cal")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/hq/live-schedule/")

        def plan(title: str, start: str, end: str) -> None:
            form = page.locator("section.plan-form form")
            form.locator("select[name=kind]").select_option("store")
            form.locator("input[name=title]").fill(title)
            form.locator("input[name=day]").fill(day.isoformat())
            form.locator("input[name=start]").fill(start)
            form.locator("input[name=end]").fill(end)
            form.locator("input[name=host_store]").fill("SA")
            form.locator("button[type=submit]").click()
            page.wait_for_load_state("load")

        plan("周末新品直播", "19:00", "21:00")
        assert page.locator("p.notice").inner_text() == "已排期“周末新品直播”。"
        assert page.locator("article.live-slot .slot-title").count() == 1

        plan("冲突场次", "20:00", "22:00")
        first = LiveSession.objects.get()
        alert = page.locator("p.notice-error").inner_text()
        assert alert == f"门店 SA 在该时段已有直播“周末新品直播”（#{first.pk}，{day:%m-%d} 19:00–21:00）。"
        assert page.locator("article.live-slot .slot-title").count() == 1
        screenshot(page, "hq-live-schedule-conflict")
        # The refused form's page is answered with 409, which Chromium logs as a failed load: that one only.
        assert [e for e in watch.console_errors if "status of 409" not in e] == []
        assert len(watch.console_errors) == 1
        assert watch.foreign_requests == []
        assert watch.failed_requests == []
    assert LiveSession.objects.count() == 1
