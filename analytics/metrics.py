"""The dashboard's metrics: one function per metric, each with its exact definition (DOMAIN.md).

Every function is keyword-only, takes ``actor`` (``retail_crm.scoping.Actor``) and
``filters`` (:class:`Filters`: date range, brand, region, store, channel) and reads
only through ``retail_crm.scoping.scoped``. Scalar metrics return a :class:`Metric`
(value, numerator/denominator for ratios, trend, and the same period last year);
tables return lists of small dataclasses. The dashboard pages, the exports and the
staff API (``/api/v1/analytics/…``) all call these functions, so they show the same
numbers for the same filters.

STATUS: signatures are stable. Functions marked ``NOT YET IMPLEMENTED`` raise
``NotImplementedError`` until their facts land (issue 8, helper "facts").

Periods and days are local days (settings.TIME_ZONE); an order belongs to the day
it was placed (``ordered_at``), as in attribution and RFML. "Same period last year"
is the same dates one year earlier (29 February → 28 February). Ratios are
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
- ``operating_profit``: sales flow − cost of goods sold, where cost of goods =
  Σ quantity × ``Sku.cost_price`` over lines of orders paid in the period minus
  the cost of units returned by completed refunds (core indicator 2).
- ``inventory_turnover_days``: average stock value at cost over the days of the
  period that have an inventory snapshot ÷ (cost of goods sold ÷ days in the
  period) (core indicator 3). Stock is the online warehouse's, per brand, so this
  is defined for group and brand views only (None with a region or store filter,
  or for staff scoped below brand). History starts with the first snapshot.

Members (from ``PurchaseFact``, one row per purchase as defined by
``mall.selectors.purchases``: paid, net > 0):

- ``monthly_repurchase_rate`` (单月复购率): members with ≥ 2 purchases in the month
  ÷ members with ≥ 1 purchase in the month; for a period, member-months are pooled
  (Σ repeat members over the months ÷ Σ purchasing members), the trend is monthly.
  A month cut by the period counts only the period's days.
- ``purchase_frequency``: purchases ÷ purchasing members in the month, pooled the
  same way (Σ purchases ÷ Σ purchasing members over the months).
- ``cross_purchase_rate``: members who bought both online (any non-POS channel) and
  offline (store POS) in the period ÷ purchasing members in the period. The
  channel filter does not apply (it would make the rate zero by construction).
- ``cross_brand_guided_share``: guided sales where the order's brand differs from
  the credited guide's brand ÷ all guided sales; guided sales are the guide credits
  (exclusive and selling) booked for orders placed in the period. The brand,
  region and store filters select the guides (their store).
- ``wecom_friend_rate``: store buyers (members with an offline purchase in the
  period) who are, at the end of the period, a WeCom friend of a guide of that
  purchase's brand ÷ store buyers.
- ``member_online_rate`` (会员在线率): members active in the mini-program in the
  period (a ``MemberDailyActivity`` row) ÷ members (memberships joined by the end of
  the period). Region/store filters use the membership's join store.
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
- ``segment_sales``: per RFML class (the member's current class): members and the
  sales flow of their purchases in the period.
- ``segment_transitions``: members per (class in run A, class in run B) of one brand.
- ``consumption_cycles``: per brand, the latest run's consumption cycle (days).
- ``livestream_summary``: sessions held (ended, actual start in the period), hours
  live (Σ actual end − actual start), viewers (Σ session UV), buyers, conversion
  (Σ buyers ÷ Σ viewers), GMV and paid sales (from ``SessionStats``), split HQ
  central vs store sessions (1+N), and per brand and per host store.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from django.utils.translation import gettext_lazy as _

from mall.models import Channel
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.scoping import Actor

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
    """The three core indicators (and the cost of goods behind operating profit)."""

    sales_revenue: Metric
    cost_of_goods: Metric
    operating_profit: Metric
    inventory_turnover_days: Metric


# ---------------------------------------------------------------------------- filters from a query string


FILTER_FIELDS = ("from", "to", "brand", "region", "store", "channel")


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
    from retail_crm.models import Brand, Region, Store
    from retail_crm.scoping import scoped

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
    if errors:
        raise ApplicationError(ErrorCode.INVALID, str(_("Invalid filters.")), fields=errors)
    date_to = date_to or today
    date_from = date_from or date_to - dt.timedelta(days=default_days - 1)
    if date_from > date_to:
        errors["from"] = [str(_("The start date is after the end date."))]
    elif (date_to - date_from).days + 1 > MAX_PERIOD_DAYS:
        errors["to"] = [str(_("A period covers at most %(days)s days.") % {"days": MAX_PERIOD_DAYS})]
    elif date_from.year < 2000 or date_to.year > 2999:
        errors["from"] = [str(_("Enter a date between 2000 and 2999."))]

    channel = (params.get("channel") or "").strip() or None
    if channel is not None and channel not in Channel.values:
        errors["channel"] = [str(_("Unknown channel. One of: %(values)s.") % {"values": ", ".join(Channel.values)})]

    brand = region = store = None
    codes = {name: (params.get(name) or "").strip() for name in ("brand", "region", "store")}
    for name, code in codes.items():
        if len(code) > 32:
            errors[name] = [str(_("At most 32 characters."))]
    if codes["brand"] and "brand" not in errors:
        brand = Brand.objects.filter(code=codes["brand"]).first()
        if brand is None:
            errors["brand"] = [str(_("No brand with this code."))]
    if codes["region"] and "region" not in errors:
        regions = Region.objects.filter(code=codes["region"])
        if brand is not None:
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
    from retail_crm.models import Brand, Region, Store

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


# ---------------------------------------------------------------------------- sales (SalesFact)


def gmv(*, actor: Actor, filters: Filters) -> Metric:
    """GMV: Σ amount of every order placed in the period (unpaid, cancelled, refunded included). Unit cny."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def sales_flow(*, actor: Actor, filters: Filters) -> Metric:
    """Sales flow (销售流水): Σ (paid − refunded) over orders paid in the period. Unit cny."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def unpaid_ratio(*, actor: Actor, filters: Filters) -> Metric:
    """Σ amount of orders never paid ÷ GMV. Unit ratio."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def refund_ratio(*, actor: Actor, filters: Filters) -> Metric:
    """Σ refunded ÷ Σ paid over orders paid in the period. Unit ratio."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def average_order_value(*, actor: Actor, filters: Filters) -> Metric:
    """客单价: sales flow ÷ paid orders. Unit cny."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def private_domain_share(*, actor: Actor, filters: Filters) -> Metric:
    """私域占比: private-domain channels' sales flow ÷ all channels' sales flow. Unit ratio."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def store_monthly_private_domain_sales(*, actor: Actor, filters: Filters) -> Metric:
    """单店月效: average private-domain sales flow per store-month with sales. Unit cny; trend monthly."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def store_month_rows(*, actor: Actor, filters: Filters, limit: int = 100) -> list[StoreMonthRow]:
    """Private-domain sales flow per store and month, largest first."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def card_opening_rate(*, actor: Actor, filters: Filters) -> Metric:
    """开卡率: paid offline orders with a member ÷ all paid offline orders. Unit ratio."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def ranking(*, actor: Actor, filters: Filters, level: str, limit: int = 50) -> list[RankRow]:
    """Brands, regions or stores (``level``) of the scope and filters, by sales flow, largest first."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


# ---------------------------------------------------------------------------- members (PurchaseFact and members)


def monthly_repurchase_rate(*, actor: Actor, filters: Filters) -> Metric:
    """Members with ≥2 purchases in the month ÷ members with ≥1, member-months pooled. Unit ratio; trend monthly."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def purchase_frequency(*, actor: Actor, filters: Filters) -> Metric:
    """Purchases ÷ purchasing members in the month, pooled over months. Unit per_member; trend monthly."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def cross_purchase_rate(*, actor: Actor, filters: Filters) -> Metric:
    """Members who bought online and offline in the period ÷ purchasing members. Unit ratio."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def cross_brand_guided_share(*, actor: Actor, filters: Filters) -> Metric:
    """Guide credits on other brands' orders ÷ all guide credits. Unit ratio."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def wecom_friend_rate(*, actor: Actor, filters: Filters) -> Metric:
    """Store buyers who are WeCom friends of a guide of the brand ÷ store buyers. Unit ratio."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def member_online_rate(*, actor: Actor, filters: Filters) -> Metric:
    """Members active in the mini-program in the period ÷ members. Unit ratio."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def member_growth(*, actor: Actor, filters: Filters) -> MemberGrowth:
    """Members at the period's end, new memberships in it, by join channel (with last year)."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


