"""Reads of the marketing app: a staff member's always through the one scoping helper; the operators' audit
(:func:`deliveries_rule_breaches`, a management command's) by retail group."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mall.models import Order
from marketing.models import (
    Campaign,
    ChannelOptOut,
    Delivery,
    Journey,
    JourneyEnrolment,
    JourneyStep,
    JourneyStepLog,
    MessageKind,
)
from marketing.rules import Rules, rules_for
from retail_crm.models import Brand
from retail_crm.scoping import Actor, scoped


def delivery_list(*, actor: Actor, source: str | None = None, member_code: str | None = None,
                  channel: str | None = None, status: str | None = None, kind: str | None = None,
                  date_from: dt.date | None = None, date_to: dt.date | None = None) -> QuerySet[Delivery]:
    """Every message sent or held back in the actor's scope, newest plan first, filtered as asked.

    Dates are local days of ``planned_at`` (both ends included).
    """
    rows = Delivery.objects.all()
    if source:
        rows = rows.filter(source=source)
    if member_code:
        rows = rows.filter(member__code=member_code)
    if channel:
        rows = rows.filter(channel=channel)
    if status:
        rows = rows.filter(status=status)
    if kind:
        rows = rows.filter(kind=kind)
    if date_from:
        rows = rows.filter(planned_at__gte=timezone.make_aware(dt.datetime.combine(date_from, dt.time.min)))
    if date_to:
        end = timezone.make_aware(dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min))
        rows = rows.filter(planned_at__lt=end)
    return scoped(rows, actor).select_related("member", "brand").order_by("-planned_at", "-pk")


def campaign_list(*, actor: Actor, status: str | None = None, brand_code: str | None = None) -> QuerySet[Campaign]:
    """Campaigns in the actor's scope (HQ: the group's; a brand operator: the brand's), newest first."""
    rows = Campaign.objects.all()
    if status:
        rows = rows.filter(status=status)
    if brand_code:
        rows = rows.filter(brand__code=brand_code)
    return (scoped(rows, actor).select_related("brand", "audience", "coupon_template")
            .prefetch_related("variants").order_by("-created_at", "-pk"))


def journey_list(*, actor: Actor) -> QuerySet[Journey]:
    """Journeys in the actor's scope (HQ: the group's; a brand operator: the brand's), newest first, each with
    ``entered`` (holdout included), ``active`` (on their way: active or waiting) and ``converted`` counts."""
    on_the_way = [JourneyEnrolment.Status.ACTIVE, JourneyEnrolment.Status.WAITING]
    return (scoped(Journey.objects.all(), actor).select_related("brand")
            .annotate(entered=Count("enrolments"),
                      active=Count("enrolments", filter=Q(enrolments__status__in=on_the_way)),
                      converted=Count("enrolments", filter=Q(enrolments__converted_at__isnull=False)))
            .order_by("-created_at", "-pk"))


# A delivery the provider took (or the guide got as a task): what the audit checks. A failed receipt is not one.
AUDITED_STATUSES = (Delivery.Status.SENT, Delivery.Status.DELIVERED, Delivery.Status.TO_GUIDE)
BREACHES = ("frequency_cap", "quiet_hours", "care_window", "opted_out")


def _since_moment(since: dt.date | dt.datetime | None) -> dt.datetime | None:
    if since is None or isinstance(since, dt.datetime):
        return since
    return timezone.make_aware(dt.datetime.combine(since, dt.time.min))  # a local day from its midnight


def _of_day(moment: dt.time) -> pd.Timedelta:
    return pd.Timedelta(hours=moment.hour, minutes=moment.minute, seconds=moment.second)


def _frame(rows: list[tuple], columns: dict[str, str]) -> pd.DataFrame:
    """A frame of ``rows`` with the columns' dtypes ("when": an aware datetime in UTC, to the microsecond as
    the databases keep it), the same whether empty or not (``merge_asof`` wants keys of one dtype)."""
    frame = pd.DataFrame.from_records(rows, columns=list(columns))
    for name, kind in columns.items():
        frame[name] = (pd.to_datetime(frame[name], utc=True).dt.as_unit("us") if kind == "when"
                       else frame[name].astype(kind))
    return frame


