"""HQ dashboard pages and their exports. Views parse the filters, call the table and metric functions, render.

Who may look: HQ, brand operators and regional managers (and superusers), each within their scope.
Store managers and guides have the mobile workbench instead and are sent there; a login without a
staff profile gets 403. Invalid filters render the page with the form's errors and status 400.
"""

from __future__ import annotations

import datetime as dt
from functools import wraps
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _t
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_safe

from analytics import dashboard_pages, exports, services
from analytics.dashboard_tables import Kind, Table, cell, cell_kind, get_table, metric_memo, sort_key, table_rows
from analytics.filters import DashboardQuery, parse_filters
from analytics.tasks import export_table
from retail_crm.models import Guide
from retail_crm.scoping import Actor, actor_for, scoped
from retail_crm.throttling import client_throttle, throttle_view

WORKBENCH_ROLES = ("store_manager", "guide")
PAGE_ROWS = 100  # a page shows the first rows of a long ranking; the export has them all

NAV = [
    ("hq:overview", pgettext_lazy("dashboard section", "Overview")),
    ("hq:brands", pgettext_lazy("dashboard section", "Brands")),
    ("hq:regions", pgettext_lazy("dashboard section", "Regions")),
    ("hq:stores", pgettext_lazy("dashboard section", "Stores")),
    ("hq:guides", pgettext_lazy("dashboard section", "Guides")),
    ("hq:segments", pgettext_lazy("dashboard section", "Segments")),
    ("hq:livestream", pgettext_lazy("dashboard section", "Livestream")),
    ("hq:core", pgettext_lazy("dashboard section", "Core indicators")),
    ("live-schedule", pgettext_lazy("dashboard section", "Live schedule")),
    ("hq-coupons", pgettext_lazy("dashboard section", "Coupons")),
    ("marketing:audiences", pgettext_lazy("dashboard section", "Marketing")),
]


def _dashboard_actor(request) -> Actor:
    actor = actor_for(request.user)
    if not actor.is_staff_member:
        raise PermissionDenied
    return actor


def _sort_headers(table: Table, query: DashboardQuery) -> list[dict]:
    """The page's column headers, each a link sorting the table by it (again: the other way round)."""
    current = sort_key(query, table)
    headers = []
    for column in table.page_columns:
        numeric = column.kind != Kind.TEXT
        if current is not None and current[0] == column.key:
            direction = "descending" if current[1] else "ascending"
            target = column.key if current[1] else f"-{column.key}"
        else:
            # Numbers first from the largest, names from A.
            direction, target = "", f"-{column.key}" if numeric else column.key
        anchor = f"#table-{table.key}"
        headers.append({"column": column, "direction": direction,
                        "url": f"?{query.querystring(sort=f'{table.key}:{target}')}{anchor}"})
    return headers


def _link(table: Table, row, query: DashboardQuery) -> str | None:
    if table.link is None:
        return None
    target = table.link(row)
    if target is None:
        return None
    url_name, overrides, *args = target
    return f"{reverse(url_name, args=args[0] if args else None)}?{query.querystring(sort=None, **overrides)}"


def _table_context(table: Table, actor: Actor, query: DashboardQuery, *, limit: int = PAGE_ROWS) -> dict:
    """A table as the page shows it: formatted cells, drill-down links, sortable headers and its export links."""
    rows = table_rows(table, actor, query, limit + 1)
    shown = [{"cells": [(cell(row, column), cell_kind(row, column)) for column in table.page_columns],
              "link": _link(table, row, query)} for row in rows[:limit]]
    qs = query.querystring()
    return {
        "table": table,
        "headers": _sort_headers(table, query),
        "rows": shown,
        "truncated": len(rows) > limit,
        "csv_url": f"{reverse('hq:export', args=[table.key, 'csv'])}?{qs}",
        "xlsx_url": f"{reverse('hq:export', args=[table.key, 'xlsx'])}?{qs}",
    }


def _breadcrumbs(query: DashboardQuery) -> list[tuple[str, str]]:
    """group → brand → region → store, each a link to the next level down."""
    crumbs = [(_t("Group"),
               f"{reverse('hq:brands')}?{query.querystring(brand=None, region=None, store=None, sort=None)}")]
    if query.brand_code:
        crumbs.append((query.brand_name,
                       f"{reverse('hq:regions')}?{query.querystring(region=None, store=None, sort=None)}"))
    if query.region_code:
        crumbs.append((query.region_name, f"{reverse('hq:stores')}?{query.querystring(store=None, sort=None)}"))
    if query.store_code:
        crumbs.append((query.store_name, f"{reverse('hq:guides')}?{query.querystring(sort=None)}"))
    return crumbs


