"""The HQ scheduling calendar (排班) for 1+N live sessions: one brand's week, create, move and cancel.

HQ and brand operators plan; regional managers see their region's week read-only; store managers and guides
have the workbench's live schedule instead. Every write goes through ``livestream.services`` (the same scope,
host and conflict rules as the API) and every read through ``retail_crm.scoping``. Refusals render the page
again with the reason in the viewer's language and the service's status (400, 403, 404 or 409).
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from livestream.errors import LivestreamErrorCode
from livestream.models import LiveSession
from livestream.services import (
    SCHEDULER_ROLES,
    session_cancel,
    session_move,
    session_schedule,
)
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand, Guide, Store
from retail_crm.scoping import Actor, actor_for, in_scope, scoped

WORKBENCH_ROLES = ("store_manager", "guide")
WEEKDAYS = (gettext_lazy("Mon"), gettext_lazy("Tue"), gettext_lazy("Wed"), gettext_lazy("Thu"),
            gettext_lazy("Fri"), gettext_lazy("Sat"), gettext_lazy("Sun"))


class SessionTimeForm(forms.Form):
    """A day and a local start and end time; the end may not be before the start on that day."""

    day = forms.DateField(label=gettext_lazy("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    start = forms.TimeField(label=gettext_lazy("Start"), widget=forms.TimeInput(attrs={"type": "time"}))
    end = forms.TimeField(label=gettext_lazy("End"), widget=forms.TimeInput(attrs={"type": "time"}))

    def clean(self):
        data = super().clean()
        if {"day", "start", "end"} <= data.keys():
            if data["end"] <= data["start"]:
                self.add_error("end", _("The end must be after the start."))
            else:
                data["planned_start"] = timezone.make_aware(dt.datetime.combine(data["day"], data["start"]))
                data["planned_end"] = timezone.make_aware(dt.datetime.combine(data["day"], data["end"]))
        return data


class SessionCreateForm(SessionTimeForm):
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=LiveSession.Kind.choices,
                             initial=LiveSession.Kind.STORE)
    title = forms.CharField(label=gettext_lazy("Title"), max_length=120)
    host_store = forms.CharField(label=gettext_lazy("Host store (code)"), max_length=32, required=False,
                                 widget=forms.TextInput(attrs={"list": "schedule-stores"}))
    host_guide = forms.CharField(label=gettext_lazy("Host guide (code)"), max_length=32, required=False)
    follows = forms.TypedChoiceField(label=gettext_lazy("Follows HQ session"), coerce=int, required=False,
                                     empty_value=None)
    platform = forms.ChoiceField(label=gettext_lazy("Platform"), choices=LiveSession.Platform.choices,
                                 initial=LiveSession.Platform.MINI_PROGRAM)

    field_order = ["kind", "title", "day", "start", "end", "host_store", "host_guide", "follows", "platform"]

    def __init__(self, *args, central: list[LiveSession], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["follows"].choices = [("", _("— none —"))] + [
            (s.pk, f"#{s.pk} {s.title} · {date_format(timezone.localtime(s.planned_start), 'm-d H:i')}")
            for s in central]


def _week_start(value: str | None) -> dt.date:
    """The Monday of the week holding ``value`` (YYYY-MM-DD); this week when missing or unreadable."""
    try:
        day = dt.date.fromisoformat(value) if value else timezone.localdate()
    except ValueError:
        day = timezone.localdate()
    return day - dt.timedelta(days=day.weekday())


def _week_bounds(monday: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = timezone.make_aware(dt.datetime.combine(monday, dt.time.min))
    return start, start + dt.timedelta(days=7)


def _refusal(error: ApplicationError) -> str:
    """The service's refusal in the viewer's language (the API keeps its English message)."""
    session = error.params.get("session")
    described = ""
    if session is not None:
        described = _("“%(title)s” (#%(id)s, %(start)s–%(end)s)") % {
            "title": session.title, "id": session.pk,
            "start": date_format(timezone.localtime(session.planned_start), "m-d H:i"),
            "end": date_format(timezone.localtime(session.planned_end), "H:i")}
    if error.code == LivestreamErrorCode.STORE_BUSY:
        return _("Store %(store)s already has session %(session)s at that time.") % {
            "store": error.params["store"], "session": described}
    if error.code == LivestreamErrorCode.GUIDE_BUSY:
        return _("Guide %(guide)s already hosts session %(session)s at that time.") % {
            "guide": error.params["guide"], "session": described}
    if error.code == ErrorCode.INVALID_TRANSITION:
        return _("Only a planned session can be changed; this one is no longer planned.")
    if error.code == LivestreamErrorCode.SCHEDULE_FORBIDDEN:
        return _("Only HQ or brand operators can schedule live sessions.")
    if error.status == 404:
        return _("Not found in your scope.")
    field_messages = {
        "title": _("A title is required."),
        "planned_end": _("The end must be after the start."),
        "host_store": _("Check the host store: a store session needs one store of this brand; an HQ session has none."),
        "host_guide": _("Check the host guide: they must work in the host store (or for this brand) "
                        "and not have left."),
        "follows": _("Only a store session can follow an HQ central session of this brand that is not cancelled."),
        "product_ids": _("Unknown products for this brand."),
    }
    for field in error.fields:
        if field in field_messages:
            return field_messages[field]
    return _("The session could not be saved.")


def _calendar(actor: Actor, brand: Brand, monday: dt.date) -> list[dict]:
    """The week's sessions of ``brand`` in scope, day by day; an HQ session carries its following stores."""
    start, end = _week_bounds(monday)
    sessions = list(scoped(LiveSession.objects.filter(brand=brand, planned_start__gte=start, planned_start__lt=end),
                           actor)
                    .select_related("host_store", "host_guide", "follows")
                    .order_by("planned_start", "pk"))
    followers: dict[int, int] = {}
    for session in sessions:
        if session.follows_id and session.status != LiveSession.Status.CANCELLED:
            followers[session.follows_id] = followers.get(session.follows_id, 0) + 1
    days = []
    for offset in range(7):
        day = monday + dt.timedelta(days=offset)
        days.append({"date": day, "weekday": WEEKDAYS[offset], "is_today": day == timezone.localdate(),
                     "sessions": [{"session": s, "followers": followers.get(s.pk, 0),
                                   "start": timezone.localtime(s.planned_start),
                                   "end": timezone.localtime(s.planned_end)}
                                  for s in sessions if timezone.localtime(s.planned_start).date() == day]})
    return days


