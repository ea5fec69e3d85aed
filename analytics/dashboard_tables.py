"""The dashboard's tables, declared once: the pages render them and the exports write them.

A :class:`Table` names its columns and a ``rows`` function taking the viewer's actor, the validated
query and a row limit (None: all rows). Rows come from the metric functions in ``analytics.metrics``;
this module only picks columns, labels and drill-down links, so a page, its CSV/XLSX export and the
staff API show the same numbers by construction. No metric is computed here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from analytics import metrics
from analytics.filters import DashboardQuery, region_value
from mall.models import Channel
from members.models import JoinChannel
from retail_crm.models import Guide, Region, Store
from retail_crm.scoping import Actor, scoped
from segments.models import Segment

Row = Any
# metrics functions take an int limit; "all rows" for an export is this many.
ALL_ROWS = 10_000_000


class Kind:
    """How a column's values are shown and exported."""

    TEXT = "text"
    INT = "int"
    MONEY = "money"  # Decimal CNY, two places
    RATIO = "ratio"  # Decimal fraction (0.5625), shown as a percentage
    DECIMAL = "decimal"  # Decimal with its own places (days, hours, purchases per member)
    DATE = "date"
    MONTH = "month"  # a date standing for its calendar month
    NUMBER = "number"  # a number shown with the places it has (numerators and denominators)
    ROW = "row"  # the row says: ``row["kind"]`` (tables of headline metrics mixing money and ratios)


# metrics.Metric.unit → column kind
KIND_OF_UNIT = {"cny": Kind.MONEY, "ratio": Kind.RATIO, "count": Kind.INT, "days": Kind.DECIMAL,
                "per_member": Kind.DECIMAL}


@dataclass(frozen=True)
class Column:
    key: str
    label: str | Promise
    kind: str = Kind.TEXT
    # False for machine codes (metric keys, class codes): the export keeps them, the page shows the label.
    page: bool = True


@dataclass(frozen=True)
class Table:
    """One table of a page: what it shows and where its rows come from."""

    key: str
    title: str | Promise
    columns: tuple[Column, ...]
    rows: Callable[[Actor, DashboardQuery, int | None], Iterable[Row]]
    # Optional drill-down from the first cell: (url name, filter overrides) for a row, or None.
    link: Callable[[Row], tuple[str, dict] | None] | None = None
    # Optional upper bound on the row count, cheap to get (decides whether an export runs as a job).
    size: Callable[[Actor, DashboardQuery], int] | None = None
    note: str | Promise = ""
    # Page-specific GET parameters (besides the filters) the rows depend on, kept in export links.
    extra_params: tuple[str, ...] = ()

    def header(self) -> list[str]:
        return [str(column.label) for column in self.columns]

    @property
    def page_columns(self) -> tuple[Column, ...]:
        return tuple(column for column in self.columns if column.page)

    def column(self, key: str) -> Column | None:
        return next((column for column in self.columns if column.key == key), None)


REGISTRY: dict[str, Table] = {}


def register(table: Table) -> Table:
    if table.key in REGISTRY:
        raise ValueError(f"table {table.key!r} registered twice")
    REGISTRY[table.key] = table
    return table


def get_table(key: str) -> Table | None:
    return REGISTRY.get(key)


def cell_kind(row: Row, column: Column) -> str:
    """The column's kind, or the row's own for ``Kind.ROW`` columns."""
    if column.kind != Kind.ROW:
        return column.kind
    return (row.get("kind") if isinstance(row, Mapping) else getattr(row, "kind", None)) or Kind.NUMBER


def cell(row: Row, column: Column):
    """A row's value for a column (rows are mappings or objects with attributes; dotted keys follow)."""
    value = row
    for part in column.key.split("."):
        value = value.get(part) if isinstance(value, Mapping) else getattr(value, part, None)
        if value is None:
            return None
    return value


