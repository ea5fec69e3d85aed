"""The dashboard's metrics: one function per metric, each with its exact definition (DOMAIN.md).

Every function is keyword-only, takes ``actor`` (``retail_crm.scoping.Actor``) and
``filters`` (:class:`Filters`: date range, brand, region, store, channel) and reads
only through ``retail_crm.scoping.scoped``. Scalar metrics return a :class:`Metric`
(value, numerator/denominator for ratios, trend, and the same period last year);
tables return lists of small dataclasses. The dashboard pages, the exports and the
staff API (``/api/v1/analytics/…``) all call these functions, so they show the same
numbers for the same filters.

Every function reads pre-built facts (``analytics.facts``), never raw orders:
day facts for trends and for the days at a period's edges, month rollups for the
whole calendar months a period covers (rankings, guide KPIs, store months), and
the distinct-member counts of ``MemberMonthFact`` (a calendar month) or
``MemberWindowFact`` (any other period) for the member-level rates (a guide's own
figures, and windows not built, are counted live from ``PurchaseFact``). Trends are
daily for periods up to 92 days, monthly beyond; monthly metrics always have a
monthly trend.

Periods and days are local days (settings.TIME_ZONE); an order belongs to the day
it was placed (``ordered_at``), as in attribution and RFML. "Same period last year"
(同比) is the same dates one year earlier (29 February → 28 February); "previous
period" (环比) is the period of the same length ending the day before it starts
(see :func:`with_previous`). A period may not end after today; one that includes
today is partial (its last day, and the month it ends in, are not over yet). Ratios are
``Decimal`` fractions with 4 places (0.5600 = 56 %), ``None`` when the denominator
is zero. Money is ``Decimal`` CNY with 2 places.

Where sales are filed (store and guide): the store **credited** by attribution
(``SalesCredit`` store credit: POS store, livestream host store, or the store of the
member's bound guide; HQ pool = no store) and the guide credited with the exclusive
credit (else the selling credit); orders not (yet) attributed and orders that are
no purchase (unpaid, fully refunded) fall back to the order's own store and guide.
Guide KPIs credit both the exclusive and the selling guide (as in SalesCredit).

Sales (from ``SalesFact``; brand-level rollup when no region/store is involved):

- ``gmv``: Σ order amount (``total_amount``) of every order placed in the period,
  unpaid, cancelled and refunded ones included.
- ``sales_flow`` (销售流水): Σ (paid − refunded) over orders paid in the period.
- ``unpaid_ratio``: Σ amount of orders placed but never paid ÷ GMV.
- ``refund_ratio``: Σ refunded ÷ Σ paid, over orders paid in the period.
  (So sales flow = GMV × (1 − unpaid ratio) × (1 − refund ratio).)
- ``average_order_value`` (客单价): sales flow ÷ paid orders.
- ``private_domain_share`` (私域占比): sales flow of the private-domain channels
  (``mall.models.PRIVATE_DOMAIN_CHANNELS``: mini-program, store and HQ livestream,
  community, distribution) ÷ sales flow of all channels, offline included.
- ``store_monthly_private_domain_sales`` (单店月效): private-domain sales flow per
  store and calendar month; the metric's value is the average over store-months
  with any sales in the period (stores of the scope, credited store).
- ``card_opening_rate`` (开卡率): paid offline (store POS) orders with a member ÷
  all paid offline orders.
- ``sales_revenue``: the sales flow (core indicator 1).
- ``gross_profit`` (毛利; once called "operating profit", ``operating_profit`` stays as a deprecated
  alias): sales flow − cost of goods sold (no expenses are taken into account), where cost of goods =
  Σ quantity × ``Sku.cost_price`` over lines of orders paid in the period minus
  the cost of units returned by completed refunds (core indicator 2).
- ``inventory_turnover_days``: average stock value at cost over the days of the
  period that have an inventory snapshot ÷ (cost of goods sold ÷ days in the
  period) (core indicator 3). Stock is the online warehouse's, per brand, so this
  is defined for group and brand views only (None with a region or store filter,
  or for staff scoped below brand). History starts with the first snapshot.

Members (purchases as defined by ``mall.selectors.purchases``: paid, net > 0;
counted at the viewer's level — group, brand, region or store — because distinct
members do not add up). Every member rate reads exactly the chosen period (issue 24):
a calendar month (the current one so far included) takes the monthly definition
(``MemberMonthFact``, ``Metric.basis`` "month"); any other period is one window over
exactly its days — distinct members of those days, never a day outside them
(``MemberWindowFact`` when the window was built, else counted live; ``basis``
"period", labelled "… in the period" on the page, the export and the API), with a
trend of the calendar months lying wholly inside the period:

- ``monthly_repurchase_rate`` (单月复购率 / 区间复购率): members with ≥ 2 purchases in
  the month (the period) ÷ members with ≥ 1 purchase in it.
- ``purchase_frequency``: purchases ÷ purchasing members, over the month (the period).
- ``cross_purchase_rate``: members who bought both online (any non-POS channel) and
  offline (store POS) in the month (the period) ÷ purchasing members in it. The
  channel filter does not apply (it would make the rate zero by construction).
- ``cross_brand_guided_share``: the share of guided sales whose order brand differs
  from the credited guide's brand: each guided order's amount counted once (its
  largest guide credit), however many guides are credited; an order is cross-brand
  if any credited guide is of another brand (``GuidedOrderFact``). The brand, region
  and store filters (and the scope) select the guides (their store).
- ``wecom_friend_rate``: store buyers (members with an offline purchase in the
  month / period) who are, at its end, a WeCom friend of a guide of that
  purchase's brand ÷ store buyers; counted per member and brand.
- ``member_online_rate`` (会员在线率): members active in the mini-program in the
  month / period (a ``MemberDailyActivity`` row of the brand) ÷ members
  (memberships held at its end); counted per membership (member × brand).
  Region/store filters use the membership's join store.
- ``member_growth``: members at the end of the period and new memberships in the
  period, by join channel (``BrandMembership.join_channel``); a person who joins
  two brands counts once per brand.

Guides, segments, livestream:

- ``guide_kpis``: per guide: online and offline credited sales (exclusive +
  selling credits), members served (members bound to the guide at the end of the
  period), new members bound (bindings started in the period by QR scan or share
  link), WeCom friends added, shares, share PV/UV and material PV/UV (view events
  carrying one of the guide's share tokens; UV = distinct viewers per day, summed),
  tasks assigned and executed, task execution rate (executed ÷ assigned, over
  assignments made in the period), commission earned (earnings − reversals
  booked in the period).
- ``task_execution_rate``: task assignments made in the period that were executed
  ÷ task assignments made in the period.
- ``care_list_completion``: care-list items of the period's days marked done ÷
  items of those days.
- ``segment_sizes``: members per RFML class per run (``RfmRun.counts``), per brand,
  for runs as of a day in the period (over time).
- ``segment_sales``: per RFML class: members (current class sizes) and the buyers,
  purchases and sales flow of the calendar months the period overlaps, by the class
  the buyer had when the month was last built (a closed month keeps its classes).
- ``segment_transitions``: members per (class in run A, class in run B) of one brand.
- ``consumption_cycles``: per brand, the latest run's consumption cycle (days).
- ``livestream_summary``: over sessions planned to start in the period, cancelled
  ones left out, added up by ``livestream.metrics.live_totals`` (as the API's
  ``live_summary`` is): sessions held (ended),
  hours live (Σ actual end − actual start of those), viewers (Σ session UV),
  buyers, conversion (Σ buyers ÷ Σ viewers), GMV and paid sales (from
  ``SessionStats``), split HQ central vs store sessions (1+N), per brand and per
  host store.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd
from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    FloatField,
    Max,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, NullIf, TruncMonth
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from analytics.models import (
    BrandSalesFact,
    EngagementFact,
    GuidedOrderFact,
    GuideMonthFact,
    GuideMonthToDateFact,
    GuideRegionFact,
    GuideSalesFact,
    InventorySnapshot,
    MemberCountFact,
    MemberGrowthFact,
    MemberMonthFact,
    MemberWindowFact,
    PurchaseFact,
    SalesFact,
    SegmentMonthFact,
    StoreMonthFact,
    StoreMonthToDateFact,
)
from livestream.metrics import LiveTotals, live_totals, sessions_planned_between
from livestream.models import LiveSession
from mall.models import OFFLINE_CHANNELS, PRIVATE_DOMAIN_CHANNELS, Channel
from members.models import BrandMembership, GuideBinding, JoinChannel, MemberDailyActivity, WeComFriendship
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand, Guide, Region, Store
from retail_crm.money import money
from retail_crm.scoping import Actor, scoped
from segments.models import MemberRfm, RfmClassChange, RfmRun, Segment

RATIO_PLACES = Decimal("0.0001")
MONEY_PLACES = Decimal("0.01")
ZERO = Decimal("0.00")

#: The longest period a query may cover (a year and a day, so "last 12 months + today" fits).
MAX_PERIOD_DAYS = 367
#: Periods up to this many days get a daily trend; longer ones a monthly trend.
DAILY_TREND_MAX_DAYS = 92


# ---------------------------------------------------------------------------- inputs and results


@dataclass(frozen=True)
class Filters:
    """What every metric is computed over: a local date range, optionally one brand/region/store/channel."""

    date_from: dt.date
    date_to: dt.date
    brand_id: int | None = None
    region_id: int | None = None
    store_id: int | None = None
    channel: str | None = None

    @property
    def days(self) -> int:
        return (self.date_to - self.date_from).days + 1

    @property
    def trend_grain(self) -> str:
        """``"day"`` or ``"month"``: how the trend of a non-monthly metric is bucketed."""
        return "day" if self.days <= DAILY_TREND_MAX_DAYS else "month"

    def last_year(self) -> Filters:
        """The same dates one year earlier (29 February becomes 28 February)."""
        return replace(self, date_from=_year_earlier(self.date_from), date_to=_year_earlier(self.date_to))

    def previous(self) -> Filters:
        """环比: the period just before this one.

        Whole calendar months compare with as many whole months before them (June with May, a quarter with
        the quarter before), as month-on-month reports do, so their member rates come from the monthly rollups
        too; any other period compares with the period of the same length that ends the day before it starts.
        """
        date_to = self.date_from - dt.timedelta(days=1)
        if self.date_from.day == 1 and self.date_to == _month_end(self.date_to):
            months = (self.date_to.year - self.date_from.year) * 12 + self.date_to.month - self.date_from.month + 1
            first = self.date_from
            for _ in range(months):
                first = _month_start(first - dt.timedelta(days=1))
            return replace(self, date_from=first, date_to=date_to)
        return replace(self, date_from=date_to - dt.timedelta(days=self.days - 1), date_to=date_to)

    def is_partial(self, today: dt.date) -> bool:
        """Whether the period includes today (its figures are still growing)."""
        return self.date_from <= today <= self.date_to


def _year_earlier(day: dt.date) -> dt.date:
    year = day.year - 1
    return day.replace(year=year, day=min(day.day, calendar.monthrange(year, day.month)[1]))


Number = Decimal | int


@dataclass(frozen=True)
class Point:
    """One point of a trend: ``period`` is the day, or the first day of the month for monthly trends."""

    period: dt.date
    value: Number | None
    numerator: Number | None = None
    denominator: Number | None = None


@dataclass(frozen=True)
class Metric:
    """A scalar metric over the period, its trend and the same period last year.

    ``unit`` is one of ``"cny"``, ``"ratio"``, ``"count"``, ``"days"``, ``"per_member"``.
    For ratios ``numerator``/``denominator`` are the two sums; ``value`` is None when
    the denominator is zero. ``last_year`` has no trend of its own unless asked for.
    """

    key: str
    unit: str
    value: Number | None
    numerator: Number | None = None
    denominator: Number | None = None
    trend: tuple[Point, ...] = ()
    last_year: Metric | None = None
    # 环比: the previous period of the same length, without trend (set by ``with_previous``).
    previous: Metric | None = None
    #: Member rates only: "month" (the period is a calendar month: the monthly definition) or "period" (any
    #: other period: one window over exactly its days). Empty for every other metric.
    basis: str = ""


@dataclass(frozen=True)
class ChannelCount:
    """New memberships through one join channel, this period and the same period last year."""

    join_channel: str
    new_members: int
    new_members_last_year: int


@dataclass(frozen=True)
class MemberGrowth:
    """Members at the end of the period, new memberships in it, and new ones by join channel."""

    members: Metric
    new_members: Metric
    by_join_channel: tuple[ChannelCount, ...]


@dataclass(frozen=True)
class RankRow:
    """One brand, region or store in a ranking (sales are credited sales; last year for growth)."""

    level: str
    id: int | None
    code: str
    name: str
    brand_code: str
    gmv: Decimal
    sales_flow: Decimal
    paid_orders: int
    average_order_value: Decimal | None
    private_domain_sales: Decimal
    private_domain_share: Decimal | None
    refund_ratio: Decimal | None
    sales_flow_last_year: Decimal
    growth: Decimal | None  # sales flow vs last year: (this − last) ÷ last


@dataclass(frozen=True)
class StoreMonthRow:
    """A store's private-domain sales flow in one calendar month (单店月效), and its total sales flow."""

    store_id: int
    store_code: str
    store_name: str
    month: dt.date
    private_domain_sales: Decimal
    sales_flow: Decimal


