"""The restraint rules, written once, applied to any set of members in one query.

Every marketing or service message is decided here, whether for one member (``message_send``, a journey
step, a service event) or for a million (a campaign run): opt-out per channel, the channel fallback
(a subscribe message only with a consent left, SMS only with a phone, an official-account message only
to a linked openid, a WeCom group send only to a contact of the member's bound guide, a guide task only
for an important member with a bound guide), the care window after a purchase,
the frequency cap across every channel and source, and quiet hours (the message waits for the morning).

:func:`decisions_sql` is the one implementation: a ``SELECT member_id, channel, hold_reason`` over the
members a caller names with SQL. The status and the send time follow from the hold reason by
:meth:`MessagePlan.status_for` and :meth:`MessagePlan.send_after_for`, which both the one-member path
(in Python) and the set-based path (as a ``CASE`` built from them) use.

The SQL is portable (SQLite and PostgreSQL): ``EXISTS`` and a correlated ``COUNT`` on indexed columns,
table and column names from the models, values always bound.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.models import F, Q
from django.utils import timezone

from mall.models import Order
from marketing.channels import channel_available
from marketing.channels.addresses import reachable_sql
from marketing.models import (
    Channel,
    ChannelOptOut,
    Delivery,
    HoldReason,
    MessageKind,
    ReachRules,
    SubscribeConsent,
)
from members.models import Member
from retail_crm.models import Brand
from retail_crm.rawsql import convert, params_list, qn, table


@dataclass(frozen=True)
class Rules:
    """The restraint in force for one brand (its own row, else the group's, else the defaults)."""

    quiet_start: dt.time = dt.time(21, 0)
    quiet_end: dt.time = dt.time(9, 0)
    cap_messages: int = 2
    cap_days: int = 7
    care_days: int = 15


def rules_for(brand: Brand) -> Rules:
    row = (ReachRules.objects.filter(Q(brand=brand) | Q(group_id=brand.group_id, brand__isnull=True))
           .order_by(F("brand_id").asc(nulls_last=True)).first())
    if row is None:
        return Rules()
    return Rules(quiet_start=row.quiet_start, quiet_end=row.quiet_end, cap_messages=row.cap_messages,
                 cap_days=row.cap_days, care_days=row.care_days)


def _in_quiet_hours(moment: dt.datetime, rules: Rules) -> bool:
    local = timezone.localtime(moment).time()
    if rules.quiet_start > rules.quiet_end:  # spans midnight, e.g. 21:00–09:00
        return local >= rules.quiet_start or local < rules.quiet_end
    return rules.quiet_start <= local < rules.quiet_end


def next_allowed(moment: dt.datetime, rules: Rules) -> dt.datetime:
    """``moment`` itself, or the end of the quiet hours it falls in (local time)."""
    if not _in_quiet_hours(moment, rules):
        return moment
    local = timezone.localtime(moment)
    end = local.replace(hour=rules.quiet_end.hour, minute=rules.quiet_end.minute, second=0, microsecond=0)
    if end <= local:
        end += dt.timedelta(days=1)
    return end


@dataclass(frozen=True)
class MessagePlan:
    """One message planned at ``at`` for a set of members: everything the rules need to decide each.

    ``channels`` is the fallback order; ``brand_id`` the brand it is sent for (WeCom and guide tasks go
    through the member's bound guide for that brand); ``subscribe_template`` the subscribe-message template
    offered (consents are counted per template; "" when none is).
    """

    kind: str
    channels: tuple[str, ...]
    at: dt.datetime
    rules: Rules
    brand_id: int
    subscribe_template: str = ""

    @property
    def morning(self) -> dt.datetime:
        """When a marketing message planned at ``at`` may go: ``at``, or the end of its quiet hours."""
        return next_allowed(self.at, self.rules) if self.kind == MessageKind.MARKETING else self.at

    def send_after_for(self, hold_reason: str) -> dt.datetime:
        """The row's ``send_after``: a message that goes (or was stopped by the cap, which is counted at
        that moment) carries the moment it may go; one held back before that carries ``at``."""
        return self.morning if hold_reason in ("", HoldReason.FREQUENCY_CAP) else self.at

    def status_for(self, hold_reason: str) -> str:
        if hold_reason:
            return Delivery.Status.HELD
        return Delivery.Status.WAITING if self.morning > self.at else Delivery.Status.QUEUED


def _adapt(moment: dt.datetime):
    return connection.ops.adapt_datetimefield_value(moment)


def fence() -> str:
    # PostgreSQL would pull the subquery up and evaluate its EXISTS columns once per reference; OFFSET 0
    # keeps it a subquery so each is evaluated once per member. SQLite needs no fence (and rejects this one).
    return " OFFSET 0" if connection.vendor == "postgresql" else ""


def _reachable(channel: str, plan: MessagePlan) -> tuple[str, list] | None:
    """SQL on the alias ``o`` (member_id, phone, openid, oa_openid): whether ``channel`` can reach the member,
    or None when it never can (no adapter configured, or no subscribe template offered)."""
    if not channel_available(channel):
        return None
    if channel == Channel.SMS:
        return "o.phone <> ''", []
    if channel == Channel.SUBSCRIBE:
        if not plan.subscribe_template:
            return None
        return (f"o.openid <> '' AND EXISTS (SELECT 1 FROM {table(SubscribeConsent)} s "  # noqa: S608 - names from the models, values bound
                "WHERE s.member_id = o.member_id AND s.template_id = %s AND s.remaining > 0)",
                [plan.subscribe_template])
    if channel == Channel.OFFICIAL_ACCOUNT:
        return "o.oa_openid <> ''", []
    # WeCom (a contact of the bound guide) and guide tasks (an important member with a bound guide)
    return reachable_sql(channel, brand_id=plan.brand_id, member_id_sql="o.member_id")


def decisions_sql(plan: MessagePlan, *, members_sql: str, members_params: Sequence,
                  id_range: tuple[int, int] | None = None) -> tuple[str, list]:
    """``SELECT member_id, channel, hold_reason`` for every member id ``members_sql`` selects.

    ``id_range`` (lo, hi]: the member ids ``members_sql`` keeps lie in it, which lets the database read only
    that slice of the member table (a campaign resolves its audience one id range at a time).

    ``channel`` is the first channel in the fallback order the member has not opted out of and can be
    reached on ("" when none). ``hold_reason``, first that applies: opted out of every channel offered;
    no channel left (no consent, no phone); for marketing, a paid order within the care window before
    ``at`` (paid in ``(at - care_days, at]``: one paid after ``at`` does not count); the frequency cap,
    counting the member's marketing messages not held back or failed, on any channel and from any source,
    whose ``send_after`` lies within ``cap_days`` either side of the moment this one may go. "" when the
    message may go.
    """
    member = Member._meta
    phone, openid, oa_openid = (qn(member.get_field(name).column) for name in ("phone", "openid", "oa_openid"))
    opted = [f"EXISTS (SELECT 1 FROM {table(ChannelOptOut)} x WHERE x.member_id = m.id AND x.channel = %s) "  # noqa: S608 - names from the models, values bound
             f"AS opted_{i}" for i in range(len(plan.channels))]
    level1 = (f"SELECT m.id AS member_id, m.{phone} AS phone, m.{openid} AS openid, m.{oa_openid} AS oa_openid, "  # noqa: S608 - names from the models, values bound
              f"{', '.join(opted)} FROM {table(Member)} m WHERE {'m.id > %s AND m.id <= %s AND ' if id_range else ''}"
              f"m.id IN ({members_sql}){fence()}")
    level1_params = [*plan.channels, *(id_range or ()), *members_params]

    whens, when_params = [], []
    for i, channel in enumerate(plan.channels):
        reachable = _reachable(channel, plan)
        if reachable is not None:
            whens.append(f"WHEN NOT o.opted_{i} AND {reachable[0]} THEN %s")
            when_params += [*reachable[1], channel]
    choice = f"CASE {' '.join(whens)} ELSE '' END" if whens else "''"
    every_opted = " AND ".join(f"o.opted_{i}" for i in range(len(plan.channels)))
    level2 = (f"SELECT o.member_id, {choice} AS channel, CASE WHEN {every_opted} THEN 1 ELSE 0 END AS all_opted "  # noqa: S608 - names from the models, values bound
              f"FROM ({level1}) o{fence()}")
    level2_params = [*when_params, *level1_params]

    holds = ["WHEN c.channel = '' AND c.all_opted = 1 THEN %s", "WHEN c.channel = '' THEN %s"]
    hold_params: list = [HoldReason.OPTED_OUT, HoldReason.NO_CONSENT]
    if plan.kind == MessageKind.MARKETING:
        rules, morning = plan.rules, plan.morning
        window = dt.timedelta(days=rules.cap_days)
        # Bounded above by ``at`` too: a plan decided for a past moment (a campaign launched ``at=`` an earlier
        # time, the demo's replays) must not be held by an order paid after that moment.
        paid_at = qn(Order._meta.get_field("paid_at").column)
        holds.append(f"WHEN EXISTS (SELECT 1 FROM {table(Order)} b WHERE b.member_id = c.member_id "  # noqa: S608 - names from the models, values bound
                     f"AND b.{paid_at} > %s AND b.{paid_at} <= %s) THEN %s")
        hold_params += [_adapt(plan.at - dt.timedelta(days=rules.care_days)), _adapt(plan.at), HoldReason.CARE_WINDOW]
        holds.append(f"WHEN (SELECT COUNT(*) FROM {table(Delivery)} d WHERE d.member_id = c.member_id "  # noqa: S608 - names from the models, values bound
                     "AND d.kind = %s AND d.send_after > %s AND d.send_after < %s AND d.status NOT IN (%s, %s)) "
                     ">= %s THEN %s")
        hold_params += [MessageKind.MARKETING, _adapt(morning - window), _adapt(morning + window),
                        Delivery.Status.HELD, Delivery.Status.FAILED, rules.cap_messages, HoldReason.FREQUENCY_CAP]
    sql = (f"SELECT c.member_id AS member_id, c.channel AS channel, CASE {' '.join(holds)} ELSE '' END AS hold_reason "  # noqa: S608 - names from the models, values bound
           f"FROM ({level2}) c")
    return sql, [*hold_params, *level2_params]


def _by_hold_reason(column: str, values: dict[str, object]) -> tuple[str, list]:
    whens = " ".join(["WHEN %s THEN %s"] * len(values))
    return f"CASE {column} {whens} END", [item for pair in values.items() for item in pair]


def status_sql(plan: MessagePlan, column: str) -> tuple[str, list]:
    """SQL for :meth:`MessagePlan.status_for` of the hold reason in ``column`` (the set-based path)."""
    return _by_hold_reason(column, {reason: plan.status_for(reason) for reason in ["", *HoldReason.values]})


def send_after_sql(plan: MessagePlan, column: str) -> tuple[str, list]:
    """SQL for :meth:`MessagePlan.send_after_for` of the hold reason in ``column`` (the set-based path)."""
    return _by_hold_reason(column, {reason: _adapt(plan.send_after_for(reason))
                                    for reason in ["", *HoldReason.values]})


@dataclass(frozen=True)
class Decision:
    channel: str
    hold_reason: str
    status: str
    send_after: dt.datetime


def decide_one(plan: MessagePlan, *, member_id: int) -> Decision:
    """The rules for one member (the caller holds the member's row lock, so the cap count is exact)."""
    sql, params = decisions_sql(plan, members_sql="%s", members_params=[member_id])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        _, channel, hold = cursor.fetchone()
    return Decision(channel=channel, hold_reason=hold, status=plan.status_for(hold),
                    send_after=plan.send_after_for(hold))


HOLD_CHECK_CHUNK = 1000  # deliveries checked per query (a dispatcher's batch is 500: one query)


def send_time_holds(rows: Sequence[Delivery], *, now: dt.datetime, rules: dict[int, Rules]) -> dict[int, str]:
    """The rules that can turn between the decision and the send, checked again for ``rows`` about to go at
    ``now``: delivery id → hold reason for the rows that may not go any more.

    A message planned at 22:00 waits for 09:00, a retried one for its back-off; in between the member may
    have opted out of the channel (any kind of message: ``opted_out``) or paid an order (marketing only: an
    order paid in ``(now - care_days, now]``, ``care_days`` of the row's brand: ``care_window``). Quiet hours
    are the caller's (it defers, not holds), and the cap was counted when the message was decided.

    One query per ``HOLD_CHECK_CHUNK`` rows, looking the members up on the opt-outs' and the orders' member
    indexes (an ``EXISTS`` per delivery was planned as a hashed subplan reading the whole opt-out table, and
    joining the deliveries again read their wide rows back). ``rules`` caches each brand's rules across calls
    (a brand not in it yet costs one query, once). Rows need ``pk``, ``member_id``, ``brand_id``, ``kind``
    and ``channel``.
    """
    marketing = [row for row in rows if row.kind == MessageKind.MARKETING]
    missing = {row.brand_id for row in marketing} - set(rules)
    for brand in Brand.objects.filter(pk__in=missing) if missing else ():
        rules[brand.pk] = rules_for(brand)
    longest = max((rules[row.brand_id].care_days for row in marketing), default=0)
    paid_at = qn(Order._meta.get_field("paid_at").column)
    opted: set[tuple[int, str]] = set()
    last_paid: dict[int, dt.datetime] = {}
    for start in range(0, len(rows), HOLD_CHECK_CHUNK):
        chunk = rows[start:start + HOLD_CHECK_CHUNK]
        members = sorted({row.member_id for row in chunk})
        channels = sorted({row.channel for row in chunk})
        buyers = sorted({row.member_id for row in chunk if row.kind == MessageKind.MARKETING})
        sql = (f"SELECT x.member_id, x.channel, NULL FROM {table(ChannelOptOut)} x "  # noqa: S608 - names from the models, values bound
               f"WHERE x.member_id IN ({params_list(len(members))}) AND x.channel IN ({params_list(len(channels))})")
        params: list = [*members, *channels]
        if buyers:
            sql += (f" UNION ALL SELECT b.member_id, '', MAX(b.{paid_at}) FROM {table(Order)} b "  # noqa: S608 - names from the models, values bound
                    f"WHERE b.member_id IN ({params_list(len(buyers))}) AND b.{paid_at} > %s AND b.{paid_at} <= %s "
                    "GROUP BY b.member_id")
            params += [*buyers, _adapt(now - dt.timedelta(days=longest)), _adapt(now)]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for member_id, channel, paid in cursor.fetchall():
                if channel:
                    opted.add((member_id, channel))
                else:
                    last_paid[member_id] = convert(Order, ("paid_at",), [paid])[0]
    holds = {}
    for row in rows:
        if (row.member_id, row.channel) in opted:
            holds[row.pk] = HoldReason.OPTED_OUT
        elif (row.kind == MessageKind.MARKETING and row.member_id in last_paid
              and last_paid[row.member_id] > now - dt.timedelta(days=rules[row.brand_id].care_days)):
            holds[row.pk] = HoldReason.CARE_WINDOW
    return holds
