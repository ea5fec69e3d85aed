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