@dataclass(frozen=True)
class GuideKpiRow:
    """A guide's KPIs over the period (see ``guide_kpis`` in the module docstring)."""

    guide_id: int
    guide_code: str
    guide_name: str
    store_code: str
    store_name: str
    brand_code: str
    online_sales: Decimal
    offline_sales: Decimal
    sales: Decimal
    cross_brand_sales: Decimal
    members_served: int
    new_members: int
    wecom_friends_added: int
    shares: int
    share_pv: int
    share_uv: int
    material_pv: int
    material_uv: int
    tasks_assigned: int
    tasks_executed: int
    task_execution_rate: Decimal | None
    commission: Decimal


@dataclass(frozen=True)
class SegmentSize:
    """Members in one RFML class in one run of a brand."""

    brand_code: str
    run_id: int
    as_of: dt.date
    segment: str
    members: int


@dataclass(frozen=True)
class SegmentSales:
    """One RFML class (members' current class): how many members, and their purchases in the period."""

    segment: str
    members: int
    buyers: int
    purchases: int
    sales_flow: Decimal


@dataclass(frozen=True)
class SegmentTransition:
    """Members who were in ``from_segment`` at run A and in ``to_segment`` at run B ("" = no class)."""

    from_segment: str
    to_segment: str
    members: int


@dataclass(frozen=True)
class CycleRow:
    """A brand's consumption cycle from its latest RFML run (and the override, if set)."""

    brand_code: str
    brand_name: str
    as_of: dt.date | None
    cycle_days: Decimal | None
    override_days: int | None


@dataclass(frozen=True)
class LiveFigures:
    """Livestream figures over a set of sessions."""

    sessions: int
    hours: Decimal
    viewers: int
    buyers: int
    conversion: Decimal | None
    gmv: Decimal
    paid_sales: Decimal


@dataclass(frozen=True)
class LiveRow:
    """Livestream figures of one brand or one host store."""

    level: str  # "brand" or "store"
    id: int
    code: str
    name: str
    figures: LiveFigures


@dataclass(frozen=True)
class LivestreamSummary:
    """All sessions, HQ central vs store sessions (1+N), per brand and per host store, and last year."""

    total: LiveFigures
    central: LiveFigures
    store: LiveFigures
    by_brand: tuple[LiveRow, ...]
    by_store: tuple[LiveRow, ...]
    total_last_year: LiveFigures


@dataclass(frozen=True)
class Overview:
    """Every headline metric of the overview page (each a Metric with trend and last year)."""

    gmv: Metric
    sales_flow: Metric
    unpaid_ratio: Metric
    refund_ratio: Metric
    average_order_value: Metric
    private_domain_share: Metric
    member_growth: MemberGrowth
    monthly_repurchase_rate: Metric
    purchase_frequency: Metric
    cross_purchase_rate: Metric
    cross_brand_guided_share: Metric
    wecom_friend_rate: Metric
    member_online_rate: Metric
    card_opening_rate: Metric


@dataclass(frozen=True)
class CoreIndicators:
    """The three core indicators (and the cost of goods behind gross profit)."""

    sales_revenue: Metric
    cost_of_goods: Metric
    gross_profit: Metric
    inventory_turnover_days: Metric

    @property
    def operating_profit(self) -> Metric:
        """Deprecated name of ``gross_profit`` (it never took expenses into account)."""
        return self.gross_profit


# ---------------------------------------------------------------------------- filters from a query string


FILTER_FIELDS = ("from", "to", "brand", "region", "store", "channel")
CODE_PATTERN = re.compile(r"[-a-zA-Z0-9_]+")


def parse_filters(params: Mapping[str, str], *, actor: Actor, today: dt.date | None = None,
                  default_days: int = 30) -> Filters:
    """Filters from the query: ``from``, ``to`` (ISO dates), ``brand``, ``region``, ``store`` (codes), ``channel``.

    Defaults: ``to`` = today, ``from`` = ``to`` − (default_days − 1). Raises
    ``ApplicationError`` 400 with field messages for malformed or inconsistent
    values, and 404 for a brand/region/store that exists but lies outside the
    actor's scope. ``region`` codes are unique per brand: give ``brand`` too when
    the code is ambiguous.
    """
    from analytics.services import local_today
    from retail_crm.models import Region, Store

    today = today or local_today()
    errors: dict[str, list[str]] = {}

    def date_param(name: str) -> dt.date | None:
        raw = (params.get(name) or "").strip()
        if not raw:
            return None
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            errors[name] = [str(_("Enter a date as YYYY-MM-DD."))]
            return None

    date_to = date_param("to")
    date_from = date_param("from")
    for name, value in (("from", date_from), ("to", date_to)):
        if value is not None and not 2000 <= value.year <= 2999:
            errors[name] = [str(_("Enter a date between 2000 and 2999."))]
    if errors:
        raise ApplicationError(ErrorCode.INVALID, str(_("Invalid filters.")), fields=errors)
    date_to = date_to or today
    date_from = date_from or date_to - dt.timedelta(days=default_days - 1)
    if date_to > today or date_from > today:
        # A future period has no figures yet: comparing it would show −100 % against nothing.
        errors["from" if date_to <= today else "to"] = [
            str(_("Dates after today (%(today)s) have no figures yet: choose a period that ends today or earlier.")
                % {"today": today.isoformat()})]
    elif date_from > date_to:
        errors["from"] = [str(_("The start date is after the end date."))]
    elif (date_to - date_from).days + 1 > MAX_PERIOD_DAYS:
        errors["to"] = [str(_("A period covers at most %(days)s days.") % {"days": MAX_PERIOD_DAYS})]

    channel = (params.get("channel") or "").strip() or None
    if channel is not None and channel not in Channel.values:
        errors["channel"] = [str(_("Unknown channel. One of: %(values)s.") % {"values": ", ".join(Channel.values)})]

    brand = region = store = None
    codes = {name: (params.get(name) or "").strip() for name in ("brand", "region", "store")}
    region_brand = ""
    if ":" in codes["region"]:
        # "BRAND:code" names one region whatever brand filter comes with it (region codes repeat across brands).
        region_brand, codes["region"] = codes["region"].split(":", 1)
        if not CODE_PATTERN.fullmatch(region_brand) or len(region_brand) > 32 or not codes["region"]:
            errors["region"] = [str(_("A region is BRAND:code or a region code."))]
        elif codes["brand"] and codes["brand"] != region_brand:
            errors["region"] = [str(_("This region belongs to another brand."))]
    for name, code in codes.items():
        if name in errors:
            continue
        if len(code) > 32:
            errors[name] = [str(_("At most 32 characters."))]
        elif code and not CODE_PATTERN.fullmatch(code):
            errors[name] = [str(_("A code has only letters, digits, hyphens and underscores."))]
    if codes["brand"] and "brand" not in errors:
        brand = Brand.objects.filter(code=codes["brand"]).first()
        if brand is None:
            errors["brand"] = [str(_("No brand with this code."))]
    if codes["region"] and "region" not in errors:
        regions = Region.objects.filter(code=codes["region"])
        if region_brand:
            regions = regions.filter(brand__code=region_brand)
        elif brand is not None:
            regions = regions.filter(brand=brand)
        elif actor.brand_id:
            regions = regions.filter(brand_id=actor.brand_id)
        found = list(regions[:2])
        if not found:
            errors["region"] = [str(_("No region with this code."))]
        elif len(found) > 1:
            errors["region"] = [str(_("Several brands have a region with this code; give the brand too."))]
        else:
            region = found[0]
    if codes["store"] and "store" not in errors:
        store = Store.objects.filter(code=codes["store"]).first()
        if store is None:
            errors["store"] = [str(_("No store with this code."))]
    if region is not None and brand is not None and region.brand_id != brand.pk:
        errors["region"] = [str(_("This region belongs to another brand."))]
    if store is not None and brand is not None and store.brand_id != brand.pk:
        errors["store"] = [str(_("This store belongs to another brand."))]
    if store is not None and region is not None and store.region_id != region.pk:
        errors["store"] = [str(_("This store lies in another region."))]
    if errors:
        raise ApplicationError(ErrorCode.INVALID, str(_("Invalid filters.")), fields=errors)

    for obj, model in ((brand, Brand), (region, Region), (store, Store)):
        if obj is not None and not scoped(model.objects.filter(pk=obj.pk), actor).exists():
            raise ApplicationError(ErrorCode.NOT_FOUND, str(_("Not found.")), status=404)
    return Filters(date_from=date_from, date_to=date_to, brand_id=brand.pk if brand else None,
                   region_id=region.pk if region else (store.region_id if store else None),
                   store_id=store.pk if store else None, channel=channel)


def filters_as_query(filters: Filters) -> dict[str, str]:
    """The query parameters that reproduce ``filters`` (for shareable URLs and export links)."""
    from retail_crm.models import Region, Store

    query = {"from": filters.date_from.isoformat(), "to": filters.date_to.isoformat()}
    if filters.brand_id:
        query["brand"] = Brand.objects.filter(pk=filters.brand_id).values_list("code", flat=True).first() or ""
    if filters.store_id:
        query["store"] = Store.objects.filter(pk=filters.store_id).values_list("code", flat=True).first() or ""
    elif filters.region_id:
        region = Region.objects.select_related("brand").filter(pk=filters.region_id).first()
        if region is not None:
            query["region"] = region.code
            query.setdefault("brand", region.brand.code)
    if filters.channel:
        query["channel"] = filters.channel
    return {k: v for k, v in query.items() if v}


