"""livestream.metrics: a live session's figures, stored in SessionStats, and the per store / brand summaries.

The definitions live here and only here (the API, the dashboard and the demo call these functions).

**The run** of a session is [start, end]: start = actual start (planned start if it never started), end =
actual end; a session still live ends "now" (``as_of``) for the figures so far; one that never started
ends at its planned end. Viewer events outside the run were accepted (the lobby opens an hour early, the
last leaves come after the end) but only count as set out below.

**Presence.** Each join lasts until the viewer's next leave, or the end of the run when none follows; a
viewer is present during the union of these intervals, clipped to the run. So a second join without a
leave in between (the app reopened after a crash, whose leave never came) continues the same presence
instead of counting the viewer twice, and the first leave after it ends that presence. A leave and a join
at the same instant are taken as leave-then-join (a reconnect). A viewer who never leaves is present until
the end of the run.

* **viewers (UV)**: distinct viewers present at some instant of the run (a lobby visitor who stayed into
  the start counts; one who left before it, or came after the end, does not).
* **views (PV)**: join events of those presences (re-joins included: each is a page view).
* **peak concurrent**: the most viewers present at one time (leaves before joins at the same instant).
* **watch time**: per viewer the length of their presence within the run, summed (whole seconds, rounded);
  **average** = total ÷ viewers (2 decimals).
* **likes, comments, shares, product clicks**: events of that kind inside the run.
* **orders, GMV**: every order carrying the session (unpaid, cancelled, refunded ones included: GMV counts
  every order placed). **paid orders, paid sales (net), buyers**: purchases per ``mall.selectors.purchases``
  (paid, net = paid − refunded > 0), their net amounts, the distinct members behind them.
* **conversion** = buyers ÷ viewers (4 decimals; 0 without viewers). Buyers need not have watched (an order
  link passed on), so it can exceed 1; it is capped at the column's 999.9999.
* **new members**: brand memberships that joined through the session (``BrandMembership.live_session``).

The viewer figures of any number of sessions come from one SQL statement (window functions: each join's
next leave, grouped into presences, clipped, then a running sum over +1/−1 edges for the peak), the order
figures from two grouped queries, new members from one; the results are upserted into SessionStats in one
statement, so a refresh is idempotent and two refreshes at once both leave the same row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from django.db import connection
from django.db.models import Count, DateField, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncMonth, TruncWeek
from django.utils import timezone

from livestream.models import LiveSession, SessionStats, ViewerEvent
from livestream.viewer_events import LATE_GRACE, TAIL
from mall.models import Order
from mall.selectors import purchases
from members.models import BrandMembership
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand, Store
from retail_crm.scoping import Actor, actor_for, in_scope, scoped

ZERO = Decimal("0.00")
CHUNK = 500  # sessions per statement
MAX_CONVERSION = Decimal("999.9999")


@dataclass(frozen=True)
class SessionFigures:
    """A session's figures (see the module docstring for each definition)."""

    session_id: int
    viewers: int = 0
    views: int = 0
    peak_concurrent: int = 0
    watch_seconds: int = 0
    avg_watch_seconds: Decimal = ZERO
    likes: int = 0
    comments: int = 0
    shares: int = 0
    product_clicks: int = 0
    orders: int = 0
    gmv: Decimal = ZERO
    paid_orders: int = 0
    paid_sales: Decimal = ZERO
    buyers: int = 0
    conversion: Decimal = Decimal("0.0000")
    new_members: int = 0


def session_run(session: LiveSession, as_of: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """The session's run [start, end] for its figures (see the module docstring)."""
    start = session.actual_start or session.planned_start
    if session.actual_end is not None:
        end = session.actual_end
    elif session.status == LiveSession.Status.LIVE:
        end = max(start, as_of or timezone.now())
    else:
        end = session.planned_end
    return start, end


# ---------------------------------------------------------------------------- viewer figures (one statement)

def _epoch(column: str) -> str:
    """Seconds since 1970 of a timestamp column, as a double, on either database."""
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {column})::float8"
    # SQLite stores UTC text; julianday keeps milliseconds, so round to them (whole seconds compare exactly).
    return f"ROUND((julianday({column}) - 2440587.5) * 86400.0, 3)"


