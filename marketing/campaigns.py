"""Campaigns: create, launch, cancel, start their runs on schedule, and resolve each run set-based.

Resolving a run turns its audience (``marketing.audiences``, evaluated as at the run's start, validated
again for every range: an audience that no longer validates fails the run rather than widening it) into one
``CampaignRecipient`` per member and one ``Delivery`` per member not held out, in a few statements per range
of member ids: the restraint rules and each member's channel (SMS, subscribe message, official account,
WeCom through the bound guide, a task for the guide of an important member) come from
``marketing.rules.decisions_sql`` (the same SQL ``message_send`` runs for one member), the holdout and the
A/B split from a hash of member and campaign, the message content is rendered in SQL, and every delivery's
``dedupe_key`` is ``campaign:<id>/run:<id>|<member id>``. A range is one transaction that also records how
far the run got, under a lock on the run, so a resolve that is retried or runs twice never writes a member
twice. The queued deliveries go out through ``deliveries_dispatch`` like every other message; a campaign's
coupon is issued there, to the members actually sent to.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from mall.models import CouponTemplate
from marketing.audiences import (
    AudienceDefinition,
    audience_definition_clean,
    audience_member_ids_sql,
    audience_query_settings,
)
from marketing.errors import MarketingErrorCode
from marketing.models import (
    Audience,
    Campaign,
    CampaignRecipient,
    CampaignRun,
    CampaignVariant,
    Channel,
    Delivery,
    HoldReason,
    MessageKind,
)
from marketing.rules import MessagePlan, decisions_sql, fence, rules_for, send_after_sql, status_sql
from members.models import GuideBinding, Member
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand, Guide
from retail_crm.rawsql import qn, table

logger = logging.getLogger(__name__)


RESOLVE_SPAN = 100_000  # member ids per transaction while resolving a run
STALE_RESOLVE = dt.timedelta(minutes=10)  # a resolving run untouched this long lost its task: start it again
VARIABLES = ("name", "guide", "link", "coupon")
_VARIABLE = re.compile(r"\{([^{}]*)\}")

# The holdout and the A/B split: h = ((member id mod P) * K + campaign offset) mod P, P = 2^31 − 1. The last
# four digits of h (h mod 10000) against the holdout share in basis points; the two above them
# ((h div 10000) mod 100) against the variants' cumulative weights. Integer arithmetic that SQLite and
# PostgreSQL compute alike (every product stays below 2^63), mirrored by :func:`member_bucket`.
HASH_PRIME = 2_147_483_647
HASH_MULTIPLIER = 1_103_515_245
HASH_CAMPAIGN = 40_503


def _campaign_offset(campaign_id: int) -> int:
    return (campaign_id % HASH_PRIME) * HASH_CAMPAIGN % HASH_PRIME


def member_bucket(member_id: int, campaign_id: int) -> int:
    """The member's hash for this campaign (the same in every run); see ``HASH_PRIME``."""
    return ((member_id % HASH_PRIME) * HASH_MULTIPLIER + _campaign_offset(campaign_id)) % HASH_PRIME


def is_held_out(member_id: int, campaign: Campaign) -> bool:
    return member_bucket(member_id, campaign.pk) % 10000 < int(campaign.holdout_percent * 100)


def variant_for(member_id: int, variants: Sequence[CampaignVariant]) -> CampaignVariant | None:
    """The variant a member not held out gets (the split is by weight, in the variants' order)."""
    if not variants:
        return None
    slot, upto = member_bucket(member_id, variants[0].campaign_id) // 10000 % 100, 0
    for variant in variants[:-1]:
        upto += variant.weight
        if slot < upto:
            return variant
    return variants[-1]


# ---------------------------------------------------------------------------- creating

@dataclass(frozen=True)
class VariantSpec:
    name: str
    weight: int
    content: dict


# What each channel's content holds (anything else given is not sent). Template messages: a provider template
# id and its params (texts; an object of template fields for the official account, which may also open a page);
# a WeCom group send: a text and/or a mini-program card and/or a link card; a guide task: what the guide is
# asked to do and why.
TEMPLATE_CHANNELS = (Channel.SMS, Channel.SUBSCRIBE, Channel.OFFICIAL_ACCOUNT)
CONTENT_KEYS = {
    Channel.SMS: ("template", "params"),
    Channel.SUBSCRIBE: ("template", "params"),
    Channel.OFFICIAL_ACCOUNT: ("template", "params", "url", "miniprogram"),
    Channel.WECOM: ("text", "miniprogram", "link"),
    Channel.GUIDE_TASK: ("reason", "action"),
}
CARD_KEYS = {  # (allowed, required)
    "miniprogram": ({"title", "pic_media_id", "page", "appid"}, {"title", "pic_media_id", "page"}),
    "link": ({"title", "url", "desc", "picurl"}, {"title", "url"}),
}
OA_PAGE_KEYS = ({"pagepath", "appid"}, {"pagepath"})