# ---------------------------------------------------------------------------- shared helpers


def _ratio(numerator, denominator) -> Decimal | None:
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(RATIO_PLACES, ROUND_HALF_UP)


def _per(numerator, denominator, places: Decimal = MONEY_PLACES) -> Decimal | None:
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(places, ROUND_HALF_UP)


def _as_date(value) -> dt.date:
    """A date from a raw SQL row (a date, a datetime or ISO text depending on the database)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _month_end(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _months(date_from: dt.date, date_to: dt.date) -> list[dt.date]:
    """First days of the calendar months overlapping [date_from, date_to]."""
    months, month = [], _month_start(date_from)
    while month <= date_to:
        months.append(month)
        month = _month_end(month) + dt.timedelta(days=1)
    return months


def _month_of(filters: Filters, month: dt.date) -> Filters:
    """The filters narrowed to one calendar month, cut to the period."""
    return replace(filters, date_from=max(month, filters.date_from), date_to=min(_month_end(month), filters.date_to))


def _periods(filters: Filters, grain: str) -> list[dt.date]:
    if grain == "month":
        return _months(filters.date_from, filters.date_to)
    return [filters.date_from + dt.timedelta(days=n) for n in range(filters.days)]


def _period_expr(grain: str, field_name: str = "day"):
    return TruncMonth(field_name) if grain == "month" else F(field_name)


def _raw(queryset, select: str, tail: str = "") -> list[tuple]:
    """Run ``SELECT {select} FROM ({queryset}) t {tail}``: an aggregate over an aggregate, in the database."""
    inner, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {select} FROM ({inner}) t {tail}", params)  # noqa: S608 (no user input in SQL)
        return cursor.fetchall()


#: Up to this many keys the top ones are found from the ordering column first (a chart, a page of a table);
#: an all-rows table (thousands of stores) is one query: the first pass would name every key again.
TOP_FIRST_LIMIT = 1000


def _top_sums(parts: list, columns: tuple[str, ...], *, order: str, limit: int | None,
              keys: list[int] | None = None, order_columns: tuple[str, ...] | None = None,
              drop_empty: bool = False) -> list[dict]:
    """Σ ``columns`` per key over several grouped querysets (UNION ALL), largest ``order`` first, in one query.

    Each part is ``(queryset, present)`` or ``(queryset, present, sign)``: a queryset
    with a ``k`` column (the key) and some of ``columns`` as ``c_<column>`` (prefixed:
    an annotation named like a field would shadow it; the rest count as 0), added
    (sign 1) or taken away (sign -1); ``order`` is an SQL expression over the summed
    columns. Month rollups and month-to-date rows are added up this way without
    fetching every key into Python.

    When parts are taken away (or with ``drop_empty``), a key whose columns all sum to
    0 had nothing in the period and is left out. With ``order_columns`` (the columns
    ``order`` reads) and a ``limit``, the top keys are first found from those columns
    alone (when ``limit`` is at most ``TOP_FIRST_LIMIT``); if each of them has one of
    those columns non-zero (so it had something in the period), only their rows are
    summed whole. Else the one query over every column answers.
    """
    drop = drop_empty or any(rest and rest[0] < 0 for _qs, _present, *rest in parts)
    if order_columns and limit is not None and limit <= TOP_FIRST_LIMIT and keys is None:
        top = _sum_query(parts, order_columns, order=order, limit=limit, keys=None, having=False)
        if all(any(row[c] for c in order_columns) for row in top):
            if not top:
                return []
            rows = {row["k"]: row for row in _sum_query(parts, columns, order=order, limit=None,
                                                         keys=[row["k"] for row in top], having=False)}
            return [rows[row["k"]] for row in top]
    return _sum_query(parts, columns, order=order, limit=limit, keys=keys, having=drop)


def _sum_query(parts: list, columns: tuple[str, ...], *, order: str, limit: int | None, keys: list[int] | None,
               having: bool) -> list[dict]:
    """The query of ``_top_sums`` (``having``: leave out keys whose columns all sum to 0)."""
    selects, params = [], []
    for queryset, present, *rest in parts:
        negate = "-" if rest and rest[0] < 0 else ""
        if keys is not None:
            queryset = queryset.filter(k__in=keys)
        inner, inner_params = queryset.query.sql_with_params()
        cols = ", ".join(f"{negate}COALESCE(t.c_{c}, 0) AS {c}" if c in present else f"0 AS {c}" for c in columns)
        selects.append(f"SELECT t.k AS k, {cols} FROM ({inner}) t")  # noqa: S608 (SQL of querysets)
        params.extend(inner_params)
    if not selects:
        return []
    sums = ", ".join(f"SUM(u.{c}) AS {c}" for c in columns)
    tail = f" LIMIT {int(limit)}" if limit is not None else ""
    having_sql = " HAVING NOT (" + " AND ".join(f"SUM(u.{c}) = 0" for c in columns) + ")" if having else ""
    sql = (f"SELECT u.k, {sums} FROM ({' UNION ALL '.join(selects)}) u GROUP BY u.k{having_sql} "  # noqa: S608
           f"ORDER BY {order} DESC, u.k{tail}")
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The planner cannot see how many keys come out of the UNION ALL (it assumes 200) and picks a
            # parallel partial aggregate that spills and costs more than it saves: 35,200 guides over three
            # rollup slices took 150–200 ms with two workers, 100 ms without.
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cursor.execute(sql, params)
        return [dict(zip(("k", *columns), row, strict=True)) for row in cursor.fetchall()]


def _local_end(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=timezone.get_default_timezone())


def _org_filter(filters: Filters, *, brand: str | None = "brand_id", region: str | None = "store__region_id",
                store: str | None = "store_id", channel: str | None = "channel") -> Q:
    """The filters' brand/region/store/channel as a Q over a fact table (a lookup None: not applicable)."""
    q = Q()
    for value, lookup in ((filters.brand_id, brand), (filters.region_id, region), (filters.store_id, store),
                          (filters.channel, channel)):
        if value is not None and lookup is not None:
            q &= Q(**{lookup: value})
    return q


def _ratio_metric(key: str, rows: dict[dt.date, tuple], totals: tuple, periods: list[dt.date],
                  last_year: Metric | None = None) -> Metric:
    """A ratio Metric from per-period (numerator, denominator) pairs and the period's totals."""
    trend = tuple(Point(period=p, value=_ratio(*rows.get(p, (0, 0))), numerator=rows.get(p, (0, 0))[0],
                        denominator=rows.get(p, (0, 0))[1]) for p in periods)
    return Metric(key=key, unit="ratio", value=_ratio(*totals), numerator=totals[0], denominator=totals[1],
                  trend=trend, last_year=last_year)


# ---------------------------------------------------------------------------- sales (SalesFact)

_PRIVATE = [c.value for c in PRIVATE_DOMAIN_CHANNELS]
_OFFLINE = [c.value for c in OFFLINE_CHANNELS]

_SALES_SUMS = {
    "orders": lambda: Sum("orders"),
    "gmv": lambda: Sum("gmv"),
    "paid_orders": lambda: Sum("paid_orders"),
    "paid_amount": lambda: Sum("paid_amount"),
    "refunded_amount": lambda: Sum("refunded_amount"),
    "sales_flow": lambda: Sum("sales_flow"),
    "unpaid_orders": lambda: Sum("unpaid_orders"),
    "unpaid_amount": lambda: Sum("unpaid_amount"),
    "cost_of_goods": lambda: Sum("cost_of_goods"),
    "private_flow": lambda: Sum("sales_flow", filter=Q(channel__in=_PRIVATE)),
    "offline_paid_orders": lambda: Sum("paid_orders", filter=Q(channel__in=_OFFLINE)),
    "offline_member_paid_orders": lambda: Sum("member_paid_orders", filter=Q(channel__in=_OFFLINE)),
    "online_cost_of_goods": lambda: Sum("cost_of_goods", filter=~Q(channel__in=_OFFLINE)),
}
_SALES_MONEY = {"gmv", "paid_amount", "refunded_amount", "sales_flow", "unpaid_amount", "cost_of_goods",
                "private_flow", "online_cost_of_goods"}


def _rollup_allowed(actor: Actor, filters: Filters) -> bool:
    """The brand rollup answers group- and brand-wide questions (no region or store involved)."""
    return (filters.region_id is None and filters.store_id is None
            and (actor.is_superuser or actor.level in ("group", "brand")))


def _sales_facts(actor: Actor, filters: Filters, *, full_grain: bool = False):
    """The scoped, filtered sales facts: the brand rollup when it can answer, else the full grain."""
    if not full_grain and _rollup_allowed(actor, filters):
        qs = scoped(BrandSalesFact.objects.all(), actor)
        q = _org_filter(filters, region=None, store=None)
    else:
        qs = scoped(SalesFact.objects.all(), actor)
        q = _org_filter(filters)
    return qs.filter(q, day__gte=filters.date_from, day__lte=filters.date_to).order_by()


def _clean_sums(row: dict) -> dict:
    return {k: (money(v) if k in _SALES_MONEY else int(v or 0)) for k, v in row.items() if k in _SALES_SUMS}


@dataclass(frozen=True)
class _SalesSeries:
    filters: Filters
    grain: str
    periods: list[dt.date]
    by_period: dict[dt.date, dict]
    totals: dict


def _sales_series(actor: Actor, filters: Filters, grain: str | None = None) -> _SalesSeries:
    """Every sales sum per trend period (one grouped query) and over the whole period."""
    grain = grain or filters.trend_grain
    # Annotations are prefixed: a name equal to a field ("gmv") would shadow it for the sums after it.
    rows = (_sales_facts(actor, filters).annotate(period=_period_expr(grain)).values("period")
            .annotate(**{f"sum_{k}": make() for k, make in _SALES_SUMS.items()}))
    by_period = {_as_date(r["period"]): _clean_sums({k[4:]: v for k, v in r.items() if k.startswith("sum_")})
                 for r in rows}
    totals = {k: (sum((p[k] for p in by_period.values()), ZERO) if k in _SALES_MONEY
                  else sum(p[k] for p in by_period.values())) for k in _SALES_SUMS}
    return _SalesSeries(filters=filters, grain=grain, periods=_periods(filters, grain), by_period=by_period,
                        totals=totals)


def _empty_sums() -> dict:
    return {k: (ZERO if k in _SALES_MONEY else 0) for k in _SALES_SUMS}


def _sales_metric(key: str, series: _SalesSeries, last: _SalesSeries | None) -> Metric:
    """Turn sales sums into one of the sales metrics (definitions in the module docstring)."""
    unit, numerator, denominator = _SALES_METRICS[key]

    def value(sums: dict):
        n = numerator(sums)
        if denominator is None:
            return n, n, None
        d = sums[denominator]
        v = _ratio(n, d) if unit == "ratio" else _per(n, d)
        return v, n, d

    def build(s: _SalesSeries, with_last: bool) -> Metric:
        v, n, d = value(s.totals)
        trend = []
        for p in s.periods:
            pv, pn, pd_ = value(s.by_period.get(p) or _empty_sums())
            trend.append(Point(period=p, value=pv, numerator=pn if d is not None else None,
                               denominator=pd_))
        return Metric(key=key, unit=unit, value=v, numerator=n if d is not None else None, denominator=d,
                      trend=tuple(trend), last_year=build(last, False) if with_last and last else None)

    return build(series, True)