def deliveries_rule_breaches(*, group_id: int | None = None, since: dt.date | dt.datetime | None = None) -> dict:
    """What was actually sent, checked against the reach rules: how many times each rule was broken.

    Reads the deliveries a provider took (``sent``, ``delivered``, ``to_guide``, with a ``sent_at``) of
    ``group_id``'s brands (every group when None) sent at or after ``since`` (a local date from its midnight,
    or a moment), under the rules now in force for each delivery's brand (``rules_for``):

    - ``frequency_cap``: members with more than ``cap_messages`` marketing messages sent within ``cap_days``
      (a sliding window: ``cap_messages + 1`` of them less than ``cap_days`` apart, the last one's brand
      giving the rule; messages before ``since`` count towards a window that ends after it), each member once;
    - ``quiet_hours``: marketing messages sent in the brand's quiet hours, local time (the start included,
      the end not: 09:00 sharp and 20:59 are allowed);
    - ``care_window``: marketing messages sent within ``care_days`` after a paid order of the member (an
      order paid in ``(sent_at - care_days, sent_at]``);
    - ``opted_out``: messages of any kind sent on a channel the member had opted out of before ``sent_at``.

    Also ``messages`` and ``members`` (the messages checked and their distinct members) and ``rules`` (brand
    code → the :class:`~marketing.rules.Rules` applied, for the brands with messages checked). A few queries
    (the brands and their rules, the deliveries, the members' paid orders, their opt-outs) and pandas over
    the rows; no query per member.
    """
    start = _since_moment(since)
    sent = Delivery.objects.filter(status__in=AUDITED_STATUSES, sent_at__isnull=False)
    if group_id is not None:
        sent = sent.filter(brand__group_id=group_id)
    in_range = sent.filter(sent_at__gte=start) if start else sent
    brands = list(Brand.objects.filter(pk__in=in_range.values("brand_id")).order_by("code"))
    rules: dict[int, Rules] = {brand.pk: rules_for(brand) for brand in brands}
    counts = {"messages": 0, "members": 0, **dict.fromkeys(BREACHES, 0),
              "rules": {brand.code: rules[brand.pk] for brand in brands}}
    if not brands:
        return counts

    def per_brand(frame: pd.DataFrame, value) -> pd.Series:
        return frame["brand_id"].map({pk: value(rule) for pk, rule in rules.items()})

    # The messages checked, and before them the marketing ones that can share a frequency window with them.
    context = sent
    if start:
        earliest = start - dt.timedelta(days=max(rule.cap_days for rule in rules.values()))
        context = sent.filter(sent_at__gte=start) | sent.filter(kind=MessageKind.MARKETING, sent_at__gt=earliest)
    rows = _frame(list(context.values_list("member_id", "brand_id", "kind", "channel", "sent_at")),
                  {"member_id": "int64", "brand_id": "int64", "kind": "object", "channel": "object", "sent_at": "when"})
    rows["checked"] = rows["sent_at"] >= pd.Timestamp(start) if start else True
    checked = rows[rows["checked"]]
    counts["messages"], counts["members"] = len(checked), int(checked["member_id"].nunique())

    marketing = rows[rows["kind"] == MessageKind.MARKETING].sort_values(["member_id", "sent_at"], kind="stable")
    # Frequency cap: the message ``cap_messages`` places back in the member's sequence is less than cap_days earlier
    # (an earlier message of a brand with nothing since ``since`` counts in the sequence; it has no rule of its own).
    caps = per_brand(marketing, lambda rule: rule.cap_messages)
    window = per_brand(marketing, lambda rule: pd.Timedelta(days=rule.cap_days))
    over = pd.Series(False, index=marketing.index)
    for cap in caps.dropna().unique():
        earlier = marketing.groupby("member_id")["sent_at"].shift(int(cap))
        over |= (caps == cap) & (marketing["sent_at"] - earlier < window)
    counts["frequency_cap"] = int(marketing.loc[over & marketing["checked"], "member_id"].nunique())

    marketing = marketing[marketing["checked"]]
    local = marketing["sent_at"].dt.tz_convert(timezone.get_current_timezone())
    clock = local - local.dt.normalize()
    starts = per_brand(marketing, lambda rule: _of_day(rule.quiet_start))
    ends = per_brand(marketing, lambda rule: _of_day(rule.quiet_end))
    overnight = starts > ends  # e.g. 21:00–09:00
    quiet = (overnight & ((clock >= starts) | (clock < ends))) | (~overnight & (clock >= starts) & (clock < ends))
    counts["quiet_hours"] = int(quiet.sum())

    if not marketing.empty:
        longest = dt.timedelta(days=max(rule.care_days for rule in rules.values()))
        orders = _frame(list(Order.objects.filter(
            member_id__in=context.filter(kind=MessageKind.MARKETING).values("member_id"),
            paid_at__gt=marketing["sent_at"].min().to_pydatetime() - longest,
            paid_at__lte=marketing["sent_at"].max().to_pydatetime()).values_list("member_id", "paid_at")),
            {"member_id": "int64", "paid_at": "when"})
        # Each message with the member's latest order paid at or before it.
        latest = pd.merge_asof(marketing.sort_values("sent_at"), orders.sort_values("paid_at"), by="member_id",
                               left_on="sent_at", right_on="paid_at", direction="backward")
        care = per_brand(latest, lambda rule: pd.Timedelta(days=rule.care_days))
        counts["care_window"] = int((latest["sent_at"] - latest["paid_at"] < care).sum())

    opt_outs = _frame(list(ChannelOptOut.objects.filter(member_id__in=context.values("member_id"))
                           .values_list("member_id", "channel", "opted_out_at")),
                      {"member_id": "int64", "channel": "object", "opted_out_at": "when"})
    after = checked.merge(opt_outs, on=["member_id", "channel"])
    counts["opted_out"] = int((after["opted_out_at"] < after["sent_at"]).sum())
    return counts