def _texts(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    return []


def _is_card(value, keys: tuple[set[str], set[str]]) -> bool:
    allowed, required = keys
    return (isinstance(value, dict) and set(value) <= allowed and required <= set(value)
            and all(isinstance(text, str) and 0 < len(text) <= 500 for text in value.values()))


def _shape_errors(channel: str, entry) -> list[str]:
    """What is wrong with the form of one channel's content (its variables are checked after)."""
    if channel in TEMPLATE_CHANNELS:
        if not isinstance(entry, dict) or not isinstance(entry.get("template"), str) \
                or not entry["template"].strip() or len(entry["template"]) > 64:
            return [f"{channel}: give a template id (1–64 characters)."]
        params = entry.get("params", [])
        texts = params if isinstance(params, list) else list(params.values()) if isinstance(params, dict) else None
        if texts is None or not all(isinstance(text, str) and len(text) <= 500 for text in texts) \
                or (isinstance(params, dict) and not all(isinstance(k, str) and k for k in params)):
            return [f"{channel}: params must be a list, or an object, of texts of at most 500 characters."]
        if channel != Channel.OFFICIAL_ACCOUNT:
            return []
        errors = []
        if not isinstance(params, dict):
            errors.append(f"{channel}: params must be an object (template field → text).")
        if "url" in entry and not (isinstance(entry["url"], str) and 0 < len(entry["url"]) <= 500):
            errors.append(f"{channel}: url must be a text of at most 500 characters.")
        if "miniprogram" in entry and not _is_card(entry["miniprogram"], OA_PAGE_KEYS):
            errors.append(f"{channel}: miniprogram must be {{pagepath[, appid]}}.")
        return errors
    if channel == Channel.WECOM:
        if not isinstance(entry, dict) or not set(entry) & set(CONTENT_KEYS[channel]):
            return [f"{channel}: give a text, a miniprogram card and/or a link card."]
        errors = []
        if "text" in entry and not (isinstance(entry["text"], str) and 0 < len(entry["text"]) <= 1000):
            errors.append(f"{channel}: text must be 1–1000 characters.")
        for key, keys in CARD_KEYS.items():
            if key in entry and not _is_card(entry[key], keys):
                errors.append(f"{channel}: {key} must be {{{', '.join(sorted(keys[0]))}}} with "
                              f"{', '.join(sorted(keys[1]))} given (texts of at most 500 characters).")
        return errors
    # a guide task
    if not isinstance(entry, dict) or not isinstance(entry.get("reason"), str) \
            or not 0 < len(entry["reason"]) <= 200 \
            or not isinstance(entry.get("action", ""), str) or len(entry.get("action", "")) > 200:
        return [f"{channel}: give the reason (1–200 characters) and, if you like, the action (up to 200)."]
    return []


def _content_errors(content, channels: Sequence[str], *, has_link: bool, has_coupon: bool) -> list[str]:
    if not isinstance(content, dict):
        return ["Give an object: channel → its content (e.g. {template, params})."]
    errors = [f"{key}: not one of the campaign's channels." for key in content if key not in channels]
    for channel in channels:
        entry = content.get(channel)
        if shape_errors := _shape_errors(channel, entry):
            errors += shape_errors
            continue
        for text in _texts({key: entry[key] for key in CONTENT_KEYS[channel] if key in entry}):
            for name in _VARIABLE.findall(text):
                if name not in VARIABLES:
                    errors.append(f"{channel}: unknown variable {{{name}}}; use {{name}}, {{guide}}, {{link}} "
                                  "or {coupon}.")
                elif name == "name" and channel == Channel.WECOM:
                    errors.append(f"{channel}: {{name}} cannot be used: a WeCom group send carries one text to "
                                  "all of a guide's members.")
                elif name == "link" and not has_link:
                    errors.append(f"{channel}: {{link}} needs the campaign's link.")
                elif name == "coupon" and not has_coupon:
                    errors.append(f"{channel}: {{coupon}} needs a coupon template.")
    return errors


def _link_errors(link: str) -> list[str]:
    if not link:
        return []
    parts = urlsplit(link)
    allowed = set(settings.MARKETING_LINK_HOSTS)
    if parts.scheme != "https" or parts.hostname not in allowed:
        return [f"Use an https link to one of: {', '.join(sorted(allowed))}."]
    return []


def _schedule_errors(*, schedule: str, send_at, recur_time, recur_weekday, ends_at) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if schedule == Campaign.Schedule.AT and send_at is None:
        errors["send_at"] = ["Required for a campaign at a time."]
    if schedule in (Campaign.Schedule.DAILY, Campaign.Schedule.WEEKLY) and recur_time is None:
        errors["recur_time"] = ["Required for a recurring campaign."]
    if schedule == Campaign.Schedule.WEEKLY and recur_weekday not in range(7):
        errors["recur_weekday"] = ["Give 0 (Monday) to 6 (Sunday)."]
    if schedule != Campaign.Schedule.WEEKLY and recur_weekday is not None:
        errors["recur_weekday"] = ["Only for a weekly campaign."]
    if ends_at is not None and schedule not in (Campaign.Schedule.DAILY, Campaign.Schedule.WEEKLY):
        errors["ends_at"] = ["Only for a recurring campaign."]
    return errors


def _new_link_code() -> str:
    return secrets.token_urlsafe(8)[:11]


@transaction.atomic
def campaign_create(*, brand: Brand, audience: Audience, name: str, channels: Sequence[str], content: dict,
                    variants: Sequence[VariantSpec] = (), link: str = "", coupon_template: CouponTemplate | None = None,
                    schedule: str = Campaign.Schedule.NOW, send_at: dt.datetime | None = None,
                    recur_time: dt.time | None = None, recur_weekday: int | None = None,
                    ends_at: dt.datetime | None = None, holdout_percent: Decimal = Decimal("0"),
                    attribution_days: int = 7, created_by=None) -> Campaign:
    """A draft campaign of ``brand`` to ``audience``; checks everything a launch will rely on.

    With ``variants`` (two or more, weights adding up to 100) each variant's content is used instead of
    ``content``; every variant offers the same subscribe-message template, since consents are per template.
    """
    errors: dict[str, list[str]] = {}
    channels = list(channels)
    if not channels or len(set(channels)) != len(channels) or any(c not in Channel.values for c in channels):
        errors["channels"] = [f"Give distinct channels from {', '.join(Channel.values)}."]
    if audience.brand_id != brand.pk:
        errors["audience"] = ["The audience belongs to another brand."]
    if coupon_template is not None and coupon_template.brand_id != brand.pk:
        errors["coupon_template"] = ["The coupon template belongs to another brand."]
    if link_errors := _link_errors(link):
        errors["link"] = link_errors
    if not Decimal("0") <= holdout_percent <= Decimal("50"):
        errors["holdout_percent"] = ["Give 0 to 50."]
    if not 1 <= attribution_days <= 30:
        errors["attribution_days"] = ["Give 1 to 30 days."]
    errors.update(_schedule_errors(schedule=schedule, send_at=send_at, recur_time=recur_time,
                                   recur_weekday=recur_weekday, ends_at=ends_at))
    if "channels" not in errors:
        check = {"has_link": bool(link), "has_coupon": coupon_template is not None}
        if variants:
            names = [v.name for v in variants]
            variant_errors = []
            if len(variants) < 2 or len(set(names)) != len(names) or sum(v.weight for v in variants) != 100 \
                    or any(not 1 <= v.weight <= 99 or not v.name or len(v.name) > 20 for v in variants):
                variant_errors.append("Give two or more variants with distinct names and weights adding up to 100.")
            for variant in variants:
                variant_errors += [f"{variant.name}: {e}" for e in _content_errors(variant.content, channels, **check)]
            if not variant_errors and Channel.SUBSCRIBE in channels \
                    and len({v.content[Channel.SUBSCRIBE]["template"] for v in variants}) > 1:
                variant_errors.append("Every variant must offer the same subscribe-message template.")
            if variant_errors:
                errors["variants"] = variant_errors
            if content:
                errors["content"] = ["Give the content in each variant instead."]
        elif content_errors := _content_errors(content, channels, **check):
            errors["content"] = content_errors
    if errors:
        raise ApplicationError(ErrorCode.INVALID, "The campaign is not valid.", fields=errors)
    campaign = Campaign.objects.create(
        group_id=brand.group_id, brand=brand, audience=audience, name=name, channels=channels,
        content={} if variants else content, link=link, link_code=_new_link_code() if link else None,
        coupon_template=coupon_template, schedule=schedule, send_at=send_at, recur_time=recur_time,
        recur_weekday=recur_weekday, ends_at=ends_at, holdout_percent=holdout_percent,
        attribution_days=attribution_days, created_by=created_by)
    CampaignVariant.objects.bulk_create([CampaignVariant(campaign=campaign, name=v.name, weight=v.weight,
                                                         content=v.content) for v in variants])
    return campaign


# ---------------------------------------------------------------------------- schedule, launch, cancel

def next_occurrence(campaign: Campaign, *, after: dt.datetime) -> dt.datetime | None:
    """The first run time of a recurring campaign later than ``after`` (local time), or None past ``ends_at``."""
    local = timezone.localtime(after)
    day = local.date()
    if campaign.schedule == Campaign.Schedule.WEEKLY:
        day += dt.timedelta(days=(campaign.recur_weekday - day.weekday()) % 7)
    step = dt.timedelta(days=7 if campaign.schedule == Campaign.Schedule.WEEKLY else 1)
    moment = timezone.make_aware(dt.datetime.combine(day, campaign.recur_time))
    while moment <= after:
        moment = timezone.make_aware(dt.datetime.combine(timezone.localtime(moment).date() + step,
                                                         campaign.recur_time))
    if campaign.ends_at is not None and moment > campaign.ends_at:
        return None
    return moment


def _coupon_issuable(campaign: Campaign, at: dt.datetime) -> None:
    template = campaign.coupon_template
    if template is not None and (not template.is_active or (template.valid_to and template.valid_to <= at)):
        raise ApplicationError(MarketingErrorCode.COUPON_NOT_ISSUABLE,
                               f"Coupon {template.name!r} is no longer issued.", status=409)


def _resolve_later(run_id: int) -> None:
    from marketing.tasks import campaign_run_resolve_task

    transaction.on_commit(lambda: campaign_run_resolve_task.delay(run_id))


class AudienceNoLongerValid(Exception):
    """The campaign's saved audience does not validate any more (e.g. a tag, guide or store it names is gone)."""


def _audience_definition(campaign: Campaign) -> AudienceDefinition:
    """The campaign's audience, validated now; ``AudienceNoLongerValid`` (with the reasons) when it is not."""
    try:
        return audience_definition_clean(brand=campaign.brand, definition=campaign.audience.definition)
    except ApplicationError as exc:
        if exc.code != ErrorCode.INVALID:
            raise
        details = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.fields.items())
        raise AudienceNoLongerValid(f"{exc.message} {details}".strip()) from exc


