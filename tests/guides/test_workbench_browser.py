"""The guide workbench in a real headless Chromium at a phone's 375×812 viewport, in Chinese.

A guide logs in through the login form, reads today's numbers on the home page, opens the care list, a member
from it, a task from the home page, shares the task in one tap, marks a care item done and comes back home to see
the numbers move. Along the way: no console errors, no request leaves the project's own server, every page weighs
under 100 KB before images, and a screenshot of each step lands in $SCREENSHOT_DIR (see tests/browser.py).

The dataset is built here (not the demo seed) through the factories and the real services: attribution and
commission posting for the purchases, the care-list build for the care items, task create/publish for the task.
"Today" is the local day the test runs on; moments "today" are one second after local midnight.

    brand wa 雅致女装 ── east ── s1 (g "林小雨" = the login, g2 "陈晓")
    commission rule: wa, mini-program channel, 5 %; care calendar: cycle 45 days (marketing from day 40,
    lapsed from day 90, care 15 days)

    member  bound to                    purchases (attributed)                 RFML (for the care list)
    m1 王小明 g, today (QR scan)         O1 mini-program 300.00 today           -
    m2 李雷   g, 90 days ago (share)     O3 mini-program 200.00, 40 days ago    important value, last 40 days ago
    m4 韩梅梅 g, 90 days ago (store)     O2 POS s1, guide g, 200.00 today        -
    m5 周杰   g, 200 days ago (QR scan)  -                                      general win-back, lapsed, 100 days
    m3 赵敏   g2, 90 days ago (QR scan)  O4 mini-program 999.00 today (g2's)    general develop, last 5 days ago

Worked out for g, today:
    online sales   O1 300.00 (exclusive credit; O4 is g2's)             → ¥300.00
    offline sales  O2 200.00 (exclusive credit, g is the POS guide too) → ¥200.00
    new members    m1 (bound today)                                     → 1
    members        m1, m2, m4, m5                                       → 4
    commission     O1 300 × 5 % = 15.00 pending (return window 7 days from today's payment);
                   O3 200 × 5 % = 10.00 available (window ended 33 days ago); O2 is POS: no rule → 0
    care list      m2 market (important: call in person), m5 win-back   → 2 open of 2 (m3's item is g2's)
    shares         none yet                                             → 0, after sharing the task → 1
    open tasks     "春季新品上新", assigned to s1's guides              → 0/1 done, after sharing → 1/1
"""

from __future__ import annotations

import datetime as dt
import re
import time
from decimal import Decimal
from types import SimpleNamespace
from urllib.parse import parse_qs

import pytest
from django.conf import settings
from django.utils import timezone

from analytics.services import local_today
from attribution.models import SalesCredit
from attribution.tasks import attribute_order
from guides import library
from guides.models import CommissionEntry, CommissionRule, Share, TaskAssignment
from mall.models import Channel
from members.models import GuideBinding
from segments.care import care_list_build
from segments.models import CareItem, MemberRfm, RfmRun, SegmentationSettings
from tests.browser import browser_page, chromium_or_skip, screenshot
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    GuideBindingFactory,
    GuideFactory,
    MemberFactory,
    OrderFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
    staff_user,
)

pytestmark = [pytest.mark.browser]

PASSWORD = "pw-123456"  # tests.factories.UserFactory's
MAX_PAGE_BYTES = 100 * 1024


def local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min), timezone.get_default_timezone())


