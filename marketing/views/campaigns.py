"""HQ campaign pages at ``/hq/marketing/campaigns/``: the list, the wizard, and each campaign's results.

The wizard is one page in steps (audience → channels in fallback order → content → schedule → holdout and
A/B → review → launch). "Review" has the campaign service check everything in a transaction that is rolled
back, so the review only ever shows a campaign that will be accepted; "launch" creates and launches it in one
transaction (a refused launch leaves no draft behind). Every rule is the service's (``marketing.campaigns``);
its refusals are shown on the fields they concern, in the viewer's language. Results come from
``marketing.results.campaign_results``, the list's figures from ``marketing.campaign_overview``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from marketing.audience_coupons import coupon_templates_issuable
from marketing.audiences import audience_count, audience_list
from marketing.campaign_overview import campaign_overviews
from marketing.campaigns import campaign_cancel, campaign_cancellable, campaign_create, campaign_launch
from marketing.errors import MarketingErrorCode
from marketing.forms import INPUT_LABELS, WEEKDAYS, CampaignForm
from marketing.models import Campaign, Channel, HoldReason
from marketing.results import campaign_results
from marketing.selectors import campaign_list
from marketing.views.access import marketing_page
from marketing.views.refusals import refusal_text
from retail_crm.errors import ApplicationError, ErrorCode

PAGE_SIZE = 20
CAMPAIGN_FIELDS = ("audience", "coupon_template", "link", "holdout_percent", "attribution_days", "send_at",
                   "recur_time", "recur_weekday", "ends_at", "name")


def _channel_labels() -> dict[str, str]:
    return dict(Channel.choices)


def schedule_text(campaign: Campaign) -> str:
    """When the campaign sends, in words: now, at a time, every day or every week at a time."""
    schedule = campaign.schedule
    if schedule == Campaign.Schedule.NOW:
        return _("Right away")
    if schedule == Campaign.Schedule.AT:
        return _("At %(time)s") % {"time": date_format(timezone.localtime(campaign.send_at), "Y-m-d H:i")}
    time = campaign.recur_time.strftime("%H:%M") if campaign.recur_time else ""
    if schedule == Campaign.Schedule.DAILY:
        return _("Every day at %(time)s") % {"time": time}
    weekday = dict(WEEKDAYS).get(campaign.recur_weekday, "")
    return _("Every %(weekday)s at %(time)s") % {"weekday": weekday, "time": time}


def _campaign_in_scope(actor, pk: int) -> Campaign:
    campaign = campaign_list(actor=actor).filter(pk=pk).first()
    if campaign is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such campaign.", status=404)
    return campaign


@marketing_page
@require_safe
def campaign_list_page(request, actor):
    """Campaigns in scope, newest first, with their status, audience, channels, schedule and figures."""
    page = Paginator(campaign_list(actor=actor), PAGE_SIZE).get_page(request.GET.get("page"))
    figures = campaign_overviews(c.pk for c in page)
    labels = _channel_labels()
    rows = [{"campaign": c, "figures": figures[c.pk], "channels": [labels.get(ch, ch) for ch in c.channels],
             "schedule": schedule_text(c)} for c in page]
    return render(request, "marketing/campaigns.html", {"page": page, "rows": rows, "active": "campaigns"})


# ---------------------------------------------------------------------------- the wizard

class _DryRun(Exception):
    """Raised inside the review's transaction to roll the checked campaign back."""


def _field_for(form: CampaignForm, key: str, text: str) -> tuple[str | None, str]:
    """The form field a service message is about, and the message without its channel or variant prefix."""
    if key == "channels":
        return "channel_1", text
    if key in CAMPAIGN_FIELDS:
        return key, text
    if key in ("content", "variants"):
        variant_b = False
        if key == "variants" and text[:3] in ("A: ", "B: "):
            variant_b, text = text[0] == "B", text[3:]
        channel, sep, rest = text.partition(": ")
        field = form.field_for_content(channel, rest, variant_b=variant_b) if sep else None
        if field is not None:
            return field, rest
        return ("ab_test" if key == "variants" else None), text
    return None, text


AUDIENCE_INVALID = "The campaign's audience is no longer valid; correct it first."


def _show_refusal(form: CampaignForm, refused: ApplicationError) -> None:
    if refused.message == AUDIENCE_INVALID:  # its fields hold the audience's own (English) reasons
        form.add_error("audience", _refusal_sentence(refused))
        return
    if not refused.fields:
        form.add_error(None, _refusal_sentence(refused))
    for key, texts in refused.fields.items():
        for text in texts:
            field, text = _field_for(form, key, text)
            form.add_error(field, refusal_text(text))