def _audience_sql(campaign: Campaign, definition: AudienceDefinition, at: dt.datetime, lo: int | None = None,
                  hi: int | None = None) -> tuple[str, list]:
    """``SELECT member_id`` of the audience evaluated at ``at`` (with ids in (lo, hi] when given)."""
    sql, params = audience_member_ids_sql(brand=campaign.brand, definition=definition, at=at)
    if lo is None:
        return sql, list(params)
    return (f"SELECT a.member_id FROM ({sql}) a WHERE a.member_id > %s AND a.member_id <= %s",  # noqa: S608 - the audience's SQL, values bound
            [*params, lo, hi])


def _run_start(campaign: Campaign, *, scheduled_for: dt.datetime, now: dt.datetime) -> CampaignRun:
    """A new run (the caller holds the campaign's lock); its audience is every member up to the highest id now.

    An audience that no longer validates gives a failed run with the reason, never a wider audience.
    """
    try:
        definition = _audience_definition(campaign)
    except AudienceNoLongerValid as exc:
        logger.error("campaign %s: the run at %s is not started: %s", campaign.pk, scheduled_for, exc)
        return CampaignRun.objects.create(campaign=campaign, scheduled_for=scheduled_for, started_at=now,
                                          status=CampaignRun.Status.FAILED, error=str(exc)[:200])
    sql, params = _audience_sql(campaign, definition, now)
    with audience_query_settings(), connection.cursor() as cursor:
        # The ranges run from just below the audience's lowest member id (ids are shared by a group's brands, so a
        # brand's members can start far above 0) up to its highest.
        cursor.execute(f"SELECT MIN(a.member_id), MAX(a.member_id) FROM ({sql}) a", params)  # noqa: S608 - the audience's SQL, values bound
        lowest, upto = cursor.fetchone()
        upto = upto or 0
    run = CampaignRun.objects.create(campaign=campaign, scheduled_for=scheduled_for, started_at=now,
                                     members_upto=upto, resolved_through=max((lowest or 1) - 1, 0))
    _resolve_later(run.pk)
    return run


