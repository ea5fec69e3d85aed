"""What each dashboard page shows: its metric cards, charts and tables, for one viewer and one set of filters.

Builders return plain context: tables from :mod:`analytics.dashboard_tables` (rendered and exported the
same way) and chart specs that ``static/js/dashboard.js`` turns into ECharts options. Figures come from
``analytics.metrics``; nothing is computed here beyond arranging them (and summing a chart's series).
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _lazy
from django.utils.translation import pgettext

from analytics import dashboard_tables as tables
from analytics import metrics
from analytics.dashboard_tables import REGISTRY, Kind, memo_call
from analytics.filters import DashboardQuery
from retail_crm.models import Guide, Store
from retail_crm.scoping import Actor, scoped
from segments.models import RfmRun, Segment

PAGE_ROWS = 100
CHART_TOP = 10


def chart(chart_id: str, kind: str, x: list, series: list[dict], *, unit: str = "", title: str = "", y=None,
          integer: bool = False) -> dict:
    """A chart spec for dashboard.js: ``kind`` line/bar/pie/heatmap/spark, x categories, named series.

    ``unit`` is "money", "ratio" or "" and only changes how axis labels and tooltips are written.
    """
    spec = {"id": chart_id, "kind": kind, "x": [str(v) for v in x], "series": series, "unit": unit,
            "title": str(title)}
    if y is not None:
        spec["y"] = [str(v) for v in y]
    if integer:  # counts: no 0.5 on the axis
        spec["integer"] = True
    return spec


_CHART_UNIT = {Kind.MONEY: "money", Kind.RATIO: "ratio"}


def _period_label(point: metrics.Point, grain: str) -> str:
    return point.period.strftime("%Y-%m") if grain == "month" else point.period.strftime("%m-%d")


# Which way a metric should move to be good news: +1 up, -1 down, 0 neither (a cost is not good or bad alone).
GOOD_DIRECTION = {"unpaid_ratio": -1, "refund_ratio": -1, "inventory_turnover_days": -1, "cost_of_goods": 0}


@dataclass(frozen=True)
class Comparison:
    """One comparison on a card: 同比 (same period last year) or 环比 (previous period).

    ``change`` is the text (+12.5 %, +1.2 pp for ratios, or "no data"), ``tone`` good/bad/flat/neutral/nodata:
    good or bad by the metric's direction (``GOOD_DIRECTION``), not by the sign."""

    label: str
    base: Any
    has_data: bool
    change: str
    tone: str
    title: str


def compare(label: str, current, base, *, kind: str, key: str, has_data: bool) -> Comparison:
    """The change from ``base`` to ``current``, worded and coloured for the metric ``key``."""
    if current is None or base in (None, "") or not has_data:
        return Comparison(label=label, base=base, has_data=False, change=_t("No data"), tone="nodata",
                          title=_t("The comparison period has no data."))
    current, base = Decimal(current), Decimal(base)
    if kind == Kind.RATIO:
        change = ((current - base) * 100).quantize(Decimal("0.1"), ROUND_HALF_UP)
        text = _t("%(points)s pp") % {"points": f"{change:+.1f}"}
    else:
        change = ((current - base) / abs(base) * 100).quantize(Decimal("0.1"), ROUND_HALF_UP)
        text = f"{change:+.1f}%"
    direction = GOOD_DIRECTION.get(key, 1)
    if change == 0:
        tone, text = "flat", text.replace("+", "")
    elif direction == 0:
        tone = "neutral"
    else:
        tone = "good" if (change > 0) == (direction > 0) else "bad"
    titles = {"good": _t("A change for the better for this metric."),
              "bad": _t("A change for the worse for this metric."),
              "flat": _t("No change."), "neutral": _t("Neither better nor worse in itself.")}
    return Comparison(label=label, base=base, has_data=True, change=text, tone=tone, title=titles[tone])


def comparisons(*, key: str, kind: str, value, last_year, previous, last_year_metric=None,
                previous_metric=None) -> list[Comparison]:
    """同比 and 环比 of one figure (metrics give their comparison Metric, plain figures just the value)."""
    return [compare(_t("Same period last year"), value, last_year, kind=kind, key=key,
                    has_data=tables.comparison_has_data(last_year_metric, last_year) if last_year_metric is not None
                    else tables.comparison_has_data(None, last_year)),
            compare(_t("Previous period"), value, previous, kind=kind, key=key,
                    has_data=tables.comparison_has_data(previous_metric, previous) if previous_metric is not None
                    else tables.comparison_has_data(None, previous))]


