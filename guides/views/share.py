"""Workbench pages for the exclusive QR code, sharing, the material library and tasks.

Views parse input, look objects up inside the viewer's scope (404 outside it) and
call the services in ``guides.services``, ``guides.sharing`` and ``guides.library``.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from guides import library, sharing
from guides.errors import GuidesErrorCode
from guides.forms import (
    ExecutionFilterForm,
    MaterialFilterForm,
    ProductSearchForm,
    RevokeTokenForm,
    ShareForm,
)
from guides.models import Share, TaskAssignment
from guides.qr import qr_image
from guides.services import guide_token_current, guide_token_revoke, guide_token_rotate, guide_tokens_of
from retail_crm.errors import ApplicationError
from retail_crm.models import Guide
from retail_crm.scoping import actor_for, scoped

QR_MAX_AGE = 24 * 3600  # a token's (or share's) picture never changes; private: it sits behind the login
SHARES_PER_PAGE = 20
MATERIALS_PER_PAGE = 20
TEAM_ROWS = 50
EXECUTION_ROWS = 100
# The execution page opens one level below the viewer: a region manager sees stores, HQ and brands regions.
DEFAULT_EXECUTION_GROUPING = {"guide": "guide", "store": "guide", "region": "store", "brand": "region",
                              "group": "region"}


def _viewer(request):
    """(actor, sharer) of a staff login; 403 for logins outside any group."""
    actor = actor_for(request.user)
    sharer = sharing.sharer_for(request.user, actor)
    if sharer is None:
        raise PermissionDenied
    return actor, sharer


def _qr_response(request, payload: str, kind: str) -> HttpResponse:
    image = qr_image(payload, kind=kind)
    if request.headers.get("If-None-Match") == image.etag:
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(image.content, content_type=image.content_type)
    response["ETag"] = image.etag
    patch_cache_control(response, private=True, max_age=QR_MAX_AGE)
    return response


# ---------------------------------------------------------------------------- my QR code

def _qr_context(request, sharer, revoke_forms=None):
    current = guide_token_current(**sharer.token_owner())
    tokens = list(guide_tokens_of(**sharer.token_owner()))
    revoke_forms = revoke_forms or {}
    older = [(token, revoke_forms.get(token.pk) or RevokeTokenForm(prefix=f"t{token.pk}"))
             for token in tokens if token.pk != current.pk]
    return {"wb_tab": "me", "current": current, "join_link": sharing.join_link(current.token), "older": older,
            "is_guide": sharer.guide is not None, "guide": sharer.guide}


@login_required
@require_GET
def qr_page(request):
    _actor, sharer = _viewer(request)
    return render(request, "guides/qr.html", _qr_context(request, sharer))


@login_required
@require_GET
def qr_image_view(request, pk: int, kind: str):
    _actor, sharer = _viewer(request)
    token = get_object_or_404(guide_tokens_of(**sharer.token_owner()), pk=pk)
    return _qr_response(request, sharing.join_link(token.token), kind)


@login_required
@require_POST
def qr_rotate(request):
    _actor, sharer = _viewer(request)
    guide_token_rotate(**sharer.token_owner())
    messages.success(request, _("A new QR code is ready. Your old codes keep working until you revoke them."))
    return redirect("workbench:qr")


@login_required
@require_POST
def qr_revoke(request, pk: int):
    _actor, sharer = _viewer(request)
    token = get_object_or_404(guide_tokens_of(**sharer.token_owner()), pk=pk)
    form = RevokeTokenForm(request.POST, prefix=f"t{token.pk}")
    if not form.is_valid():
        return render(request, "guides/qr.html", _qr_context(request, sharer, {token.pk: form}), status=400)
    if token.revoked_at is None:
        guide_token_revoke(token=token)
        messages.success(request, _("The old QR code is revoked: scanning it no longer binds anyone to you."))
    return redirect("workbench:qr")


# ---------------------------------------------------------------------------- sharing

def _share_object(actor, sharer, target: str, pk: int | None) -> dict:
    """The thing to share, looked up among what the viewer may share; 404 if it is not there."""
    if target == Share.Target.MALL:
        return {}
    if target == Share.Target.PRODUCT:
        return {"product": get_object_or_404(sharing.shareable_products(actor=actor), pk=pk)}
    if target == Share.Target.MATERIAL:
        return {"material": get_object_or_404(library.materials_visible(actor=actor), pk=pk)}
    if target == Share.Target.LIVE:
        return {"live_session": get_object_or_404(sharing.shareable_live_sessions(actor=actor), pk=pk)}
    assignment = get_object_or_404(library.assignments_of(actor=actor), task_id=pk)
    return {"task": assignment.task}


@login_required
def share_new(request):
    """GET: choose a product, a livestream or the mall; POST: share it (one tap) and open the share."""
    actor, sharer = _viewer(request)
    form = ShareForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            found = _share_object(actor, sharer, form.cleaned_data["target"], form.cleaned_data.get("id"))
            try:
                share = sharing.share_create(sharer=sharer, target=form.cleaned_data["target"], **found)
            except ApplicationError as error:
                for field, errors in error.fields.items():
                    form.add_error(field if field in form.fields else None, errors)
                status = 400
            else:
                return redirect("workbench:share_detail", pk=share.pk)
        else:
            status = 400
    search = ProductSearchForm(request.GET or None)
    query = search.cleaned_data.get("q", "") if search.is_valid() else ""
    context = {"wb_tab": "me", "form": form, "search": search, "query": query,
               "products": list(sharing.shareable_products(actor=actor, query=query)[:30]),
               "live_sessions": list(sharing.shareable_live_sessions(actor=actor)[:10])}
    return render(request, "guides/share_new.html", context, status=status)


def _own_share(sharer, pk: int) -> Share:
    return get_object_or_404(sharing.shares_of(sharer), pk=pk)


@login_required
@require_GET
def share_detail(request, pk: int):
    _actor, sharer = _viewer(request)
    share = _own_share(sharer, pk)
    context = {"wb_tab": "me", "share": share, "link": sharing.share_link(share), "text": sharing.share_text(share),
               "funnel": sharing.share_funnels([share])[share.pk], "view_window": settings.SHARE_VIEW_WINDOW_MINUTES}
    return render(request, "guides/share.html", context)


@login_required
@require_GET
def share_qr(request, pk: int, kind: str):
    _actor, sharer = _viewer(request)
    share = _own_share(sharer, pk)
    return _qr_response(request, sharing.share_link(share), kind)


@login_required
@require_GET
def shares_page(request):
    """My shares with their funnels; managers also see their team's, per guide, over the last 30 days."""
    actor, sharer = _viewer(request)
    mine = sharing.shares_of(sharer)
    page = Paginator(mine, SHARES_PER_PAGE).get_page(request.GET.get("page"))
    funnels = sharing.share_funnels(page.object_list)
    rows = [(share, funnels[share.pk]) for share in page.object_list]
    team = []
    if actor.level in ("store", "region", "brand", "group"):
        since = timezone.now() - dt.timedelta(days=30)
        by_guide = sharing.share_funnels_by_guide(scoped(Share.objects.filter(created_at__gte=since,
                                                                              guide__isnull=False), actor))
        names = {g.pk: g for g in Guide.objects.filter(pk__in=[k for k in by_guide if k]).select_related("store")}
        team = sorted(((names[k], f) for k, f in by_guide.items() if k in names),
                      key=lambda pair: (-pair[1].paid_amount, -pair[1].visitors, pair[0].code))[:TEAM_ROWS]
    context = {"wb_tab": "me", "total": sharing.share_funnel_total(mine), "rows": rows, "page": page,
               "team": team, "view_window": settings.SHARE_VIEW_WINDOW_MINUTES}
    return render(request, "guides/shares.html", context)