def _viewer_sql(n_sessions: int) -> str:
    kinds = ViewerEvent.Kind
    values = ", ".join(["(%s, CAST(%s AS DOUBLE PRECISION), CAST(%s AS DOUBLE PRECISION))"] * n_sessions)
    table = ViewerEvent._meta.db_table
    # Kind literals come from the model's choices, never from input.
    return f"""
WITH w(session_id, t0, t1) AS (VALUES {values}),
ev AS (
    SELECT e.session_id, e.viewer_id, e.kind, {_epoch("e.occurred_at")} AS t
    FROM {table} e WHERE e.session_id IN (SELECT session_id FROM w)
),
marks AS (  -- each join with its viewer's next leave (a leave at the same instant sorts first)
    SELECT session_id, viewer_id, kind, t,
           MIN(CASE WHEN kind = '{kinds.LEAVE}' THEN t END) OVER (
               PARTITION BY session_id, viewer_id
               ORDER BY t DESC, CASE WHEN kind = '{kinds.LEAVE}' THEN 0 ELSE 1 END DESC
               ROWS UNBOUNDED PRECEDING) AS next_leave
    FROM ev WHERE kind IN ('{kinds.JOIN}', '{kinds.LEAVE}')
),
stints AS (  -- joins sharing a next leave are one presence
    SELECT m.session_id, m.viewer_id, MIN(m.t) AS a, COALESCE(m.next_leave, w.t1) AS b, COUNT(*) AS joins
    FROM marks m JOIN w ON w.session_id = m.session_id
    WHERE m.kind = '{kinds.JOIN}'
    GROUP BY m.session_id, m.viewer_id, m.next_leave, w.t1
),
kept AS (  -- presences reaching into the run, clipped to it
    SELECT s.session_id, s.viewer_id, s.joins,
           CASE WHEN s.a > w.t0 THEN s.a ELSE w.t0 END AS a,
           CASE WHEN s.b < w.t1 THEN s.b ELSE w.t1 END AS b
    FROM stints s JOIN w ON w.session_id = s.session_id
    WHERE s.a <= w.t1 AND s.b >= w.t0
),
viewing AS (
    SELECT session_id, COUNT(DISTINCT viewer_id) AS uv, SUM(joins) AS pv, SUM(b - a) AS watch
    FROM kept GROUP BY session_id
),
edges AS (
    SELECT session_id, a AS t, 1 AS d FROM kept WHERE b > a
    UNION ALL
    SELECT session_id, b AS t, -1 AS d FROM kept WHERE b > a
),
running AS (
    SELECT session_id, SUM(d) OVER (PARTITION BY session_id ORDER BY t, d ROWS UNBOUNDED PRECEDING) AS n
    FROM edges
),
peak AS (SELECT session_id, MAX(n) AS peak FROM running GROUP BY session_id),
acts AS (
    SELECT ev.session_id,
           SUM(CASE WHEN kind = '{kinds.LIKE}' THEN 1 ELSE 0 END) AS likes,
           SUM(CASE WHEN kind = '{kinds.COMMENT}' THEN 1 ELSE 0 END) AS comments,
           SUM(CASE WHEN kind = '{kinds.SHARE}' THEN 1 ELSE 0 END) AS shares,
           SUM(CASE WHEN kind = '{kinds.PRODUCT_CLICK}' THEN 1 ELSE 0 END) AS clicks
    FROM ev JOIN w ON w.session_id = ev.session_id
    WHERE ev.t >= w.t0 AND ev.t <= w.t1 AND kind NOT IN ('{kinds.JOIN}', '{kinds.LEAVE}')
    GROUP BY ev.session_id
)
SELECT w.session_id, COALESCE(v.uv, 0), COALESCE(v.pv, 0), COALESCE(p.peak, 0), COALESCE(v.watch, 0),
       COALESCE(a.likes, 0), COALESCE(a.comments, 0), COALESCE(a.shares, 0), COALESCE(a.clicks, 0)
FROM w
LEFT JOIN viewing v ON v.session_id = w.session_id
LEFT JOIN peak p ON p.session_id = w.session_id
LEFT JOIN acts a ON a.session_id = w.session_id
"""  # noqa: S608 - table and kind names from the model


