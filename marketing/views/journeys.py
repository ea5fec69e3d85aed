"""HQ journey pages at ``/hq/marketing/journeys/``: the list, the editor (settings, then the steps as an ordered
list), and each journey's page (status changes, the preview of who would enter, results per step).

The editor's step list is handled on the server: "add a step", "up", "down" and "remove" post the whole form
and come back with the rows rearranged (nothing is saved until "save"). Every rule is the journey service's
(``marketing.journeys.journey_save`` / ``journey_transition``, the checks the admin uses too); its refusals are
shown on the fields they concern, in the viewer's language. Only a draft is edited: members on their way
follow the steps they entered with.
"""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from marketing.audience_coupons import coupon_templates_issuable
from marketing.audiences import audience_list
from marketing.forms import JourneyForm, JourneyStepForm
from marketing.journeys import (
    FAVOURITE_DAYS,
    MAX_STEPS,
    StepSpec,
    journey_preview,
    journey_results,
    journey_save,
    journey_transition,
)
from marketing.models import HoldReason, Journey, JourneyStep
from marketing.selectors import journey_list
from marketing.views.access import marketing_page
from marketing.views.campaigns import _lift
from marketing.views.refusals import refusal_text
from members.models import TagValue
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand
from retail_crm.scoping import scoped
from retail_crm.vocabulary import Segment

STEP_PREFIX = "s"


def _journey_in_scope(actor, pk: int) -> Journey:
    journey = journey_list(actor=actor).filter(pk=pk).first()
    if journey is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such journey.", status=404)
    return journey


def trigger_text(journey: Journey) -> str:
    """The trigger in words, with its parameters."""
    label = journey.get_trigger_display()
    params = journey.trigger_params or {}
    if journey.trigger == Journey.Trigger.PRODUCT_VIEWS and {"views", "days"} <= set(params):
        text = _("%(label)s: %(views)s views or more in %(days)s days") % {
            "label": label, "views": params["views"], "days": params["days"]}
        if params.get("product_ids"):
            text += _(" (%(n)s products)") % {"n": len(params["product_ids"])}
        return text
    if journey.trigger == Journey.Trigger.BIRTHDAY and params.get("days_before"):
        return _("%(label)s: %(n)s days before") % {"label": label, "n": params["days_before"]}
    if journey.trigger == Journey.Trigger.FAVOURITE:
        text = _("%(label)s: within %(days)s days") % {"label": label, "days": params.get("days", FAVOURITE_DAYS)}
        if params.get("product_ids"):
            text += _(" (%(n)s products)") % {"n": len(params["product_ids"])}
        return text
    if journey.trigger == Journey.Trigger.CLASS_ENTERED and isinstance(params.get("classes"), list):
        names = dict(Segment.choices)
        return _("%(label)s: %(classes)s") % {
            "label": label, "classes": "、".join(str(names.get(code, code)) for code in params["classes"])}
    return label


@marketing_page
@require_safe
def journey_list_page(request, actor):
    """Journeys in scope, newest first: name, brand, trigger, status, members entered / on their way / converted."""
    rows = [{"journey": j, "trigger": trigger_text(j)} for j in journey_list(actor=actor)[:200]]
    return render(request, "marketing/journeys.html", {"rows": rows, "active": "journeys"})


# ---------------------------------------------------------------------------- the editor

def _choices(actor) -> dict:
    """What the step inputs offer: the saved audiences, tag values and issuable coupons in scope."""
    brands = scoped(Brand.objects.all(), actor)
    tags = (scoped(TagValue.objects.filter(Q(tag_group__brand__in=brands)
                                           | Q(tag_group__brand__isnull=True, tag_group__group_id=actor.group_id)),
                   actor).select_related("tag_group").order_by("tag_group__code", "sort", "code"))
    return {"audiences": list(audience_list(actor=actor)), "tag_values": list(tags),
            "coupon_templates": list(coupon_templates_issuable(actor=actor))}


def _posted_rows(post) -> list[dict]:
    """The step rows as posted: one {input: value} per row, in the page's order."""
    try:
        count = min(int(post.get("steps", 0)), MAX_STEPS + 1)
    except ValueError:
        count = 0
    rows = []
    for index in range(count):
        prefix = f"{STEP_PREFIX}{index}-"
        rows.append({key.removeprefix(prefix): value for key, value in post.items() if key.startswith(prefix)})
    return rows


def _rearranged(rows: list[dict], command: str) -> list[dict] | None:
    """The rows after "add", "up:<i>", "down:<i>" or "remove:<i>"; None for no such command."""
    verb, _sep, index = command.partition(":")
    if verb == "add":
        return [*rows, {"kind": JourneyStep.Kind.WAIT, "wait_unit": "minutes"}] if len(rows) < MAX_STEPS else rows
    if not index.isdigit() or int(index) >= len(rows):
        return None
    i = int(index)
    rows = list(rows)
    if verb == "remove":
        del rows[i]
    elif verb == "up" and i > 0:
        rows[i - 1], rows[i] = rows[i], rows[i - 1]
    elif verb == "down" and i < len(rows) - 1:
        rows[i + 1], rows[i] = rows[i], rows[i + 1]
    elif verb not in ("up", "down"):
        return None
    return rows