def _partial_index(periods: list, *, monthly: bool, query: DashboardQuery) -> int | None:
    """The trend point that is not over yet (the month the period ends inside, or today), if any."""
    if not periods:
        return None
    last = periods[-1]
    if monthly:
        # The period stops inside the month, or the month is this one and today is not over.
        month_end = last.replace(day=calendar.monthrange(last.year, last.month)[1])
        return len(periods) - 1 if query.date_to < month_end or query.partial else None
    return len(periods) - 1 if query.partial and last == query.date_to else None


def metric_card(metric: metrics.Metric, *, grain: str, query: DashboardQuery | None = None) -> dict:
    """A headline metric: value, 同比 and 环比 and a small trend chart (last year's dashed if known; a point
    not over yet drawn hollow and labelled partial)."""
    row = tables.metric_row(metric)
    card = {"key": metric.key, "label": row.label, "kind": row.kind, "value": metric.value,
            "last_year": row.last_year, "previous": row.previous,
            "comparisons": comparisons(key=metric.key, kind=row.kind, value=metric.value, last_year=row.last_year,
                                       previous=row.previous, last_year_metric=metric.last_year,
                                       previous_metric=metric.previous),
            "chart": None, "help": tables.metric_help(metric)}
    if metric.trend:
        # Monthly metrics (repurchase, frequency, store monthly sales) trend by month whatever the period.
        monthly = len(metric.trend) > 1 and metric.trend[0].period.day == 1 and metric.trend[1].period.day == 1 \
            and (metric.trend[1].period - metric.trend[0].period).days > 27
        if query is not None and grain == "day":
            # A daily trend has a point per day; fewer points, all on the 1st, are months (one month: one point).
            monthly = len(metric.trend) != query.days and all(p.period.day == 1 for p in metric.trend)
        g = "month" if monthly or grain == "month" else grain
        series = [{"name": _t("This period"), "data": [p.value for p in metric.trend]}]
        previous = metric.last_year
        if previous is not None and previous.trend and len(previous.trend) == len(metric.trend):
            series.append({"name": _t("Last year"), "data": [p.value for p in previous.trend], "dashed": True})
        card["chart"] = chart(f"trend-{metric.key}", "spark", [_period_label(p, g) for p in metric.trend], series,
                              unit=_CHART_UNIT.get(row.kind, ""), title="")
        if query is not None:
            _mark_partial(card["chart"], [p.period for p in metric.trend], monthly=(g == "month"), query=query)
    return card


def _mark_partial(spec: dict, periods: list, *, monthly: bool, query: DashboardQuery) -> None:
    index = _partial_index(periods, monthly=monthly, query=query)
    if index is not None and spec["kind"] in ("line", "spark"):
        spec["partial"] = index
        spec["partial_label"] = _t("partial")
        spec["x"][index] = f"{spec['x'][index]} ({spec['partial_label']})"


def _rows(key: str, actor: Actor, query: DashboardQuery) -> list:
    """A registered table's rows as the page shows them (same call, so memoised with the table itself)."""
    return list(REGISTRY[key].rows(actor, query, PAGE_ROWS + 1))


def _ranking_chart(chart_id: str, rows: list, *, title: str) -> dict:
    top = rows[:CHART_TOP]
    return chart(chart_id, "bar", [r.name for r in top],
                 [{"name": _t("Sales flow"), "data": [r.sales_flow for r in top]},
                  {"name": _t("Sales flow last year"), "data": [r.sales_flow_last_year for r in top]},
                  {"name": _t("Private-domain sales"), "data": [r.private_domain_sales for r in top]}],
                 unit="money", title=title)


# ---------------------------------------------------------------------------- pages

