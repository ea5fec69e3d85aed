"""The guide workbench (mobile web): home, my members, a member, the care list, my performance, live schedule.

Views are thin: they check the viewer is staff, parse input with a form, call ``guides.selectors`` (reads)
or ``segments.care`` (marking a care item done) and render. Whose numbers a page shows is the
:class:`~guides.selectors.WorkbenchSubject`: a guide is themself; a manager sees their scope and may pick one
of their guides with ``?guide=<code>``. Outside the viewer's scope everything is a 404; a login without a
staff role gets a 403; anonymous visitors are sent to the login page.
"""

from __future__ import annotations

import datetime as dt
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_POST

from guides import selectors, services, withdrawals
from guides.forms import CareDoneForm, MemberFilterForm
from members.selectors import member_get
from retail_crm.errors import ApplicationError
from retail_crm.phones import mask_phone
from retail_crm.scoping import actor_for
from segments.care import care_item_done
from segments.models import CareItem
from segments.rfm import local_today

MEMBERS_PER_PAGE = 20
CARE_PER_PAGE = 30
CARE_FIRST = 8  # "today first": the top of the ranked care list, shown before the rest
RECENT_DONE = 5
CARE_VIEWS = {"", "done", *CareItem.Kind.values}
ACTIVITY_LABELS = [("product_views", _lazy("Product views")), ("favourites", _lazy("Favourites")),
                   ("shares", _lazy("Shares")), ("add_to_carts", _lazy("Added to cart")),
                   ("orders_unpaid", _lazy("Unpaid orders")), ("live_watches", _lazy("Livestreams watched")),
                   ("material_views", _lazy("Material views")), ("try_ons", _lazy("In-store try-ons"))]


def workbench_page(view):
    """Staff only (403 otherwise, login first when anonymous); passes the page's subject; 404s outside scope."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        actor = actor_for(request.user)
        if not actor.is_staff_member:
            raise PermissionDenied
        try:
            subject = selectors.workbench_subject(actor=actor, guide_code=request.GET.get("guide") or None)
            return view(request, subject, *args, **kwargs)
        except ApplicationError as error:
            if error.status == 404:
                raise Http404(error.message) from error
            raise

    return wrapper


def _first_url(*candidates, fallback: str | None = None) -> str | None:
    """The first of (url name, args) that resolves; other helpers' pages are linked without a hard dependency."""
    for name, args in candidates:
        try:
            return reverse(name, args=args)
        except NoReverseMatch:
            continue
    return fallback


def task_url(task: selectors.OpenTask) -> str:
    """An open task's page: the subject's own assignment (task pages are per assignment), else the task's
    execution rates (a manager's, over several assignees)."""
    if task.assignment_id is not None:
        return reverse("workbench:task_detail", args=[task.assignment_id])
    return f"{reverse('workbench:task_execution')}?{urlencode({'task': task.task_id})}"


def _frame(request, subject, **context) -> dict:
    """What every page's frame needs: the subject and, for managers, the guide picker."""
    guide_code = subject.guide.code if subject.guide is not None and subject.is_manager else ""
    frame = {
        "subject": subject,
        "guide": subject.guide,
        "guide_code": guide_code,
        "guide_query": f"?{urlencode({'guide': guide_code})}" if guide_code else "",
    }
    if subject.is_manager:
        frame["guide_filter"] = {"choices": selectors.guides_to_pick(subject=subject), "current": guide_code}
    frame.update(context)
    return frame


@workbench_page
def home(request, subject):
    today = local_today()
    numbers = selectors.home_numbers(subject=subject, day=today, staff_user=request.user)
    tasks = [(task, task_url(task)) for task in numbers.open_tasks]
    pending_withdrawals = (withdrawals.withdrawals_to_decide_count(actor=subject.actor, user=request.user)
                           if withdrawals.may_decide_withdrawals(subject.actor) else None)
    return render(request, "guides/home.html", _frame(
        request, subject, wb_tab="home", numbers=numbers, today=today, open_tasks=tasks,
        pending_withdrawals=pending_withdrawals,
        member_count=numbers.members, tasks_url=_first_url(("workbench:tasks", []), fallback="/workbench/tasks/")))