_SALES_METRICS = {
    # key: (unit, numerator from sums, denominator key or None for a plain amount)
    "gmv": ("cny", lambda s: s["gmv"], None),
    "sales_flow": ("cny", lambda s: s["sales_flow"], None),
    "sales_revenue": ("cny", lambda s: s["sales_flow"], None),
    "cost_of_goods": ("cny", lambda s: s["cost_of_goods"], None),
    "gross_profit": ("cny", lambda s: s["sales_flow"] - s["cost_of_goods"], None),
    "unpaid_ratio": ("ratio", lambda s: s["unpaid_amount"], "gmv"),
    "refund_ratio": ("ratio", lambda s: s["refunded_amount"], "paid_amount"),
    "average_order_value": ("cny", lambda s: s["sales_flow"], "paid_orders"),
    "private_domain_share": ("ratio", lambda s: s["private_flow"], "sales_flow"),
    "card_opening_rate": ("ratio", lambda s: s["offline_member_paid_orders"], "offline_paid_orders"),
}


def _sales(key: str, actor: Actor, filters: Filters) -> Metric:
    series = _sales_series(actor, filters)
    last = _sales_series(actor, filters.last_year(), series.grain)
    return _sales_metric(key, series, last)


def gmv(*, actor: Actor, filters: Filters) -> Metric:
    """GMV: Σ amount of every order placed in the period (unpaid, cancelled, refunded included). Unit cny."""
    return _sales("gmv", actor, filters)


def sales_flow(*, actor: Actor, filters: Filters) -> Metric:
    """Sales flow (销售流水): Σ (paid − refunded) over orders paid in the period. Unit cny."""
    return _sales("sales_flow", actor, filters)


def unpaid_ratio(*, actor: Actor, filters: Filters) -> Metric:
    """Σ amount of orders never paid ÷ GMV. Unit ratio."""
    return _sales("unpaid_ratio", actor, filters)


def refund_ratio(*, actor: Actor, filters: Filters) -> Metric:
    """Σ refunded ÷ Σ paid over orders paid in the period. Unit ratio."""
    return _sales("refund_ratio", actor, filters)


def average_order_value(*, actor: Actor, filters: Filters) -> Metric:
    """客单价: sales flow ÷ paid orders. Unit cny."""
    return _sales("average_order_value", actor, filters)


def private_domain_share(*, actor: Actor, filters: Filters) -> Metric:
    """私域占比: private-domain channels' sales flow ÷ all channels' sales flow. Unit ratio."""
    return _sales("private_domain_share", actor, filters)


def card_opening_rate(*, actor: Actor, filters: Filters) -> Metric:
    """开卡率: paid offline orders with a member ÷ all paid offline orders. Unit ratio."""
    return _sales("card_opening_rate", actor, filters)


def _whole_months(filters: Filters) -> Filters:
    months = _months(filters.date_from, filters.date_to)
    return replace(filters, date_from=months[0], date_to=_month_end(months[-1]))


@dataclass(frozen=True)
class _Snapshot:
    """One rollup slice a period's sums are made of: a whole month's rows, or month-to-date rows through ``day``,
    added (sign 1) or taken away (sign -1)."""

    kind: str  # "month" or "to_date"
    day: dt.date
    sign: int = 1


def _period_snapshots(filters: Filters) -> list[_Snapshot]:
    """The period as month rollups and month-to-date rows: whole months from the month rollups; the days at an
    edge of the period as the difference of two month-to-date rows (or of the month and one).

    The current month counts as whole when the period runs to today: its rollup holds the month so far.
    For a calendar month M cut to [first, last]: [M, last] is to-date(last); [first, end of M] is the month
    less to-date(first − 1); [first, last] inside M is to-date(last) less to-date(first − 1).
    """
    from analytics.services import local_today

    today = local_today()
    snapshots = []
    for month in _months(filters.date_from, filters.date_to):
        first, last = max(month, filters.date_from), min(_month_end(month), filters.date_to)
        to_end = last == _month_end(month) or last >= today
        snapshots.append(_Snapshot("month", month) if to_end else _Snapshot("to_date", last))
        if first > month:
            snapshots.append(_Snapshot("to_date", first - dt.timedelta(days=1), -1))
    return snapshots


def _snapshot_parts(snapshots: list[_Snapshot], month_rows, to_date_rows) -> list[tuple]:
    """(queryset, sign) per kind and sign of ``snapshots``: ``month_rows(months)`` / ``to_date_rows(days)`` give
    the rows of a list of months / of days."""
    parts = []
    for sign in (1, -1):
        months = [s.day for s in snapshots if s.kind == "month" and s.sign == sign]
        days = [s.day for s in snapshots if s.kind == "to_date" and s.sign == sign]
        if months:
            parts.append((month_rows(months), sign))
        if days:
            parts.append((to_date_rows(days), sign))
    return parts


def _store_month_facts(actor: Actor, filters: Filters, months: list[dt.date], *, channel: bool = True):
    q = _org_filter(filters, region="region_id", channel="channel" if channel else None)
    return scoped(StoreMonthFact.objects.all(), actor).filter(q, month__in=months).order_by()


def store_monthly_private_domain_sales(*, actor: Actor, filters: Filters) -> Metric:
    """单店月效: average private-domain sales flow per store-month with sales. Unit cny; trend monthly.

    Calendar months overlapping the period count whole (the current month up to now);
    stores are the credited stores of the scope and filters.
    """
    def compute(f: Filters) -> tuple[dict, tuple]:
        months = _months(f.date_from, f.date_to)
        per_store = (_store_month_facts(actor, f, months).filter(store__isnull=False, channel__in=_PRIVATE)
                     .values("store_id", "month").annotate(flow=Sum("sales_flow")))
        rows = _raw(per_store, "t.month, COUNT(*), SUM(t.flow)", "GROUP BY t.month")
        by_month = {_as_date(m): (money(flow), n) for m, n, flow in rows}
        total = (sum((v[0] for v in by_month.values()), ZERO), sum(v[1] for v in by_month.values()))
        return by_month, total

    def metric(f: Filters, by_month: dict, total: tuple, last: Metric | None) -> Metric:
        trend = tuple(Point(period=m, value=_per(*by_month.get(m, (ZERO, 0))), numerator=by_month.get(m, (ZERO, 0))[0],
                            denominator=by_month.get(m, (ZERO, 0))[1]) for m in _months(f.date_from, f.date_to))
        return Metric(key="store_monthly_private_domain_sales", unit="cny", value=_per(*total), numerator=total[0],
                      denominator=total[1], trend=trend, last_year=last)

    last_filters = filters.last_year()
    last = metric(last_filters, *compute(last_filters), None)
    return metric(filters, *compute(filters), last)


def store_month_rows(*, actor: Actor, filters: Filters, limit: int = 100) -> list[StoreMonthRow]:
    """Private-domain sales flow per store and month (whole months of the period), largest first."""
    months = _months(filters.date_from, filters.date_to)
    channel = Q(channel=filters.channel) if filters.channel else Q()
    rows = (_store_month_facts(actor, filters, months, channel=False).filter(store__isnull=False)
            .values("store_id", "store__code", "store__name", "month")
            .annotate(private=Sum("sales_flow", filter=channel & Q(channel__in=_PRIVATE)),
                      flow=Sum("sales_flow", filter=channel))
            .order_by(F("private").desc(nulls_last=True), "store__code", "month")[:limit])
    return [StoreMonthRow(store_id=r["store_id"], store_code=r["store__code"], store_name=r["store__name"],
                          month=_as_date(r["month"]), private_domain_sales=money(r["private"]),
                          sales_flow=money(r["flow"])) for r in rows]


_RANK_KEYS = ("brand", "region", "store")
_RANK_MONTH_KEYS = {"region": "region_id", "store": "store_id"}
_RANK_COLUMNS = ("gmv", "sales_flow", "paid_orders", "paid_amount", "refunded_amount", "private")


def _rank_sums(actor: Actor, filters: Filters, level: str, *, limit: int | None,
               keys: list[int] | None = None) -> list[dict]:
    """Brands/regions/stores with their sales sums over the period, by sales flow: month rollups for whole
    months, month-to-date rollups at the edges, added up in one query."""
    named = {**{c: Sum(c) for c in _RANK_COLUMNS if c != "private"},
             "private": Sum("sales_flow", filter=Q(channel__in=_PRIVATE))}

    def grouped(qs, key: str):
        return qs.filter(**{f"{key}__isnull": False}).annotate(k=F(key)).values("k").annotate(**{
            f"c_{c}": expression for c, expression in named.items()})

    if level == "brand":
        parts = [(grouped(_sales_facts(actor, filters), "brand_id"), 1)]
    else:
        key = _RANK_MONTH_KEYS[level]
        org = _org_filter(filters, region="region_id")
        parts = _snapshot_parts(
            _period_snapshots(filters),
            lambda months: grouped(_store_month_facts(actor, filters, months), key),
            lambda days: grouped(scoped(StoreMonthToDateFact.objects.all(), actor).filter(org, day__in=days)
                                 .order_by(), key))
    return _top_sums([(qs, set(_RANK_COLUMNS), sign) for qs, sign in parts], _RANK_COLUMNS,
                     order="SUM(u.sales_flow)", limit=limit, keys=keys, order_columns=("sales_flow",))


def sales_flow_by_unit(*, actor: Actor, filters: Filters, level: str) -> dict[int, Decimal]:
    """Every brand, region or store (``level``) of the scope with sales in the period: its sales flow, as
    :func:`ranking` sums it (the 环比 column of a ranking needs only this, not names or last year)."""
    if level not in _RANK_KEYS:
        raise ValueError(f"unknown ranking level {level!r}")
    return {row["k"]: money(row["sales_flow"]) for row in _rank_sums(actor, filters, level, limit=None)}


def ranking(*, actor: Actor, filters: Filters, level: str, limit: int = 50) -> list[RankRow]:
    """Brands, regions or stores (``level``) of the scope and filters, by sales flow, largest first.

    Regions and stores are the credited ones (HQ-pool sales have none and are left out).
    Last year's sales flow is that of the same brand/region/store in the same period last year.
    Ties are broken by id.
    """
    if level not in _RANK_KEYS:
        raise ValueError(f"unknown ranking level {level!r}")
    model = {"brand": Brand, "region": Region, "store": Store}[level]
    top = _rank_sums(actor, filters, level, limit=limit)
    ids = [r["k"] for r in top]
    # An all-rows table (limit None, thousands of stores, twice with its 环比) is read without id lists: last year
    # for the whole scope, names as plain values of the scope's rows rather than model instances.
    whole = limit is None or len(ids) > 1000
    last = ({r["k"]: r for r in _rank_sums(actor, filters.last_year(), level, limit=None,
                                           keys=None if whole else ids)} if ids else {})
    brand_code = "code" if level == "brand" else "brand__code"
    rows = scoped(model.objects.all(), actor) if whole else model.objects.filter(pk__in=ids)
    names = {pk: (code, name, brand) for pk, code, name, brand in
             rows.values_list("pk", "code", "name", brand_code)}
    if missing := [pk for pk in ids if pk not in names]:  # credited, yet outside today's scope rows
        names.update((pk, (code, name, brand)) for pk, code, name, brand in model.objects.filter(
            pk__in=missing).values_list("pk", "code", "name", brand_code))
    out = []
    for sums in top:
        pk, (code, name, brand) = sums["k"], names[sums["k"]]
        flow, last_flow = money(sums["sales_flow"]), money(last.get(pk, {}).get("sales_flow"))
        private, paid = money(sums["private"]), int(sums["paid_orders"] or 0)
        out.append(RankRow(
            level=level, id=pk, code=code, name=name, brand_code=brand,
            gmv=money(sums["gmv"]), sales_flow=flow, paid_orders=paid, average_order_value=_per(flow, paid),
            private_domain_sales=private, private_domain_share=_ratio(private, flow),
            refund_ratio=_ratio(money(sums["refunded_amount"]), money(sums["paid_amount"])),
            sales_flow_last_year=last_flow, growth=_ratio(flow - last_flow, last_flow)))
    return out