def _refusal_sentence(refused: ApplicationError) -> str:
    if refused.code == MarketingErrorCode.CAMPAIGN_NOT_LAUNCHABLE:
        status = dict(Campaign.Status.choices).get(refused.params.get("status"), refused.params.get("status", ""))
        return _("Only a draft can be launched; this campaign is “%(status)s”.") % {"status": status}
    if refused.code == MarketingErrorCode.CAMPAIGN_NOT_CANCELLABLE:
        return _("This campaign is cancelled already.")
    if refused.code == MarketingErrorCode.COUPON_NOT_ISSUABLE:
        return _("The campaign's coupon is no longer issued.")
    if refused.message == AUDIENCE_INVALID:
        return _("The audience's conditions no longer fit its brand; edit the audience first.")
    return refusal_text(refused.message)


def _entry_lines(entry: dict) -> list[tuple[str, str]]:
    """One channel's content as (what, text) lines for the review."""
    lines = []
    for key, value in entry.items():
        if isinstance(value, dict):
            value = "; ".join(f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, list):
            value = " / ".join(value)
        lines.append((str(INPUT_LABELS.get(key, key)), value))
    return lines


def _review(form: CampaignForm, arguments: dict) -> dict:
    """What the review step shows: the campaign as it will go, with its audience counted now."""
    audience = arguments["audience"]
    try:
        size = audience_count(brand=audience.brand, definition=audience.definition)
    except ApplicationError:  # the saved conditions no longer fit; launching says so on the audience field
        size = None
    holdout = (Decimal(size or 0) * arguments["holdout_percent"] / 100).quantize(Decimal(1), ROUND_HALF_UP)
    labels = _channel_labels()
    variants = arguments["variants"]
    contents = [(v.name, v.weight, v.content) for v in variants] or [("", 100, arguments["content"])]
    schedule = Campaign(schedule=arguments["schedule"], send_at=arguments["send_at"],
                        recur_time=arguments["recur_time"], recur_weekday=arguments["recur_weekday"])
    return {
        "audience": audience, "size": size, "holdout": int(holdout), "holdout_percent": arguments["holdout_percent"],
        "channels": [labels.get(c, c) for c in arguments["channels"]], "schedule": schedule_text(schedule),
        "ends_at": arguments["ends_at"], "link": arguments["link"], "coupon": arguments["coupon_template"],
        "attribution_days": arguments["attribution_days"],
        "variants": [{"name": name, "weight": weight,
                      "messages": [(labels.get(c, c), _entry_lines(entry)) for c, entry in content.items()]}
                     for name, weight, content in contents],
    }


@marketing_page
@require_http_methods(["GET", "HEAD", "POST"])
def campaign_new(request, actor):
    """The campaign wizard; ``?audience=<id>`` starts it with that audience chosen."""
    audiences = list(audience_list(actor=actor))
    schedules = list(Campaign.Schedule.choices)
    initial = {"audience": request.GET.get("audience")} if request.GET.get("audience", "").isdigit() else {}
    form = CampaignForm(request.POST or None, initial=initial, audiences=audiences,
                        coupon_templates=list(coupon_templates_issuable(actor=actor)),
                        channels=Channel.choices, schedules=schedules)
    review, status = None, 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            arguments = form.campaign_arguments()
            audience = arguments["audience"]
            action = request.POST.get("action")
            try:
                with transaction.atomic():
                    campaign = campaign_create(brand=audience.brand, created_by=request.user, **arguments)
                    if action == "launch":
                        campaign = campaign_launch(campaign=campaign)
                    elif action != "draft":
                        raise _DryRun
            except _DryRun:
                review, status = _review(form, arguments), 200
            except ApplicationError as refused:
                if refused.status not in (400, 409):
                    raise
                status = refused.status
                _show_refusal(form, refused)
            else:
                if action == "launch":
                    messages.success(request, _("Launched the campaign “%(name)s”.") % {"name": campaign.name})
                else:
                    messages.success(request, _("Saved the campaign “%(name)s” as a draft.") % {
                        "name": campaign.name})
                return redirect("marketing:campaign", pk=campaign.pk)
    return render(request, "marketing/campaign_new.html", {
        "form": form, "review": review, "active": "campaigns", "has_audiences": bool(audiences),
    }, status=status)


# ---------------------------------------------------------------------------- results

