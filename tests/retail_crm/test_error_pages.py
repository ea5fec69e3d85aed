"""404 / 403 / CSRF-failure / 500 pages: the site's own page, in the viewer's language, with a way home.

pytest-django runs with DEBUG=False, so the handlers in retail_crm.urls answer as they do in production.
"""

import pytest
from django.test import Client, RequestFactory
from django.urls import path
from django.utils import translation

from retail_crm import urls as root_urls
from retail_crm.views import server_error
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TEXTS = {
    404: {"en": ("Page not found", "The page you asked for does not exist, or it has moved."),
          "zh-hans": ("页面不存在", "您要打开的页面不存在，或已被移走。")},
    403: {"en": ("No access", "Your account may not open this page. Ask your manager if you need it."),
          "zh-hans": ("无权访问", "您的账号无权打开此页面。如确有需要，请联系您的上级。")},
    "csrf": {"en": ("The form could not be sent", "The page was open too long or your browser blocks cookies. "
                                                  "Go back, reload the page and try again."),
             "zh-hans": ("表单未能提交", "页面打开时间过长，或浏览器禁用了 Cookie。请返回并刷新页面后重试。")},
    500: {"en": ("Something went wrong",
                 "An error occurred on our side and has been logged. Please try again in a moment."),
          "zh-hans": ("系统出错了", "系统发生了错误，已记录在案。请稍后重试。")},
}
HOME = {"en": "Back to the home page", "zh-hans": "返回首页"}


def assert_error_page(response, status: int, texts_key, language: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "text/html; charset=utf-8"
    html = response.content.decode()
    title, message = TEXTS[texts_key][language]
    assert f'<html lang="{language}">' in html
    assert f'data-status="{status}"' in html
    assert f"<h1>{title}</h1>" in html
    assert f"<p>{message}</p>" in html
    assert f'<a class="button" href="/">{HOME[language]}</a>' in html
    assert '<link rel="stylesheet" href="/static/css/app.css">' in html
    other = "zh-hans" if language == "en" else "en"
    assert TEXTS[texts_key][other][0] not in html


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_missing_page_is_our_404_in_the_viewers_language(client, language):
    response = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE=language)
    assert_error_page(response, 404, 404, language)


def test_missing_api_endpoint_is_still_json():
    response = Client().get("/api/v1/no-such-endpoint/")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "No such endpoint."}}


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_permission_denied_is_our_403(client, language):
    client.force_login(UserFactory())  # a login without a staff profile: the dashboard raises PermissionDenied
    response = client.get("/hq/", HTTP_ACCEPT_LANGUAGE=language)
    assert_error_page(response, 403, 403, language)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_csrf_failure_is_our_page(language):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "x", "password": "y"}, HTTP_ACCEPT_LANGUAGE=language)
    assert_error_page(response, 403, "csrf", language)


def test_csrf_failure_page_is_the_configured_view(settings):
    assert settings.CSRF_FAILURE_VIEW == "retail_crm.views.csrf_failure"
    assert root_urls.handler403 == "retail_crm.views.permission_denied"
    assert root_urls.handler404 == "retail_crm.views.not_found"
    assert root_urls.handler500 == "retail_crm.views.server_error"


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_server_error_page_in_both_languages_without_the_database(language, django_assert_num_queries):
    request = RequestFactory().get("/hq/")
    with translation.override(language), django_assert_num_queries(0):
        response = server_error(request)
    assert_error_page(response, 500, 500, language)


def _broken_context_processor(request):
    raise RuntimeError("the context processor failed")


def test_server_error_page_renders_when_context_processors_and_the_static_manifest_fail(settings, tmp_path):
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "OPTIONS": {"context_processors": [
        "tests.retail_crm.test_error_pages._broken_context_processor"]}}]
    settings.STATIC_ROOT = tmp_path  # no staticfiles.json: the manifest storage cannot name css/app.css
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}}
    with translation.override("zh-hans"):
        response = server_error(RequestFactory().get("/workbench/"))
    assert response.status_code == 500
    html = response.content.decode()
    assert "<h1>系统出错了</h1>" in html
    assert "stylesheet" not in html


def test_server_error_under_the_api_is_json():
    response = server_error(RequestFactory().get("/api/v1/members/"))
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"



# ---------------------------------------------------------------------------- with DEBUG on (make demo, make serve)
#
# Django answers a 404 with its technical page when DEBUG is on and never calls handler404: the demo showed the
# yellow English page. DebugNotFoundMiddleware puts the site's page in its place; the technical 500 stays.


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_missing_page_with_debug_on_is_our_404_not_the_technical_page(settings, language):
    settings.DEBUG = True
    response = Client().get("/no-such-page/", HTTP_ACCEPT_LANGUAGE=language)
    assert_error_page(response, 404, 404, language)
    html = response.content.decode()
    assert "Using the URLconf" not in html
    assert "technical_404" not in html


def test_a_views_http404_with_debug_on_is_our_404(settings):
    settings.DEBUG = True
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    response = client.get("/admin/no-such-app/")  # the admin's catch-all raises Http404 inside a view
    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1>页面不存在</h1>" in html
    assert "Raised by" not in html


def test_missing_api_endpoint_with_debug_on_is_still_json(settings):
    settings.DEBUG = True
    response = Client().get("/api/v1/no-such-endpoint/")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "No such endpoint."}}


def test_an_api_views_json_404_with_debug_on_passes_unchanged(settings):
    settings.DEBUG = True
    client = Client()
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    response = client.get("/api/v1/mall/orders/999999/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["message"] == "No such order."


def test_missing_static_file_with_debug_on_is_left_to_django(settings):
    settings.DEBUG = True
    response = Client().get("/static/no-such-file.css")
    assert response.status_code == 404
    assert "页面不存在" not in response.content.decode()


def test_server_error_with_debug_on_keeps_the_technical_page(settings):
    settings.DEBUG = True
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    settings.ROOT_URLCONF = "tests.retail_crm.test_error_pages"
    response = client.get("/boom/")
    assert response.status_code == 500
    assert "RuntimeError" in response.content.decode()  # the traceback page, for the developer


def _boom(request):
    raise RuntimeError("boom")


urlpatterns = [path("boom/", _boom)]  # ROOT_URLCONF of the DEBUG 500 test