# ---------------------------------------------------------------------------- members (MemberMonthFact, PurchaseFact)


_RATE_FIELDS = ("buyers", "repeat_buyers", "purchases", "cross_buyers", "store_buyers", "wecom_store_buyers",
                "active_members", "members")


def _rate_level(actor: Actor, filters: Filters) -> dict | None:
    """Which MemberMonthFact rows answer for this viewer and these filters (None: count live)."""
    if actor.level == "guide" or not actor.is_staff_member:
        return None
    for level, value in (("store", filters.store_id or actor.store_id),
                         ("region", filters.region_id or actor.region_id),
                         ("brand", filters.brand_id or actor.brand_id)):
        if value:
            return {"level": level, f"{level}_id": value}
    return {"level": "group"} | ({"group_id": actor.group_id} if actor.group_id else {})


def _purchases(actor: Actor, filters: Filters, *, channel: bool = True):
    q = _org_filter(filters, channel="channel" if channel else None)
    return scoped(PurchaseFact.objects.all(), actor).filter(
        q, day__gte=filters.date_from, day__lte=filters.date_to, member__isnull=False).order_by()


def _member_month_rows(actor: Actor, filters: Filters, channel: str,
                       months: list[dt.date] | None = None) -> dict[dt.date, dict[str, int]]:
    """Per calendar month of ``months`` (default: those overlapping the period, whole): the counts of
    MemberMonthFact.

    ``channel`` "" counts every channel; a channel's rows only have buyers, repeat buyers and purchases.
    Guides (below store level) are counted live from PurchaseFact and their members' own tables.
    """
    months = _months(filters.date_from, filters.date_to) if months is None else months
    if not months:
        return {}
    where = _rate_level(actor, filters)
    if where is None:
        return {m: _live_member_counts(actor, replace(filters, date_from=m, date_to=_month_end(m)), channel)
                for m in months}
    rows = (scoped(MemberMonthFact.objects.filter(month__in=months, channel=channel, **where), actor).order_by()
            .values("month").annotate(**{f"s_{k}": Sum(k) for k in _RATE_FIELDS}))
    return {_as_date(r["month"]): {k: int(r[f"s_{k}"] or 0) for k in _RATE_FIELDS} for r in rows}


def _member_window(actor: Actor, filters: Filters, channel: str) -> dict[str, int]:
    """The member counts of the period as one window of days: MemberWindowFact when that window was built,
    else counted live (same definitions, same levels)."""
    where = _rate_level(actor, filters)
    if where is not None:
        window = MemberWindowFact.objects.filter(date_from=filters.date_from, date_to=filters.date_to)
        row = scoped(window.filter(channel=channel, **where), actor).order_by().aggregate(
            n=Count("pk"), **{f"s_{k}": Sum(k) for k in _RATE_FIELDS})
        if row["n"] or window.exists():
            return {k: int(row[f"s_{k}"] or 0) for k in _RATE_FIELDS}
    return _live_member_counts(actor, filters, channel)


def _live_member_counts(actor: Actor, window: Filters, channel: str) -> dict[str, int]:
    """The MemberMonthFact counts of any window of days, computed live from the day facts (for a guide's own
    members and sales, and for periods whose window was not built)."""
    counts = dict.fromkeys(_RATE_FIELDS, 0)
    purchases_of = _purchases(actor, replace(window, channel=channel or None))
    per_member = purchases_of.values("member_id").annotate(n=Count("pk"))
    ((buyers, repeat, n),) = _raw(per_member, "COUNT(*), SUM(CASE WHEN t.n >= 2 THEN 1 ELSE 0 END), SUM(t.n)")
    counts.update(buyers=int(buyers or 0), repeat_buyers=int(repeat or 0), purchases=int(n or 0))
    if channel:
        return counts
    both = _purchases(actor, window, channel=False).values("member_id").annotate(
        online=Max(Case(When(offline=False, then=Value(1)), default=Value(0))),
        offline_=Max(Case(When(offline=True, then=Value(1)), default=Value(0))))
    ((cross,),) = _raw(both, "SUM(CASE WHEN t.online = 1 AND t.offline_ = 1 THEN 1 ELSE 0 END)")
    end = _local_end(window.date_to)
    friend = WeComFriendship.objects.filter(
        Q(removed_at__isnull=True) | Q(removed_at__gte=end), member_id=OuterRef("member_id"),
        guide__store__brand_id=OuterRef("brand_id"), added_at__lt=end)
    pairs = (_purchases(actor, window, channel=False).filter(offline=True).values("member_id", "brand_id")
             .annotate(friend=Max(Case(When(Exists(friend), then=Value(1)), default=Value(0)))))
    ((store_buyers, wecom),) = _raw(pairs, "COUNT(*), SUM(t.friend)")
    memberships = scoped(BrandMembership.objects.filter(joined_at__lt=end), actor)
    where = _rate_level(actor, window)
    if where is not None:  # staff: memberships and activity at the join store, as MemberMonthFact counts them
        memberships = memberships.filter(_org_filter(window, channel=None))
    elif window.brand_id:
        memberships = memberships.filter(brand_id=window.brand_id)
    joined = BrandMembership.objects.filter(member_id=OuterRef("member_id"), brand_id=OuterRef("brand_id"),
                                            pk__in=memberships.values("pk"))
    active = (scoped(MemberDailyActivity.objects.filter(day__gte=window.date_from, day__lte=window.date_to), actor)
              .filter(Exists(joined)).values("member_id", "brand_id").distinct().order_by())
    ((online,),) = _raw(active, "COUNT(*)")
    if where is not None:  # memberships held at the end of the window's last day with member counts
        count_day = (MemberCountFact.objects.filter(day__gte=window.date_from, day__lte=window.date_to)
                     .order_by("-day").values_list("day", flat=True).first())
        held = _members_at(actor, window, [count_day]).get(count_day, 0) if count_day else 0
    else:
        held = memberships.count()
    counts.update(cross_buyers=int(cross or 0), store_buyers=int(store_buyers or 0), wecom_store_buyers=int(wecom or 0),
                  active_members=int(online or 0), members=held)
    return counts


def is_calendar_month(filters: Filters) -> bool:
    """Whether the period is one calendar month (the current one so far counts): the member rates then take the
    monthly definition; any other period is one window over exactly its days."""
    from analytics.services import local_today

    return (filters.date_from.day == 1 and _month_start(filters.date_to) == filters.date_from
            and (filters.date_to == _month_end(filters.date_to) or filters.date_to >= local_today()))


def _member_rate(key: str, actor: Actor, filters: Filters, numerator: str, denominator: str, *,
                 channel: bool = False) -> Metric:
    """A member-level rate over exactly the period, and last year's (issue 24).

    A calendar month: the monthly definition (MemberMonthFact), ``basis`` "month". Any other period: one
    window over exactly its days (distinct members of those days; MemberWindowFact or live), ``basis``
    "period"; its trend shows the calendar months lying wholly inside the period, month by month.
    """
    unit = "per_member" if key == "purchase_frequency" else "ratio"
    divide = _ratio if unit == "ratio" else _per
    channel_of = (filters.channel or "") if channel else ""

    def build(f: Filters, last: Metric | None) -> Metric:
        if is_calendar_month(f):
            months, basis = [f.date_from], "month"
            by_month = _member_month_rows(actor, f, channel_of, months)
            v = by_month.get(f.date_from, dict.fromkeys(_RATE_FIELDS, 0))
        else:
            months = [m for m in _months(f.date_from, f.date_to)
                      if m >= f.date_from and _month_end(m) <= f.date_to]
            basis = "period"
            by_month = _member_month_rows(actor, f, channel_of, months)
            v = _member_window(actor, f, channel_of)
        rows = {m: (c[numerator], c[denominator]) for m, c in by_month.items()}
        trend = tuple(Point(period=m, value=divide(*rows.get(m, (0, 0))), numerator=rows.get(m, (0, 0))[0],
                            denominator=rows.get(m, (0, 0))[1]) for m in months)
        return Metric(key=key, unit=unit, value=divide(v[numerator], v[denominator]), numerator=v[numerator],
                      denominator=v[denominator], trend=trend, last_year=last, basis=basis)

    return build(filters, build(filters.last_year(), None))


def monthly_repurchase_rate(*, actor: Actor, filters: Filters) -> Metric:
    """Members with ≥2 purchases in the month ÷ members with ≥1, member-months pooled. Unit ratio; trend monthly."""
    return _member_rate("monthly_repurchase_rate", actor, filters, "repeat_buyers", "buyers", channel=True)


def purchase_frequency(*, actor: Actor, filters: Filters) -> Metric:
    """Purchases ÷ purchasing members in the month, pooled over months. Unit per_member; trend monthly."""
    return _member_rate("purchase_frequency", actor, filters, "purchases", "buyers", channel=True)


def cross_purchase_rate(*, actor: Actor, filters: Filters) -> Metric:
    """Members who bought online and offline in the month ÷ purchasing members, pooled over months. Unit ratio."""
    return _member_rate("cross_purchase_rate", actor, filters, "cross_buyers", "buyers")


def wecom_friend_rate(*, actor: Actor, filters: Filters) -> Metric:
    """Store buyers of the month who are WeCom friends of a guide of the brand at the month's end ÷ store buyers.

    Counted per member and brand, pooled over the months of the period. Unit ratio.
    """
    return _member_rate("wecom_friend_rate", actor, filters, "wecom_store_buyers", "store_buyers")


def member_online_rate(*, actor: Actor, filters: Filters) -> Metric:
    """Memberships active in the mini-program in the month ÷ memberships at the month's end, pooled. Unit ratio."""
    return _member_rate("member_online_rate", actor, filters, "active_members", "members")


def _guide_sales(actor: Actor, filters: Filters):
    q = _org_filter(filters, brand="store__brand_id")
    return scoped(GuideSalesFact.objects.all(), actor).filter(
        q, day__gte=filters.date_from, day__lte=filters.date_to).order_by()


def _guide_region_allowed(actor: Actor, filters: Filters) -> bool:
    """GuideRegionFact answers group, brand and region views without a store filter."""
    return filters.store_id is None and (actor.is_superuser or actor.level in ("group", "brand", "region"))


def _guide_regions(actor: Actor, filters: Filters):
    q = _org_filter(filters, region="region_id", store=None, channel=None)
    return scoped(GuideRegionFact.objects.all(), actor).filter(
        q, day__gte=filters.date_from, day__lte=filters.date_to).order_by()