def period_presets(query: DashboardQuery, today: dt.date) -> list[dict]:
    """Quick periods for the filter bar (昨天, 近7天, 本月, 上月, 近30天), keeping the other filters."""
    last_month_end = today.replace(day=1) - dt.timedelta(days=1)
    presets = [
        ("yesterday", _t("Yesterday"), today - dt.timedelta(days=1), today - dt.timedelta(days=1)),
        ("last_7_days", _t("Last 7 days"), today - dt.timedelta(days=6), today),
        ("this_month", _t("This month"), today.replace(day=1), today),
        ("last_month", _t("Last month"), last_month_end.replace(day=1), last_month_end),
        ("last_30_days", _t("Last 30 days"), today - dt.timedelta(days=29), today),
    ]
    return [{"key": key, "label": label, "active": (query.date_from, query.date_to) == (start, end),
             "url": f"?{query.querystring(**{'from': start.isoformat(), 'to': end.isoformat()})}"}
            for key, label, start, end in presets]


def dashboard_page(template: str, page: str):
    """Decorate a page builder ``build(request, actor, query) -> dict`` with access, filters and layout."""

    def decorate(build):
        @login_required
        @require_safe
        @wraps(build)
        def view(request, *args, **kwargs):
            actor = actor_for(request.user)
            if actor.role in WORKBENCH_ROLES and not actor.is_superuser:
                return redirect("workbench:home")
            actor = _dashboard_actor(request)
            form, query = parse_filters(request.GET, actor=actor)
            context = {"actor": actor, "form": form, "query": query, "page": page,
                       "nav": [(name, label, f"{reverse(name)}?{query.querystring(sort=None) if query else ''}")
                               for name, label in NAV]}
            if query is None:
                return render(request, template, context, status=400)
            context["breadcrumbs"] = _breadcrumbs(query)
            context["presets"] = period_presets(query, services.local_today())
            with metric_memo():
                built = build(request, actor, query, *args, **kwargs)
                query = built.pop("query", query)  # a page may add its own parameters (segments: the runs)
                context["tables"] = {key: _table_context(table, actor, query)
                                     for key, table in built.pop("tables", {}).items()}
            context.update(built)
            context["query"] = query
            status = 400 if built.get("run_errors") else 200
            return render(request, template, context, status=status)

        return view

    return decorate


@dashboard_page("analytics/overview.html", "hq:overview")
def overview(request, actor, query):
    return dashboard_pages.overview(actor=actor, query=query)


@dashboard_page("analytics/ranking.html", "hq:brands")
def brands(request, actor, query):
    return dashboard_pages.brands(actor=actor, query=query)


@dashboard_page("analytics/ranking.html", "hq:regions")
def regions(request, actor, query):
    return dashboard_pages.regions(actor=actor, query=query)


@dashboard_page("analytics/ranking.html", "hq:stores")
def stores(request, actor, query):
    return dashboard_pages.stores(actor=actor, query=query)


@dashboard_page("analytics/ranking.html", "hq:guides")
def guides(request, actor, query):
    return dashboard_pages.guides(actor=actor, query=query)


@dashboard_page("analytics/segments.html", "hq:segments")
def segments(request, actor, query):
    return dashboard_pages.segments(actor=actor, query=query, params=request.GET)


@dashboard_page("analytics/ranking.html", "hq:livestream")
def livestream(request, actor, query):
    return dashboard_pages.livestream(actor=actor, query=query)


@dashboard_page("analytics/ranking.html", "hq:core")
def core(request, actor, query):
    return dashboard_pages.core(actor=actor, query=query)


# ---------------------------------------------------------------------------- exports

def _export_actor(request) -> Actor:
    """Exports are for the dashboard's viewers only; everyone else gets 403 (no redirect for a download)."""
    actor = _dashboard_actor(request)
    if actor.role in WORKBENCH_ROLES and not actor.is_superuser:
        raise PermissionDenied
    return actor


@dashboard_page("analytics/guide.html", "hq:guides")
def guide(request, actor, query, code: str):
    """One guide's page; a guide outside the viewer's scope does not exist for them (404)."""
    found = scoped(Guide.objects.filter(code=code), actor).select_related("store", "store__brand",
                                                                         "store__region").first()
    if found is None:
        raise Http404
    return dashboard_pages.guide_detail(actor=actor, query=query, guide=found)


