"""Campaigns: create, launch, cancel, start their runs on schedule, and resolve each run set-based.

Resolving a run turns its audience into one ``CampaignRecipient`` per member and one ``Delivery`` per
member not held out, in a few statements per range of member ids: the restraint rules come from
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
from django.db.models import Max, QuerySet
from django.utils import timezone

from mall.models import CouponTemplate
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
from retail_crm.errors import ApplicationError
from retail_crm.models import Brand, Guide
from retail_crm.rawsql import qn, table

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- STAND-IN: audience members
# The audiences engineer is writing ``marketing.audiences.audience_members`` (same signature). Until it lands,
# this stand-in returns every member of the brand. The integrator deletes this function and imports the
# real one here: ``from marketing.audiences import audience_members``.

def audience_members(*, brand: Brand, definition: dict) -> QuerySet[Member]:
    """STAND-IN: the brand's members (a membership of the brand, not merged away); ``definition`` ignored."""
    return Member.objects.filter(memberships__brand=brand, merged_into__isnull=True)

# ---------------------------------------------------------------------------- end of the stand-in


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


def _content_errors(content, channels: Sequence[str], *, has_link: bool, has_coupon: bool) -> list[str]:
    if not isinstance(content, dict):
        return ["Give an object: channel → {template, params}."]
    errors = [f"{key}: not one of the campaign's channels." for key in content if key not in channels]
    for channel in channels:
        entry = content.get(channel)
        if not isinstance(entry, dict) or not isinstance(entry.get("template"), str) \
                or not entry["template"].strip() or len(entry["template"]) > 64:
            errors.append(f"{channel}: give a template id (1–64 characters).")
            continue
        params = entry.get("params", [])
        texts = params if isinstance(params, list) else list(params.values()) if isinstance(params, dict) else None
        if texts is None or not all(isinstance(text, str) and len(text) <= 500 for text in texts) \
                or (isinstance(params, dict) and not all(isinstance(k, str) and k for k in params)):
            errors.append(f"{channel}: params must be a list, or an object, of texts of at most 500 characters.")
            continue
        for text in texts:
            for name in _VARIABLE.findall(text):
                if name not in VARIABLES:
                    errors.append(f"{channel}: unknown variable {{{name}}}; use {{name}}, {{guide}}, {{link}} "
                                  "or {coupon}.")
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
        raise ApplicationError("invalid", "The campaign is not valid.", fields=errors)
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


def _run_start(campaign: Campaign, *, scheduled_for: dt.datetime, now: dt.datetime) -> CampaignRun:
    """A new run (the caller holds the campaign's lock); its audience is every member up to the highest id now."""
    members = audience_members(brand=campaign.brand, definition=campaign.audience.definition)
    upto = members.order_by().aggregate(upto=Max("pk"))["upto"] or 0
    run = CampaignRun.objects.create(campaign=campaign, scheduled_for=scheduled_for, started_at=now,
                                     members_upto=upto)
    _resolve_later(run.pk)
    return run


def campaign_launch(*, campaign: Campaign, at: dt.datetime | None = None) -> Campaign:
    """Launch a draft: "now" starts its run at once, "at" and recurring campaigns wait for their time.

    Only a draft can be launched (409 otherwise); the campaign row is locked, so launches racing each
    other start one run.
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
        campaign.launched_at = now
        if campaign.schedule == Campaign.Schedule.NOW or (
                campaign.schedule == Campaign.Schedule.AT and campaign.send_at <= now):
            _run_start(campaign, scheduled_for=now, now=now)
            campaign.status = Campaign.Status.RUNNING
        else:
            campaign.next_run_at = (campaign.send_at if campaign.schedule == Campaign.Schedule.AT
                                    else next_occurrence(campaign, after=now))
            campaign.status = Campaign.Status.SCHEDULED if campaign.next_run_at else Campaign.Status.DONE
        campaign.save(update_fields=["status", "launched_at", "next_run_at"])
    return campaign


def campaign_cancel(*, campaign: Campaign, at: dt.datetime | None = None) -> int:
    """Cancel a campaign: no further runs, a resolving run stops, and its messages not yet gone are held
    back ("cancelled"). Returns how many messages were held back. 409 when it is cancelled already."""
    now = at or timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status == Campaign.Status.CANCELLED:
            raise ApplicationError(MarketingErrorCode.CAMPAIGN_NOT_CANCELLABLE,
                                   f"Campaign {campaign.name!r} is cancelled already.", status=409)
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


def campaigns_start_due(*, now: dt.datetime | None = None) -> StartResult:
    """Start the runs that are due (every minute from beat), and resume resolves that stopped."""
    now = now or timezone.now()
    started = 0
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
                campaign.status = Campaign.Status.SCHEDULED if campaign.next_run_at else Campaign.Status.DONE
            else:
                _run_start(campaign, scheduled_for=slot, now=now)
                campaign.status = Campaign.Status.RUNNING
                started += 1
            campaign.save(update_fields=["status", "next_run_at"])
    stale = list(CampaignRun.objects.filter(status=CampaignRun.Status.RESOLVING, updated_at__lt=now - STALE_RESOLVE)
                 .values_list("pk", flat=True))
    for run_id in stale:
        _resolve_later(run_id)
    return StartResult(started=started, resumed=len(stale))


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


def _entry_sql(entry: dict, values: dict[str, tuple[str, list]], coupon_template_id: int | None) -> tuple[str, list]:
    """SQL building one delivery's content: ``{"template", "params"[, "coupon_template"]}``."""
    build_object, build_array = _json_functions()
    texts = entry.get("params", [])
    parts, params = [], []
    for key, text in (texts.items() if isinstance(texts, dict) else enumerate(texts)):
        text_sql, text_params = _text_sql(text, values)
        if isinstance(texts, dict):
            parts.append(f"%s, {text_sql}")
            params += [key, *text_params]
        else:
            parts.append(text_sql)
            params += text_params
    params_sql = f"{build_object if isinstance(texts, dict) else build_array}({', '.join(parts)})"
    sql = f"{build_object}(%s, CAST(%s AS TEXT), %s, {params_sql}"
    params = ["template", entry["template"], "params", *params]
    if coupon_template_id is not None:
        sql += ", %s, CAST(%s AS INTEGER)"
        params += ["coupon_template", coupon_template_id]
    return sql + ")", params