def build_world() -> SimpleNamespace:
    today = local_today()
    t_today = local_midnight(today) + dt.timedelta(seconds=1)
    now = timezone.now()

    def days_ago(n: int) -> dt.datetime:
        return t_today - dt.timedelta(days=n)

    grp = RetailGroupFactory(code="grp", name="雅致集团")
    wa = BrandFactory(group=grp, code="wa", name="雅致女装")
    s1 = StoreFactory(region=RegionFactory(brand=wa, code="east", name="华东大区"), code="s1",
                      name="雅致女装上海1号直营店")
    g = GuideFactory(store=s1, code="wb-g01", name="林小雨")
    g2 = GuideFactory(store=s1, code="wb-g02", name="陈晓")
    login = staff_user("guide", guide=g, username="wb-guide")

    names = {"m1": "王小明", "m2": "李雷", "m3": "赵敏", "m4": "韩梅梅", "m5": "周杰"}
    m = {code: MemberFactory(group=grp, code=f"wb{code}", name=name, phone=f"+861380000000{code[1:]}",
                             created_at=days_ago(300))
         for code, name in names.items()}
    for member in m.values():
        BrandMembershipFactory(member=member, brand=wa, store=s1, joined_at=days_ago(300))
    reason = GuideBinding.Reason
    GuideBindingFactory(member=m["m1"], guide=g, started_at=t_today, reason=reason.QR_SCAN)
    GuideBindingFactory(member=m["m2"], guide=g, started_at=days_ago(90), reason=reason.SHARE_LINK)
    GuideBindingFactory(member=m["m4"], guide=g, started_at=days_ago(90), reason=reason.STORE_PURCHASE)
    GuideBindingFactory(member=m["m5"], guide=g, started_at=days_ago(200), reason=reason.QR_SCAN)
    GuideBindingFactory(member=m["m3"], guide=g2, started_at=days_ago(90), reason=reason.QR_SCAN)

    # Purchases, credited by the real attribution and commission services (the task payment runs after paying).
    CommissionRule.objects.create(brand=wa, channel=Channel.MINI_PROGRAM, rate=Decimal("0.0500"))

    def purchase(member, channel, amount, at, **extra):
        order = OrderFactory(brand=wa, member=member, channel=channel, ordered_at=at, paid_at=at,
                             total_amount=Decimal(amount), paid_amount=Decimal(amount), **extra)
        attribute_order(order.pk)
        return order

    orders = SimpleNamespace(
        o1=purchase(m["m1"], Channel.MINI_PROGRAM, "300.00", t_today),
        o2=purchase(m["m4"], Channel.STORE_POS, "200.00", t_today, store=s1, guide=g),
        o3=purchase(m["m2"], Channel.MINI_PROGRAM, "200.00", days_ago(40)),
        o4=purchase(m["m3"], Channel.MINI_PROGRAM, "999.00", t_today),
    )

    # The care list, built by the real service from hand-made RFML rows (a 45-day cycle).
    SegmentationSettings.objects.create(brand=wa, cycle_days=45)
    run = RfmRun.objects.create(brand=wa, as_of=today - dt.timedelta(days=1), window_days=365, started_at=now)

    def rfm(member, segment, stage, last_days_ago):
        MemberRfm.objects.create(member=member, brand=wa, run=run, segment=segment, lifecycle_stage=stage,
                                 frequency=1, monetary=Decimal("200.00"),
                                 last_purchase_on=today - dt.timedelta(days=last_days_ago))
    rfm(m["m2"], "important_value", "mature", 40)
    rfm(m["m5"], "general_winback", "lapsed", 100)
    rfm(m["m3"], "general_develop", "new", 5)
    care_list_build(brand=wa, day=today)

    # A published task for s1's guides (one assignment each). A draft created first keeps the task's id
    # different from the assignment ids, so a link built from the wrong one cannot pass by accident.
    window = {"starts_at": now - dt.timedelta(hours=1), "deadline": now + dt.timedelta(days=3)}
    library.task_create(group=grp, brand=wa, title="草稿", copy_text="草稿", **window)
    library.task_create(group=grp, brand=wa, title="草稿二", copy_text="草稿", **window)
    task = library.task_create(group=grp, brand=wa, title="春季新品上新", assign_stores=[s1],
                               copy_text="春季新品到店啦！轻薄风衣三色可选，会员专享九折。", **window)
    library.task_publish(task=task)
    assignment = TaskAssignment.objects.get(task=task, guide=g)

    return SimpleNamespace(today=today, grp=grp, wa=wa, s1=s1, g=g, g2=g2, login=login, m=m, orders=orders,
                           task=task, assignment=assignment)


def test_the_world_is_what_the_docstring_says(db):
    """The figures the browser test expects, checked on the database (not through the workbench's selectors)."""
    w = build_world()
    credits = SalesCredit.objects.filter(guide=w.g, kind__in=[SalesCredit.Kind.EXCLUSIVE, SalesCredit.Kind.SELLING])
    assert sorted((c.order_id, c.kind, c.amount) for c in credits) == sorted([
        (w.orders.o1.pk, "exclusive", Decimal("300.00")), (w.orders.o2.pk, "exclusive", Decimal("200.00")),
        (w.orders.o3.pk, "exclusive", Decimal("200.00"))])
    entries = CommissionEntry.objects.filter(guide=w.g).order_by("amount")
    assert [(e.order_id, e.amount) for e in entries] == [(w.orders.o3.pk, Decimal("10.00")),
                                                         (w.orders.o1.pk, Decimal("15.00"))]
    assert entries[0].available_at < timezone.now() < entries[1].available_at
    assert sorted((i.member.code, i.kind, i.important) for i in CareItem.objects.filter(guide=w.g)) == [
        ("wbm2", "market", True), ("wbm5", "winback", False)]
    assert list(CareItem.objects.filter(guide=w.g2).values_list("member__code", "kind")) == [("wbm3", "care")]
    assert TaskAssignment.objects.filter(task=w.task).count() == 2
    assert w.assignment.audience_size == 4
    assert w.assignment.pk != w.task.pk