def _after_run(campaign: Campaign) -> str:
    """The campaign's status once a run is over (queued, or failed): waiting for its next run, or done."""
    return Campaign.Status.SCHEDULED if campaign.next_run_at else Campaign.Status.DONE


def campaign_launch(*, campaign: Campaign, at: dt.datetime | None = None) -> Campaign:
    """Launch a draft: "now" starts its run at once, "at" and recurring campaigns wait for their time.

    Only a draft can be launched (409 otherwise); the campaign row is locked, so launches racing each
    other start one run. A campaign whose audience no longer validates is refused (400 ``invalid`` under
    ``audience``): correct the audience first. (A later run that finds it invalid is recorded as failed.)
    """
    now = at or timezone.now()
    with transaction.atomic():
        campaign = (Campaign.objects.select_for_update(of=("self",))
                    .select_related("brand", "audience", "coupon_template").get(pk=campaign.pk))
        if campaign.status != Campaign.Status.DRAFT:
            raise ApplicationError(MarketingErrorCode.CAMPAIGN_NOT_LAUNCHABLE,
                                   f"Campaign {campaign.name!r} is {campaign.status}; only a draft can be launched.",
                                   status=409, params={"status": campaign.status})
        _coupon_issuable(campaign, now)
        try:
            _audience_definition(campaign)
        except AudienceNoLongerValid as exc:
            raise ApplicationError(ErrorCode.INVALID, "The campaign's audience is no longer valid; correct it first.",
                                   fields={"audience": [str(exc)]}) from exc
        campaign.launched_at = now
        if campaign.schedule == Campaign.Schedule.NOW or (
                campaign.schedule == Campaign.Schedule.AT and campaign.send_at <= now):
            run = _run_start(campaign, scheduled_for=now, now=now)
            campaign.status = _after_run(campaign) if run.status == CampaignRun.Status.FAILED \
                else Campaign.Status.RUNNING
        else:
            campaign.next_run_at = (campaign.send_at if campaign.schedule == Campaign.Schedule.AT
                                    else next_occurrence(campaign, after=now))
            campaign.status = Campaign.Status.SCHEDULED if campaign.next_run_at else Campaign.Status.DONE
        campaign.save(update_fields=["status", "launched_at", "next_run_at"])
    return campaign


