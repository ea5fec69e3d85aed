"""My team's logins (/workbench/team/): a store manager or above resets a guide's password.

Guides often have no e-mail address, so a forgotten password is their manager's job: the page lists the guides
whose passwords the manager may reset (``retail_crm.passwords``: inside the manager's scope, below the
manager's role), shows whether a login is locked out after wrong passwords, and gives a temporary password
once. The guide must choose a new password at the next login. Guides get a 403; a guide outside the
manager's scope is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from retail_crm import passwords
from retail_crm.errors import ApplicationError
from retail_crm.login_guard import locked_usernames
from retail_crm.models import StaffPasswordReset
from retail_crm.scoping import actor_for

TEAM_PAGE = 50


def _manager(request):
    actor = actor_for(request.user)
    if not passwords.can_reset_passwords(actor):
        raise PermissionDenied
    return actor


@login_required
def team(request):
    """The guides whose passwords I may reset, with their lock-out state."""
    actor = _manager(request)
    page = Paginator(passwords.guides_for_password_reset(actor=actor), TEAM_PAGE).get_page(request.GET.get("page"))
    locked = locked_usernames(usernames=[guide.user.get_username() for guide in page])
    rows = [(guide, guide.user.get_username() in locked) for guide in page]
    return render(request, "guides/team.html", {"wb_tab": "team", "page": page, "rows": rows})


@never_cache
@login_required
@require_POST
def guide_password_reset(request, pk: int):
    """Reset one guide's password and show the temporary password, once (this answer is never cached)."""
    actor = _manager(request)
    try:
        result = passwords.guide_password_reset(actor=actor, guide_id=pk, channel=StaffPasswordReset.Channel.WORKBENCH)
    except ApplicationError as error:
        if error.status == 404:
            raise Http404(error.message) from error
        if error.status == 403:
            raise PermissionDenied(error.message) from error
        return render(request, "guides/team_reset_done.html", {"wb_tab": "team", "error": error.message},
                      status=error.status)
    return render(request, "guides/team_reset_done.html", {"wb_tab": "team", "result": result})


@login_required
@require_POST
def guide_unlock(request, pk: int):
    """Lift a guide's lock-out after wrong passwords, then back to the team page."""
    actor = _manager(request)
    try:
        passwords.guide_login_unlock(actor=actor, guide_id=pk)
    except ApplicationError as error:
        if error.status == 404:
            raise Http404(error.message) from error
        raise PermissionDenied(error.message) from error
    messages.success(request, _("The login is unlocked."))
    return redirect("workbench:team")