def _step_forms(rows: list[dict], choices: dict, *, bound: bool) -> list[JourneyStepForm]:
    forms = []
    for index, row in enumerate(rows):
        prefix = f"{STEP_PREFIX}{index}"
        if bound:
            data = {f"{prefix}-{key}": value for key, value in row.items()}
            forms.append(JourneyStepForm(data, prefix=prefix, **choices))
        else:
            forms.append(JourneyStepForm(initial=row, prefix=prefix, **choices))
    return forms


def _show_refusal(form: JourneyForm, steps: list[JourneyStepForm], refused: ApplicationError) -> None:
    """Put the service's messages on the fields they are about (the rest above the form)."""
    if not refused.fields:
        form.add_error(None, _refusal_sentence(refused))
    for key, texts in refused.fields.items():
        head, _sep, index = key.partition(".")
        for text in texts:
            if head == "steps" and index.isdigit() and int(index) < len(steps):
                step = steps[int(index)]
                name, sep, message = text.partition(": ")
                field, message = step.field_for(name, message) if sep and " " not in name else (None, text)
                if field is None and not sep:
                    field = "kind"
                step.add_error(field, refusal_text(message))
            elif head == "steps":
                form.add_error(None, refusal_text(text))
            else:
                form.add_error(form.field_for(key), refusal_text(text))


def _refusal_sentence(refused: ApplicationError) -> str:
    if refused.code == ErrorCode.INVALID_TRANSITION:
        status = dict(Journey.Status.choices).get(refused.params.get("status"), refused.params.get("status", ""))
        action = refused.params.get("action")
        if action is None:
            return _("Only a draft journey can be edited; this journey is “%(status)s”.") % {"status": status}
        words = {"activate": _("activated"), "pause": _("paused"), "end": _("ended")}
        return _("A journey that is “%(status)s” cannot be %(action)s.") % {
            "status": status, "action": words.get(action, action)}
    if refused.fields:  # an activation's check: every message, the steps' numbered from 1
        lines = []
        for key, texts in refused.fields.items():
            for text in texts:
                if key == "steps" and text.startswith("#"):
                    number, _sep, rest = text[1:].partition(": ")
                    name, sep, message = rest.partition(": ")
                    lines.append(_("Step %(n)s: %(message)s") % {
                        "n": int(number) + 1 if number.isdigit() else number,
                        "message": refusal_text(message if sep and " " not in name else rest)})
                else:
                    lines.append(refusal_text(text))
        return " ".join(lines)
    return refusal_text(refused.message)


def _editor(request, actor, *, journey: Journey | None):
    brands = list(scoped(Brand.objects.all(), actor).order_by("code"))
    if not brands:
        raise Http404("No brand in scope.")
    choices = _choices(actor)
    status = 200
    if request.method == "POST":
        form = JourneyForm(request.POST, brands=brands)
        rows = _posted_rows(request.POST)
        command = request.POST.get("step_action", "")
        if command:  # rearranging the steps: shown again, nothing checked or saved
            rows = _rearranged(rows, command) or rows
            initial = {**request.POST.dict(), "exit_on_conversion": "exit_on_conversion" in request.POST}
            return _render_editor(request, journey, JourneyForm(initial=initial, brands=brands),
                                  _step_forms(rows, choices, bound=False), 200)
        steps = _step_forms(rows, choices, bound=True)
        status = 400
        if form.is_valid() & all([step.is_valid() for step in steps]):
            try:
                journey = journey_save(journey=journey, steps=[StepSpec(kind=s.cleaned_data["kind"], params=s.params())
                                                               for s in steps], **form.journey_arguments())
            except ApplicationError as refused:
                if refused.status not in (400, 409):
                    raise
                status = refused.status
                _show_refusal(form, steps, refused)
            else:
                messages.success(request, _("Saved the journey “%(name)s”.") % {"name": journey.name})
                return redirect("marketing:journey", pk=journey.pk)
        return _render_editor(request, journey, form, steps, status)
    if journey is None:
        form = JourneyForm(initial={"brand": brands[0].pk, "trigger": Journey.Trigger.ORDER_UNPAID,
                                    "reentry": Journey.Reentry.ONCE}, brands=brands)
        rows = [{"kind": JourneyStep.Kind.WAIT, "wait_amount": 30, "wait_unit": "minutes"}]
    else:
        form = JourneyForm(initial=JourneyForm.initial_for(journey), brands=brands)
        rows = [JourneyStepForm.initial_for(step) for step in journey.steps.order_by("position")]
    return _render_editor(request, journey, form, _step_forms(rows, choices, bound=False), status)


def _render_editor(request, journey, form, steps, status):
    return render(request, "marketing/journey_edit.html", {
        "form": form, "steps": steps, "journey": journey, "active": "journeys", "max_steps": MAX_STEPS,
    }, status=status)