def _unsent(campaign: Campaign):
    return Delivery.objects.filter(source__in=[run.source for run in campaign.runs.only("pk", "campaign_id")],
                                   status__in=[Delivery.Status.QUEUED, Delivery.Status.WAITING])


def campaign_cancellable(campaign: Campaign) -> bool:
    """Whether cancelling would still change something: not cancelled, and not done with every message gone."""
    if campaign.status == Campaign.Status.CANCELLED:
        return False
    return campaign.status != Campaign.Status.DONE or _unsent(campaign).exists()


def campaign_cancel(*, campaign: Campaign, at: dt.datetime | None = None) -> int:
    """Cancel a campaign: no further runs, a resolving run stops, and its messages not yet gone are held
    back ("cancelled"). Returns how many messages were held back. 409 when it is cancelled already, or done
    with every message gone (its results stay those of a finished campaign)."""
    now = at or timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status == Campaign.Status.CANCELLED:
            raise ApplicationError(MarketingErrorCode.CAMPAIGN_NOT_CANCELLABLE,
                                   f"Campaign {campaign.name!r} is cancelled already.", status=409)
        if campaign.status == Campaign.Status.DONE and not _unsent(campaign).exists():
            raise ApplicationError(MarketingErrorCode.CAMPAIGN_NOT_CANCELLABLE,
                                   f"Campaign {campaign.name!r} has finished: every message has gone.", status=409)
        # Waits for a resolving range to commit, so every message it queued is held below.
        runs = list(CampaignRun.objects.select_for_update().filter(campaign=campaign).order_by("pk"))
        CampaignRun.objects.filter(campaign=campaign, status=CampaignRun.Status.RESOLVING).update(
            status=CampaignRun.Status.CANCELLED)
        held = Delivery.objects.filter(source__in=[run.source for run in runs],
                                       status__in=[Delivery.Status.QUEUED, Delivery.Status.WAITING]).update(
            status=Delivery.Status.HELD, hold_reason=HoldReason.CANCELLED)
        campaign.status, campaign.cancelled_at, campaign.next_run_at = Campaign.Status.CANCELLED, now, None
        campaign.save(update_fields=["status", "cancelled_at", "next_run_at"])
    return held


@dataclass(frozen=True)
class StartResult:
    started: int  # runs started
    resumed: int  # resolving runs whose task was lost, queued again
    failed: int = 0  # runs not started: the audience no longer validates (recorded as failed runs)


def campaigns_start_due(*, now: dt.datetime | None = None) -> StartResult:
    """Start the runs that are due (every minute from beat), and resume resolves that stopped."""
    now = now or timezone.now()
    started = failed = 0
    due = list(Campaign.objects.filter(status=Campaign.Status.SCHEDULED, next_run_at__lte=now)
               .values_list("pk", flat=True))
    for pk in due:
        with transaction.atomic():
            campaign = (Campaign.objects.select_for_update(skip_locked=True, of=("self",))
                        .select_related("brand", "audience", "coupon_template")
                        .filter(pk=pk, status=Campaign.Status.SCHEDULED, next_run_at__lte=now).first())
            if campaign is None:
                continue  # another beat took it, or it was cancelled meanwhile
            slot = campaign.next_run_at
            recurring = campaign.schedule in (Campaign.Schedule.DAILY, Campaign.Schedule.WEEKLY)
            # Missed slots (beat was down) are not made up: one run now, the next one after now.
            campaign.next_run_at = next_occurrence(campaign, after=now) if recurring else None
            try:
                _coupon_issuable(campaign, now)
            except ApplicationError:
                logger.error("campaign %s: its coupon template is no longer issued; the run is skipped", pk)
                campaign.status = _after_run(campaign)
            else:
                run = _run_start(campaign, scheduled_for=slot, now=now)
                if run.status == CampaignRun.Status.FAILED:
                    campaign.status = _after_run(campaign)
                    failed += 1
                else:
                    campaign.status = Campaign.Status.RUNNING
                    started += 1
            campaign.save(update_fields=["status", "next_run_at"])
    stale = list(CampaignRun.objects.filter(status=CampaignRun.Status.RESOLVING, updated_at__lt=now - STALE_RESOLVE)
                 .values_list("pk", flat=True))
    for run_id in stale:
        _resolve_later(run_id)
    return StartResult(started=started, resumed=len(stale), failed=failed)


# ---------------------------------------------------------------------------- resolving a run