def _viewer_figures(runs: dict[int, tuple[dt.datetime, dt.datetime]]) -> dict[int, dict]:
    params: list = []
    for session_id, (start, end) in runs.items():
        params.extend([session_id, round(start.timestamp(), 3), round(end.timestamp(), 3)])
    with connection.cursor() as cursor:
        cursor.execute(_viewer_sql(len(runs)), params)
        rows = cursor.fetchall()
    out = {}
    for session_id, uv, pv, peak, watch, likes, comments, shares, clicks in rows:
        watch_seconds = int(Decimal(str(watch)).quantize(Decimal(1), ROUND_HALF_UP))
        avg = (Decimal(watch_seconds) / uv).quantize(Decimal("0.01"), ROUND_HALF_UP) if uv else ZERO
        out[session_id] = dict(viewers=int(uv), views=int(pv), peak_concurrent=max(int(peak), 0),
                               watch_seconds=watch_seconds, avg_watch_seconds=avg, likes=int(likes),
                               comments=int(comments), shares=int(shares), product_clicks=int(clicks))
    return out


# ---------------------------------------------------------------------------- order figures

def _order_figures(session_ids: Sequence[int]) -> dict[int, dict]:
    """Orders, GMV, purchases, net sales and buyers per session, plus the members who joined through it."""
    out: dict[int, dict] = {pk: {} for pk in session_ids}
    placed = (Order.objects.filter(live_session_id__in=session_ids).values("live_session_id")
              .annotate(orders=Count("pk"), gmv=Sum("total_amount")).order_by())
    for row in placed:
        out[row["live_session_id"]].update(orders=row["orders"], gmv=row["gmv"] or ZERO)
    bought = (purchases(Order.objects.filter(live_session_id__in=session_ids)).values("live_session_id")
              .annotate(paid_orders=Count("pk"), paid_sales=Sum("net"), buyers=Count("member_id", distinct=True))
              .order_by())
    for row in bought:
        out[row["live_session_id"]].update(paid_orders=row["paid_orders"], paid_sales=row["paid_sales"] or ZERO,
                                           buyers=row["buyers"])
    joined = (BrandMembership.objects.filter(live_session_id__in=session_ids).values("live_session_id")
              .annotate(n=Count("pk")).order_by())
    for row in joined:
        out[row["live_session_id"]]["new_members"] = row["n"]
    return out


def _conversion(buyers: int, viewers: int) -> Decimal:
    if not viewers:
        return Decimal("0.0000")
    return min((Decimal(buyers) / viewers).quantize(Decimal("0.0001"), ROUND_HALF_UP), MAX_CONVERSION)


# ---------------------------------------------------------------------------- public: compute and store

def sessions_figures(*, sessions: Iterable[LiveSession], as_of: dt.datetime | None = None) -> list[SessionFigures]:
    """The figures of the sessions (no writes), in the order given; a handful of statements per 500 sessions."""
    as_of = as_of or timezone.now()
    sessions = list(sessions)
    result: list[SessionFigures] = []
    for offset in range(0, len(sessions), CHUNK):
        chunk = sessions[offset:offset + CHUNK]
        runs = {s.pk: session_run(s, as_of) for s in chunk}
        viewing = _viewer_figures(runs)
        selling = _order_figures(list(runs))
        for session in chunk:
            figures = {**viewing[session.pk], **selling[session.pk]}
            figures["conversion"] = _conversion(figures.get("buyers", 0), figures["viewers"])
            result.append(SessionFigures(session_id=session.pk, **figures))
    return result


def session_figures(*, session: LiveSession, as_of: dt.datetime | None = None) -> SessionFigures:
    """One session's figures, computed now (no write)."""
    return sessions_figures(sessions=[session], as_of=as_of)[0]