def overview(*, actor: Actor, query: DashboardQuery) -> dict:
    bundle = memo_call(metrics.overview_compared, actor=actor, filters=query.filters)
    grain = query.filters.trend_grain
    cards = [metric_card(metric, grain=grain, query=query) for metric in tables.overview_metrics(bundle)]
    sales = bundle.sales_flow
    charts = []
    if sales.trend:
        series = [{"name": _t("Sales flow"), "data": [p.value for p in sales.trend]},
                  {"name": _t("GMV"), "data": [p.value for p in bundle.gmv.trend]}]
        if sales.last_year is not None and len(sales.last_year.trend) == len(sales.trend):
            series.append({"name": _t("Sales flow last year"), "data": [p.value for p in sales.last_year.trend],
                           "dashed": True})
        charts.append(chart("overview-sales", "line", [_period_label(p, grain) for p in sales.trend], series,
                            unit="money", title=_t("Sales flow and GMV")))
        _mark_partial(charts[-1], [p.period for p in sales.trend], monthly=grain == "month", query=query)
    channels = bundle.member_growth.by_join_channel
    charts.append(chart("overview-join-channels", "bar",
                        [str(tables.JOIN_CHANNEL_LABELS.get(c.join_channel, c.join_channel)) for c in channels],
                        [{"name": _t("New members"), "data": [c.new_members for c in channels]},
                         {"name": _t("Same period last year"), "data": [c.new_members_last_year for c in channels]}],
                        title=_t("New members by join channel")))
    return {"title": pgettext("dashboard section", "Overview"), "metrics": cards, "charts": charts,
            # The size of the viewer's scope (indexed counts of the organisation tables, not of members or orders).
            "store_count": scoped(Store.objects.filter(is_active=True), actor).count(),
            "guide_count": scoped(Guide.objects.filter(left_at__isnull=True), actor).count(),
            "tables": {"overview_metrics": REGISTRY["overview_metrics"],
                       "new_members_by_join_channel": REGISTRY["new_members_by_join_channel"]}}


def brands(*, actor: Actor, query: DashboardQuery) -> dict:
    rows = _rows("brand_ranking", actor, query)
    return {"title": pgettext("dashboard section", "Brands"),
            "charts": [_ranking_chart("brands-top", rows, title=_t("Top brands"))],
            "tables": {"brand_ranking": REGISTRY["brand_ranking"]}}


def regions(*, actor: Actor, query: DashboardQuery) -> dict:
    rows = _rows("region_ranking", actor, query)
    return {"title": pgettext("dashboard section", "Regions"),
            "charts": [_ranking_chart("regions-top", rows, title=_t("Top regions"))],
            "tables": {"region_ranking": REGISTRY["region_ranking"]}}


def stores(*, actor: Actor, query: DashboardQuery) -> dict:
    rows = _rows("store_ranking", actor, query)
    monthly = memo_call(metrics.store_monthly_private_domain_sales, actor=actor, filters=query.filters)
    cards = [metric_card(monthly, grain="month", query=query)]
    charts = [_ranking_chart("stores-top", rows, title=_t("Top stores"))]
    if monthly.trend:
        charts.append(chart("stores-monthly", "bar", [p.period.strftime("%Y-%m") for p in monthly.trend],
                            [{"name": _t("Store monthly private-domain sales"),
                              "data": [p.value for p in monthly.trend]}],
                            unit="money", title=_t("Store monthly private-domain sales (average per store)")))
    return {"title": pgettext("dashboard section", "Stores"), "metrics": cards, "charts": charts,
            "tables": {"store_ranking": REGISTRY["store_ranking"],
                       "store_monthly_sales": REGISTRY["store_monthly_sales"]}}


def guides(*, actor: Actor, query: DashboardQuery) -> dict:
    rows = _rows("guide_kpis", actor, query)
    rate = memo_call(metrics.task_execution_rate, actor=actor, filters=query.filters)
    top = rows[:CHART_TOP]
    charts = [chart("guides-top", "bar", [r.guide_name for r in top],
                    [{"name": _t("Online sales"), "data": [r.online_sales for r in top], "stack": "sales"},
                     {"name": _t("Offline sales"), "data": [r.offline_sales for r in top], "stack": "sales"}],
                    unit="money", title=_t("Top guides by sales"))]
    return {"title": pgettext("dashboard section", "Guides"),
            "metrics": [metric_card(rate, grain=query.filters.trend_grain, query=query)],
            "charts": charts, "tables": {"guide_kpis": REGISTRY["guide_kpis"]}}