@marketing_page
@require_http_methods(["GET", "HEAD", "POST"])
def journey_new(request, actor):
    """A new journey (saved as a draft)."""
    return _editor(request, actor, journey=None)


@marketing_page
@require_http_methods(["GET", "HEAD", "POST"])
def journey_edit(request, actor, pk: int):
    """A draft journey's settings and steps; any other status is shown with the refusal (409)."""
    journey = _journey_in_scope(actor, pk)
    if journey.status != Journey.Status.DRAFT:
        messages.error(request, _refusal_sentence(ApplicationError(
            ErrorCode.INVALID_TRANSITION, "", status=409, params={"status": journey.status})))
        if request.method == "POST":
            return _journey_page(request, actor, journey, error=None, status=409)
        return redirect("marketing:journey", pk=journey.pk)
    return _editor(request, actor, journey=journey)


# ---------------------------------------------------------------------------- one journey

def _step_text(step: JourneyStep, labels: dict) -> str:
    """One step in words, briefly."""
    params = step.params or {}
    kind = step.get_kind_display()
    if step.kind == JourneyStep.Kind.WAIT and isinstance(params.get("minutes"), int):
        minutes = params["minutes"]
        if minutes % 1440 == 0:
            return _("Wait %(n)s days") % {"n": minutes // 1440}
        if minutes % 60 == 0:
            return _("Wait %(n)s hours") % {"n": minutes // 60}
        return _("Wait %(n)s minutes") % {"n": minutes}
    if step.kind == JourneyStep.Kind.CHECK:
        condition = labels["conditions"].get(params.get("condition"), params.get("condition", ""))
        expect = _("yes") if params.get("expect") else _("no")
        return _("Check: %(condition)s? Go on if %(expect)s") % {"condition": condition, "expect": expect}
    if step.kind == JourneyStep.Kind.SEND:
        channels = " → ".join(str(labels["channels"].get(c, c)) for c in params.get("channels") or [])
        return _("%(channel)s: %(what)s") % {"channel": kind, "what": channels}
    if step.kind == JourneyStep.Kind.GUIDE_TASK:
        return _("%(channel)s: %(what)s") % {"channel": kind, "what": params.get("reason", "")}
    return kind


def _charts(figures) -> list[dict]:
    """ECharts spec (static/js/dashboard.js): per step, members who reached it, acted on, converted."""
    if not figures.steps:
        return []
    x = [_("Step %(n)s") % {"n": row.position + 1} for row in figures.steps]
    return [{"id": "journey-step-chart", "title": _("Per step"), "kind": "bar", "integer": True, "x": x,
             "series": [{"name": _("Entered"), "data": [row.entered for row in figures.steps]},
                        {"name": _("Acted on"), "data": [row.acted for row in figures.steps]},
                        {"name": _("Converted"), "data": [row.converted for row in figures.steps]}]}]


def _journey_page(request, actor, journey: Journey, *, error: str | None, status: int):
    from marketing.forms import CHECK_CONDITIONS
    from marketing.models import Channel

    figures = journey_results(journey=journey)
    reasons = dict(HoldReason.choices)
    labels = {"conditions": dict(CHECK_CONDITIONS), "channels": dict(Channel.choices)}
    steps = list(journey.steps.order_by("position"))
    rows = [{"step": step, "text": _step_text(step, labels), "figures": row,
             "held": [(code, reasons.get(code, code), n) for code, n in sorted(row.held.items())],
             "held_total": sum(row.held.values())}
            for step, row in zip(steps, figures.steps, strict=True)]
    return render(request, "marketing/journey.html", {
        "journey": journey, "trigger": trigger_text(journey), "preview": journey_preview(journey=journey),
        "figures": figures, "rows": rows, "lift": _lift(figures.lift), "charts": _charts(figures),
        "error": error, "active": "journeys",
        "can_edit": journey.status == Journey.Status.DRAFT,
        "can_activate": journey.status in (Journey.Status.DRAFT, Journey.Status.PAUSED),
        "can_pause": journey.status == Journey.Status.ACTIVE,
        "can_end": journey.status != Journey.Status.ENDED,
    }, status=status)


@marketing_page
@require_http_methods(["GET", "HEAD", "POST"])
def journey_page(request, actor, pk: int):
    """One journey: what it is, activate / pause / end it, how many would enter today, results per step."""
    journey = _journey_in_scope(actor, pk)
    error, status = None, 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            journey = journey_transition(journey=journey, action=action)
        except ApplicationError as refused:
            if refused.status not in (400, 409):
                raise
            error, status = _refusal_sentence(refused), refused.status
            journey = _journey_in_scope(actor, pk)
        else:
            done = {"activate": _("Activated the journey “%(name)s”."), "pause": _("Paused the journey “%(name)s”."),
                    "end": _("Ended the journey “%(name)s”.")}[action]
            messages.success(request, done % {"name": journey.name})
            return redirect("marketing:journey", pk=journey.pk)
    return _journey_page(request, actor, journey, error=error, status=status)