# ---------------------------------------------------------------------------- materials

@login_required
@require_GET
def materials_page(request):
    actor, _sharer = _viewer(request)
    form = MaterialFilterForm(request.GET or None)
    kind = form.cleaned_data.get("kind") if form.is_valid() else None
    page = Paginator(library.materials_visible(actor=actor, kind=kind), MATERIALS_PER_PAGE).get_page(
        request.GET.get("page"))
    return render(request, "guides/materials.html", {"wb_tab": "tasks", "form": form, "page": page, "kind": kind},
                  status=200 if form.is_valid() or not request.GET else 400)


# ---------------------------------------------------------------------------- tasks

@login_required
@require_GET
def tasks_page(request):
    actor, _sharer = _viewer(request)
    split = library.assignments_by_state(actor=actor)
    context = {"wb_tab": "tasks", "open": split["open"], "overdue": split["overdue"], "done": split["done"],
               "is_manager": actor.level in ("store", "region", "brand", "group"), "has_guide": bool(actor.guide_id)}
    return render(request, "guides/tasks.html", context)


def _assignment_in_scope(actor, pk: int) -> TaskAssignment:
    """An assignment the viewer may open: their own, or one of their scope for managers; 404 otherwise."""
    rows = scoped(TaskAssignment.objects.filter(task__status__in=library.LIVE_STATUSES), actor)
    return get_object_or_404(rows.select_related("task", "task__brand", "task__product", "task__live_session",
                                                 "guide", "share"), pk=pk)