def segment_runs(*, actor: Actor, query: DashboardQuery, params) -> tuple[DashboardQuery, list, dict]:
    """The brand's RFML runs to compare on the segments page and the chosen pair (``from_run``, ``to_run``).

    Without a choice the two latest runs are compared. Returns the query carrying the pair (so export
    links keep it), the runs offered and field errors for ids that are not runs of the brand in scope.
    """
    errors: dict[str, str] = {}
    if not query.filters.brand_id:
        return query, [], errors
    runs = list(scoped(RfmRun.objects.filter(brand_id=query.filters.brand_id), actor)
                .order_by("-as_of", "-started_at", "-pk")[:24])
    ids = {run.pk for run in runs}
    chosen = {}
    for name in ("from_run", "to_run"):
        raw = str(params.get(name) or "").strip()
        if not raw:
            continue
        if not raw.isdigit() or int(raw) not in ids:
            errors[name] = _t("Choose one of this brand's RFML runs.")
        else:
            chosen[name] = int(raw)
    if not errors and len(runs) >= 2:
        chosen.setdefault("to_run", runs[0].pk)
        chosen.setdefault("from_run", next(run.pk for run in runs if run.pk != chosen["to_run"]))
    extra = tuple((name, str(chosen[name])) for name in ("from_run", "to_run") if name in chosen and not errors)
    return replace(query, extra=extra), runs, errors


def segments(*, actor: Actor, query: DashboardQuery, params) -> dict:
    query, runs, run_errors = segment_runs(actor=actor, query=query, params=params)
    segment_order = [value for value, _label in Segment.choices]
    labels = tables.SEGMENT_LABELS

    sizes = REGISTRY["segment_sizes"].rows(actor, query, None)
    by_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in sizes:
        by_day[row["as_of"].isoformat()][row["segment"]] += row["members"]
    days = sorted(by_day)
    charts = [chart("segments-sizes", "line", days,
                    [{"name": str(labels[s]), "data": [by_day[d].get(s, 0) for d in days]} for s in segment_order],
                    title=_t("Members per RFML class over time (runs; brands added up)"))]

    sales = REGISTRY["segment_sales"].rows(actor, query, None)
    charts.append(chart("segments-sales", "bar", [r["segment_label"] for r in sales],
                        [{"name": _t("Sales flow"), "data": [r["sales_flow"] for r in sales]}],
                        unit="money", title=_t("Sales per RFML class in the period")))

    transitions = REGISTRY["segment_transitions"].rows(actor, query, None)
    if transitions:
        classes = [*segment_order, ""]
        matrix = {(r["from_segment"], r["to_segment"]): r["members"] for r in transitions}
        charts.append(chart("segments-transitions", "heatmap", [str(labels[c]) for c in classes],
                            [{"name": _t("Members"),
                              "data": [[matrix.get((a, b), 0) for b in classes] for a in classes]}],
                            y=[str(labels[c]) for c in classes],
                            title=_t("Class transitions (rows: run A, columns: run B)")))

    cycles = REGISTRY["consumption_cycles"].rows(actor, query, None)
    charts.append(chart("segments-cycles", "bar", [r.brand_name for r in cycles],
                        [{"name": _t("Cycle (days)"), "data": [r.cycle_days for r in cycles]}],
                        title=_t("Consumption cycle per brand (days)")))

    care = memo_call(metrics.care_list_completion, actor=actor, filters=query.filters)
    return {"title": pgettext("dashboard section", "Segments"), "query": query,
            "metrics": [metric_card(care, grain="day", query=query)],
            "charts": charts, "runs": runs, "run_errors": run_errors, "chosen_runs": dict(query.extra),
            "tables": {key: REGISTRY[key] for key in ("segment_sizes", "segment_sales", "segment_transitions",
                                                      "consumption_cycles", "care_list_completion")}}