SEARCH_MAX = 64


@login_required
@require_safe
def search(request):
    """Find a store or guide of the viewer's scope by code or name; the period filters are carried along."""
    actor = actor_for(request.user)
    if actor.role in WORKBENCH_ROLES and not actor.is_superuser:
        return redirect("workbench:home")
    actor = _dashboard_actor(request)
    text = (request.GET.get("q") or "").strip()
    form, query = parse_filters(request.GET, actor=actor)
    carry = {key: request.GET[key] for key in ("from", "to") if request.GET.get(key)} if query else {}
    context = {"actor": actor, "page": "", "text": text, "carry": carry, "error": "",
               "nav": [(name, label, f"{reverse(name)}?{urlencode(carry)}") for name, label in NAV]}
    status = 200
    if len(text) > SEARCH_MAX:
        context["error"] = _t("Search for at most %(count)s characters.") % {"count": SEARCH_MAX}
        status = 400
    elif text:
        found = dashboard_pages.search(actor=actor, text=text)
        context["stores"] = [{"store": s, "url": f"{reverse('hq:guides')}?"
                              f"{urlencode({**carry, 'brand': s.brand.code, 'store': s.code})}"}
                             for s in found["stores"]]
        context["guides"] = [{"guide": g, "url": f"{reverse('hq:guide', args=[g.code])}?{urlencode(carry)}"}
                             for g in found["guides"]]
    return render(request, "analytics/search.html", context, status=status)


@login_required
@require_safe
@throttle_view(client_throttle("export"))
def export(request, table_key: str, fmt: str):
    """One table as CSV or XLSX for the page's filters; a large one becomes a job and its status page.

    Rate-limited per user (``THROTTLE_EXPORT``): 429 with ``Retry-After`` beyond it.
    """
    actor = _export_actor(request)
    table = get_table(table_key)
    if table is None or fmt not in exports.FORMATS:
        raise Http404
    form, query = parse_filters(request.GET, actor=actor)
    if query is None:
        messages = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items())
        invalid = _t("Invalid filters")
        return HttpResponseBadRequest(f"{invalid}: {messages}", content_type="text/plain; charset=utf-8")
    if table.extra_params:
        query, _runs, errors = dashboard_pages.segment_runs(actor=actor, query=query, params=request.GET)
        if errors:
            messages = "; ".join(f"{field}: {message}" for field, message in errors.items())
            invalid = _t("Invalid filters")
            return HttpResponseBadRequest(f"{invalid}: {messages}", content_type="text/plain; charset=utf-8")
    params = query.params()
    if table.size is not None:
        size, rows = table.size(actor, query), None
    else:
        rows = table_rows(table, actor, query, None)
        size = len(rows)
    if size > exports.async_threshold():
        job = exports.job_create(user_id=request.user.pk, table=table, fmt=fmt, params=params)
        export_table.delay(job.id)
        return redirect("hq:export_status", job_id=job.id)
    if rows is None:
        rows = table_rows(table, actor, query, None)
    body = exports.csv_bytes(table, rows) if fmt == "csv" else exports.xlsx_bytes(table, rows)
    response = HttpResponse(body, content_type=exports.FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{exports.export_filename(table, params, fmt)}"'
    return response


@login_required
@require_safe
def export_status(request, job_id: str):
    """A large export's progress: HTML that refreshes itself until the file is ready, or JSON for scripts."""
    _export_actor(request)
    job = exports.job_for_user(job_id, request.user.pk)
    if job is None:
        raise Http404
    download_url = reverse("hq:export_download", args=[job.id]) if job.ready else None
    if request.GET.get("format") == "json":
        return JsonResponse({"id": job.id, "state": job.state, "rows": job.rows, "table": job.table,
                             "format": job.format, "download_url": download_url, "error": job.error})
    table = get_table(job.table)
    return render(request, "analytics/export_status.html",
                  {"job": job, "table": table, "download_url": download_url,
                   "nav": [(name, label, reverse(name)) for name, label in NAV], "page": ""})


@login_required
@require_safe
def export_download(request, job_id: str):
    _export_actor(request)
    job = exports.job_for_user(job_id, request.user.pk)
    if job is None or not job.ready:
        raise Http404
    return FileResponse(open(job.file_path, "rb"), as_attachment=True, filename=job.filename,  # noqa: SIM115
                        content_type=exports.FORMATS[job.format])