def export_value(value, kind: str):
    """The value written to CSV: plain, machine-readable, exact (no thousands separators or % signs)."""
    if value is None:
        return ""
    if kind == Kind.MONEY:
        return f"{Decimal(value):.2f}"
    if kind == Kind.RATIO:
        return f"{Decimal(value):.4f}"
    if kind == Kind.MONTH and isinstance(value, dt.date):
        return value.strftime("%Y-%m")
    if isinstance(value, dt.date):
        return value.isoformat()
    return safe_text(str(value)) if kind == Kind.TEXT else str(value)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_text(text: str) -> str:
    """Text a spreadsheet will not run as a formula (a store or guide name typed as ``=HYPERLINK(…)``)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _limit(limit: int | None) -> int:
    return ALL_ROWS if limit is None else limit


# ---------------------------------------------------------------------------- labels
# Machine codes (metric keys, class codes, session kinds) stay in the exports, where scripts read them, at
# their usual place; the page shows the translated label instead (``Column.page=False``).

CHANNEL_LABELS = dict(Channel.choices)
JOIN_CHANNEL_LABELS = dict(JoinChannel.choices)
SEGMENT_LABELS = {**dict(Segment.choices), "": _("No class")}

METRIC_LABELS = {
    "gmv": _("GMV"),
    "sales_flow": _("Sales flow"),
    "unpaid_ratio": _("Unpaid ratio"),
    "refund_ratio": _("Refund ratio"),
    "average_order_value": _("Average order value"),
    "private_domain_share": _("Private-domain share"),
    "members": _("Members"),
    "new_members": _("New members"),
    "monthly_repurchase_rate": _("Monthly repurchase rate"),
    "purchase_frequency": _("Purchase frequency"),
    "cross_purchase_rate": _("Online-offline cross purchase rate"),
    "cross_brand_guided_share": _("Cross-brand guided share"),
    "wecom_friend_rate": _("WeCom friend rate of store buyers"),
    "member_online_rate": _("Member online rate"),
    "card_opening_rate": _("Card-opening rate"),
    "store_monthly_private_domain_sales": _("Store monthly private-domain sales"),
    "task_execution_rate": _("Task execution rate"),
    "care_list_completion": _("Care list completion"),
    "sales_revenue": _("Sales revenue"),
    "cost_of_goods": _("Cost of goods sold"),
    "gross_profit": _("Gross profit"),
    "inventory_turnover_days": _("Inventory turnover days"),
}


#: Member rates over a period that is no calendar month: one window over exactly the period's days (issue 24).
PERIOD_METRIC_LABELS = {
    "monthly_repurchase_rate": _("Repurchase rate in the period"),
    "purchase_frequency": _("Purchase frequency in the period"),
    "cross_purchase_rate": _("Online-offline cross purchase rate in the period"),
    "wecom_friend_rate": _("WeCom friend rate of store buyers in the period"),
    "member_online_rate": _("Member online rate in the period"),
}

#: The definitions the page shows under a metric (the same words as the API's field descriptions).
METRIC_HELP = {
    "cross_brand_guided_share": _("Share of guided sales whose order brand differs from the credited guide's brand: "
                                  "each guided order's amount counted once; an order is cross-brand if any credited "
                                  "guide is of another brand."),
}
#: The help of member rates, by basis ("month": a calendar month; "period": one window over exactly its days).
BASIS_HELP = {
    "month": _("A calendar month: the monthly definition (distinct members of the month)."),
    "period": _("Counted over exactly the days of the period as one window (distinct members of those days); "
                "no day outside the period counts."),
}


def metric_label(metric: metrics.Metric) -> str:
    """A metric's label: member rates of a period that is no calendar month say "in the period"."""
    if metric.basis == "period" and metric.key in PERIOD_METRIC_LABELS:
        return str(PERIOD_METRIC_LABELS[metric.key])
    return str(METRIC_LABELS.get(metric.key, metric.key))


def metric_help(metric: metrics.Metric) -> str:
    """The definition shown with a metric on the page ("" when the label says it all)."""
    if metric.key in METRIC_HELP:
        return str(METRIC_HELP[metric.key])
    return str(BASIS_HELP.get(metric.basis, ""))


@dataclass(frozen=True)
class MetricRow:
    """A headline metric as a table row (the overview's and core indicators' exports)."""

    key: str
    label: str
    kind: str
    value: Any
    last_year: Any
    numerator: Any
    denominator: Any
    metric: metrics.Metric
    previous: Any = None  # 环比: the previous period's value


def comparison_has_data(metric: metrics.Metric | None, value=None) -> bool:
    """Whether a comparison period has figures to compare with: a ratio needs a denominator, an amount or
    count a value other than zero (a period before any data sums to 0, which is not a base for a change)."""
    if metric is None:
        return value not in (None, "") and Decimal(value) != 0
    if metric.value is None:
        return False
    if metric.unit == "ratio":
        return bool(metric.denominator)
    return Decimal(metric.value) != 0