def livestream(*, actor: Actor, query: DashboardQuery) -> dict:
    summary = memo_call(metrics.livestream_summary, actor=actor, filters=query.filters)
    before = memo_call(metrics.livestream_summary, actor=actor, filters=query.filters.previous()).total
    total, last = summary.total, summary.total_last_year
    cards = [
        {"key": key, "label": label, "kind": kind, "value": getattr(total, key), "last_year": getattr(last, key),
         "previous": getattr(before, key),
         "comparisons": comparisons(key=key, kind=kind, value=getattr(total, key), last_year=getattr(last, key),
                                    previous=getattr(before, key)),
         "chart": None}
        for key, label, kind in (
            ("sessions", _t("Live sessions"), Kind.INT), ("hours", _t("Hours live"), Kind.DECIMAL),
            ("viewers", _t("Viewers"), Kind.INT), ("conversion", _t("Conversion"), Kind.RATIO),
            ("gmv", _t("GMV"), Kind.MONEY), ("paid_sales", _t("Paid sales"), Kind.MONEY))
    ]
    split = [(_t("HQ central sessions (1)"), summary.central), (_t("Store sessions (N)"), summary.store)]
    charts = [
        chart("live-split-money", "bar", [str(label) for label, _f in split],
              [{"name": _t("GMV"), "data": [f.gmv for _l, f in split]},
               {"name": _t("Paid sales"), "data": [f.paid_sales for _l, f in split]}],
              unit="money", title=_t("1+N: GMV of HQ central vs store sessions")),
        # Sessions, hours and buyers are different quantities: one chart (and axis) each.
        chart("live-split-sessions", "bar", [str(label) for label, _f in split],
              [{"name": _t("Live sessions"), "data": [f.sessions for _l, f in split]}],
              title=_t("1+N: live sessions"), integer=True),
        chart("live-split-hours", "bar", [str(label) for label, _f in split],
              [{"name": _t("Hours live"), "data": [f.hours for _l, f in split]}],
              title=_t("1+N: hours live")),
        chart("live-split-buyers", "bar", [str(label) for label, _f in split],
              [{"name": _t("Buyers"), "data": [f.buyers for _l, f in split]}],
              title=_t("1+N: buyers"), integer=True),
    ]
    phases = _rows("live_store_phases", actor, query)
    if phases:
        counts: dict[str, int] = defaultdict(int)
        met: dict[str, int] = defaultdict(int)
        for row in phases:
            counts[row["phase_label"]] += 1
            met[row["phase_label"]] += row["all_met"] == "yes"
        labels = sorted(counts)
        charts.append(chart("live-phases", "bar", labels,
                            [{"name": _t("Stores"), "data": [counts[label] for label in labels]},
                             {"name": _t("Stores meeting every target"), "data": [met[label] for label in labels]}],
                            title=_t("Store phase progress this month")))
    top = list(summary.by_store)[:CHART_TOP]
    if top:
        charts.append(chart("live-stores", "bar", [r.name for r in top],
                            [{"name": _t("GMV"), "data": [r.figures.gmv for r in top]}], unit="money",
                            title=_t("Top host stores by GMV")))
    return {"title": pgettext("dashboard section", "Livestream"), "metrics": cards, "charts": charts,
            "tables": {key: REGISTRY[key] for key in ("live_split", "live_by_brand", "live_by_store",
                                                      "live_store_phases")}}


def core(*, actor: Actor, query: DashboardQuery) -> dict:
    bundle = memo_call(metrics.core_indicators_compared, actor=actor, filters=query.filters)
    grain = query.filters.trend_grain
    cards = [metric_card(metric, grain=grain, query=query) for metric in tables.core_metrics(bundle)]
    charts = []
    revenue, profit = bundle.sales_revenue, bundle.gross_profit
    if revenue.trend:
        charts.append(chart("core-profit", "line", [_period_label(p, grain) for p in revenue.trend],
                            [{"name": _t("Sales revenue"), "data": [p.value for p in revenue.trend]},
                             {"name": _t("Cost of goods sold"), "data": [p.value for p in bundle.cost_of_goods.trend]},
                             {"name": _t("Gross profit"), "data": [p.value for p in profit.trend]}],
                            unit="money", title=_t("Sales revenue, cost of goods and gross profit")))
        _mark_partial(charts[-1], [p.period for p in revenue.trend], monthly=grain == "month", query=query)
    return {"title": pgettext("dashboard section", "Core indicators"), "metrics": cards, "charts": charts,
            "tables": {"core_indicators": REGISTRY["core_indicators"]}}


# ---------------------------------------------------------------------------- one guide