def _json_functions() -> tuple[str, str]:
    if connection.vendor == "postgresql":
        return "jsonb_build_object", "jsonb_build_array"
    return "json_object", "json_array"


def _random_code_sql() -> str:
    """A fresh random tracking code per row: 11 URL-safe base64 characters of a v4 UUID on PostgreSQL
    (66 random bits), 16 hex characters of random bytes on SQLite."""
    if connection.vendor == "postgresql":
        return "translate(substr(encode(uuid_send(gen_random_uuid()), 'base64'), 1, 11), '+/', '-_')"
    return "lower(hex(randomblob(8)))"


def _text_sql(text: str, values: dict[str, tuple[str, list]]) -> tuple[str, list]:
    """SQL rendering ``text`` with its variables replaced by the per-row values."""
    sql, params = "CAST(%s AS TEXT)", [text]
    for name in dict.fromkeys(_VARIABLE.findall(text)):
        value_sql, value_params = values[name]
        sql, params = f"REPLACE({sql}, %s, {value_sql})", [*params, "{" + name + "}", *value_params]
    return sql, params


def _json_sql(value, values: dict[str, tuple[str, list]]) -> tuple[str, list]:
    """SQL building ``value`` (objects, lists, integers, texts with their variables rendered) for each row."""
    build_object, build_array = _json_functions()
    if isinstance(value, dict):
        parts, params = [], []
        for key, item in value.items():
            item_sql, item_params = _json_sql(item, values)
            parts.append(f"%s, {item_sql}")
            params += [key, *item_params]
        return f"{build_object}({', '.join(parts)})", params
    if isinstance(value, list):
        items = [_json_sql(item, values) for item in value]
        return f"{build_array}({', '.join(sql for sql, _ in items)})", [p for _, params in items for p in params]
    if isinstance(value, int) and not isinstance(value, bool):
        return "CAST(%s AS INTEGER)", [value]
    return _text_sql(str(value), values)


def _entry_sql(channel: str, entry: dict, values: dict[str, tuple[str, list]],
               coupon_template_id: int | None) -> tuple[str, list]:
    """SQL building one delivery's content: the channel's keys of ``entry`` rendered (a template message
    always carries its params), and ``coupon_template`` when the campaign gives one (issued at the send)."""
    content = {key: entry[key] for key in CONTENT_KEYS[channel] if key in entry}
    if channel in TEMPLATE_CHANNELS:
        content["params"] = entry.get("params", [])
    if coupon_template_id is not None:
        content["coupon_template"] = coupon_template_id
    return _json_sql(content, values)


def _content_sql(campaign: Campaign, variants: Sequence[CampaignVariant]) -> tuple[str, list, bool]:
    """``CASE`` over the row's variant and channel giving its rendered content; and whether {guide} is used.

    A WeCom group send carries one content to all of a guide's members, so its {link} is the campaign's
    link without a member (its ``link_code``) and {name} is refused when the campaign is created.
    """
    member_name = qn(Member._meta.get_field("name").column)
    guide_name = qn(Guide._meta.get_field("name").column)
    values = {
        "name": (f"m.{member_name}", []),
        "guide": (f"COALESCE(g.{guide_name}, '')", []),
        "link": ("%s || p.link_code", [settings.MARKETING_LINK_BASE_URL]),
        "coupon": ("%s", [campaign.coupon_template.name if campaign.coupon_template else ""]),
    }
    group_values = {**values, "link": ("%s", [f"{settings.MARKETING_LINK_BASE_URL}{campaign.link_code or ''}"])}
    arms = [(v.pk, v.content) for v in variants] or [(None, campaign.content)]
    whens, params, uses_guide = [], [], False
    for variant_id, content in arms:
        for channel in campaign.channels:
            entry = content[channel]
            uses_guide |= any("{guide}" in text for text in _texts(entry))
            entry_sql, entry_params = _entry_sql(channel, entry, group_values if channel == Channel.WECOM else values,
                                                 campaign.coupon_template_id)
            if variant_id is None:
                whens.append(f"WHEN p.channel = %s THEN {entry_sql}")
                params += [channel, *entry_params]
            else:
                whens.append(f"WHEN p.channel = %s AND p.variant_id = %s THEN {entry_sql}")
                params += [channel, variant_id, *entry_params]
    return f"CASE {' '.join(whens)} ELSE '{{}}' END", params, uses_guide


def _subscribe_template(campaign: Campaign, variants: Sequence[CampaignVariant]) -> str:
    content = variants[0].content if variants else campaign.content
    return (content.get(Channel.SUBSCRIBE) or {}).get("template", "")


