"""The tracking-link redirect a member's message opens (``/t/<code>``)."""

from __future__ import annotations

from django.http import Http404, HttpResponseRedirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from marketing.tracking import link_open


@never_cache
@require_GET
def link_redirect(request, code: str):
    """Record the click and send the member on to the campaign's page (302); an unknown code is a 404."""
    target = link_open(code=code)
    if target is None:
        raise Http404
    return HttpResponseRedirect(target)