def metric_row(metric: metrics.Metric) -> MetricRow:
    last_year, previous = metric.last_year, metric.previous
    return MetricRow(key=metric.key, label=metric_label(metric),
                     kind=KIND_OF_UNIT.get(metric.unit, Kind.DECIMAL), value=metric.value,
                     last_year=last_year.value if last_year is not None else None,
                     numerator=metric.numerator, denominator=metric.denominator, metric=metric,
                     previous=previous.value if previous is not None else None)


def overview_metrics(overview: metrics.Overview) -> list[metrics.Metric]:
    """The overview's headline metrics in the order the page shows them."""
    return [overview.gmv, overview.sales_flow, overview.unpaid_ratio, overview.refund_ratio,
            overview.average_order_value, overview.private_domain_share, overview.member_growth.members,
            overview.member_growth.new_members, overview.monthly_repurchase_rate, overview.purchase_frequency,
            overview.cross_purchase_rate, overview.cross_brand_guided_share, overview.wecom_friend_rate,
            overview.member_online_rate, overview.card_opening_rate]


def core_metrics(core: metrics.CoreIndicators) -> list[metrics.Metric]:
    return [core.sales_revenue, core.cost_of_goods, core.gross_profit, core.inventory_turnover_days]


_METRIC_COLUMNS = (
    Column("label", _("Metric")),
    Column("display_value", _("Value"), Kind.ROW),
    Column("display_last_year", _("Same period last year"), Kind.ROW),
    Column("display_previous", _("Previous period"), Kind.ROW),
    Column("numerator", _("Numerator"), Kind.NUMBER),
    Column("denominator", _("Denominator"), Kind.NUMBER),
)


def _metric_rows(fetch: Callable[[Actor, metrics.Filters], list[metrics.Metric]]):
    def rows(actor: Actor, query: DashboardQuery, limit: int | None) -> list[dict]:
        out = []
        for metric in fetch(actor, query.filters):
            row = metric_row(metric)
            out.append({"key": row.key, "label": row.label, "unit": metric.unit, "kind": row.kind,
                        # A comparison period without figures shows blank, as the cards say "no data".
                        "display_value": row.value,
                        "display_last_year": row.last_year if comparison_has_data(metric.last_year) else None,
                        "display_previous": row.previous if comparison_has_data(metric.previous) else None,
                        "numerator": row.numerator, "denominator": row.denominator})
        return out
    return rows


register(Table(
    "overview_metrics", _("Key figures"),
    (Column("key", _("Key"), page=False), *_METRIC_COLUMNS),
    _metric_rows(lambda actor, filters: overview_metrics(
        memo_call(metrics.overview_compared, actor=actor, filters=filters))),
    note=_("Ratios are fractions (0.5600 = 56%); money in CNY. Member rates of a calendar month follow the monthly "
           "definition; of any other period, one window over exactly its days (\"in the period\"). Cross-brand "
           "guided share: each guided order's amount counted once; an order is cross-brand if any credited guide "
           "is of another brand."),
))

register(Table(
    "new_members_by_join_channel", _("New members by join channel"),
    (Column("label", _("Join channel")), Column("join_channel", _("Code"), page=False),
     Column("new_members", _("New members"), Kind.INT),
     Column("new_members_last_year", _("Same period last year"), Kind.INT)),
    lambda actor, query, limit: [
        {"label": str(JOIN_CHANNEL_LABELS.get(row.join_channel, row.join_channel)), "join_channel": row.join_channel,
         "new_members": row.new_members, "new_members_last_year": row.new_members_last_year}
        for row in memo_call(metrics.overview_compared, actor=actor, filters=query.filters)
        .member_growth.by_join_channel],
))


# ---------------------------------------------------------------------------- rankings (drill-down)

_RANK_COLUMNS = (
    Column("sales_flow", _("Sales flow"), Kind.MONEY),
    Column("gmv", _("GMV"), Kind.MONEY),
    Column("paid_orders", _("Paid orders"), Kind.INT),
    Column("average_order_value", _("Average order value"), Kind.MONEY),
    Column("private_domain_sales", _("Private-domain sales"), Kind.MONEY),
    Column("private_domain_share", _("Private-domain share"), Kind.RATIO),
    Column("refund_ratio", _("Refund ratio"), Kind.RATIO),
    Column("sales_flow_last_year", _("Sales flow last year"), Kind.MONEY),
    Column("growth", _("Growth vs last year"), Kind.RATIO),
    Column("sales_flow_previous", _("Sales flow previous period"), Kind.MONEY),
    Column("growth_previous", _("Growth vs previous period"), Kind.RATIO),
)


