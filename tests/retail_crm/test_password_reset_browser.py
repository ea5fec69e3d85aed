"""A store manager resets a forgotten password on a phone, the guide logs in with the temporary password and must
choose a new one; wrong passwords lock the login with a Chinese page. Real headless Chromium, 375×812.

    brand ── region ── store S1: guide G1 (login "g1"), store manager M1 (login "m1")
"""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model

from retail_crm.models import Guide, StaffPasswordReset, StaffProfile
from tests.browser import browser_page, screenshot
from tests.factories import GuideFactory, StoreFactory, UserFactory

PASSWORD = "pw-123456"
NEW_PASSWORD = "Spring-Sale-2026"


def _login(page, base, username, password):
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form:has(input[name=username]) button[type=submit]")


def _staff(store, code, role, guide_role):
    guide = GuideFactory(store=store, code=code, name={"G1": "林小雨", "M1": "王店长"}[code], role=guide_role)
    guide.user = UserFactory(username=code.lower())
    guide.save(update_fields=["user"])
    scope = {"guide": guide} if role == "guide" else {"store": store}
    StaffProfile.objects.create(user=guide.user, role=role, group=store.brand.group, **scope)
    return guide


def test_a_manager_resets_a_guides_password_and_the_guide_chooses_a_new_one(live_server, transactional_db):
    store = StoreFactory(code="S1", name="南京西路店")
    guide = _staff(store, "G1", "guide", Guide.Role.GUIDE)
    _staff(store, "M1", "store_manager", Guide.Role.STORE_MANAGER)
    base = live_server.url

    with browser_page(base) as watch:
        page = watch.page
        _login(page, base, "m1", PASSWORD)
        page.wait_for_url(f"{base}/workbench/")
        page.click("[data-testid=team-link]")
        page.wait_for_url(f"{base}/workbench/team/")
        assert page.locator("h1").inner_text() == "团队账号"
        assert page.locator("[data-guide]").evaluate_all("rows => rows.map(r => r.dataset.guide)") == ["G1"]
        screenshot(page, "password-reset-01-team")
        page.click("[data-guide=G1] button:has-text('重置密码')")
        temporary = page.locator(".temporary-password").inner_text()
        assert re.fullmatch(r"[a-z2-9]{10}", temporary)
        assert "林小雨（登录名：g1）的新密码是：" in page.locator("[data-testid=temporary-password]").inner_text()
        screenshot(page, "password-reset-02-temporary")
        page.click("form[action='/accounts/logout/'] button")

        _login(page, base, "g1", temporary)
        page.wait_for_url(f"{base}/accounts/password-change/")
        assert page.locator("[data-testid=forced]").inner_text() == "您的密码已被店长重置。请设置新密码后继续。"
        screenshot(page, "password-reset-03-must-change")
        page.goto(f"{base}/workbench/members/")  # nothing else opens before the change
        assert page.url == f"{base}/accounts/password-change/"
        page.fill("input[name=old_password]", temporary)
        page.fill("input[name=new_password1]", NEW_PASSWORD)
        page.fill("input[name=new_password2]", NEW_PASSWORD)
        page.click("form:has(input[name=old_password]) button[type=submit]")
        page.wait_for_url(f"{base}/accounts/password-change/done/")
        assert page.locator("h1").inner_text() == "密码已修改"
        page.goto(f"{base}/workbench/")
        assert page.url == f"{base}/workbench/"
        assert page.locator("h1").inner_text() == "林小雨"

        assert watch.console_errors == []
        assert watch.foreign_requests == []

    user = get_user_model().objects.get(pk=guide.user_id)
    assert user.check_password(NEW_PASSWORD) is True
    assert StaffProfile.objects.get(user=user).must_change_password is False
    assert list(StaffPasswordReset.objects.values_list("reset_by__username", "user__username", "channel")) == [
        ("m1", "g1", "workbench")]


def test_five_wrong_passwords_show_the_chinese_lockout_page(live_server, transactional_db):
    UserFactory(username="g9")
    base = live_server.url

    with browser_page(base) as watch:
        page = watch.page
        for _n in range(4):
            _login(page, base, "g9", "wrong")
            assert page.locator(".error").inner_text() == "用户名或密码错误。"
        _login(page, base, "g9", "wrong")
        assert page.locator("h1").inner_text() == "登录已锁定"
        assert page.locator("[role=alert]").inner_text() == (
            "密码错误次数过多：该账号或网络已被锁定，还需 15 分钟才能再次登录。请稍后再试，或请您的店长或管理员解锁。")
        screenshot(page, "password-reset-04-locked")
        _login(page, base, "g9", PASSWORD)
        assert page.locator("h1").inner_text() == "登录已锁定"
        # The browser reports each 429 answer as a failed resource; nothing else went wrong.
        assert [error for error in watch.console_errors if "429" not in error] == []
        assert len(watch.console_errors) == 2
