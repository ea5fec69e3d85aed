"""Entry points that belong to no single app: the landing redirect and the health check."""

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect

from retail_crm.scoping import actor_for


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


def not_found(request, exception=None):
    """404s under /api/ answer in the API's error shape (clients parse JSON); pages keep Django's page."""
    if request.path.startswith("/api/"):
        from retail_crm.api.errors import error_body

        return JsonResponse(error_body("not_found", "No such endpoint."), status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error(request):
    """A 500 under /api/ is still JSON in the one error shape."""
    if request.path.startswith("/api/"):
        from retail_crm.api.errors import error_body

        return JsonResponse(error_body("server_error", "Something went wrong on our side."), status=500)
    from django.views.defaults import server_error as page_server_error

    return page_server_error(request)