@dataclass(frozen=True)
class ComparedRankRow(metrics.RankRow):
    """A ranking row with the previous period's (环比) sales flow of the same brand, region or store."""

    sales_flow_previous: Decimal
    growth_previous: Decimal | None  # (this − previous) ÷ previous


def _growth(current: Decimal, previous: Decimal) -> Decimal | None:
    if not previous:
        return None
    return ((current - previous) / previous).quantize(metrics.RATIO_PLACES, ROUND_HALF_UP)


def _ranking(level: str):
    def rows(actor: Actor, query: DashboardQuery, limit: int | None) -> list[ComparedRankRow]:
        current = memo_call(metrics.ranking, actor=actor, filters=query.filters, level=level, limit=_limit(limit))
        # Every unit's previous figure, not the previous period's top: a unit of this page may have ranked low.
        before = memo_call(metrics.sales_flow_by_unit, actor=actor, filters=query.filters.previous(), level=level)
        out = []
        for row in current:
            previous = before.get(row.id, metrics.ZERO)
            out.append(ComparedRankRow(**{f.name: getattr(row, f.name) for f in fields(row)},
                                       sales_flow_previous=previous,
                                       growth_previous=_growth(row.sales_flow, previous)))
        return out
    return rows


def _org_count(model, **path):
    """An upper bound on a ranking's rows: the organisation units of the scope under the filters."""
    def size(actor: Actor, query: DashboardQuery) -> int:
        f = query.filters
        rows = scoped(model.objects.all(), actor)
        for attr, lookup in path.items():
            value = getattr(f, attr)
            if value:
                rows = rows.filter(**{lookup: value})
        return rows.count()
    return size


register(Table(
    "brand_ranking", _("Brand ranking"),
    (Column("name", _("Brand")), Column("code", _("Code")), *_RANK_COLUMNS),
    _ranking("brand"),
    link=lambda row: ("hq:regions", {"brand": row.code, "region": None, "store": None}),
))
register(Table(
    "region_ranking", _("Region ranking"),
    (Column("name", _("Region")), Column("code", _("Code")), Column("brand_code", _("Brand")), *_RANK_COLUMNS),
    _ranking("region"),
    link=lambda row: ("hq:stores", {"brand": row.brand_code, "region": region_value(row.brand_code, row.code),
                                    "store": None}),
    size=_org_count(Region, brand_id="brand_id", region_id="pk"),
))
register(Table(
    "store_ranking", _("Store ranking"),
    (Column("name", _("Store")), Column("code", _("Code")), Column("brand_code", _("Brand")), *_RANK_COLUMNS),
    _ranking("store"),
    link=lambda row: ("hq:guides", {"brand": row.brand_code, "store": row.code}) if row.code else None,
    size=_org_count(Store, brand_id="brand_id", region_id="region_id", store_id="pk"),
))
register(Table(
    "store_monthly_sales", _("Store monthly private-domain sales"),
    (Column("store_name", _("Store")), Column("store_code", _("Code")), Column("month", _("Month"), Kind.MONTH),
     Column("private_domain_sales", _("Private-domain sales"), Kind.MONEY),
     Column("sales_flow", _("Sales flow"), Kind.MONEY)),
    lambda actor, query, limit: memo_call(metrics.store_month_rows, actor=actor, filters=query.filters,
                                          limit=_limit(limit)),
    link=lambda row: ("hq:guides", {"store": row.store_code}),
    size=lambda actor, query: _org_count(Store, brand_id="brand_id", region_id="region_id", store_id="pk")(
        actor, query) * (query.filters.date_to.year * 12 + query.filters.date_to.month
                         - query.filters.date_from.year * 12 - query.filters.date_from.month + 1),
))
register(Table(
    "guide_kpis", _("Guide KPIs"),
    (Column("guide_name", _("Guide")), Column("guide_code", _("Code")), Column("store_name", _("Store")),
     Column("brand_code", _("Brand")),
     Column("sales", _("Sales"), Kind.MONEY), Column("online_sales", _("Online sales"), Kind.MONEY),
     Column("offline_sales", _("Offline sales"), Kind.MONEY),
     Column("cross_brand_sales", _("Cross-brand sales"), Kind.MONEY),
     Column("members_served", _("Members served"), Kind.INT), Column("new_members", _("New members"), Kind.INT),
     Column("wecom_friends_added", _("WeCom friends added"), Kind.INT), Column("shares", _("Shares"), Kind.INT),
     Column("share_pv", _("Share PV"), Kind.INT), Column("share_uv", _("Share UV"), Kind.INT),
     Column("material_pv", _("Material PV"), Kind.INT), Column("material_uv", _("Material UV"), Kind.INT),
     Column("tasks_assigned", _("Tasks assigned"), Kind.INT), Column("tasks_executed", _("Tasks executed"), Kind.INT),
     Column("task_execution_rate", _("Task execution rate"), Kind.RATIO),
     Column("commission", _("Commission"), Kind.MONEY)),
    lambda actor, query, limit: memo_call(metrics.guide_kpis, actor=actor, filters=query.filters, limit=_limit(limit)),
    link=lambda row: ("hq:guide", {"brand": None, "region": None, "store": None}, [row.guide_code]),
    size=lambda actor, query: _org_count(Guide, brand_id="store__brand_id", region_id="store__region_id",
                                         store_id="store_id")(actor, query),
))


