"""Entry points that belong to no single app: the landing redirect, the health check and the error pages."""

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template import loader
from django.utils.translation import gettext as _

from retail_crm.errors import ErrorCode
from retail_crm.scoping import actor_for

logger = logging.getLogger(__name__)


@login_required
def home(request):
    """Guides land on their workbench, everyone else on the HQ dashboard."""
    actor = actor_for(request.user)
    if actor.role in ("guide", "store_manager") and not actor.is_superuser:
        return redirect("workbench:home")
    return redirect("hq:overview")


def healthz(request):
    """Liveness for load balancers and docker-compose: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


# ---------------------------------------------------------------------------- error pages
#
# One self-contained template (templates/errors/error.html) in the viewer's language (LocaleMiddleware has
# activated it), rendered without a RequestContext: no context processor, no user, no database, so the 500
# page still renders when those are what failed. Under /api/ the same errors answer in the API's JSON shape.


def _stylesheet_url() -> str:
    """The site stylesheet's URL, or "" when even that fails (e.g. a missing static manifest)."""
    from django.templatetags.static import static

    try:
        return static("css/app.css")
    except Exception:  # noqa: BLE001 - an error page must render whatever broke
        return ""


def _error_page(status: int, title: str, message: str) -> HttpResponse:
    html = loader.render_to_string("errors/error.html", {
        "status": status, "title": title, "message": message, "home_url": "/", "css_url": _stylesheet_url(),
    })
    return HttpResponse(html, status=status)


def _api_error(code: str, message: str, status: int) -> JsonResponse:
    from retail_crm.api.errors import error_body

    return JsonResponse(error_body(code, message), status=status)


def not_found(request, exception=None):
    """404: JSON under /api/ (clients parse it), the site's page elsewhere."""
    if request.path.startswith("/api/"):
        return _api_error(ErrorCode.NOT_FOUND, "No such endpoint.", 404)
    return _error_page(404, _("Page not found"),
                       _("The page you asked for does not exist, or it has moved."))


def permission_denied(request, exception=None):
    """403: the viewer's role or scope does not cover the page."""
    if request.path.startswith("/api/"):
        return _api_error(ErrorCode.PERMISSION_DENIED, "You do not have permission to perform this action.", 403)
    return _error_page(403, _("No access"),
                       _("Your account may not open this page. Ask your manager if you need it."))


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: a form sent from a stale page or without cookies; the reason goes to the log only."""
    logger.warning("CSRF failure on %s: %s", request.path, reason)
    if request.path.startswith("/api/"):
        return _api_error(ErrorCode.PERMISSION_DENIED, "CSRF check failed.", 403)
    return _error_page(403, _("The form could not be sent"),
                       _("The page was open too long or your browser blocks cookies. "
                         "Go back, reload the page and try again."))


def server_error(request):
    """500: JSON under /api/; elsewhere a page that needs neither the database nor a context processor."""
    if request.path.startswith("/api/"):
        return _api_error(ErrorCode.SERVER_ERROR, "Something went wrong on our side.", 500)
    return _error_page(500, _("Something went wrong"),
                       _("An error occurred on our side and has been logged. Please try again in a moment."))


class DebugNotFoundMiddleware:
    """With DEBUG on (make demo, make serve) Django answers a 404 with its technical page and never calls
    handler404: this puts the site's own not-found page (JSON under /api/) in its place, as production answers.

    Only the technical page is replaced, i.e. an HTML 404; JSON 404s from the API's views pass unchanged, and so
    do 404s for static and media files. The technical 500 page stays: developers need the traceback. Without
    DEBUG it does nothing (handler404 has already answered).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (settings.DEBUG and response.status_code == 404
                and response.get("Content-Type", "").startswith("text/html")
                and not self._is_file(request.path)):
            return not_found(request)
        return response

    @staticmethod
    def _is_file(path: str) -> bool:
        prefixes = ["/" + url.lstrip("/") for url in (settings.STATIC_URL, settings.MEDIA_URL) if url]
        return any(path.startswith(prefix) for prefix in prefixes)
