"""Every workbench page on a 375×812 phone, as a guide and as a store manager, measured in headless Chromium
(issue 23 #9), and the login page before logging in: nothing is wider than the phone
(document.documentElement.scrollWidth ≤ 375) and every visible link, button, field, select, summary and
[role=button] is at least 44×44 px. Folded parts (<details>: the
members filter panel, the rest of the care list, the reject box) are opened first so what they hold is measured
too. A screenshot of each page lands in $SCREENSHOT_DIR (tests/browser.py).

The dataset is tests.guides.test_workbench_browser.build_world (a guide 林小雨 with 4 members, a care list, a task)
plus: a store manager of the same store (with a guide row, so they have a ledger), a withdrawal the guide asked for, a
session of the store's live schedule hosted by the colleague 陈晓, and the guide's task executed (a share).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from guides import library
from guides.models import CommissionEntry, TaskAssignment
from guides.withdrawals import withdrawal_request
from livestream.models import LiveSession
from retail_crm.models import Guide
from tests.browser import browser_page, chromium_or_skip, screenshot
from tests.factories import GuideFactory, staff_user
from tests.guides.test_workbench_browser import PASSWORD, build_world

pytestmark = [pytest.mark.browser]

PHONE_WIDTH = 375
MIN_TAP = 44

# Opens every <details>, then lists the page's width and every tap target under 44×44 px (with what it is).
MEASURE = """() => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const small = [];
  const targets = 'a, button, input, select, textarea, summary, [role=button]';
  for (const el of document.querySelectorAll(targets)) {
    if (el.type === 'hidden' || el.getClientRects().length === 0) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || el.closest('.visually-hidden')) continue;
    const box = el.getBoundingClientRect();
    if (box.width + 0.01 < 44 || box.height + 0.01 < 44) {
      const text = (el.innerText || el.value || el.getAttribute('aria-label') || el.name || '').trim().slice(0, 24);
      small.push(`${el.tagName.toLowerCase()}${el.type ? '[' + el.type + ']' : ''} "${text}" `
                 + `${Math.round(box.width)}×${Math.round(box.height)}`);
    }
  }
  const wide = [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 375.5)
    .slice(0, 5)
    .map(e => `${e.tagName.toLowerCase()}.${e.className} right=${Math.round(e.getBoundingClientRect().right)}`);
  return {width: document.documentElement.scrollWidth, small, wide};
}"""


def layout_world():
    w = build_world()
    manager_guide = GuideFactory(store=w.s1, code="wb-mgr", name="王店长", role=Guide.Role.STORE_MANAGER)
    manager = staff_user("store_manager", store=w.s1, guide=manager_guide, username="wb-manager")
    CommissionEntry.objects.create(guide=w.g, brand=w.wa, kind="earn", amount=Decimal("50.00"),
                                   available_at=timezone.now() - dt.timedelta(days=1))
    withdrawal = withdrawal_request(guide=w.g, amount=Decimal("20.00"), request_key="layout").withdrawal
    start = timezone.now() + dt.timedelta(days=1)
    LiveSession.objects.create(brand=w.wa, kind=LiveSession.Kind.STORE, title="雅致女装上海1号店 周末店播",
                               host_store=w.s1, host_guide=w.g2, planned_start=start,
                               planned_end=start + dt.timedelta(hours=2))
    executed = library.task_execute(assignment=w.assignment)
    return w, manager, withdrawal, executed.share


def pages_of(w, withdrawal, share) -> dict[str, list[str]]:
    m2 = w.m["m2"].pk
    common = ["/workbench/", "/workbench/members/", f"/workbench/members/{m2}/", f"/workbench/members/{m2}/try-on/",
              "/workbench/care/",
              "/workbench/care/?kind=done", "/workbench/performance/", "/workbench/live/", "/workbench/qr/",
              "/workbench/share/", "/workbench/shares/", "/workbench/materials/", "/workbench/tasks/",
              "/workbench/commission/"]
    guide = [*common, f"/workbench/shares/{share.pk}/", f"/workbench/tasks/{w.assignment.pk}/",
             f"/workbench/withdrawals/{withdrawal.pk}/"]
    manager = [*common, "/workbench/withdrawals/review/", f"/workbench/withdrawals/{withdrawal.pk}/",
               f"/workbench/tasks/{w.assignment.pk}/", "/workbench/tasks/execution/",
               f"/workbench/members/?guide={w.g.code}", f"/workbench/care/?guide={w.g.code}", "/workbench/team/"]
    return {"guide": guide, "manager": manager}


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/?next=/workbench/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form:has(input[name=username]) button[type=submit]")
    page.wait_for_url(f"{base}/workbench/")


def slug(path: str) -> str:
    return path.strip("/").replace("/", "-").replace("?", "-").replace("=", "-") or "home"


def test_every_workbench_page_fits_a_phone_with_44px_tap_targets(live_server, transactional_db):
    chromium_or_skip()
    w, manager, withdrawal, share = layout_world()
    assert TaskAssignment.objects.get(pk=w.assignment.pk).executed_at is not None
    base = live_server.url
    problems: list[str] = []
    console_errors: list[str] = []
    seen = 0

    for role, username in (("guide", "wb-guide"), ("manager", manager.username)):
        with browser_page(base, viewport=(PHONE_WIDTH, 812)) as watch:
            page = watch.page
            if role == "guide":  # the login page, as a guide first opens it on the phone (not logged in yet)
                login = "/accounts/login/?next=/workbench/"
                response = page.goto(base + login)
                assert response.status == 200
                found = page.evaluate(MEASURE)
                screenshot(page, "layout-login")
                seen += 1
                if found["width"] > PHONE_WIDTH:
                    problems.append(f"{login}: {found['width']} px wide ({'; '.join(found['wide'])})")
                if found["small"]:
                    problems.append(f"{login}: under {MIN_TAP}×{MIN_TAP}: {', '.join(found['small'])}")
            log_in(page, base, username)
            for path in pages_of(w, withdrawal, share)[role]:
                response = page.goto(base + path)
                assert response.status == 200, f"{role} {path}: {response.status}"
                assert page.get_attribute("html", "lang") == "zh-hans"
                found = page.evaluate(MEASURE)
                screenshot(page, f"layout-{role}-{slug(path)}")
                seen += 1
                if found["width"] > PHONE_WIDTH:
                    problems.append(f"{role} {path}: {found['width']} px wide ({'; '.join(found['wide'])})")
                if found["small"]:
                    problems.append(f"{role} {path}: under {MIN_TAP}×{MIN_TAP}: {', '.join(found['small'])}")
            console_errors += [f"{role}: {error}" for error in watch.console_errors]  # checked after the layout

    assert seen == 1 + 17 + 21  # the login page, the guide's pages, the manager's
    assert not problems, "\n".join(problems)
    assert console_errors == []
