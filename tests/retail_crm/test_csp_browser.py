"""Pages we do not template ourselves, and the shared page behaviour, under the Content-Security-Policy in a real
headless Chromium: the Django admin (a guide's change page), Swagger UI on /api/docs/, DRF's browsable API, our
404 page and the language switch (wired by static/js/site.js now that inline handlers are refused).
A CSP violation is a console error ("Refused to …"), so each page must leave the console clean.
"""

import pytest

from tests.browser import browser_page, screenshot
from tests.factories import GuideFactory, UserFactory

PASSWORD = "csp-browser-pass-2026"  # noqa: S105


@pytest.mark.django_db(transaction=True)
def test_admin_swagger_browsable_api_and_error_page_run_under_the_csp(live_server):
    UserFactory(username="root", password=PASSWORD, is_staff=True, is_superuser=True)
    guide = GuideFactory()
    with browser_page(live_server.url, viewport=(1280, 900)) as watch:
        page = watch.page
        page.goto(f"{live_server.url}/admin/login/?next=/admin/")
        page.fill("input[name=username]", "root")
        page.fill("input[name=password]", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/")
        # The admin index in Chinese (the default language): our header, Chinese app and model names.
        assert page.inner_text("#site-name") == "零售私域运营平台"
        screenshot(page, "admin-index-zh")

        page.goto(f"{live_server.url}/admin/retail_crm/guide/{guide.pk}/change/")
        page.wait_for_selector("#guide_form")
        screenshot(page, "csp-admin-guide-change")

        page.goto(f"{live_server.url}/api/docs/", wait_until="networkidle")
        # Rendered by the start-up script served from ?script (and the schema it fetches).
        assert "Retail CRM API" in page.inner_text(".swagger-ui .info .title", timeout=30_000), watch.console_errors
        assert page.locator(".swagger-ui .opblock").count() > 10
        screenshot(page, "csp-api-docs", full_page=False)  # the whole page is too tall to capture quickly

        page.goto(f"{live_server.url}/api/v1/org/brands/", wait_until="load")
        page.wait_for_selector(".response-info")  # DRF's browsable API page
        screenshot(page, "csp-browsable-api")

        response = page.goto(f"{live_server.url}/no-such-page/")
        assert response.status == 404
        page.wait_for_selector("main.error-page[data-status='404']")
        screenshot(page, "csp-404")

        page.goto(f"{live_server.url}/accounts/login/")
        assert page.get_attribute("html", "lang") == "zh-hans"
        with page.expect_navigation():
            page.select_option("select[name=language]", "en")
        assert page.get_attribute("html", "lang") == "en"
        assert page.inner_text("h1") == "Log in"

    # The one console error expected: Chromium reports the 404 document itself as a failed load.
    errors = [error for error in watch.console_errors
              if not error.startswith("Failed to load resource: the server responded with a status of 404")
              or not error.endswith("/no-such-page/")]
    assert len(watch.console_errors) - len(errors) == 1
    assert errors == [], "\n".join(errors)
    assert watch.failed_requests == []
    assert watch.foreign_requests == []
