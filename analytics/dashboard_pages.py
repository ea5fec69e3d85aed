"""What each dashboard page shows: its metric cards, charts and tables, for one viewer and one set of filters.

Builders return plain context: tables from :mod:`analytics.dashboard_tables` (rendered and exported the
same way) and chart specs that ``static/js/dashboard.js`` turns into ECharts options. Figures come from
``analytics.metrics``; nothing is computed here beyond arranging them (and summing a chart's series).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from django.utils.translation import gettext as _t
from django.utils.translation import pgettext

from analytics import dashboard_tables as tables
from analytics import metrics
from analytics.dashboard_tables import REGISTRY, Kind, memo_call
from analytics.filters import DashboardQuery
from analytics.models import RfmRun, Segment
from retail_crm.models import Guide, Store
from retail_crm.scoping import Actor, scoped

PAGE_ROWS = 100
CHART_TOP = 10


def chart(chart_id: str, kind: str, x: list, series: list[dict], *, unit: str = "", title: str = "", y=None) -> dict:
    """A chart spec for dashboard.js: ``kind`` line/bar/pie/heatmap/spark, x categories, named series.

    ``unit`` is "money", "ratio" or "" and only changes how axis labels and tooltips are written.
    """
    spec = {"id": chart_id, "kind": kind, "x": [str(v) for v in x], "series": series, "unit": unit,
            "title": str(title)}
    if y is not None:
        spec["y"] = [str(v) for v in y]
    return spec


_CHART_UNIT = {Kind.MONEY: "money", Kind.RATIO: "ratio"}


def _period_label(point: metrics.Point, grain: str) -> str:
    return point.period.strftime("%Y-%m") if grain == "month" else point.period.strftime("%m-%d")


def metric_card(metric: metrics.Metric, *, grain: str) -> dict:
    """A headline metric: value, last year's value and a small trend chart (last year's dashed if known)."""
    row = tables.metric_row(metric)
    card = {"key": metric.key, "label": row.label, "kind": row.kind, "value": metric.value,
            "last_year": row.last_year, "chart": None, "help": tables.metric_help(metric)}
    if metric.trend:
        # Monthly metrics (repurchase, frequency, store monthly sales) trend by month whatever the period.
        monthly = len(metric.trend) > 1 and metric.trend[0].period.day == 1 and metric.trend[1].period.day == 1 \
            and (metric.trend[1].period - metric.trend[0].period).days > 27
        g = "month" if monthly else grain
        series = [{"name": _t("This period"), "data": [p.value for p in metric.trend]}]
        previous = metric.last_year
        if previous is not None and previous.trend and len(previous.trend) == len(metric.trend):
            series.append({"name": _t("Last year"), "data": [p.value for p in previous.trend], "dashed": True})
        card["chart"] = chart(f"trend-{metric.key}", "spark", [_period_label(p, g) for p in metric.trend], series,
                              unit=_CHART_UNIT.get(row.kind, ""), title="")
    return card


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
    bundle = memo_call(metrics.overview, actor=actor, filters=query.filters)
    grain = query.filters.trend_grain
    cards = [metric_card(metric, grain=grain) for metric in tables.overview_metrics(bundle)]
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
    cards = [metric_card(monthly, grain="month")]
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
            "metrics": [metric_card(rate, grain=query.filters.trend_grain)],
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
            "metrics": [metric_card(care, grain="day")],
            "charts": charts, "runs": runs, "run_errors": run_errors, "chosen_runs": dict(query.extra),
            "tables": {key: REGISTRY[key] for key in ("segment_sizes", "segment_sales", "segment_transitions",
                                                      "consumption_cycles", "care_list_completion")}}


def livestream(*, actor: Actor, query: DashboardQuery) -> dict:
    summary = memo_call(metrics.livestream_summary, actor=actor, filters=query.filters)
    total, last = summary.total, summary.total_last_year
    cards = [
        {"key": key, "label": label, "kind": kind, "value": getattr(total, key), "last_year": getattr(last, key),
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
        chart("live-split-reach", "bar", [str(label) for label, _f in split],
              [{"name": _t("Live sessions"), "data": [f.sessions for _l, f in split]},
               {"name": _t("Hours live"), "data": [f.hours for _l, f in split]},
               {"name": _t("Buyers"), "data": [f.buyers for _l, f in split]}],
              title=_t("1+N: sessions, hours and buyers")),
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
    bundle = memo_call(metrics.core_indicators, actor=actor, filters=query.filters)
    grain = query.filters.trend_grain
    cards = [metric_card(metric, grain=grain) for metric in tables.core_metrics(bundle)]
    charts = []
    revenue, profit = bundle.sales_revenue, bundle.operating_profit
    if revenue.trend:
        charts.append(chart("core-profit", "line", [_period_label(p, grain) for p in revenue.trend],
                            [{"name": _t("Sales revenue"), "data": [p.value for p in revenue.trend]},
                             {"name": _t("Cost of goods sold"), "data": [p.value for p in bundle.cost_of_goods.trend]},
                             {"name": _t("Operating profit"), "data": [p.value for p in profit.trend]}],
                            unit="money", title=_t("Sales revenue, cost of goods and operating profit")))
    return {"title": pgettext("dashboard section", "Core indicators"), "metrics": cards, "charts": charts,
            "tables": {"core_indicators": REGISTRY["core_indicators"]}}