_STAT_FIELDS = [f.name for f in SessionStats._meta.concrete_fields if f.name not in ("session",)]


def _upsert(figures: list[SessionFigures]) -> list[SessionStats]:
    rows = [SessionStats(**{k: v for k, v in asdict(f).items() if k != "session_id"}, session_id=f.session_id)
            for f in figures]
    if rows:
        SessionStats.objects.bulk_create(rows, update_conflicts=True, unique_fields=["session"],
                                         update_fields=_STAT_FIELDS)
    return rows


def session_stats_refresh(*, session: LiveSession, as_of: dt.datetime | None = None) -> SessionStats:
    """Recompute one session's figures and store them in its SessionStats row (created or replaced).

    Idempotent; ``as_of`` is "now" for a session still live (tests and the demo pass a fixed time).
    """
    return _upsert([session_figures(session=session, as_of=as_of)])[0]


def session_stats_refresh_many(*, sessions: Iterable[LiveSession], as_of: dt.datetime | None = None) -> int:
    """Recompute and store the figures of many sessions, set-based in chunks of 500; returns how many."""
    sessions = list(sessions)
    for offset in range(0, len(sessions), CHUNK):
        _upsert(sessions_figures(sessions=sessions[offset:offset + CHUNK], as_of=as_of))
    return len(sessions)


def session_stats_refresh_all(*, brand_id: int | None = None, as_of: dt.datetime | None = None) -> int:
    """Every session that has begun (or was due to), cancelled ones excepted; for ``run_jobs`` and the demo."""
    as_of = as_of or timezone.now()
    sessions = (LiveSession.objects.exclude(status=LiveSession.Status.CANCELLED)
                .filter(Q(actual_start__isnull=False) | Q(planned_start__lte=as_of)).order_by("pk"))
    if brand_id is not None:
        sessions = sessions.filter(brand_id=brand_id)
    return session_stats_refresh_many(sessions=sessions.iterator(chunk_size=CHUNK), as_of=as_of)


def live_stats_refresh_recent(*, as_of: dt.datetime | None = None) -> int:
    """The sessions whose figures move now: live ones, those that ended in the last two hours (the last
    leaves arrive), and planned ones inside their planned time (streams started without pressing start)."""
    as_of = as_of or timezone.now()
    sessions = LiveSession.objects.filter(
        Q(status=LiveSession.Status.LIVE)
        | Q(status=LiveSession.Status.ENDED, actual_end__gte=as_of - TAIL - dt.timedelta(hours=1))
        | Q(status=LiveSession.Status.PLANNED, planned_start__lte=as_of, planned_end__gte=as_of - TAIL))
    return session_stats_refresh_many(sessions=sessions.order_by("pk"), as_of=as_of)


SETTLING = dt.timedelta(days=30)  # refunds (7-day returns, slow approvals) still move net sales this long


def live_stats_refresh_settling(*, as_of: dt.datetime | None = None) -> int:
    """Nightly: sessions whose run ended in the last 30 days (offline-queued viewer batches for a day,
    refunds and late payments for weeks)."""
    as_of = as_of or timezone.now()
    since = as_of - SETTLING - LATE_GRACE
    sessions = LiveSession.objects.filter(
        Q(status=LiveSession.Status.ENDED, actual_end__gte=since)
        | Q(status=LiveSession.Status.PLANNED, planned_end__gte=since, planned_start__lte=as_of))
    return session_stats_refresh_many(sessions=sessions.order_by("pk"), as_of=as_of)


# ---------------------------------------------------------------------------- summaries per store and brand

class Period(StrEnum):
    WEEK = "week"
    MONTH = "month"


MAX_SUMMARY_DAYS = 731
EARLIEST, LATEST = dt.date(2000, 1, 1), dt.date(2099, 12, 31)  # beyond: no sessions, and no date arithmetic