def _daily_ratio(key: str, actor: Actor, filters: Filters, rollup: tuple[str, str] | None, source,
                 numerator, denominator) -> Metric:
    """A ratio of two daily sums with its trend and last year's: from GuideRegionFact when it can answer
    (``rollup`` names its two fields), else ``numerator`` / ``denominator`` aggregated over ``source(filters)``."""
    grain = filters.trend_grain

    def build(f: Filters, last: Metric | None) -> Metric:
        if rollup is not None and _guide_region_allowed(actor, f):
            qs, n, d = _guide_regions(actor, f), Sum(rollup[0]), Sum(rollup[1])
        else:
            qs, n, d = source(f), numerator, denominator
        rows = {_as_date(r["period"]): (r["n"] or 0, r["d"] or 0)
                for r in qs.annotate(period=_period_expr(grain)).values("period").annotate(n=n, d=d)}
        is_money = any(isinstance(v, Decimal) for pair in rows.values() for v in pair)
        rows = {p: ((money(a), money(b)) if is_money else (int(a), int(b))) for p, (a, b) in rows.items()}
        zero = ZERO if is_money else 0
        totals = (sum((v[0] for v in rows.values()), zero), sum((v[1] for v in rows.values()), zero))
        return _ratio_metric(key, rows, totals, _periods(f, grain), last)

    return build(filters, build(filters.last_year(), None))


def _guided_orders(actor: Actor, filters: Filters):
    """GuidedOrderFact rows of the view, at the grain of its level (a store, region or brand — filter or staff —
    else the group): the fewest rows that add up to the view."""
    level = next((lvl for lvl, value in (("store", filters.store_id), ("region", filters.region_id),
                                         ("brand", filters.brand_id)) if value), None)
    grain = level or (actor.level if actor.level in ("store", "region", "brand") else "group")
    q = _org_filter(filters, region="region_id")
    return scoped(GuidedOrderFact.objects.filter(grain=grain), actor).filter(
        q, day__gte=filters.date_from, day__lte=filters.date_to).order_by()


def cross_brand_guided_share(*, actor: Actor, filters: Filters) -> Metric:
    """Cross-brand guided share: the share of guided sales whose order brand differs from the credited guide's
    brand. Unit ratio; daily (or monthly) trend.

    The definition (issue 24), the one the page's help text, the export and the API state:

    * guided sales = the net amount of every order placed in the period with a guide credit (exclusive or
      selling) of a guide in the view, **each order's amount counted once**, however many of its guides are
      credited (every credit is worth the order's net amount; an order's amount is its largest guide credit);
    * an order is **cross-brand if any credited guide (in the view) is of another brand** than the order;
    * share = Σ amount of cross-brand guided orders ÷ Σ amount of guided orders.

    The brand, region and store filters (and the viewer's scope) select the guides, by their store; the
    channel filter selects orders. Staff read GuidedOrderFact; a guide's own view (one guide, whose credits
    are each one order) sums their GuideSalesFact credits.
    """
    if actor.level == "guide" or not actor.is_staff_member:
        return _daily_ratio("cross_brand_guided_share", actor, filters, None, lambda f: _guide_sales(actor, f),
                            Sum("amount", filter=Q(cross_brand=True)), Sum("amount"))
    return _daily_ratio("cross_brand_guided_share", actor, filters, None, lambda f: _guided_orders(actor, f),
                        Sum("cross_amount"), Sum("amount"))


def _members_at(actor: Actor, filters: Filters, days: list[dt.date]) -> dict[dt.date, int]:
    """Memberships held at the end of each of ``days`` (from MemberCountFact)."""
    q = _org_filter(filters, channel=None)
    rows = (scoped(MemberCountFact.objects.all(), actor).filter(q, day__in=days).order_by().values("day")
            .annotate(n=Sum("members")).values_list("day", "n"))
    return {_as_date(d): int(n or 0) for d, n in rows}


def member_growth(*, actor: Actor, filters: Filters) -> MemberGrowth:
    """Members at the period's end, new memberships in it, by join channel (with last year).

    ``members.trend``: memberships held at the end of each trend period (the count
    the day before the period plus the new memberships since, from the facts);
    ``new_members.trend``: new memberships per trend period.
    """
    grain = filters.trend_grain
    q = _org_filter(filters, channel=None)

    def growth(f: Filters):
        return scoped(MemberGrowthFact.objects.all(), actor).filter(
            q, day__gte=f.date_from, day__lte=f.date_to).order_by()

    def new_members(f: Filters) -> tuple[dict[dt.date, int], dict[str, int]]:
        """New memberships per trend period and per join channel, from one pass over the facts."""
        per_period: dict[dt.date, int] = {}
        per_channel: dict[str, int] = {}
        for period, channel, n in (growth(f).annotate(period=_period_expr(grain)).values("period", "join_channel")
                                   .annotate(n=Sum("new_members")).values_list("period", "join_channel", "n")):
            period, n = _as_date(period), int(n or 0)
            per_period[period] = per_period.get(period, 0) + n
            per_channel[channel] = per_channel.get(channel, 0) + n
        return per_period, per_channel

    def new(f: Filters, per_period: dict, last: Metric | None) -> Metric:
        trend = tuple(Point(period=p, value=per_period.get(p, 0)) for p in _periods(f, grain))
        return Metric(key="new_members", unit="count", value=sum(per_period.values()), trend=trend, last_year=last)

    def total(f: Filters, per_period: dict, last: Metric | None) -> Metric:
        periods = _periods(f, grain)
        before = f.date_from - dt.timedelta(days=1)
        if MemberCountFact.objects.filter(day=before).exists():
            running, values = _members_at(actor, f, [before]).get(before, 0), []
            for p in periods:
                running += per_period.get(p, 0)
                values.append(running)
        else:  # no count for the day before the period: read each period's last day
            ends = [min(_month_end(p), f.date_to) if grain == "month" else p for p in periods]
            at = _members_at(actor, f, ends)
            values = [at.get(e, 0) for e in ends]
        trend = tuple(Point(period=p, value=v) for p, v in zip(periods, values, strict=True))
        return Metric(key="members", unit="count", value=values[-1] if values else 0, trend=trend, last_year=last)

    last_filters = filters.last_year()
    (now_new, now), (last_new, before) = new_members(filters), new_members(last_filters)
    channels = [c for c in JoinChannel.values if c in now or c in before]
    return MemberGrowth(
        members=total(filters, now_new, total(last_filters, last_new, None)),
        new_members=new(filters, now_new, new(last_filters, last_new, None)),
        by_join_channel=tuple(ChannelCount(join_channel=c, new_members=now.get(c, 0),
                                           new_members_last_year=before.get(c, 0))
                              for c in sorted(channels, key=lambda c: (-now.get(c, 0), c))))


# ---------------------------------------------------------------------------- guides


def _engagement(actor: Actor, filters: Filters):
    q = _org_filter(filters, channel=None)
    return scoped(EngagementFact.objects.all(), actor).filter(
        q, day__gte=filters.date_from, day__lte=filters.date_to).order_by()


_KPI_SALES = ("sales", "online_sales", "offline_sales", "cross_brand_sales")
_KPI_ENGAGEMENT = ("new_members", "wecom_friends_added", "shares", "share_pv", "share_uv", "material_pv",
                   "material_uv", "tasks_assigned", "tasks_executed", "task_execution_rate", "commission")
#: The fields ``guide_kpis`` can rank by.
GUIDE_KPI_ORDER = _KPI_SALES + _KPI_ENGAGEMENT
_KPI_COUNTS = ("new_members", "wecom_friends_added", "shares", "share_pv", "share_uv", "material_pv", "material_uv",
               "tasks_assigned", "tasks_executed")
_KPI_SUMS = (*_KPI_SALES, *_KPI_COUNTS, "commission")


def _guide_kpi_sums(actor: Actor, filters: Filters, *, order_by: str, limit: int) -> list[dict]:
    """Guides with their KPI sums over the period, best ``order_by`` first: GuideMonthFact for whole months,
    GuideMonthToDateFact at the edges, in one query. With a channel filter the sales come from the day facts
    (the guide rollups have no channel) and the rest, which has no channel, still from the rollups."""
    org = _org_filter(filters, region="region_id", channel=None)
    if order_by == "task_execution_rate":
        order = "COALESCE(1.0 * SUM(u.tasks_executed) / NULLIF(SUM(u.tasks_assigned), 0), -1)"
        order_columns = ("tasks_executed", "tasks_assigned")
    else:
        order, order_columns = f"SUM(u.{order_by})", (order_by,)
    snapshots = _period_snapshots(filters)
    if len(snapshots) == 1 and not filters.channel:  # one row per guide: sort the rows themselves
        (snapshot,) = snapshots
        if snapshot.kind == "month":
            qs = scoped(GuideMonthFact.objects.all(), actor).filter(org, month=snapshot.day)
        else:
            qs = scoped(GuideMonthToDateFact.objects.all(), actor).filter(org, day=snapshot.day)
        if order_by == "task_execution_rate":
            key = Coalesce(Cast("tasks_executed", FloatField()) / NullIf(Cast("tasks_assigned", FloatField()),
                                                                       Value(0.0)), Value(-1.0))
        else:
            key = F(order_by)
        rows = qs.annotate(rank_key=key).order_by(F("rank_key").desc(), "guide_id").values("guide_id", *_KPI_SUMS)
        return [{"k": r.pop("guide_id"), **r} for r in rows[:limit]]

    columns = (*_KPI_COUNTS, "commission") if filters.channel else _KPI_SUMS

    def rows_of(qs):  # the rollups hold one row per guide and month (or day): added up by _top_sums only
        return qs.order_by().values(k=F("guide_id"), **{f"c_{c}": F(c) for c in columns})

    parts = [(qs, set(columns), sign) for qs, sign in _snapshot_parts(
        snapshots,
        lambda months: rows_of(scoped(GuideMonthFact.objects.all(), actor).filter(org, month__in=months)),
        lambda days: rows_of(scoped(GuideMonthToDateFact.objects.all(), actor).filter(org, day__in=days)))]
    if filters.channel:
        offline = Q(channel__in=_OFFLINE)
        parts.append((_guide_sales(actor, filters).annotate(k=F("guide_id")).values("k").annotate(
            c_online_sales=Sum("amount", filter=~offline), c_offline_sales=Sum("amount", filter=offline),
            c_sales=Sum("amount"), c_cross_brand_sales=Sum("amount", filter=Q(cross_brand=True))), set(_KPI_SALES)))
    # With a channel filter a guide can have rollup rows (sales in other channels) and nothing in the period.
    return _top_sums(parts, _KPI_SUMS, order=order, limit=limit, order_columns=order_columns,
                     drop_empty=bool(filters.channel))