@login_required
@require_GET
def task_detail(request, pk: int):
    actor, _sharer = _viewer(request)
    assignment = _assignment_in_scope(actor, pk)
    task = assignment.task
    own = assignment.guide_id == actor.guide_id
    share = assignment.share
    context = {
        "wb_tab": "tasks", "assignment": assignment, "task": task, "own": own,
        "state": library.assignment_state(assignment),
        "materials": list(task.materials.filter(is_active=True).select_related("product")),
        "share": share, "link": sharing.share_link(share) if share else "",
        "text": sharing.share_text(share) if share else task.copy_text,
        "funnel": sharing.share_funnels([share])[share.pk] if share else None,
        "audience": library.task_audience(assignment=assignment, actor=actor, user=request.user),
    }
    return render(request, "guides/task_detail.html", context)


@login_required
@require_POST
def task_execute(request, pk: int):
    actor, _sharer = _viewer(request)
    assignment = _assignment_in_scope(actor, pk)
    if assignment.guide_id != actor.guide_id:
        raise Http404  # only the assigned guide executes; others may look, not act
    try:
        library.task_execute(assignment=assignment)
    except ApplicationError as error:
        messages.error(request, {
            GuidesErrorCode.TASK_OVERDUE: _("The deadline of this task has passed."),
            GuidesErrorCode.TASK_NOT_STARTED: _("This task has not started yet."),
        }.get(error.code, _("This task is closed.")))
        return redirect("workbench:task_detail", pk=pk)
    messages.success(request, _("Done: the task is shared. Send the text and link below."))
    return redirect(reverse("workbench:task_detail", args=[pk]) + "#share")


@login_required
@require_GET
def task_execution(request):
    """Execution rates per guide, store or region over the viewer's scope (optionally one task)."""
    actor, _sharer = _viewer(request)
    form = ExecutionFilterForm(request.GET or None)
    tasks = library.tasks_in_scope(actor=actor)
    if request.GET and not form.is_valid():
        context = {"wb_tab": "tasks", "form": form, "tasks": tasks[:100], "rows": [], "total": None, "task": None}
        return render(request, "guides/task_execution.html", context, status=400)
    data = form.cleaned_data if request.GET else {}
    group_by = data.get("group_by") or DEFAULT_EXECUTION_GROUPING.get(actor.level, "guide")
    task = get_object_or_404(tasks, pk=data["task"]) if data.get("task") else None
    rows = library.execution_rates(actor=actor, group_by=group_by, task=task)
    page = Paginator(rows, EXECUTION_ROWS).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"wb_tab": "tasks", "form": form, "tasks": tasks[:100], "rows": page.object_list, "page": page,
               "query": query.urlencode(), "task": task, "group_by": group_by,
               "total": library.execution_total(rows)}
    return render(request, "guides/task_execution.html", context)