@dataclass(frozen=True)
class LiveSummaryRow:
    """One brand's or store's sessions planned to start in one local week (from Monday) or month.

    ``planned`` counts the sessions not cancelled (held ones included), ``held`` the ended ones; live
    hours are the actual durations of the held ones. Viewers, buyers, sales and new members add up the
    stored figures of the sessions not cancelled (a viewer of two sessions counts twice); conversion is
    buyers ÷ viewers of those sums.
    """

    period_start: dt.date
    brand_id: int
    store_id: int | None  # None on brand rows
    planned: int
    held: int
    cancelled: int
    live_hours: Decimal
    viewers: int
    views: int
    buyers: int
    orders: int
    gmv: Decimal
    paid_sales: Decimal
    conversion: Decimal
    new_members: int


@dataclass(frozen=True)
class LiveSummary:
    """Brand rows (every session of the brand the caller sees, HQ central and store sessions) and store rows
    (store sessions by host store), per period, over the sessions planned to start in [date_from, date_to]."""

    period: Period
    date_from: dt.date
    date_to: dt.date
    brands: list[LiveSummaryRow]
    stores: list[LiveSummaryRow]


@dataclass(frozen=True)
class LiveTotals:
    """The figures of a set of sessions added up, as defined on :class:`LiveSummaryRow` (cancelled sessions
    counted apart, their figures left out). The API's summaries and the dashboard both add up through
    :func:`live_totals`."""

    planned: int
    held: int
    cancelled: int
    live_hours: Decimal
    viewers: int
    views: int
    buyers: int
    orders: int
    gmv: Decimal
    paid_sales: Decimal
    new_members: int

    @property
    def conversion(self) -> Decimal:
        """Buyers ÷ viewers of the sums (0 without viewers)."""
        return _conversion(self.buyers, self.viewers)


def _hours(value: dt.timedelta | None) -> Decimal:
    seconds = Decimal(int((value or dt.timedelta()).total_seconds()))
    return (seconds / Decimal(3600)).quantize(Decimal("0.01"), ROUND_HALF_UP)


_ACTIVE = ~Q(status=LiveSession.Status.CANCELLED)
_ENDED = Q(status=LiveSession.Status.ENDED)
_TOTALS = dict(
    planned=Count("pk", filter=_ACTIVE), held=Count("pk", filter=_ENDED), cancelled=Count("pk", filter=~_ACTIVE),
    live_time=Sum(ExpressionWrapper(F("actual_end") - F("actual_start"), output_field=DurationField()),
                  filter=_ENDED),
    viewers=Coalesce(Sum("stats__viewers", filter=_ACTIVE), 0),
    views=Coalesce(Sum("stats__views", filter=_ACTIVE), 0),
    buyers=Coalesce(Sum("stats__buyers", filter=_ACTIVE), 0),
    orders=Coalesce(Sum("stats__orders", filter=_ACTIVE), 0),
    gmv=Coalesce(Sum("stats__gmv", filter=_ACTIVE), Value(ZERO)),
    paid_sales=Coalesce(Sum("stats__paid_sales", filter=_ACTIVE), Value(ZERO)),
    new_members=Coalesce(Sum("stats__new_members", filter=_ACTIVE), 0),
)


def _totals(row: dict) -> LiveTotals:
    return LiveTotals(planned=row["planned"], held=row["held"], cancelled=row["cancelled"],
                      live_hours=_hours(row["live_time"]), viewers=row["viewers"], views=row["views"],
                      buyers=row["buyers"], orders=row["orders"], gmv=Decimal(row["gmv"]).quantize(ZERO),
                      paid_sales=Decimal(row["paid_sales"]).quantize(ZERO), new_members=row["new_members"])


