"""Who may open the marketing pages: HQ and brand operators (and platform superusers).

Store managers and guides are sent to their workbench, as on every /hq/ page; any other login gets the
site's 403 page. A service's 404 (an audience or campaign outside the viewer's scope) is the site's 404.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect

from marketing.audiences import audience_access_check
from retail_crm.errors import ApplicationError
from retail_crm.scoping import actor_for

WORKBENCH_ROLES = ("store_manager", "guide")


def marketing_page(view):
    """Decorate ``view(request, actor, ...)``: a login, the role check, and 404 for what is out of scope."""

    @login_required
    @wraps(view)
    def page(request, *args, **kwargs):
        actor = actor_for(request.user)
        if actor.role in WORKBENCH_ROLES and not actor.is_superuser:
            return redirect("workbench:home")
        try:
            audience_access_check(actor)
        except ApplicationError:
            raise PermissionDenied from None
        try:
            return view(request, actor, *args, **kwargs)
        except ApplicationError as refused:
            if refused.status == 404:
                raise Http404(refused.message) from None
            if refused.status == 403:
                raise PermissionDenied from None
            raise

    return page
