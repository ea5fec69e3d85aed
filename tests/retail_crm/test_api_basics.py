"""The site's plumbing: OpenAPI schema and docs, health check, the API's error shape, logging in, the landing
redirect, the guide workbench and the language switch."""

from __future__ import annotations

import datetime as dt
import json
import re
from types import SimpleNamespace

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.utils import timezone

from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    GuideBindingFactory,
    GuideFactory,
    MemberFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
    UserFactory,
    staff_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    grp = RetailGroupFactory(code="grp", name="Group")
    brand = BrandFactory(group=grp, code="brand-a", name="Brand A")
    region = RegionFactory(brand=brand, code="east", name="East")
    store = StoreFactory(region=region, code="a-e1", name="A East 1", city="上海")
    return SimpleNamespace(grp=grp, brand=brand, region=region, store=store)


# ---------------------------------------------------------------- schema and docs


def test_schema_is_served_as_openapi_yaml_by_default(client):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.oai.openapi; charset=utf-8"
    assert response.content.decode().startswith("openapi: 3.0.3\ninfo:\n  title: Retail CRM API\n")


def test_schema_as_json_lists_the_whole_api(client):
    response = client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.oai.openapi+json"
    schema = json.loads(response.content)
    assert schema["openapi"] == "3.0.3"
    assert schema["info"]["title"] == "Retail CRM API"
    # The whole API surface: a new endpoint is a deliberate change to this list.
    assert sorted(schema["paths"]) == [
        "/api/v1/analytics/care-items/", "/api/v1/analytics/care-items/{id}/done/", "/api/v1/analytics/credits/",
        "/api/v1/analytics/guides/{guide_id}/credits/", "/api/v1/analytics/metrics/brands/",
        "/api/v1/analytics/metrics/core/", "/api/v1/analytics/metrics/guides/", "/api/v1/analytics/metrics/livestream/",
        "/api/v1/analytics/metrics/overview/", "/api/v1/analytics/metrics/regions/",
        "/api/v1/analytics/metrics/segments/", "/api/v1/analytics/metrics/segments/transitions/",
        "/api/v1/analytics/metrics/store-months/", "/api/v1/analytics/metrics/stores/",
        "/api/v1/analytics/orders/{order_id}/credits/", "/api/v1/analytics/rfm/members/",
        "/api/v1/analytics/rfm/runs/latest/", "/api/v1/auth/token/",
        "/api/v1/guides/commission/", "/api/v1/guides/task-execution/", "/api/v1/guides/withdrawals/",
        "/api/v1/guides/withdrawals/{id}/approve/", "/api/v1/guides/withdrawals/{id}/paid/",
        "/api/v1/guides/withdrawals/{id}/reject/",
        "/api/v1/livestream/brands/{brand_code}/phase-targets/",
        "/api/v1/livestream/brands/{brand_code}/store-progress/",
        "/api/v1/livestream/brands/{brand_code}/week-summary/", "/api/v1/livestream/sessions/",
        "/api/v1/livestream/sessions/{id}/cancel/", "/api/v1/livestream/sessions/{id}/coaching-notes/",
        "/api/v1/livestream/sessions/{id}/end/", "/api/v1/livestream/sessions/{id}/share-resources/",
        "/api/v1/livestream/sessions/{id}/start/", "/api/v1/livestream/sessions/{id}/stats/",
        "/api/v1/livestream/stores/{store_code}/phase/",
        "/api/v1/livestream/stores/{store_code}/progress/", "/api/v1/livestream/stores/{store_code}/schedule/",
        "/api/v1/livestream/summary/",
        "/api/v1/mall/coupon-templates/", "/api/v1/mall/coupon-templates/{id}/issue/", "/api/v1/mall/orders/",
        "/api/v1/mall/orders/{id}/", "/api/v1/mall/orders/{id}/ship/", "/api/v1/mall/refunds/",
        "/api/v1/mall/refunds/{id}/approve/",
        "/api/v1/mall/refunds/{id}/reject/", "/api/v1/mall/skus/{sku_id}/stock/adjust/",
        "/api/v1/marketing/audiences/", "/api/v1/marketing/audiences/preview/", "/api/v1/marketing/audiences/{id}/",
        "/api/v1/marketing/audiences/{id}/export/", "/api/v1/marketing/audiences/{id}/size/",
        "/api/v1/marketing/campaigns/", "/api/v1/marketing/campaigns/{id}/",
        "/api/v1/marketing/campaigns/{id}/cancel/", "/api/v1/marketing/campaigns/{id}/launch/",
        "/api/v1/marketing/campaigns/{id}/results/",
        "/api/v1/marketing/deliveries/", "/api/v1/marketing/official-account/callback/",
        "/api/v1/marketing/sms/tencent/reply/{token}/",
        "/api/v1/marketing/sms/tencent/status/{token}/", "/api/v1/me/",
        "/api/v1/members/", "/api/v1/members/tag-groups/", "/api/v1/members/{id}/",
        "/api/v1/members/{id}/binding-transfer/", "/api/v1/members/{member_id}/tags/",
        "/api/v1/members/{member_id}/tags/{tag_value_id}/", "/api/v1/mp/auth/login/", "/api/v1/mp/auth/logout/",
        "/api/v1/mp/cart/", "/api/v1/mp/cart/items/", "/api/v1/mp/events/", "/api/v1/mp/guide-scan/",
        "/api/v1/mp/live/sessions/", "/api/v1/mp/live/sessions/{id}/events/",
        "/api/v1/mp/me/", "/api/v1/mp/me/coupons/", "/api/v1/mp/me/memberships/", "/api/v1/mp/me/phone/",
        "/api/v1/mp/me/points/", "/api/v1/mp/orders/", "/api/v1/mp/orders/create/", "/api/v1/mp/orders/{order_no}/",
        "/api/v1/mp/orders/{order_no}/cancel/", "/api/v1/mp/orders/{order_no}/confirm-receipt/",
        "/api/v1/mp/orders/{order_no}/pay/",
        "/api/v1/mp/orders/{order_no}/refunds/", "/api/v1/mp/products/", "/api/v1/mp/products/{id}/",
        "/api/v1/mp/subscribe-results/",
        "/api/v1/org/brands/", "/api/v1/org/brands/{id}/", "/api/v1/org/guides/", "/api/v1/org/guides/{id}/",
        "/api/v1/org/guides/{id}/password-reset/",
        "/api/v1/org/regions/", "/api/v1/org/regions/{id}/", "/api/v1/org/stores/", "/api/v1/org/stores/{id}/",
        "/api/v1/pay/notify/wechat/", "/api/v1/pos/orders/import/", "/api/v1/wecom/callback/",
        "/api/v1/wecom/friendships/", "/api/v1/wecom/friendships/remove/",
    ]
    assert set(schema["paths"]["/api/v1/org/stores/"]) == {"get"}