#: why a member's way through a journey ended early, in words (``JourneyEnrolment.exit_reason``)
EXIT_REASONS = {"converted": _("Paid an order (converted)"), "check_failed": _("A check stopped the journey"),
                "journey_ended": _("The journey was ended")}


@dataclass(frozen=True)
class MemberJourneyState:
    """Where one member stands on one journey (one enrolment), for the member pages."""

    journey_id: int
    journey_name: str
    status: str
    entered_at: dt.datetime
    next_step: str  # kind of the step to run next ('' when the journey is over for them)
    next_run_at: dt.datetime | None
    exit_reason: str
    converted_at: dt.datetime | None
    last_outcome: str  # what the latest step did ('' before the first)
    brand_code: str = ""
    exited_at: dt.datetime | None = None
    next_position: int | None = None  # the step to run next, counted from 1 (None when over)

    @property
    def status_label(self) -> str:
        return _label(JourneyEnrolment.Status, self.status)

    @property
    def next_step_label(self) -> str:
        return _label(JourneyStep.Kind, self.next_step)

    @property
    def last_outcome_label(self) -> str:
        return _label(JourneyStepLog.Outcome, self.last_outcome)

    @property
    def exit_reason_label(self) -> str:
        return str(EXIT_REASONS.get(self.exit_reason, self.exit_reason))


def _label(choices, value: str) -> str:
    try:
        return str(choices(value).label) if value else ""
    except ValueError:
        return value


def member_journeys(*, member, brand: Brand | None = None, brand_ids=None, limit: int = 20) -> list[MemberJourneyState]:
    """The member's journeys of ``brand`` (or of the brands ``brand_ids``), latest entry first: status, the
    next step and when, the last outcome. The caller has checked the member is in the viewer's scope and
    passes only brands the viewer may see."""
    rows = JourneyEnrolment.objects.filter(member=member)
    rows = rows.filter(journey__brand=brand) if brand is not None else rows.filter(journey__brand_id__in=brand_ids)
    rows = list(rows.select_related("journey", "journey__brand").order_by("-entered_at", "-pk")[:limit])
    journey_ids = {row.journey_id for row in rows}
    steps: dict[int, list[tuple[int, str]]] = {}
    ordered = JourneyStep.objects.filter(journey_id__in=journey_ids).order_by("journey_id", "position")
    for journey_id, position, kind in ordered.values_list("journey_id", "position", "kind"):
        steps.setdefault(journey_id, []).append((position, kind))
    last: dict[int, str] = {}
    for enrolment_id, outcome in (JourneyStepLog.objects
                                  .filter(enrolment__in=[row.pk for row in rows]).order_by("at", "pk")
                                  .values_list("enrolment_id", "outcome")):
        last[enrolment_id] = outcome
    states = []
    for row in rows:
        over = row.status not in (JourneyEnrolment.Status.ACTIVE, JourneyEnrolment.Status.WAITING)
        journey_steps = steps.get(row.journey_id, [])
        upcoming = next(((index, kind) for index, (position, kind) in enumerate(journey_steps)
                         if position >= row.position), (None, ""))
        states.append(MemberJourneyState(
            journey_id=row.journey_id, journey_name=row.journey.name, status=row.status, entered_at=row.entered_at,
            next_step="" if over else upcoming[1], next_run_at=None if over else row.next_run_at,
            exit_reason=row.exit_reason, converted_at=row.converted_at, last_outcome=last.get(row.pk, ""),
            brand_code=row.journey.brand.code, exited_at=row.exited_at,
            next_position=None if over or upcoming[0] is None else upcoming[0] + 1))
    return states


def member_journeys_of_brands(*, member, brand_ids) -> list[MemberJourneyState]:
    """The ``member_journeys`` hook (members.selectors.member_journey_states): the member's journeys of the
    brands the viewer may see."""
    return member_journeys(member=member, brand_ids=brand_ids)