# ---------------------------------------------------------------------------- segments

register(Table(
    "segment_sizes", _("RFML class sizes per run"),
    (Column("brand_code", _("Brand")), Column("as_of", _("As of"), Kind.DATE), Column("segment_label", _("Class")),
     Column("segment", _("Code"), page=False), Column("members", _("Members"), Kind.INT)),
    lambda actor, query, limit: [
        {"brand_code": r.brand_code, "run_id": r.run_id, "as_of": r.as_of, "segment": r.segment,
         "segment_label": str(SEGMENT_LABELS.get(r.segment, r.segment)), "members": r.members}
        for r in memo_call(metrics.segment_sizes, actor=actor, filters=query.filters)],
))
register(Table(
    "segment_sales", _("Sales per RFML class"),
    (Column("segment_label", _("Class")), Column("segment", _("Code"), page=False),
     Column("members", _("Members"), Kind.INT),
     Column("buyers", _("Buyers"), Kind.INT), Column("purchases", _("Purchases"), Kind.INT),
     Column("sales_flow", _("Sales flow"), Kind.MONEY)),
    lambda actor, query, limit: [
        {"segment": r.segment, "segment_label": str(SEGMENT_LABELS.get(r.segment, r.segment)), "members": r.members,
         "buyers": r.buyers, "purchases": r.purchases, "sales_flow": r.sales_flow}
        for r in memo_call(metrics.segment_sales, actor=actor, filters=query.filters)],
))


def transition_rows(actor: Actor, query: DashboardQuery, limit: int | None) -> list[dict]:
    runs = query_runs(query)
    if runs is None:
        return []
    brand_id, from_run, to_run = runs
    return [
        {"from_segment": r.from_segment, "to_segment": r.to_segment, "members": r.members,
         "from_label": str(SEGMENT_LABELS.get(r.from_segment, r.from_segment)),
         "to_label": str(SEGMENT_LABELS.get(r.to_segment, r.to_segment))}
        for r in memo_call(metrics.segment_transitions, actor=actor, brand_id=brand_id, from_run_id=from_run,
                           to_run_id=to_run)]


def query_runs(query: DashboardQuery) -> tuple[int, int, int] | None:
    """(brand id, run A, run B) chosen on the segments page, validated by the page (see dashboard_pages)."""
    extra = dict(query.extra)
    if not (query.filters.brand_id and extra.get("from_run") and extra.get("to_run")):
        return None
    return query.filters.brand_id, int(extra["from_run"]), int(extra["to_run"])


register(Table(
    "segment_transitions", _("RFML class transitions"),
    (Column("from_label", _("Class at run A")), Column("to_label", _("Class at run B")),
     Column("from_segment", _("Class code at run A"), page=False),
     Column("to_segment", _("Class code at run B"), page=False),
     Column("members", _("Members"), Kind.INT)),
    transition_rows,
    note=_("Choose a brand and two of its runs."),
    extra_params=("from_run", "to_run"),
))
register(Table(
    "consumption_cycles", _("Consumption cycle per brand"),
    (Column("brand_name", _("Brand")), Column("brand_code", _("Code")), Column("as_of", _("As of"), Kind.DATE),
     Column("cycle_days", _("Cycle (days)"), Kind.DECIMAL), Column("override_days", _("Override (days)"), Kind.INT)),
    lambda actor, query, limit: memo_call(metrics.consumption_cycles, actor=actor, filters=query.filters),
))