def test_docs_page_loads_swagger_from_our_own_static_files(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    html = response.content.decode()
    scripts = re.findall(r"<script[^>]*\bsrc=\"([^\"]*)\"", html)
    stylesheets = re.findall(r"<link[^>]*\bhref=\"([^\"]*)\"", html)
    # Swagger UI's start-up script comes from the docs URL itself (?script): no inline script under the CSP.
    assert scripts == ["/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
                       "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-standalone-preset.js",
                       "/api/docs/?script="]
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert [href for href in stylesheets if not href.startswith("/static/")] == []
    assert "cdn" not in html.lower()
    assert re.search(r"(src|href)=\"(https?:)?//", html) is None
    start_up = client.get("/api/docs/?script=")
    assert start_up.status_code == 200
    assert start_up["Content-Type"] == "application/javascript"
    assert "SwaggerUIBundle" in start_up.content.decode()
    # The assets really ship with the project (collectstatic picks them up from the sidecar app).
    for url in scripts[:2] + stylesheets:
        assert finders.find(url.removeprefix("/static/")) is not None, url


def test_healthz_answers_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


# ---------------------------------------------------------------- API error shape


@pytest.fixture
def hq_client(org, api_client):
    api_client.force_authenticate(staff_user("hq", group=org.grp))
    return api_client


def test_unknown_object_is_a_not_found_error(hq_client, org):
    response = hq_client.get("/api/v1/org/stores/999999/", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}


def test_known_object_is_found(hq_client, org):
    response = hq_client.get(f"/api/v1/org/stores/{org.store.pk}/")

    assert response.status_code == 200
    assert response.json() == {"id": org.store.pk, "code": "a-e1", "name": "A East 1", "kind": "direct",
                               "city": "上海", "brand": "brand-a", "region": "east", "is_active": True}


def test_post_to_a_list_endpoint_is_method_not_allowed(hq_client):
    response = hq_client.post("/api/v1/org/stores/", {"code": "x"}, format="json", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 405
    assert response.json() == {"error": {"code": "method_not_allowed", "message": 'Method "POST" not allowed.'}}


def test_invalid_filter_value_is_a_400_with_fields(hq_client):
    response = hq_client.get("/api/v1/org/stores/", {"kind": "castle"}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    assert response.json() == {"error": {
        "code": "invalid", "message": "Invalid input.",
        "fields": {"kind": ["Select a valid choice. castle is not one of the available choices."]},
    }}


def test_valid_filter_value_filters(hq_client, org):
    StoreFactory(region=org.region, code="a-e2", kind="outlet")

    response = hq_client.get("/api/v1/org/stores/", {"kind": "outlet"})

    assert response.status_code == 200
    assert [row["code"] for row in response.json()["results"]] == ["a-e2"]


def test_anonymous_api_call_is_not_authenticated(api_client, org):
    response = api_client.get("/api/v1/org/stores/", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 401
    assert response.json() == {"error": {"code": "not_authenticated",
                                         "message": "Authentication credentials were not provided."}}
    assert response["WWW-Authenticate"] == "Token"


# ---------------------------------------------------------------- logging in and landing


def test_dashboard_sends_anonymous_visitors_to_the_login_page(client):
    response = client.get("/hq/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/hq/"


def test_login_form_logs_in_and_returns_to_the_page_asked_for(org):
    staff_user("hq", group=org.grp, username="alice")
    browser = Client(enforce_csrf_checks=True)

    login_page = browser.get("/accounts/login/?next=/hq/")
    token = login_page.cookies["csrftoken"].value
    assert login_page.status_code == 200
    assert 'name="next" value="/hq/"' in login_page.content.decode()

    response = browser.post("/accounts/login/", {"username": "alice", "password": "pw-123456", "next": "/hq/",
                                                 "csrfmiddlewaretoken": token})

    assert response.status_code == 302
    assert response["Location"] == "/hq/"
    dashboard = browser.get("/hq/")
    assert dashboard.status_code == 200
    assert dashboard.context["user"].username == "alice"


def test_login_form_without_next_lands_on_home_which_sends_hq_to_the_dashboard(org):
    staff_user("hq", group=org.grp, username="alice")
    browser = Client()

    response = browser.post("/accounts/login/", {"username": "alice", "password": "pw-123456"}, follow=True)

    assert response.redirect_chain == [("/", 302), ("/hq/", 302)]
    assert response.status_code == 200


def test_login_form_with_a_wrong_password_stays_on_the_form(org):
    staff_user("hq", group=org.grp, username="alice")
    browser = Client()

    response = browser.post("/accounts/login/", {"username": "alice", "password": "nope-123456"},
                            HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert "Wrong username or password." in response.content.decode()
    assert "_auth_user_id" not in browser.session


@pytest.mark.parametrize(("role", "target"), [
    ("hq", "/hq/"),
    ("brand_operator", "/hq/"),
    ("region_manager", "/hq/"),
    ("store_manager", "/workbench/"),
    ("guide", "/workbench/"),
])
def test_home_sends_each_role_to_its_landing_page(client, org, role, target):
    guide = GuideFactory(store=org.store, role="store_manager" if role == "store_manager" else "guide")
    scope = {"hq": {"group": org.grp}, "brand_operator": {"brand": org.brand},
             "region_manager": {"region": org.region}, "store_manager": {"store": org.store, "guide": guide},
             "guide": {"guide": guide}}[role]
    client.force_login(staff_user(role, **scope))

    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == target


def test_home_asks_anonymous_visitors_to_log_in(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


# ---------------------------------------------------------------- workbench


def test_workbench_counts_only_the_members_bound_to_the_guide_now(client, org):
    me = GuideFactory(store=org.store, code="g-me", name="Me")
    colleague = GuideFactory(store=org.store, code="g-colleague")
    now = timezone.now()
    mine = [MemberFactory(group=org.grp) for _ in range(3)]
    for member in mine:
        BrandMembershipFactory(member=member, brand=org.brand, store=org.store)
        GuideBindingFactory(member=member, guide=me)
    moved_away = MemberFactory(group=org.grp)
    GuideBindingFactory(member=moved_away, guide=me, started_at=now - dt.timedelta(days=30), ended_at=now)
    GuideBindingFactory(member=moved_away, guide=colleague)
    GuideBindingFactory(member=MemberFactory(group=org.grp), guide=colleague)
    BrandMembershipFactory(member=MemberFactory(group=org.grp), brand=org.brand, store=org.store)  # never bound
    client.force_login(staff_user("guide", guide=me))

    response = client.get("/workbench/")

    assert response.status_code == 200
    assert response.context["member_count"] == 3
    assert response.context["guide"] == me
    assert '<strong data-kpi="members">3</strong>' in response.content.decode()


def test_workbench_refuses_a_login_without_staff_role(client):
    client.force_login(UserFactory(username="nobody"))

    response = client.get("/workbench/")

    assert response.status_code == 403


# ---------------------------------------------------------------- language


def test_login_page_is_chinese_by_default(client):
    response = client.get("/accounts/login/")

    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="zh-hans">' in html
    assert "<h1>登录</h1>" in html
    assert "Log in" not in html


def test_login_page_is_english_when_the_browser_asks_for_it(client):
    response = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")

    html = response.content.decode()
    assert '<html lang="en">' in html
    assert "<h1>Log in</h1>" in html
    assert "登录" not in html


def test_login_page_follows_the_language_cookie(client):
    client.cookies["django_language"] = "en"

    response = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")

    assert "<h1>Log in</h1>" in response.content.decode()


def test_language_switch_sets_the_cookie_and_returns_to_the_page(client):
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/accounts/login/"})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert response.cookies["django_language"].value == "en"
    assert "<h1>Log in</h1>" in client.get("/accounts/login/").content.decode()


def test_unknown_api_paths_answer_404_in_the_error_shape(api_client):
    response = api_client.get("/api/v1/no/such/thing/")
    assert (response.status_code, response["Content-Type"]) == (404, "application/json")
    assert response.json() == {"error": {"code": "not_found", "message": "No such endpoint."}}


def test_unknown_pages_keep_the_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_nested_field_errors_are_reported_under_dotted_keys():
    from rest_framework import exceptions

    from retail_crm.api.errors import exception_handler

    error = exceptions.ValidationError({"lines": [{}, {"quantity": ["Must be at least 1."]}],
                                        "brand": ["Required."], "address": {"city": ["Too long."]}})
    response = exception_handler(error, {})
    assert response.data == {"error": {"code": "invalid", "message": "Invalid input.", "fields": {
        "lines.1.quantity": ["Must be at least 1."], "brand": ["Required."], "address.city": ["Too long."]}}}