@workbench_page
def members(request, subject):
    form = MemberFilterForm(request.GET or None, tag_values=selectors.member_tag_choices(subject=subject))
    filters = selectors.MemberFilters()
    if form.is_bound:
        form.is_valid()  # fields with errors are shown and filter nothing; the valid ones still apply
        filters = form.filters()
    page = Paginator(selectors.member_list(subject=subject, filters=filters), MEMBERS_PER_PAGE).get_page(
        request.GET.get("page"))
    for member in page:  # lists never show whole phones; the member page decides that
        member.phone_masked = mask_phone(member.phone)
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "guides/members.html", _frame(
        request, subject, wb_tab="members", form=form, page=page, brand_id=subject.brand_id), status=status)


@workbench_page
def member_page(request, subject, member_id: int):
    data = selectors.workbench_member(subject=subject, member_id=member_id, user=request.user,
                                      today=local_today())
    counts = data.detail.activity.counts
    activity = [(label, counts.get(name, 0)) for name, label in ACTIVITY_LABELS]
    return render(request, "guides/member_detail.html", _frame(
        request, subject, wb_tab="members", m=data, member=data.detail.member, activity=activity,
        guide_filter=None))


@workbench_page
def member_try_on(request, subject, member_id: int):
    """Two taps: the member page's "try-on" opens this list of the store brand's products (searchable; the
    ones tried on in the store lately first); tapping one records the try-on and goes back to the member."""
    try:
        member = member_get(actor=subject.actor, member_id=member_id)
    except ApplicationError as error:
        raise Http404(error.message) from error
    brand_id, store = selectors.try_on_brand_and_store(subject)
    error, status = "", 200
    if brand_id is None:
        error, status = _("Pick one of your guides first: a try-on is recorded for a store."), 400
    elif request.method == "POST":
        try:
            services.try_on_record(member=member, brand_id=brand_id, product_code=request.POST.get("product", ""),
                                   guide=subject.guide, store=store)
        except ApplicationError:
            error, status = _("Not a product of the store's brand. Pick one from the list."), 400
        else:
            messages.success(request, _("Try-on recorded."))
            frame = _frame(request, subject)
            return redirect(reverse("workbench:member", args=[member.pk]) + frame["guide_query"])
    query = request.GET.get("q", "").strip()[:40]
    products = selectors.try_on_products(subject=subject, q=query) if brand_id is not None else []
    return render(request, "guides/try_on.html", _frame(
        request, subject, wb_tab="members", member=member, products=products, q=query, error=error,
        guide_filter=None), status=status)


def _care_page(request, subject, *, status: int = 200, failed_item: CareItem | None = None, failed_form=None):
    """The care list: open items of one kind or all kinds (or the done ones), CARE_PER_PAGE a page."""
    today = local_today()
    kind = request.GET.get("kind", "")
    if kind not in CARE_VIEWS:
        kind = ""
    done = kind == "done"
    page = Paginator(selectors.care_list(subject=subject, day=today, kind=None if done or not kind else kind,
                                         done=done), CARE_PER_PAGE).get_page(request.GET.get("page"))
    items = list(page)
    contacts = selectors.care_contacts(subject=subject, items=items, user=request.user) if not done else {}
    for item in items:
        item.form = failed_form if failed_item and item.pk == failed_item.pk else CareDoneForm(
            auto_id=f"care-{item.pk}-%s")
        item.contact = contacts.get(item.pk)
    # The first page opens with the few that matter today; the rest of the ranked list waits folded away.
    first = items[:CARE_FIRST] if not done and page.number == 1 else []
    later = items[len(first):] if not done else []
    recent_done = [] if done or page.number > 1 else list(
        selectors.care_list(subject=subject, day=today, done=True)[:RECENT_DONE])
    return render(request, "guides/care.html", _frame(
        request, subject, wb_tab="care", today=today, kind=kind, page=page, first_items=first,
        later_items=later, later_count=page.paginator.count - len(first),
        failed_later=bool(failed_item and any(item.pk == failed_item.pk for item in later)),
        done_items=list(page) if done else recent_done,
        counts=selectors.care_counts(subject=subject, day=today),
        by_kind=[(value, label, count) for (value, label), count in zip(
            CareItem.Kind.choices, selectors.care_open_by_kind(subject=subject, day=today).values(), strict=True)],
        failed_item=failed_item, failed_form=failed_form), status=status)