def kpis(page) -> dict[str, str]:
    """The home page's numbers by their data-kpi name, as shown."""
    return page.eval_on_selector_all("[data-kpi]", "els => Object.fromEntries(els.map(e => "
                                                   "[e.dataset.kpi, e.textContent.trim()]))")


def test_a_guide_works_through_the_workbench_on_a_phone(live_server, transactional_db):
    chromium_or_skip()  # before building anything
    started = time.perf_counter()
    w = build_world()
    base = live_server.url
    weights: dict[str, int] = {}

    with browser_page(base, viewport=(375, 812)) as watch:
        page = watch.page

        # Log in through the form; the page is Chinese by default.
        page.goto(f"{base}/workbench/")
        assert page.url.startswith(f"{base}/accounts/login/")
        assert page.get_attribute("html", "lang") == "zh-hans"
        assert page.locator("h1").inner_text() == "登录"
        screenshot(page, "workbench-01-login")
        page.fill("input[name=username]", "wb-guide")
        page.fill("input[name=password]", PASSWORD)
        page.click("form:has(input[name=username]) button[type=submit]")
        page.wait_for_url(f"{base}/workbench/")

        # Home: today's numbers, worked out in the module docstring.
        assert page.get_attribute("html", "lang") == "zh-hans"
        assert page.locator("[data-tab=home]").inner_text() == "首页"
        assert page.locator("h1").inner_text() == "林小雨"
        assert kpis(page) == {
            "sales_online": "¥300.00", "sales_offline": "¥200.00", "new_members": "1", "shares": "0",
            "tasks": "0/1", "tasks_executed": "0", "tasks_assigned": "1", "members": "4",
            "commission_pending": "¥15.00", "commission_available": "¥10.00", "care_open": "2", "care_total": "2",
        }
        assert page.evaluate("document.documentElement.scrollWidth") <= 375  # nothing wider than the phone
        assert page.locator("[data-kpi=tasks]").bounding_box()["height"] < 36  # "0/1" on one line
        task_href = page.get_attribute(f"[data-testid=open-task][data-task-id='{w.task.pk}'] a", "href")
        screenshot(page, "workbench-02-home")
        weights["home"] = watch.page_weight("/workbench/")["total"]

        # The care list: m2 (market, call in person) and m5 (win back); g2's m3 is not there.
        page.click("[data-testid=care-summary] a")
        page.wait_for_url(f"{base}/workbench/care/")
        items = page.locator("[data-testid=care-item]")
        assert items.count() == 2
        shown = {items.nth(i).get_attribute("data-kind"): items.nth(i).locator("[data-testid=member-link]")
                 .inner_text() for i in range(2)}
        assert shown == {"market": "李雷", "winback": "周杰"}
        m2_item = CareItem.objects.get(guide=w.g, member=w.m["m2"])
        m2_row = page.locator(f"[data-testid=care-item][data-care-id='{m2_item.pk}']")
        assert m2_row.get_attribute("data-important") == "1"
        assert m2_row.locator("[data-testid=call-in-person]").count() == 1
        assert page.locator("[data-kpi=care_open]").inner_text() == "2"
        screenshot(page, "workbench-03-care-list")
        weights["care"] = watch.page_weight("/workbench/care/")["total"]

        # A member from the care list: the bound guide sees the whole phone number.
        m2_row.locator("[data-testid=member-link]").click()
        page.wait_for_url(f"{base}/workbench/members/{w.m['m2'].pk}/")
        assert page.locator("[data-testid=member-name]").inner_text() == "李雷"
        phone = page.locator("[data-testid=member-phone]")
        assert phone.get_attribute("data-whole") == "1"
        assert re.sub(r"\D", "", phone.inner_text()).endswith("13800000002")
        assert page.locator("[data-testid=purchase]").count() == 1
        screenshot(page, "workbench-04-member")
        weights["member"] = watch.page_weight(f"/workbench/members/{w.m['m2'].pk}/")["total"]

        # A task from the Tasks tab, shared in one tap; the home page's open-task link leads to the same page.
        page.click("[data-tab=tasks]")
        page.wait_for_url(f"{base}/workbench/tasks/")
        screenshot(page, "workbench-05-tasks")
        weights["tasks"] = watch.page_weight("/workbench/tasks/")["total"]
        page.click(f"[data-testid=tasks-open] [data-task='{w.task.pk}'] a")
        page.wait_for_url(re.compile(r".*/workbench/tasks/\d+/$"))
        assert page.locator("h1").inner_text() == "春季新品上新"
        assert page.url == f"{base}/workbench/tasks/{w.assignment.pk}/"
        assert base + task_href == page.url, "the home page's open-task link opens another page than the task's"
        assert page.locator("[data-testid=task-text]").input_value() == w.task.copy_text
        assert page.locator("[data-testid=task-link]").count() == 0
        screenshot(page, "workbench-06-task")
        weights["task"] = watch.page_weight(f"/workbench/tasks/{w.assignment.pk}/")["total"]
        assert Share.objects.count() == 0

        page.click("[data-testid=execute]")
        page.wait_for_selector("[data-testid=task-link]")
        share = Share.objects.get()
        assert (share.guide_id, share.task_id, share.target) == (w.g.pk, w.task.pk, Share.Target.TASK)
        link = page.locator("[data-testid=task-link]").input_value()
        landing, _, query = link.partition("?")
        assert landing == settings.MINIPROGRAM_JOIN_URL
        assert parse_qs(query) == {"token": [share.code], "page": ["task"], "id": [str(w.task.pk)]}
        text = page.locator("[data-testid=task-text]").input_value()
        assert text == f"{w.task.copy_text}\n{link}"
        assert page.locator("[data-testid=execute]").count() == 0  # done: no second tap
        assignment = TaskAssignment.objects.get(pk=w.assignment.pk)
        assert assignment.executed_at is not None and assignment.share_id == share.pk
        assert assignment.reached == 4
        screenshot(page, "workbench-07-task-shared")

        # Mark m2's care item done with an outcome.
        page.click("[data-tab=care]")
        page.wait_for_url(f"{base}/workbench/care/")
        m2_row = page.locator(f"[data-testid=care-item][data-care-id='{m2_item.pk}']")
        m2_row.locator("input[name=outcome]").fill("已联系，周末到店")
        m2_row.locator("[data-testid=care-done-button]").click()
        page.wait_for_selector(f"[data-testid=care-item][data-care-id='{m2_item.pk}'][data-done='1']")
        assert page.locator("[data-kpi=care_open]").inner_text() == "1"
        assert page.locator("[data-kpi=care_done]").inner_text() == "1"
        m2_item.refresh_from_db()
        assert (m2_item.done_by_id, m2_item.outcome) == (w.login.pk, "已联系，周末到店")
        screenshot(page, "workbench-08-care-done")

        # Home again: one care item left, one share, the task done.
        page.click("[data-tab=home]")
        page.wait_for_url(f"{base}/workbench/")
        after = kpis(page)
        home_task_link = page.locator(f"[data-testid=open-task][data-task-id='{w.task.pk}'] a")
        assert home_task_link.count() == 0  # executed: no longer open

        assert {k: after[k] for k in ("care_open", "care_total", "shares", "tasks", "sales_online")} == {
            "care_open": "1", "care_total": "2", "shares": "1", "tasks": "1/1", "sales_online": "¥300.00"}
        screenshot(page, "workbench-09-home-after")

        # English is one switch away (the header's language select).
        page.select_option("select[name=language]", "en")
        # A selector wait, not wait_for_function: Playwright polls a function by evaluating a string in the
        # page, which our CSP (no 'unsafe-eval') refuses whenever the page is not already English.
        page.wait_for_selector("html[lang=en]", state="attached")
        assert page.locator("[data-tab=home]").inner_text() == "Home"
        screenshot(page, "workbench-10-home-english")

        assert watch.console_errors == []
        assert watch.foreign_requests == []
        assert watch.failed_requests == []

    print(f"page weights (bytes, before images): {weights}; dataset + browser run: "
          f"{time.perf_counter() - started:.1f} s")
    assert all(size < MAX_PAGE_BYTES for size in weights.values()), weights