def _trend_rows(fetch: Callable[[Actor, metrics.Filters], metrics.Metric]):
    def rows(actor: Actor, query: DashboardQuery, limit: int | None) -> list[metrics.Point]:
        return list(fetch(actor, query.filters).trend)
    return rows


register(Table(
    "care_list_completion", _("Care list completion"),
    (Column("period", _("Day"), Kind.DATE), Column("numerator", _("Done"), Kind.INT),
     Column("denominator", _("Items"), Kind.INT), Column("value", _("Completion"), Kind.RATIO)),
    _trend_rows(lambda actor, filters: memo_call(metrics.care_list_completion, actor=actor, filters=filters)),
))


# ---------------------------------------------------------------------------- livestream

_LIVE_COLUMNS = (
    Column("figures.sessions", _("Live sessions"), Kind.INT), Column("figures.hours", _("Hours live"), Kind.DECIMAL),
    Column("figures.viewers", _("Viewers"), Kind.INT), Column("figures.buyers", _("Buyers"), Kind.INT),
    Column("figures.conversion", _("Conversion"), Kind.RATIO), Column("figures.gmv", _("GMV"), Kind.MONEY),
    Column("figures.paid_sales", _("Paid sales"), Kind.MONEY),
)


def live_split_rows(actor: Actor, query: DashboardQuery, limit: int | None) -> list[dict]:
    summary = memo_call(metrics.livestream_summary, actor=actor, filters=query.filters)
    return [{"label": str(label), "key": key, "figures": figures} for key, label, figures in (
        ("total", _("All sessions"), summary.total), ("central", _("HQ central sessions (1)"), summary.central),
        ("store", _("Store sessions (N)"), summary.store), ("total_last_year", _("All sessions, last year"),
                                                             summary.total_last_year))]


register(Table("live_split", _("Livestream: HQ central vs store sessions"),
               (Column("label", _("Live sessions")), Column("key", _("Code"), page=False), *_LIVE_COLUMNS),
               live_split_rows))
register(Table(
    "live_by_brand", _("Livestream by brand"), (Column("name", _("Brand")), Column("code", _("Code")), *_LIVE_COLUMNS),
    lambda actor, query, limit: list(
        memo_call(metrics.livestream_summary, actor=actor, filters=query.filters).by_brand),
    link=lambda row: ("hq:livestream", {"brand": row.code, "region": None, "store": None}),
))
register(Table(
    "live_by_store", _("Livestream by host store"),
    (Column("name", _("Store")), Column("code", _("Code")), *_LIVE_COLUMNS),
    lambda actor, query, limit: list(
        memo_call(metrics.livestream_summary, actor=actor, filters=query.filters).by_store)[: _limit(limit)],
))


def store_phase_rows(actor: Actor, query: DashboardQuery, limit: int | None) -> list[dict]:
    """Store livestream phases and the month's progress against the phase targets (livestream.phases), for the
    month of the period's last day; one brand at a time (the chosen one, or the viewer's own)."""
    from livestream.models import LivePhase
    from livestream.phases import brand_store_progress
    from retail_crm.models import Brand

    f = query.filters
    brand_id = f.brand_id or actor.brand_id
    if brand_id is None and actor.region_id:
        brand_id = Region.objects.filter(pk=actor.region_id).values_list("brand_id", flat=True).first()
    brand = Brand.objects.filter(pk=brand_id).first() if brand_id else None
    if brand is None:
        return []
    progress = memo_call(brand_store_progress, brand=brand, month=f.date_to.replace(day=1), actor=actor)
    if f.store_id:
        progress = [p for p in progress if p.store_id == f.store_id]
    elif f.region_id:
        ids = set(Store.objects.filter(region_id=f.region_id).values_list("pk", flat=True))
        progress = [p for p in progress if p.store_id in ids]
    labels = dict(LivePhase.choices)
    return [{"store_name": p.store_name, "store_code": p.store_code, "month": p.month, "phase": p.phase,
             "phase_label": str(labels.get(p.phase, p.phase)), "phase_since": p.phase_since,
             "sessions_planned": p.sessions_planned, "sessions_held": p.sessions_held, "hours_live": p.hours_live,
             "live_sales": p.live_sales, "viewers": p.viewers, "buyers": p.buyers, "conversion": p.conversion,
             "coaching_notes": p.coaching_notes, "average_rating": p.average_rating,
             "targets_met": sum(1 for t in p.targets if t.met), "targets": len(p.targets),
             "all_met": "" if p.all_met is None else str(_("yes") if p.all_met else _("no"))}
            for p in progress[: _limit(limit)]]