def guide_kpis(*, actor: Actor, filters: Filters, limit: int = 100, order_by: str = "sales") -> list[GuideKpiRow]:
    """Guide KPI rows of the scope and filters, ordered by ``order_by`` (a GuideKpiRow field) descending.

    Guides are filtered by their own store (brand/region/store filters); the channel
    filter applies to sales only. ``order_by`` is one of ``GUIDE_KPI_ORDER``. Ties
    are broken by guide id. Members served: members bound to the guide at the end of
    the period.
    """
    if order_by not in GUIDE_KPI_ORDER:
        raise ValueError(f"unknown guide KPI {order_by!r}")
    top = _guide_kpi_sums(actor, filters, order_by=order_by, limit=limit)
    ids = [r["k"] for r in top]
    end = _local_end(filters.date_to)
    served = dict(GuideBinding.objects.filter(Q(ended_at__isnull=True) | Q(ended_at__gte=end), guide_id__in=ids,
                                              started_at__lt=end).order_by().values("guide_id")
                  .annotate(n=Count("pk")).values_list("guide_id", "n"))
    guides = {g["pk"]: g for g in scoped(Guide.objects.filter(pk__in=ids), actor)
              .values("pk", "code", "name", "store__code", "store__name", "store__brand__code")}
    rows = []
    for s in top:
        g = guides.get(s["k"])
        if g is None:
            continue
        counts = {name: int(s[name] or 0) for name in _KPI_COUNTS}
        rows.append(GuideKpiRow(
            guide_id=s["k"], guide_code=g["code"], guide_name=g["name"], store_code=g["store__code"],
            store_name=g["store__name"], brand_code=g["store__brand__code"],
            online_sales=money(s["online_sales"]), offline_sales=money(s["offline_sales"]), sales=money(s["sales"]),
            cross_brand_sales=money(s["cross_brand_sales"]), members_served=int(served.get(s["k"], 0)),
            commission=money(s["commission"]),
            task_execution_rate=_ratio(counts["tasks_executed"], counts["tasks_assigned"]), **counts))
    return rows


def task_execution_rate(*, actor: Actor, filters: Filters) -> Metric:
    """Task assignments made in the period and executed ÷ task assignments made in the period. Unit ratio."""
    return _daily_ratio("task_execution_rate", actor, filters, ("tasks_executed", "tasks_assigned"),
                        lambda f: _engagement(actor, f), Sum("tasks_executed"), Sum("tasks_assigned"))


# ---------------------------------------------------------------------------- segments


def _brands_in_view(actor: Actor, filters: Filters):
    brands = scoped(Brand.objects.all(), actor)
    if filters.brand_id:
        brands = brands.filter(pk=filters.brand_id)
    if filters.region_id:
        brands = brands.filter(regions=filters.region_id)
    if filters.store_id:
        brands = brands.filter(stores=filters.store_id)
    return brands


def segment_sizes(*, actor: Actor, filters: Filters) -> list[SegmentSize]:
    """Members per RFML class per run (runs as of a day in the period), per brand, oldest run first.

    Group and brand views (no region or store filter) read the brand figures (``RfmRun.counts``). A region
    or store (a regional or store manager, or a region/store filter) counts the members placed at their join
    store there, as the class-sales table does, by their class at each run: the ``to_segment`` of their
    latest class change up to the run. Guides get no rows.
    """
    runs = (scoped(RfmRun.objects.all(), actor).filter(as_of__gte=filters.date_from, as_of__lte=filters.date_to)
            .select_related("brand").order_by("as_of", "brand__code", "pk"))
    if filters.brand_id:
        runs = runs.filter(brand_id=filters.brand_id)
    if _rollup_allowed(actor, filters):
        return [SegmentSize(brand_code=run.brand.code, run_id=run.pk, as_of=run.as_of, segment=segment,
                            members=int((run.counts or {}).get(segment, 0)))
                for run in runs for segment in Segment.values]
    where = _rate_level(actor, filters)
    if where is None or where["level"] not in ("region", "store"):
        return []
    # The runs of the brands in view (a regional or store manager is not shown the runs' brand-wide counts).
    runs = list(RfmRun.objects.filter(brand__in=_brands_in_view(actor, filters), as_of__gte=filters.date_from,
                                      as_of__lte=filters.date_to).select_related("brand")
                .order_by("as_of", "brand__code", "pk"))
    place = {"store__region_id": where["region_id"]} if where["level"] == "region" else {"store_id": where["store_id"]}
    placed = scoped(BrandMembership.objects.filter(brand_id__in={r.brand_id for r in runs}, **place), actor)
    changes = pd.DataFrame.from_records(
        list(RfmClassChange.objects.filter(brand_id__in={r.brand_id for r in runs},
                                           run_id__lte=max((r.pk for r in runs), default=0),
                                           member_id__in=placed.values("member_id"))
             .order_by("brand_id", "member_id", "run_id", "pk").values_list("brand_id", "member_id", "run_id",
                                                                            "to_segment")),
        columns=["brand_id", "member_id", "run_id", "segment"])
    rows = []
    for run in runs:
        mine = changes[(changes["brand_id"] == run.brand_id) & (changes["run_id"] <= run.pk)]
        # Sorted by run, then by when it was filed (same-day changes are filed under the run they were judged
        # against): the latest change.
        current = mine.drop_duplicates("member_id", keep="last")
        counts = current["segment"].value_counts()
        rows += [SegmentSize(brand_code=run.brand.code, run_id=run.pk, as_of=run.as_of, segment=segment,
                             members=int(counts.get(segment, 0))) for segment in Segment.values]
    return rows


def _class_sizes(actor: Actor, filters: Filters) -> dict[str, int]:
    """Members per current RFML class: the brands' latest runs for group and brand views; for a region or
    store, SegmentMonthFact of the period's last month built (members at their join store); a guide's own
    members are counted."""
    where = _rate_level(actor, filters)
    if where is not None and where["level"] in ("region", "store"):
        months = SegmentMonthFact.objects.filter(month__lte=_month_start(filters.date_to)).order_by("-month")
        month = months.values_list("month", flat=True).first()
        rows = (scoped(SegmentMonthFact.objects.filter(month=month, **where), actor).order_by()
                .values("segment").annotate(n=Sum("members")).values_list("segment", "n"))
        return {segment: int(n or 0) for segment, n in rows}
    if _rollup_allowed(actor, filters):
        latest: dict[int, RfmRun] = {}
        for run in RfmRun.objects.filter(brand__in=_brands_in_view(actor, filters)).order_by(
                "brand_id", "-started_at", "-pk"):
            latest.setdefault(run.brand_id, run)
        sizes: dict[str, int] = {}
        for run in latest.values():
            for segment, n in (run.counts or {}).items():
                sizes[segment] = sizes.get(segment, 0) + int(n)
        return sizes
    classes = scoped(MemberRfm.objects.exclude(segment=""), actor).order_by()
    if filters.brand_id:
        classes = classes.filter(brand_id=filters.brand_id)
    return dict(classes.values("segment").annotate(n=Count("pk")).values_list("segment", "n"))


def segment_sales(*, actor: Actor, filters: Filters) -> list[SegmentSales]:
    """Per RFML class: members (current class sizes) and the buyers, purchases and sales flow of the calendar
    months overlapping the period, by the class buyers had when the month was last built.

    Buyers are distinct per brand and month, added up over brands and months.
    """
    sizes = _class_sizes(actor, filters)
    months = _months(filters.date_from, filters.date_to)
    where = _rate_level(actor, filters)
    if where is not None:
        level = "brand" if where["level"] == "group" else where["level"]
        qs = scoped(SegmentMonthFact.objects.filter(month__in=months, level=level), actor).filter(
            **{k: v for k, v in where.items() if k.endswith("_id") and k != "group_id"})
        if where["level"] == "group" and where.get("group_id"):
            qs = qs.filter(brand__group_id=where["group_id"])
        sales = {r["segment"]: r for r in qs.order_by().values("segment").annotate(
            buyers=Sum("buyers"), purchases=Sum("purchases"), flow=Sum("sales_flow"))}
    else:
        segment_of = MemberRfm.objects.filter(member_id=OuterRef("member_id"), brand_id=OuterRef("brand_id")) \
            .values("segment")[:1]
        bought = (_purchases(actor, _whole_months(filters)).annotate(segment=Subquery(segment_of))
                  .exclude(segment__isnull=True).exclude(segment="").values("segment")
                  .annotate(buyers=Count("member_id", distinct=True), purchases=Count("pk"), flow=Sum("net_amount")))
        sales = {r["segment"]: r for r in bought}
    return [SegmentSales(segment=s, members=int(sizes.get(s, 0)), buyers=int(sales.get(s, {}).get("buyers") or 0),
                         purchases=int(sales.get(s, {}).get("purchases") or 0),
                         sales_flow=money(sales.get(s, {}).get("flow")))
            for s in Segment.values]