# ---------------------------------------------------------------------------- guides


def guide_kpis(*, actor: Actor, filters: Filters, limit: int = 100, order_by: str = "sales") -> list[GuideKpiRow]:
    """Guide KPI rows of the scope and filters, ordered by ``order_by`` (a GuideKpiRow field) descending."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def task_execution_rate(*, actor: Actor, filters: Filters) -> Metric:
    """Task assignments made in the period and executed ÷ task assignments made in the period. Unit ratio."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


# ---------------------------------------------------------------------------- segments


def segment_sizes(*, actor: Actor, filters: Filters) -> list[SegmentSize]:
    """Members per RFML class per run (runs as of a day in the period), per brand, oldest run first."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def segment_sales(*, actor: Actor, filters: Filters) -> list[SegmentSales]:
    """Per current RFML class: members, buyers, purchases and sales flow in the period."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def segment_transitions(*, actor: Actor, brand_id: int, from_run_id: int, to_run_id: int) -> list[SegmentTransition]:
    """Members per (class at run A, class at run B) for one brand."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def consumption_cycles(*, actor: Actor, filters: Filters) -> list[CycleRow]:
    """Each brand's consumption cycle (latest run), brands of the scope and filters."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def care_list_completion(*, actor: Actor, filters: Filters) -> Metric:
    """Care-list items of the period's days marked done ÷ items. Unit ratio."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


# ---------------------------------------------------------------------------- livestream


def livestream_summary(*, actor: Actor, filters: Filters) -> LivestreamSummary:
    """Sessions, hours, viewers, conversion, GMV: all, HQ central vs store, per brand and host store."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


# ---------------------------------------------------------------------------- core indicators


def sales_revenue(*, actor: Actor, filters: Filters) -> Metric:
    """Core indicator 1: the sales flow. Unit cny."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def cost_of_goods(*, actor: Actor, filters: Filters) -> Metric:
    """Cost of goods sold: Σ qty × SKU cost of paid orders' lines − cost of returned units. Unit cny."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def operating_profit(*, actor: Actor, filters: Filters) -> Metric:
    """Core indicator 2: sales flow − cost of goods sold. Unit cny."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def inventory_turnover_days(*, actor: Actor, filters: Filters) -> Metric:
    """Core indicator 3: average stock at cost ÷ (cost of goods sold per day). Unit days."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


# ---------------------------------------------------------------------------- page bundles


def overview(*, actor: Actor, filters: Filters) -> Overview:
    """Every metric of the overview page."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")


def core_indicators(*, actor: Actor, filters: Filters) -> CoreIndicators:
    """The three core indicators and the cost of goods."""
    raise NotImplementedError("NOT YET IMPLEMENTED (facts helper)")