def _content_sql(campaign: Campaign, variants: Sequence[CampaignVariant]) -> tuple[str, list, bool]:
    """``CASE`` over the row's variant and channel giving its rendered content; and whether {guide} is used."""
    member_name = qn(Member._meta.get_field("name").column)
    guide_name = qn(Guide._meta.get_field("name").column)
    values = {
        "name": (f"m.{member_name}", []),
        "guide": (f"COALESCE(g.{guide_name}, '')", []),
        "link": ("%s || p.link_code", [settings.MARKETING_LINK_BASE_URL]),
        "coupon": ("%s", [campaign.coupon_template.name if campaign.coupon_template else ""]),
    }
    arms = [(v.pk, v.content) for v in variants] or [(None, campaign.content)]
    whens, params, uses_guide = [], [], False
    for variant_id, content in arms:
        for channel in campaign.channels:
            entry = content[channel]
            texts = entry.get("params", [])
            uses_guide |= any("{guide}" in t for t in (texts.values() if isinstance(texts, dict) else texts))
            entry_sql, entry_params = _entry_sql(entry, values, campaign.coupon_template_id)
            if variant_id is None:
                whens.append(f"WHEN p.channel = %s THEN {entry_sql}")
                params += [channel, *entry_params]
            else:
                whens.append(f"WHEN p.channel = %s AND p.variant_id = %s THEN {entry_sql}")
                params += [channel, variant_id, *entry_params]
    return f"CASE {' '.join(whens)} ELSE '{{}}' END", params, uses_guide


def _audience_sql(campaign: Campaign, lo: int, hi: int) -> tuple[str, tuple]:
    members = audience_members(brand=campaign.brand, definition=campaign.audience.definition)
    return members.filter(pk__gt=lo, pk__lte=hi).order_by().values("pk").query.sql_with_params()


def _subscribe_template(campaign: Campaign, variants: Sequence[CampaignVariant]) -> str:
    content = variants[0].content if variants else campaign.content
    return (content.get(Channel.SUBSCRIBE) or {}).get("template", "")


def _resolve_range(run: CampaignRun, campaign: Campaign, variants: Sequence[CampaignVariant], lo: int,
                   hi: int) -> None:
    """Recipients and deliveries for the audience's members with ids in (lo, hi], in the caller's transaction."""
    members_sql, members_params = _audience_sql(campaign, lo, hi)
    member_table = table(Member)
    postgresql = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgresql:
            # The fenced subqueries and their correlated look-ups make the planner's estimate large enough for
            # JIT compilation, which costs more (about 0.8 s a statement) than running these statements.
            cursor.execute("SET LOCAL jit = off")
            # The lock message_send takes for one member, taken for the range in id order: the cap is counted
            # and the rows written while no other campaign or journey can message these members.
            cursor.execute(f"SELECT COUNT(*) FROM (SELECT m.id FROM {member_table} m WHERE m.id IN ({members_sql}) "  # noqa: S608 - names from the models, values bound
                           "ORDER BY m.id FOR UPDATE OF m) locked", members_params)
        plan = MessagePlan(kind=MessageKind.MARKETING, channels=tuple(campaign.channels), at=run.started_at,
                           rules=rules_for(campaign.brand), subscribe_template=_subscribe_template(campaign, variants))
        decisions, decision_params = decisions_sql(plan, members_sql=members_sql, members_params=members_params)

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


def campaign_run_resolve(*, run_id: int, span: int = RESOLVE_SPAN, now: dt.datetime | None = None) -> CampaignRun:
    """Resolve a run's audience range by range until done; safe to run twice or after a crash.

    Each range is one transaction under the campaign's and the run's locks (in that order, as a cancel
    takes them), and moves ``resolved_through`` with its rows: a second resolver waits, then carries on
    from there. A cancelled campaign's run stops at the next range.
    """
    while True:
        with transaction.atomic():
            run = CampaignRun.objects.filter(pk=run_id).only("campaign_id").first()
            if run is None:
                raise ApplicationError("not_found", "No such campaign run.", status=404)
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
                    campaign.status = Campaign.Status.SCHEDULED if campaign.next_run_at else Campaign.Status.DONE
                    campaign.save(update_fields=["status"])
                return run
            variants = list(campaign.variants.order_by("pk"))
            hi = min(run.resolved_through + span, run.members_upto)
            started = time.perf_counter()
            for attempt in range(3):
                try:
                    with transaction.atomic():
                        _resolve_range(run, campaign, variants, run.resolved_through, hi)
                    break
                except IntegrityError:
                    # Two random tracking codes met (one in 2^66 per pair): draw them again.
                    if attempt == 2:
                        raise
            run.resolved_through = hi
            run.save(update_fields=["resolved_through", "updated_at"])
            logger.info("campaign run %s: member ids up to %s of %s resolved in %.1f s", run.pk, hi,
                        run.members_upto, time.perf_counter() - started)