def _resolve_range(run: CampaignRun, campaign: Campaign, variants: Sequence[CampaignVariant], lo: int,
                   hi: int, definition: AudienceDefinition) -> None:
    """Recipients and deliveries for the audience's members with ids in (lo, hi], in the caller's transaction.

    The audience is evaluated as at the run's start. Every statement runs inside ``audience_query_settings``:
    the audience's planner settings, and no JIT compilation (the fenced subqueries and their correlated
    look-ups make the estimates large enough for it, and it cost about 0.8 s a statement, more than running it).
    """
    members_sql, members_params = _audience_sql(campaign, definition, run.started_at, lo, hi)
    member_table = table(Member)
    postgresql = connection.vendor == "postgresql"
    with audience_query_settings(), connection.cursor() as cursor:
        if postgresql:
            # The lock message_send takes for one member, taken for the range in id order: the cap is counted
            # and the rows written while no other campaign or journey can message these members.
            # The id range stated on the member table too, or the planner reads all of it for every range.
            cursor.execute(f"SELECT COUNT(*) FROM (SELECT m.id FROM {member_table} m WHERE m.id > %s AND m.id <= %s "  # noqa: S608 - names from the models, values bound
                           f"AND m.id IN ({members_sql}) ORDER BY m.id FOR UPDATE OF m) locked",
                           [lo, hi, *members_params])
        plan = MessagePlan(kind=MessageKind.MARKETING, channels=tuple(campaign.channels), at=run.started_at,
                           rules=rules_for(campaign.brand), brand_id=campaign.brand_id,
                           subscribe_template=_subscribe_template(campaign, variants))
        decisions, decision_params = decisions_sql(plan, members_sql=members_sql, members_params=members_params,
                                                   id_range=(lo, hi))

        bucket = f"((d.member_id %% {HASH_PRIME}) * {HASH_MULTIPLIER} + %s) %% {HASH_PRIME}"
        offset, basis_points = _campaign_offset(campaign.pk), int(campaign.holdout_percent * 100)
        if variants:
            whens, variant_params, upto = [], [], 0
            for variant in variants[:-1]:
                upto += variant.weight
                whens.append(f"WHEN {bucket} / 10000 %% 100 < %s THEN %s")
                variant_params += [offset, upto, variant.pk]
            variant_sql = f"CASE WHEN {bucket} %% 10000 < %s THEN NULL {' '.join(whens)} ELSE %s END"
            variant_params = [offset, basis_points, *variant_params, variants[-1].pk]
        else:
            variant_sql, variant_params = "CAST(NULL AS BIGINT)", []
        if campaign.link:
            code_sql = f"CASE WHEN {bucket} %% 10000 >= %s AND d.hold_reason = '' THEN {_random_code_sql()} END"
            code_params = [offset, basis_points]
        else:
            code_sql, code_params = "CAST(NULL AS VARCHAR(16))", []
        if postgresql:
            # The deliveries' ids drawn here, so each recipient row names its delivery before it is written.
            cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table(Delivery), Delivery._meta.pk.column])
            id_sql = f"CASE WHEN {bucket} %% 10000 >= %s THEN nextval(CAST(%s AS regclass)) END"
            id_params = [offset, basis_points, cursor.fetchone()[0]]
        else:
            id_sql, id_params = "CAST(NULL AS BIGINT)", []
        outcome = CampaignRecipient.Outcome
        recipient = CampaignRecipient._meta
        columns = ", ".join(qn(recipient.get_field(name).column) for name in (
            "run", "member", "outcome", "variant", "hold_reason", "channel", "delivery", "link_code"))
        cursor.execute(
            f"INSERT INTO {table(CampaignRecipient)} ({columns}) SELECT %s, d.member_id, "  # noqa: S608 - names from the models, values bound
            f"CASE WHEN {bucket} %% 10000 < %s THEN %s WHEN d.hold_reason <> '' THEN %s ELSE %s END, "
            f"{variant_sql}, d.hold_reason, d.channel, {id_sql}, {code_sql} FROM ({decisions}{fence()}) d",
            [run.pk, offset, basis_points, outcome.HOLDOUT, outcome.HELD, outcome.SENT, *variant_params, *id_params,
             *code_params, *decision_params])

        # The deliveries of the members not held out, from the recipient rows just written (alias p).
        source = run.source
        content_sql, content_params, uses_guide = _content_sql(campaign, variants)
        state_sql, state_params = status_sql(plan, "p.hold_reason")
        send_after_case, send_after_params = send_after_sql(plan, "p.hold_reason")
        guide_join, guide_params = "", []
        if uses_guide:
            binding = GuideBinding._meta
            guide_join = (f"LEFT JOIN {table(GuideBinding)} gb ON gb.member_id = p.member_id "
                          f"AND gb.{qn(binding.get_field('brand').column)} = %s "
                          f"AND gb.{qn(binding.get_field('ended_at').column)} IS NULL "
                          f"LEFT JOIN {table(Guide)} g ON g.id = gb.{qn(binding.get_field('guide').column)}")
            guide_params = [campaign.brand_id]
        fields = Delivery._meta
        names = ("member", "brand", "kind", "channel", "source", "dedupe_key", "content", "status", "hold_reason",
                 "planned_at", "send_after", "attempts", "provider_message_id", "error")
        columns = ", ".join(qn(fields.get_field(name).column) for name in (("id", *names) if postgresql else names))
        in_range = "p.run_id = %s AND p.member_id > %s AND p.member_id <= %s AND p.outcome <> %s"
        range_params = [run.pk, lo, hi, outcome.HOLDOUT]
        cursor.execute(
            f"INSERT INTO {table(Delivery)} ({columns}) SELECT {'p.delivery_id, ' if postgresql else ''}"  # noqa: S608 - names from the models, values bound
            "p.member_id, %s, %s, p.channel, %s, %s || p.member_id, "
            f"{content_sql}, {state_sql}, p.hold_reason, %s, {send_after_case}, 0, '', '' "
            f"FROM {table(CampaignRecipient)} p JOIN {member_table} m ON m.id = p.member_id {guide_join} "
            f"WHERE {in_range}",
            [campaign.brand_id, MessageKind.MARKETING, source, f"{source}|", *content_params, *state_params,
             connection.ops.adapt_datetimefield_value(run.started_at), *send_after_params, *guide_params,
             *range_params])
        if not postgresql:
            cursor.execute(
                f"UPDATE {table(CampaignRecipient)} AS p SET {qn(recipient.get_field('delivery').column)} = "  # noqa: S608 - names from the models, values bound
                f"(SELECT d.id FROM {table(Delivery)} d WHERE d.dedupe_key = %s || p.member_id) WHERE {in_range}",
                [f"{source}|", *range_params])