def segment_transitions(*, actor: Actor, brand_id: int, from_run_id: int, to_run_id: int) -> list[SegmentTransition]:
    """Members per (class at run A, class at run B) for one brand.

    A member's class at a run is the ``to_segment`` of their latest class change
    up to that run ("" = no class: not yet classified, or gone); same-day changes
    are filed under the run they were judged against, so the latest is the last
    filed (highest id) among the changes of runs up to it. Members of the
    actor's scope only. Raises ApplicationError 404 for runs of another brand or
    outside the scope, 400 when run A is not before run B.
    """
    runs = {r.pk: r for r in scoped(RfmRun.objects.filter(pk__in=[from_run_id, to_run_id], brand_id=brand_id),
                                    actor)}
    if from_run_id not in runs or to_run_id not in runs:
        raise ApplicationError(ErrorCode.NOT_FOUND, str(_("No such RFML run.")), status=404)
    if from_run_id >= to_run_id:
        raise ApplicationError(ErrorCode.INVALID, str(_("Run A must be earlier than run B.")),
                               fields={"from_run": [str(_("Run A must be earlier than run B."))]})
    table = RfmClassChange._meta.db_table
    latest = (f"(SELECT member_id, MAX(id) AS r FROM {table} "  # noqa: S608 (table name, no input)
              f"WHERE brand_id = %s AND run_id <= %s GROUP BY member_id)")
    scope_sql, scope_params = "", []
    if not (actor.is_superuser or actor.level in ("group", "brand")):
        members = scoped(MemberRfm.objects.filter(brand_id=brand_id), actor).values("member_id").order_by()
        inner, scope_params = members.query.sql_with_params()
        scope_sql = f"WHERE lb.member_id IN ({inner})"
    sql = (f"SELECT COALESCE(ca.to_segment, ''), cb.to_segment, COUNT(*) FROM {latest} lb "  # noqa: S608
           f"JOIN {table} cb ON cb.id = lb.r "
           f"LEFT JOIN {latest} la ON la.member_id = lb.member_id "
           f"LEFT JOIN {table} ca ON ca.id = la.r "
           f"{scope_sql} GROUP BY COALESCE(ca.to_segment, ''), cb.to_segment")
    params = [brand_id, to_run_id, brand_id, from_run_id, *scope_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    order = {s: i for i, s in enumerate(["", *Segment.values])}
    return sorted((SegmentTransition(from_segment=a, to_segment=b, members=int(n)) for a, b, n in rows
                   if a or b), key=lambda t: (order.get(t.from_segment, 99), order.get(t.to_segment, 99)))


def consumption_cycles(*, actor: Actor, filters: Filters) -> list[CycleRow]:
    """Each brand's consumption cycle (latest run), brands of the scope and filters."""
    brands = list(_brands_in_view(actor, filters).select_related("segmentation_settings").order_by("code"))
    latest = {}
    for run in RfmRun.objects.filter(brand__in=brands).order_by("brand_id", "-started_at", "-pk"):
        latest.setdefault(run.brand_id, run)
    rows = []
    for brand in brands:
        run = latest.get(brand.pk)
        settings_row = getattr(brand, "segmentation_settings", None)
        rows.append(CycleRow(brand_code=brand.code, brand_name=brand.name, as_of=run.as_of if run else None,
                             cycle_days=run.cycle_days if run else None,
                             override_days=settings_row.cycle_days if settings_row else None))
    return rows


def care_list_completion(*, actor: Actor, filters: Filters) -> Metric:
    """Care-list items of the period's days marked done ÷ items. Unit ratio."""
    return _daily_ratio("care_list_completion", actor, filters, ("care_items_done", "care_items"),
                        lambda f: _engagement(actor, f), Sum("care_items_done"), Sum("care_items"))


# ---------------------------------------------------------------------------- livestream


#: brands and host stores by GMV (sessions with no figures stored yet count 0), then by code
_GMV_FIRST = F("gmv").desc()


def _live_figures(totals: LiveTotals | None) -> LiveFigures:
    """The dashboard's figures of livestream's totals: sessions held; conversion None without viewers."""
    if totals is None:
        return LiveFigures(sessions=0, hours=ZERO, viewers=0, buyers=0, conversion=None, gmv=ZERO, paid_sales=ZERO)
    return LiveFigures(sessions=totals.held, hours=totals.live_hours, viewers=totals.viewers, buyers=totals.buyers,
                       conversion=_ratio(totals.buyers, totals.viewers), gmv=money(totals.gmv),
                       paid_sales=money(totals.paid_sales))


def _live_sessions(actor: Actor, filters: Filters):
    q = _org_filter(filters, region="host_store__region_id", store="host_store_id", channel=None)
    return sessions_planned_between(actor=actor, date_from=filters.date_from, date_to=filters.date_to).filter(
        q).exclude(status=LiveSession.Status.CANCELLED).order_by()


def _live_total(sessions) -> LiveFigures:
    return _live_figures(live_totals(sessions=sessions)[0][1])


def livestream_summary(*, actor: Actor, filters: Filters) -> LivestreamSummary:
    """Sessions, hours, viewers, conversion, GMV: all, HQ central vs store, per brand and host store.

    Sessions planned to start in the period, cancelled ones left out, added up by
    ``livestream.metrics.live_totals`` (the API's live summaries add up the same way):
    ``sessions`` counts the ended ones, hours are their actual durations; viewers,
    buyers, GMV and paid sales add up each session's ``SessionStats`` (a viewer of two
    sessions counts twice); conversion = Σ buyers ÷ Σ viewers. The region/store filters
    select host stores, so HQ central sessions drop out with them; the channel filter
    does not apply.
    """
    sessions = _live_sessions(actor, filters)
    kinds = {group["kind"]: totals for group, totals in live_totals(sessions=sessions, group_by=("kind",))}
    brand_rows = [LiveRow(level="brand", id=group["brand_id"], code=group["brand__code"], name=group["brand__name"],
                          figures=_live_figures(totals))
                  for group, totals in live_totals(sessions=sessions,
                                                   group_by=("brand_id", "brand__code", "brand__name"),
                                                   order_by=(_GMV_FIRST, "brand__code"))]
    store_rows = [LiveRow(level="store", id=group["host_store_id"], code=group["host_store__code"],
                          name=group["host_store__name"], figures=_live_figures(totals))
                  for group, totals in live_totals(sessions=sessions.filter(host_store__isnull=False),
                                                   group_by=("host_store_id", "host_store__code", "host_store__name"),
                                                   order_by=(_GMV_FIRST, "host_store__code"))]
    last = _live_total(_live_sessions(actor, filters.last_year()))
    return LivestreamSummary(total=_live_total(sessions), central=_live_figures(kinds.get(LiveSession.Kind.HQ_CENTRAL)),
                             store=_live_figures(kinds.get(LiveSession.Kind.STORE)), by_brand=tuple(brand_rows),
                             by_store=tuple(store_rows), total_last_year=last)


# ---------------------------------------------------------------------------- core indicators


def sales_revenue(*, actor: Actor, filters: Filters) -> Metric:
    """Core indicator 1: the sales flow. Unit cny."""
    return _sales("sales_revenue", actor, filters)


def cost_of_goods(*, actor: Actor, filters: Filters) -> Metric:
    """Cost of goods sold: Σ qty × SKU cost of paid orders' lines − cost of returned units. Unit cny."""
    return _sales("cost_of_goods", actor, filters)


def gross_profit(*, actor: Actor, filters: Filters) -> Metric:
    """Core indicator 2, 毛利: sales flow − cost of goods sold (no expenses). Unit cny."""
    return _sales("gross_profit", actor, filters)


def operating_profit(*, actor: Actor, filters: Filters) -> Metric:
    """Deprecated alias of :func:`gross_profit` (the figure never took expenses into account)."""
    return gross_profit(actor=actor, filters=filters)


def _turnover(actor: Actor, filters: Filters, series: _SalesSeries) -> Metric:
    if not _rollup_allowed(actor, filters):
        return Metric(key="inventory_turnover_days", unit="days", value=None)
    snapshots = scoped(InventorySnapshot.objects.all(), actor).filter(
        day__gte=filters.date_from, day__lte=filters.date_to).order_by()
    if filters.brand_id:
        snapshots = snapshots.filter(brand_id=filters.brand_id)
    by_day = dict(snapshots.values("day").annotate(v=Sum("value_at_cost")).values_list("day", "v"))
    if not by_day:
        return Metric(key="inventory_turnover_days", unit="days", value=None)
    average_stock = money(sum((money(v) for v in by_day.values()), ZERO) / len(by_day))
    cogs = series.totals["online_cost_of_goods"]
    per_day = cogs / Decimal(filters.days)
    value = (average_stock / per_day).quantize(Decimal("0.1"), ROUND_HALF_UP) if per_day > 0 else None
    return Metric(key="inventory_turnover_days", unit="days", value=value, numerator=average_stock,
                  denominator=per_day.quantize(MONEY_PLACES, ROUND_HALF_UP))


def inventory_turnover_days(*, actor: Actor, filters: Filters) -> Metric:
    """Core indicator 3: average stock at cost ÷ (cost of goods sold per day). Unit days.

    The stock is the online warehouse's (the only stock the platform holds), so the
    cost of goods is that of orders it ships: every channel but store POS. The
    average is over the days of the period with a snapshot; ``numerator`` is that
    average, ``denominator`` the cost of goods per day of the period. None for
    staff below brand level, with a region or store filter, or without snapshots.
    """
    series = _sales_series(actor, filters)
    last_filters = filters.last_year()
    last = _turnover(actor, last_filters, _sales_series(actor, last_filters, series.grain))
    return replace(_turnover(actor, filters, series), last_year=last)


# ---------------------------------------------------------------------------- page bundles


def overview(*, actor: Actor, filters: Filters) -> Overview:
    """Every metric of the overview page (the sales ones from one grouped query per year)."""
    series = _sales_series(actor, filters)
    last = _sales_series(actor, filters.last_year(), series.grain)
    return Overview(
        gmv=_sales_metric("gmv", series, last),
        sales_flow=_sales_metric("sales_flow", series, last),
        unpaid_ratio=_sales_metric("unpaid_ratio", series, last),
        refund_ratio=_sales_metric("refund_ratio", series, last),
        average_order_value=_sales_metric("average_order_value", series, last),
        private_domain_share=_sales_metric("private_domain_share", series, last),
        member_growth=member_growth(actor=actor, filters=filters),
        monthly_repurchase_rate=monthly_repurchase_rate(actor=actor, filters=filters),
        purchase_frequency=purchase_frequency(actor=actor, filters=filters),
        cross_purchase_rate=cross_purchase_rate(actor=actor, filters=filters),
        cross_brand_guided_share=cross_brand_guided_share(actor=actor, filters=filters),
        wecom_friend_rate=wecom_friend_rate(actor=actor, filters=filters),
        member_online_rate=member_online_rate(actor=actor, filters=filters),
        card_opening_rate=_sales_metric("card_opening_rate", series, last),
    )


def core_indicators(*, actor: Actor, filters: Filters) -> CoreIndicators:
    """The three core indicators and the cost of goods (one grouped sales query per year)."""
    series = _sales_series(actor, filters)
    last_filters = filters.last_year()
    last = _sales_series(actor, last_filters, series.grain)
    turnover = replace(_turnover(actor, filters, series), last_year=_turnover(actor, last_filters, last))
    return CoreIndicators(sales_revenue=_sales_metric("sales_revenue", series, last),
                          cost_of_goods=_sales_metric("cost_of_goods", series, last),
                          gross_profit=_sales_metric("gross_profit", series, last),
                          inventory_turnover_days=turnover)


# ---------------------------------------------------------------------------- previous period (环比)


def _without_history(metric: Metric) -> Metric:
    return replace(metric, trend=(), last_year=None, previous=None)


def with_previous(current, previous):
    """``current`` (a Metric or a bundle of them: Overview, CoreIndicators, MemberGrowth) with each Metric's
    ``previous`` set from the same metric of ``previous``, the same bundle computed for ``filters.previous()``.

    The comparison is computed by the same functions over the other period, so it means exactly what the
    metric means; only its value, numerator and denominator are kept (no trend)."""
    if isinstance(current, Metric):
        return replace(current, previous=_without_history(previous) if previous is not None else None)
    if not hasattr(current, "__dataclass_fields__"):
        return current
    changes = {}
    for name in current.__dataclass_fields__:
        value = getattr(current, name)
        if isinstance(value, Metric) or (hasattr(value, "__dataclass_fields__")
                                         and isinstance(value, MemberGrowth)):
            changes[name] = with_previous(value, getattr(previous, name))
    return replace(current, **changes)


def overview_compared(*, actor: Actor, filters: Filters) -> Overview:
    """The overview with last year's (同比) and the previous period's (环比) figures on every metric."""
    return with_previous(overview(actor=actor, filters=filters), overview(actor=actor, filters=filters.previous()))


def core_indicators_compared(*, actor: Actor, filters: Filters) -> CoreIndicators:
    """The core indicators with last year's (同比) and the previous period's (环比) figures."""
    return with_previous(core_indicators(actor=actor, filters=filters),
                         core_indicators(actor=actor, filters=filters.previous()))


def guide_sales_trend(*, actor: Actor, filters: Filters, guide_id: int) -> Metric:
    """One guide's credited sales (exclusive and selling credits of orders placed in the period, as the
    ``sales`` of ``guide_kpis``) per trend period, with the same period last year. Unit cny."""

    def build(f: Filters, grain: str) -> Metric:
        qs = scoped(GuideSalesFact.objects.filter(guide_id=guide_id), actor).filter(
            day__gte=f.date_from, day__lte=f.date_to).order_by()
        if f.channel:
            qs = qs.filter(channel=f.channel)
        by_period = {_as_date(r["period"]): money(r["v"])
                     for r in qs.annotate(period=_period_expr(grain)).values("period").annotate(v=Sum("amount"))}
        trend = tuple(Point(period=p, value=by_period.get(p, ZERO)) for p in _periods(f, grain))
        return Metric(key="guide_sales", unit="cny", value=sum(by_period.values(), ZERO), trend=trend)

    grain = filters.trend_grain
    return replace(build(filters, grain), last_year=build(filters.last_year(), grain))