@workbench_page
def care(request, subject):
    return _care_page(request, subject)


@require_POST
@workbench_page
def care_done(request, subject, item_id: int):
    """Mark one care item done with its outcome: the contact counts as service on the member's binding."""
    item = selectors.care_item_get(subject=subject, item_id=item_id)
    form = CareDoneForm(request.POST, auto_id=f"care-{item.pk}-%s")
    if form.is_valid():
        try:
            care_item_done(item=item, user=request.user, outcome=form.cleaned_data["outcome"])
        except ApplicationError as error:
            if error.status == 404:
                raise Http404(error.message) from error
            for name, problems in error.fields.items():
                for problem in problems:
                    form.add_error(name if name in form.fields else None, problem)
            if not error.fields:
                form.add_error(None, error.message)
        else:
            messages.success(request, _("Done: %(member)s") % {"member": item.member.name or item.member.code})
            # Back to the same view of the list (guide, kind and page came along in the form's action).
            query = {key: request.GET[key] for key in ("guide", "kind", "page") if request.GET.get(key)}
            return redirect(reverse("workbench:care") + (f"?{urlencode(query)}" if query else "")
                            + f"#care-{item.pk}")
    return _care_page(request, subject, status=400, failed_item=item, failed_form=form)


def _month(request, today: dt.date) -> tuple[dt.date, dt.date]:
    """The month asked for with ?month=YYYY-MM (this month when missing, malformed or in the future)."""
    first = today.replace(day=1)
    try:
        year, month = (int(part) for part in request.GET.get("month", "").split("-"))
        asked = dt.date(year, month, 1)
    except (TypeError, ValueError):
        asked = first
    if asked > first:
        asked = first
    next_first = (asked + dt.timedelta(days=32)).replace(day=1)
    return asked, min(next_first - dt.timedelta(days=1), today)


@workbench_page
def performance(request, subject):
    today = local_today()
    date_from, date_to = _month(request, today)
    data = selectors.performance(subject=subject, date_from=date_from, date_to=date_to)
    previous = (date_from - dt.timedelta(days=1)).replace(day=1)
    following = (date_from + dt.timedelta(days=32)).replace(day=1)
    links = {
        "qr": _first_url(("workbench:qr", []), ("workbench:my_qr", [])),
        "shares": _first_url(("workbench:shares", []), ("workbench:share_list", [])),
        "commission": _first_url(("workbench:commission", []), ("workbench:withdrawals", [])),
        "live": reverse("workbench:live"),
    }
    return render(request, "guides/performance.html", _frame(
        request, subject, wb_tab="me", p=data, previous_month=previous.strftime("%Y-%m"),
        next_month=following.strftime("%Y-%m") if following <= today else None, links=links))


@workbench_page
def live_schedule(request, subject):
    store_code = (request.GET.get("store") or "").strip()
    store = selectors.schedule_store(subject=subject, store_code=store_code or None)
    weeks = selectors.store_live_weeks(subject=subject, store=store, today=local_today()) if store else []
    return render(request, "guides/live_schedule.html", _frame(request, subject, wb_tab="me", store=store,
                                                               weeks=weeks, store_code=store_code,
                                                               guide_filter=None))