register(Table(
    "live_store_phases", _("Store livestream phases and progress"),
    (Column("store_name", _("Store")), Column("store_code", _("Code")), Column("month", _("Month"), Kind.MONTH),
     Column("phase_label", _("Phase")), Column("phase_since", _("Since"), Kind.DATE),
     Column("sessions_planned", _("Sessions planned"), Kind.INT), Column("sessions_held", _("Sessions held"), Kind.INT),
     Column("hours_live", _("Hours live"), Kind.DECIMAL), Column("live_sales", _("Live sales"), Kind.MONEY),
     Column("viewers", _("Viewers"), Kind.INT), Column("buyers", _("Buyers"), Kind.INT),
     Column("conversion", _("Conversion"), Kind.RATIO), Column("coaching_notes", _("Coaching notes"), Kind.INT),
     Column("average_rating", _("Average rating"), Kind.DECIMAL), Column("targets_met", _("Targets met"), Kind.INT),
     Column("targets", _("Targets"), Kind.INT), Column("all_met", _("All met"))),
    store_phase_rows,
    note=_("The month of the period's last day, one brand at a time: choose a brand."),
    size=lambda actor, query: _org_count(Store, brand_id="brand_id", region_id="region_id", store_id="pk")(
        actor, query),
))


# ---------------------------------------------------------------------------- core indicators

register(Table(
    "core_indicators", _("Core indicators"),
    (Column("key", _("Key"), page=False), *_METRIC_COLUMNS),
    _metric_rows(lambda actor, filters: core_metrics(
        memo_call(metrics.core_indicators_compared, actor=actor, filters=filters))),
    note=_("Gross profit = sales revenue − cost of goods sold (SKU cost); expenses are not deducted. "
           "Inventory turnover needs a brand or group view."),
))


# ---------------------------------------------------------------------------- sorting


def sort_key(query: DashboardQuery, table: Table) -> tuple[str, bool] | None:
    """(column key, descending) when the query sorts this table (validated by ``filters.parse_filters``)."""
    table_key, _sep, column = query.sort.partition(":")
    if table_key != table.key or not column:
        return None
    descending = column.startswith("-")
    column = column.lstrip("-")
    return (column, descending) if table.column(column) is not None else None


def table_rows(table: Table, actor: Actor, query: DashboardQuery, limit: int | None) -> list[Row]:
    """A table's rows in the query's sort order for it (else the table's own), at most ``limit`` of them.

    Sorting takes every row first, so the first rows of a sorted page are the first of the whole table
    (and the export, which has them all, is in the same order). Empty values go last either way."""
    order = sort_key(query, table)
    if order is None:
        return list(table.rows(actor, query, limit))
    column_key, descending = order
    column = table.column(column_key)
    rows = list(table.rows(actor, query, None))
    present = [row for row in rows if cell(row, column) not in (None, "")]
    empty = [row for row in rows if cell(row, column) in (None, "")]

    def value(row):
        v = cell(row, column)
        return str(v).casefold() if isinstance(v, str | Promise) else v

    present.sort(key=value, reverse=descending)  # stable: ties keep the table's own order
    ordered = present + empty
    return ordered if limit is None else ordered[:limit]


# ---------------------------------------------------------------------------- one computation per request

_memo: ContextVar[dict | None] = ContextVar("dashboard_metric_memo", default=None)


@contextmanager
def metric_memo():
    """Within the block, the same metric call with the same arguments is computed once (a page shows the
    overview bundle as cards, charts and a table; they must not query three times)."""
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)


def memo_call(fn, **kwargs):
    store = _memo.get()
    if store is None:
        return fn(**kwargs)
    key = (fn.__module__, fn.__qualname__, tuple(sorted(kwargs.items())))
    if key not in store:
        store[key] = fn(**kwargs)
    return store[key]