def _percent(value: float | None, *, signed: bool = False) -> str:
    """0.1234 → "12.3%" (signed: "+12.3"), "–" for no value."""
    if value is None:
        return "–"
    return f"{value * 100:+.1f}" if signed else f"{value * 100:.1f}%"


def _lift(lift) -> dict | None:
    """A lift as the page writes it: each group's rate, the difference in points and its 95 % interval."""
    if lift is None:
        return None
    return {"treated": lift.treated, "treated_converted": lift.treated_converted,
            "treated_rate": _percent(lift.treated_rate), "holdout": lift.holdout,
            "holdout_converted": lift.holdout_converted, "holdout_rate": _percent(lift.holdout_rate),
            "difference": _percent(lift.difference, signed=True), "low": _percent(lift.ci_low, signed=True),
            "high": _percent(lift.ci_high, signed=True),
            "relative": _percent(lift.relative, signed=True) if lift.relative is not None else None,
            "significant": lift.ci_low > 0 or lift.ci_high < 0}


def _figures_row(name: str, figures) -> dict:
    return {"name": name, "figures": figures, "held": sum(figures.held.values()),
            "conversion_rate": _percent(figures.converted / figures.sent) if figures.sent else "–",
            "lift": _lift(figures.lift)}


def _charts(results) -> list[dict]:
    """ECharts specs (static/js/dashboard.js): the funnel, and conversion per variant against the holdout."""
    f = results.figures
    charts = [{"id": "campaign-funnel", "title": _("From audience to conversion"), "kind": "bar", "integer": True,
               "x": [_("Audience"), _("Sent"), _("Delivered"), _("Clicked"), _("Converted")],
               "series": [{"name": _("Members"), "data": [f.audience, f.sent, f.delivered, f.clicked, f.converted]}]}]
    lifts = [(v.name, v.figures.lift) for v in results.variants] or [("", f.lift)]
    if any(lift is not None for _name, lift in lifts):
        x, data = [], []
        for name, lift in lifts:
            x.append(_("Variant %(name)s") % {"name": name} if name else _("Sent to"))
            data.append(lift.treated_rate if lift else None)
        x.append(_("Holdout"))
        data.append(f.lift.holdout_rate if f.lift else None)
        charts.append({"id": "campaign-conversion", "title": _("Conversion rate: sent to against the holdout"),
                       "kind": "bar", "unit": "ratio", "x": x,
                       "series": [{"name": _("Conversion rate"), "data": data}]})
    return charts


@marketing_page
@require_http_methods(["GET", "HEAD", "POST"])
def campaign_page(request, actor, pk: int):
    """One campaign: what it is, launch or cancel it, and its results (per variant and per run)."""
    campaign = _campaign_in_scope(actor, pk)
    error, status = None, 200
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "launch":
                campaign_launch(campaign=campaign)
                messages.success(request, _("Launched the campaign “%(name)s”.") % {"name": campaign.name})
            elif action == "cancel":
                held = campaign_cancel(campaign=campaign)
                messages.success(request, _("Cancelled the campaign “%(name)s”; %(held)s messages not yet sent "
                                            "were held back.") % {"name": campaign.name, "held": held})
            else:
                raise ApplicationError(ErrorCode.INVALID, "Unknown action.")
        except ApplicationError as refused:
            if refused.status not in (400, 409):
                raise
            error, status = _refusal_sentence(refused), refused.status
            campaign = _campaign_in_scope(actor, pk)
        else:
            return redirect("marketing:campaign", pk=campaign.pk)
    results = campaign_results(campaign)
    labels = _channel_labels()
    reasons = dict(HoldReason.choices)
    f = results.figures
    runs = [dict(_figures_row(date_format(timezone.localtime(r.run.scheduled_for), "Y-m-d H:i"), r.figures),
                 status=r.run.get_status_display()) for r in results.runs]
    return render(request, "marketing/campaign.html", {
        "campaign": campaign, "results": results, "figures": f, "error": error, "active": "campaigns",
        "channels": [labels.get(c, c) for c in campaign.channels], "schedule": schedule_text(campaign),
        "held": [(reason, reasons.get(reason, reason), count) for reason, count in sorted(f.held.items())],
        "held_total": sum(f.held.values()), "total": _figures_row("", f),
        "click_rate": _percent(f.clicked / f.sent) if f.sent else "–",
        "variants": [_figures_row(v.name, v.figures) for v in results.variants],
        "runs": runs if len(runs) > 1 else [], "charts": _charts(results),
        "can_launch": campaign.status == Campaign.Status.DRAFT,
        "can_cancel": campaign_cancellable(campaign),
    }, status=status)