def sessions_planned_between(*, actor: Actor, date_from: dt.date, date_to: dt.date) -> QuerySet[LiveSession]:
    """The sessions the actor sees that are planned to start in the local days [date_from, date_to] (cancelled
    ones included: :func:`live_totals` counts them apart)."""
    tz = timezone.get_default_timezone()
    start = dt.datetime.combine(date_from, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return scoped(LiveSession.objects.filter(planned_start__gte=start, planned_start__lt=end), actor)


def live_totals(*, sessions: QuerySet[LiveSession], group_by: Sequence[str] = (),
                order_by: Sequence = ()) -> list[tuple[dict, LiveTotals]]:
    """The totals of ``sessions`` per distinct value of the ``group_by`` fields, as (those values, totals)
    ordered by ``order_by`` (default: the fields); without ``group_by``, one row for them all. One query."""
    if not group_by:
        return [({}, _totals(sessions.aggregate(**_TOTALS)))]
    grouped = sessions.values(*group_by).annotate(**_TOTALS).order_by(*(order_by or group_by))
    return [({name: row[name] for name in group_by}, _totals(row)) for row in grouped]


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(ErrorCode.INVALID, message, status=400, fields={field: [message]})


def default_summary_range(period: Period, today: dt.date) -> tuple[dt.date, dt.date]:
    """Twelve weeks from a Monday, or twelve months from the first of a month, up to ``today`` (or date_to)."""
    if period == Period.WEEK:
        return today - dt.timedelta(days=today.weekday() + 7 * 11), today
    month = today.year * 12 + today.month - 1 - 11
    return dt.date(month // 12, month % 12 + 1, 1), today


def live_summary(*, actor, period: str = Period.WEEK, date_from: dt.date | None = None,
                 date_to: dt.date | None = None, brand: Brand | None = None,
                 store: Store | None = None) -> LiveSummary:
    """Per brand and per store, per local week or month: sessions planned vs held, live hours, viewers,
    sales and conversion, over the sessions the actor sees (narrowed to ``brand`` / ``store``).

    Two grouped queries. 400 for an unknown period or a bad range (more than two years, or reversed); 404
    for a brand or store outside the actor's scope.
    """
    actor = actor if isinstance(actor, Actor) else actor_for(actor)
    if period not in {p.value for p in Period}:
        raise _invalid("period", f'"{period}" is not a valid choice (week or month).')
    period = Period(period)
    tz = timezone.get_default_timezone()
    out_of_range = f"Must lie between {EARLIEST.isoformat()} and {LATEST.isoformat()}."
    date_to = date_to or timezone.localdate(timezone.now(), tz)
    if not EARLIEST <= date_to <= LATEST:
        raise _invalid("date_to", out_of_range)
    date_from = date_from or max(default_summary_range(period, date_to)[0], EARLIEST)
    if not EARLIEST <= date_from <= LATEST:
        raise _invalid("date_from", out_of_range)
    if date_to < date_from:
        raise _invalid("date_to", "Must not be before date_from.")
    if (date_to - date_from).days >= MAX_SUMMARY_DAYS:
        raise _invalid("date_from", f"At most {MAX_SUMMARY_DAYS} days at a time.")
    for obj, what in ((brand, "brand"), (store, "store")):
        if obj is not None and not in_scope(obj, actor):
            raise ApplicationError(ErrorCode.NOT_FOUND, f"No such {what}.", status=404)

    sessions = sessions_planned_between(actor=actor, date_from=date_from, date_to=date_to)
    if brand is not None:
        sessions = sessions.filter(brand=brand)
    if store is not None:
        sessions = sessions.filter(host_store=store)
    trunc = TruncWeek if period == Period.WEEK else TruncMonth
    sessions = sessions.annotate(period_start=trunc("planned_start", tzinfo=tz, output_field=DateField()))

    def rows(*group_by: str) -> list[LiveSummaryRow]:
        return [LiveSummaryRow(period_start=group["period_start"], brand_id=group["brand_id"],
                               store_id=group.get("host_store_id"), conversion=totals.conversion, **asdict(totals))
                for group, totals in live_totals(sessions=sessions, group_by=("period_start", *group_by))]

    brand_rows = rows("brand_id")
    sessions = sessions.filter(kind=LiveSession.Kind.STORE)
    store_rows = rows("brand_id", "host_store_id")
    return LiveSummary(period=period, date_from=date_from, date_to=date_to, brands=brand_rows, stores=store_rows)