def _one_in_scope(queryset, actor: Actor, code: str, what: str):
    found = scoped(queryset, actor).filter(code=code).first()
    if found is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, f"No such {what}.", status=404)
    return found


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def schedule(request):
    """One brand's week of live sessions, with the forms that plan, move and cancel them."""
    actor = actor_for(request.user)
    if actor.role in WORKBENCH_ROLES and not actor.is_superuser:
        return redirect("workbench:live")
    if not actor.is_staff_member:
        raise PermissionDenied
    brands = list(scoped(Brand.objects.all(), actor).order_by("code"))
    if not brands:
        raise PermissionDenied
    source = request.POST if request.method == "POST" else request.GET
    brand = next((b for b in brands if b.code == source.get("brand")), brands[0])
    monday = _week_start(source.get("week"))
    can_plan = actor.role in SCHEDULER_ROLES or actor.is_superuser
    start, end = _week_bounds(monday)
    central = list(scoped(LiveSession.objects.filter(
        brand=brand, kind=LiveSession.Kind.HQ_CENTRAL, planned_start__gte=start - dt.timedelta(days=7),
        planned_start__lt=end + dt.timedelta(days=7)).exclude(status=LiveSession.Status.CANCELLED), actor)
        .order_by("planned_start", "pk"))
    create_form = SessionCreateForm(central=central, initial={"day": max(monday, timezone.localdate())})
    error, status = None, 200

    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if not can_plan:
                raise ApplicationError(LivestreamErrorCode.SCHEDULE_FORBIDDEN,
                                       "Only HQ or brand operators can schedule.", status=403)
            if action == "create":
                create_form = SessionCreateForm(request.POST, central=central)
                if not create_form.is_valid():
                    raise ApplicationError(ErrorCode.INVALID, "Invalid form.", status=400)
                data = create_form.cleaned_data
                store = (_one_in_scope(Store.objects.all(), actor, data["host_store"].strip(), "store")
                         if data["host_store"].strip() else None)
                guide = (_one_in_scope(Guide.objects.select_related("store"), actor, data["host_guide"].strip(),
                                       "guide") if data["host_guide"].strip() else None)
                follows = next((s for s in central if s.pk == data["follows"]), None) if data["follows"] else None
                session = session_schedule(brand=brand, kind=data["kind"], title=data["title"],
                                           planned_start=data["planned_start"], planned_end=data["planned_end"],
                                           host_store=store, host_guide=guide, follows=follows,
                                           platform=data["platform"], actor=actor)
                messages.success(request, _("Planned “%(title)s”.") % {"title": session.title})
            elif action in ("move", "cancel"):
                session = scoped(LiveSession.objects.filter(brand=brand), actor).filter(
                    pk=request.POST.get("session") if str(request.POST.get("session", "")).isdigit() else None
                ).first()
                if session is None:
                    raise ApplicationError(ErrorCode.NOT_FOUND, "No such session.", status=404)
                if action == "cancel":
                    session_cancel(session)
                    messages.success(request, _("Cancelled “%(title)s”.") % {"title": session.title})
                else:
                    move_form = SessionTimeForm(request.POST)
                    if not move_form.is_valid():
                        error = " ".join(str(m) for errors in move_form.errors.values() for m in errors)
                        raise ApplicationError(ErrorCode.INVALID, "Invalid time.", status=400)
                    moved = session_move(session=session, planned_start=move_form.cleaned_data["planned_start"],
                                         planned_end=move_form.cleaned_data["planned_end"], actor=actor)
                    monday = _week_start(moved.planned_start.astimezone(timezone.get_current_timezone())
                                         .date().isoformat())
                    messages.success(request, _("Moved “%(title)s”.") % {"title": moved.title})
            else:
                raise ApplicationError(ErrorCode.INVALID, "Unknown action.", status=400)
        except ApplicationError as refused:
            status = refused.status
            if error is None and not (refused.code == ErrorCode.INVALID and refused.message == "Invalid form."):
                error = _refusal(refused)
        else:
            return redirect(f"{reverse('live-schedule')}?{urlencode({'brand': brand.code, 'week': monday})}")

    def week_url(days: int) -> str:
        return f"{reverse('live-schedule')}?{urlencode({'brand': brand.code, 'week': monday + dt.timedelta(days)})}"

    context = {
        "actor": actor, "brands": brands, "brand": brand, "monday": monday, "sunday": monday + dt.timedelta(days=6),
        "days": _calendar(actor, brand, monday), "can_plan": can_plan, "create_form": create_form,
        "error": error, "prev_url": week_url(-7), "next_url": week_url(7),
        "this_week_url": f"{reverse('live-schedule')}?{urlencode({'brand': brand.code})}",
        "store_hints": list(scoped(Store.objects.filter(brand=brand), actor)
                            .order_by("code").values_list("code", "name")[:500]),
        "in_scope": in_scope(brand, actor),
    }
    return render(request, "livestream/schedule.html", context, status=status)