GUIDE_CARDS = (
    ("sales", _lazy("Sales"), Kind.MONEY), ("online_sales", _lazy("Online sales"), Kind.MONEY),
    ("offline_sales", _lazy("Offline sales"), Kind.MONEY), ("members_served", _lazy("Members served"), Kind.INT),
    ("new_members", _lazy("New members"), Kind.INT), ("wecom_friends_added", _lazy("WeCom friends added"), Kind.INT),
    ("shares", _lazy("Shares"), Kind.INT), ("task_execution_rate", _lazy("Task execution rate"), Kind.RATIO),
    ("commission", _lazy("Commission"), Kind.MONEY),
)


def _guide_row(actor: Actor, filters: metrics.Filters, guide: Guide) -> tuple[metrics.GuideKpiRow | None, int, int]:
    """The guide's KPI row, their rank by sales among their store's guides and how many those are."""
    store_filters = replace(filters, brand_id=guide.store.brand_id, region_id=guide.store.region_id,
                            store_id=guide.store_id)
    rows = memo_call(metrics.guide_kpis, actor=actor, filters=store_filters, limit=tables.ALL_ROWS)
    ids = [row.guide_id for row in rows]
    rank = ids.index(guide.pk) + 1 if guide.pk in ids else 0
    return (rows[rank - 1] if rank else None), rank, len(rows)


def guide_detail(*, actor: Actor, query: DashboardQuery, guide: Guide) -> dict:
    """One guide over the period: KPIs with 同比 and 环比, store, rank in the store and the brand, sales trend."""
    filters = query.filters
    row, store_rank, store_guides = _guide_row(actor, filters, guide)
    last_row, _r, _n = _guide_row(actor, filters.last_year(), guide)
    previous_row, _r, _n = _guide_row(actor, filters.previous(), guide)
    brand_rows = memo_call(metrics.guide_kpis, actor=actor, filters=replace(
        filters, brand_id=guide.store.brand_id, region_id=None, store_id=None), limit=tables.ALL_ROWS)
    brand_ids = [r.guide_id for r in brand_rows]
    brand_rank = brand_ids.index(guide.pk) + 1 if guide.pk in brand_ids else 0

    def value(r, key):
        if r is None:  # no credit and no activity in that period
            return None if key == "task_execution_rate" else Decimal("0.00") if key.endswith(
                ("sales", "commission")) else 0
        return getattr(r, key)

    cards = [{"key": key, "label": str(label), "kind": kind, "value": value(row, key),
              "comparisons": comparisons(key=key, kind=kind, value=value(row, key),
                                         last_year=value(last_row, key), previous=value(previous_row, key)),
              "chart": None} for key, label, kind in GUIDE_CARDS]
    trend = memo_call(metrics.guide_sales_trend, actor=actor, filters=filters, guide_id=guide.pk)
    grain = filters.trend_grain
    series = [{"name": _t("Sales"), "data": [p.value for p in trend.trend]}]
    if trend.last_year is not None and len(trend.last_year.trend) == len(trend.trend):
        series.append({"name": _t("Sales last year"), "data": [p.value for p in trend.last_year.trend],
                       "dashed": True})
    sales_chart = chart("guide-sales", "line", [_period_label(p, grain) for p in trend.trend], series,
                        unit="money", title=_t("Credited sales"))
    _mark_partial(sales_chart, [p.period for p in trend.trend], monthly=grain == "month", query=query)
    return {"title": guide.name, "guide": guide, "metrics": cards, "charts": [sales_chart],
            "store_rank": store_rank, "store_guides": store_guides, "brand_rank": brand_rank,
            "brand_guides": len(brand_rows)}


# ---------------------------------------------------------------------------- search

SEARCH_LIMIT = 20


def search(*, actor: Actor, text: str) -> dict:
    """Stores and guides of the viewer's scope whose code or name contains ``text`` (first 20 of each)."""
    match = Q(code__icontains=text) | Q(name__icontains=text)
    stores = list(scoped(Store.objects.filter(match), actor).select_related("brand", "region")
                  .order_by("code")[:SEARCH_LIMIT])
    guides = list(scoped(Guide.objects.filter(match), actor).select_related("store", "store__brand")
                  .order_by("code")[:SEARCH_LIMIT])
    return {"stores": stores, "guides": guides}
