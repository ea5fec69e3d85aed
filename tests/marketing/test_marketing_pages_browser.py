"""The HQ marketing pages in a real headless Chromium at desktop size, in Chinese, as a brand operator.

The operator of brand WA (tests/marketing/pages_world.py: m1–m4 in WA, m5 in WB) logs in through the form,
creates an audience in the editor and watches its size counted live while choosing the conditions (the
preview API through static/js/audience_preview.js): every member 4, tag M 2 (m1, m2), tag M or vip 3 (m1,
m2, m3). Saved, the list shows it with 3 members once the browser has counted it (the list page itself counts
nothing). Then the campaign wizard: SMS with the member's name and the tracking link, no holdout; the review
counts 3 members; launched, its run is resolved at once (on commit, eager tasks). m3 opted out of SMS, so
dispatching (``deliveries_dispatch``, called here) sends 2 and the results show sent 2, held back 1 ("opted
out"), the funnel chart drawn. The group's reach rules have no quiet hours here, so the counts do not depend on
the hour the test runs. No console error, no request to another host, no failed request.
"""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from marketing.channels import fake
from marketing.models import Audience, Campaign, ChannelOptOut, ReachRules
from marketing.services import deliveries_dispatch
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
def test_a_brand_operator_builds_an_audience_then_launches_a_campaign_and_reads_its_results(live_server):
    from retail_crm.models import StaffProfile

    fake.reset()
    w = build_world()
    ReachRules.objects.create(group=w.group, quiet_start="00:00", quiet_end="00:00")
    ChannelOptOut.objects.create(member=w.m3, channel="sms", source="reply", opted_out_at=timezone.now())
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
        page.fill("input[name=name]", "M 码或 VIP")
        page.select_option("select[name=tags_any]", [str(w.tag_m.pk)])
        size_is(page, 2)
        page.select_option("select[name=tags_any]", [str(w.tag_m.pk), str(w.tag_vip.pk)])
        size_is(page, 3)
        screenshot(page, "marketing-01-audience-editor")

        page.click("aside.size-panel button[type=submit]")
        page.wait_for_url(re.compile(r".*/hq/marketing/audiences/\d+/$"))
        audience = Audience.objects.get()
        assert page.url == f"{base}/hq/marketing/audiences/{audience.pk}/"
        assert page.locator("p.notice").inner_text() == "已保存人群“M 码或 VIP”：当前 3 位会员。"
        assert audience.definition == {"tags": {"any": [w.tag_vip.pk, w.tag_m.pk]}}  # in the list's order

        page.click("nav.sub-nav a >> text=人群")
        page.wait_for_url(f"{base}/hq/marketing/")
        row = page.locator(f"tr[data-audience='{audience.pk}']")
        # The list counts nothing itself: the size is filled in after the page is shown (audience_sizes.js).
        row.locator('td.audience-size[data-state="ready"]').wait_for()
        assert row.locator("td.audience-size").inner_text() == "3"
        screenshot(page, "marketing-02-audiences")

        # The wizard, from the sub-tabs.
        page.click("nav.sub-nav a >> text=营销活动")
        page.wait_for_url(f"{base}/hq/marketing/campaigns/")
        page.click("text=新建活动")
        page.wait_for_url(f"{base}/hq/marketing/campaigns/new/")
        page.fill("input[name=name]", "春季上新提醒")
        page.select_option("select[name=audience]", str(audience.pk))
        page.select_option("select[name=channel_1]", "sms")
        page.fill("input[name=sms_template]", "1110")
        page.fill("textarea[name=sms_params]", "{name}您好，春季新品已到店\n{link}")
        page.fill("input[name=link]", "https://mall.example.com/mp/new-arrivals")
        page.fill("input[name=holdout_percent]", "0")
        page.click("button[value=review]")
        page.wait_for_selector("#campaign-review")
        assert page.locator("#review-size").inner_text() == "3"
        screenshot(page, "marketing-03-campaign-wizard-review")
        assert not Campaign.objects.exists()  # the review saves nothing

        page.click("#campaign-review button[value=launch]")
        page.wait_for_url(re.compile(r".*/hq/marketing/campaigns/\d+/$"))
        campaign = Campaign.objects.get()
        assert page.locator("p.notice").inner_text() == "已启动活动“春季上新提醒”。"

        assert deliveries_dispatch().sent == 2
        assert sorted(m.address for m in fake.sent_messages()) == sorted([w.m1.phone, w.m2.phone])
        page.goto(f"{base}/hq/marketing/campaigns/{campaign.pk}/")
        page.wait_for_selector("html[data-charts-ready]")

        def figure(name: str) -> str:
            return page.locator(f"[data-figure={name}] .value").inner_text()

        assert [figure(name) for name in ("audience", "holdout", "held", "sent", "delivered", "failed",
                                          "clicked", "converted")] == ["3", "0", "1", "2", "0", "0", "0", "0"]
        assert page.locator("#campaign-held tr[data-reason=opted_out]").inner_text().split() == [
            "已退订所有可用渠道", "1"]
        assert page.locator("#campaign-status").inner_text() == "已完成"
        screenshot(page, "marketing-04-campaign-results")

        page.click("nav.sub-nav a >> text=营销活动")
        page.wait_for_url(f"{base}/hq/marketing/campaigns/")
        row = page.locator(f"tr[data-campaign='{campaign.pk}']")
        assert (row.locator("td.sent").inner_text(), row.locator("td.held").inner_text()) == ("2", "1")
        screenshot(page, "marketing-05-campaigns")

        assert watch.console_errors == []
        assert watch.foreign_requests == []
        assert watch.failed_requests == []