def _run_fail(run: CampaignRun, campaign: Campaign, *, reason: str) -> None:
    """Stop a resolving run whose audience no longer validates (the caller holds both locks): the run is
    recorded as failed with the reason, and the messages of earlier ranges that have not gone yet are held
    back as for a cancel: nothing more of a run that cannot finish goes out."""
    logger.error("campaign %s, run %s: stopped, the audience no longer validates: %s", campaign.pk, run.pk, reason)
    run.status, run.error = CampaignRun.Status.FAILED, reason[:200]
    run.save(update_fields=["status", "error", "updated_at"])
    Delivery.objects.filter(source=run.source, status__in=[Delivery.Status.QUEUED, Delivery.Status.WAITING]).update(
        status=Delivery.Status.HELD, hold_reason=HoldReason.CANCELLED)
    if campaign.status == Campaign.Status.RUNNING:
        campaign.status = _after_run(campaign)
        campaign.save(update_fields=["status"])


def campaign_run_resolve(*, run_id: int, span: int = RESOLVE_SPAN, now: dt.datetime | None = None) -> CampaignRun:
    """Resolve a run's audience range by range until done; safe to run twice or after a crash.

    Each range is one transaction under the campaign's and the run's locks (in that order, as a cancel
    takes them), and moves ``resolved_through`` with its rows: a second resolver waits, then carries on
    from there. A cancelled campaign's run stops at the next range. The audience is validated again for
    each range: when it no longer validates the run fails with the reason (see :func:`_run_fail`), never
    sending to a wider audience.
    """
    while True:
        with transaction.atomic():
            run = CampaignRun.objects.filter(pk=run_id).only("campaign_id").first()
            if run is None:
                raise ApplicationError(ErrorCode.NOT_FOUND, "No such campaign run.", status=404)
            campaign = (Campaign.objects.select_for_update(of=("self",))
                        .select_related("brand", "audience", "coupon_template").get(pk=run.campaign_id))
            run = CampaignRun.objects.select_for_update().get(pk=run_id)
            if run.status != CampaignRun.Status.RESOLVING:
                return run
            if campaign.status == Campaign.Status.CANCELLED:
                run.status = CampaignRun.Status.CANCELLED
                run.save(update_fields=["status", "updated_at"])
                return run
            if run.resolved_through >= run.members_upto:
                run.status, run.resolved_at = CampaignRun.Status.QUEUED, now or timezone.now()
                run.save(update_fields=["status", "resolved_at", "updated_at"])
                if campaign.status == Campaign.Status.RUNNING:
                    campaign.status = _after_run(campaign)
                    campaign.save(update_fields=["status"])
                return run
            try:
                definition = _audience_definition(campaign)
            except AudienceNoLongerValid as exc:
                _run_fail(run, campaign, reason=str(exc))
                return run
            variants = list(campaign.variants.order_by("pk"))
            hi = min(run.resolved_through + span, run.members_upto)
            started = time.perf_counter()
            for attempt in range(3):
                try:
                    with transaction.atomic():
                        _resolve_range(run, campaign, variants, run.resolved_through, hi, definition)
                    break
                except IntegrityError:
                    # Two random tracking codes met (one in 2^66 per pair): draw them again.
                    if attempt == 2:
                        raise
            run.resolved_through = hi
            run.save(update_fields=["resolved_through", "updated_at"])
            logger.info("campaign run %s: member ids up to %s of %s resolved in %.1f s", run.pk, hi,
                        run.members_upto, time.perf_counter() - started)
