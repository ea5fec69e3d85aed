"""The HQ marketing pages in a real headless Chromium at desktop size, in Chinese, as a brand operator.

The operator of brand WA (tests/marketing/pages_world.py: m1–m4 in WA, m5 in WB) logs in through the form,
creates an audience in the editor and watches its size counted live while choosing the conditions (the
preview API through static/js/audience_preview.js): every member 4, tag M 2, and with points ≥ 100 1 (m1).
Saved, the list shows it with 1 member. No console error, no request to another host, no failed request.
"""

from __future__ import annotations

import re

import pytest

from marketing.models import Audience
from tests.browser import browser_page, screenshot
from tests.factories import UserFactory
from tests.marketing.pages_world import build_world

pytestmark = [pytest.mark.browser]
PASSWORD = "marketing-pass-2026"


def size_is(page, count: int) -> None:
    """Wait until the live size shows ``count`` (the preview answered for the current conditions)."""
    page.wait_for_selector(f'#audience-size[data-state="ready"][data-count="{count}"]')
    assert page.locator("#audience-size").inner_text() == str(count)


@pytest.mark.django_db(transaction=True)
def test_a_brand_operator_builds_an_audience_with_a_live_count(live_server):
    from retail_crm.models import StaffProfile

    w = build_world()
    user = UserFactory(username="op-wa", first_name="", last_name="")
    user.set_password(PASSWORD)
    user.save()
    StaffProfile.objects.create(user=user, role="brand_operator", group=w.group, brand=w.wa)
    base = live_server.url

    with browser_page(base, viewport=(1440, 900)) as watch:
        page = watch.page
        page.goto(f"{base}/accounts/login/?next=/hq/marketing/")
        page.fill("input[name=username]", "op-wa")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/hq/marketing/")
        assert page.locator("h1").inner_text() == "人群"

        page.click("text=新建人群")
        page.wait_for_url(f"{base}/hq/marketing/audiences/new/")
        size_is(page, 4)  # no condition: every member of WA, as rendered
        page.fill("input[name=name]", "M 码高积分")
        page.select_option("select[name=tags_any]", [str(w.tag_m.pk)])
        size_is(page, 2)
        page.fill("input[name=points_min]", "100")
        size_is(page, 1)
        screenshot(page, "marketing-01-audience-editor")

        page.click("aside.size-panel button[type=submit]")
        page.wait_for_url(re.compile(r".*/hq/marketing/audiences/\d+/$"))
        audience = Audience.objects.get()
        assert page.url == f"{base}/hq/marketing/audiences/{audience.pk}/"
        assert page.locator("p.notice").inner_text() == "已保存人群“M 码高积分”：当前 1 位会员。"
        assert audience.definition == {"tags": {"any": [w.tag_m.pk]}, "points": {"min": 100}}

        page.click("nav.sub-nav a")
        page.wait_for_url(f"{base}/hq/marketing/")
        row = page.locator(f"tr[data-audience='{audience.pk}']")
        assert row.locator("td.audience-size").inner_text() == "1"
        screenshot(page, "marketing-02-audiences")

        assert watch.console_errors == []
        assert watch.foreign_requests == []
        assert watch.failed_requests == []
