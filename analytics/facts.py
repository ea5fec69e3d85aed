"""Builders of the dashboard's daily facts (the fact tables of ``analytics.models``).

A build replaces the facts of local days, one transaction per day (and brand, when
one is given): delete the day's rows, insert a fresh aggregate. Running it twice
gives the same rows. The job lock ``analytics.facts`` keeps the hourly (today) and
nightly (yesterday + days changed late) runs from interleaving.

Per day everything is set-based: one query for the day's orders (the brand list is
spelled out so PostgreSQL walks the ``(brand, ordered_at)`` index), one grouped query
for their sales credits, one for the cost of their lines and one for the cost of
returned units, vectorised pandas to file each order under its credited store and
guide and to aggregate, and bulk inserts. The engagement, membership and inventory
facts are one grouped query each.

Where an order is filed (store, guide): attribution's credits (``SalesCredit``) decide.
The store is the store credit's store (empty for the HQ pool); the guide is the
exclusive credit's guide, else the selling credit's guide. An order without a
positive credit (unpaid, fully refunded, or not attributed yet) is filed under its
own ``store`` and ``guide``. Guide sales (``GuideSalesFact``) credit both the
exclusive and the selling guide, as the credits do.

When a day changes after it was built (a refund, a late payment, a task executed or
a care item done the next day), ``facts_days_changed`` finds it and the nightly run
rebuilds it; re-attributing history or importing old POS orders needs an explicit
``facts_rebuild`` over the affected range (``manage.py run_jobs`` or the
``analytics.facts_rebuild_range`` task).
"""

from __future__ import annotations

import calendar
import datetime as dt
import io
import time
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    Q,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Round, TruncDate
from django.utils import timezone

from analytics.models import (
    BrandSalesFact,
    EngagementFact,
    FactBuild,
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
from attribution.models import SalesCredit
from mall.models import OFFLINE_CHANNELS, PAID_STATUSES, Order, OrderLine, Refund, RefundLine, Stock, StockMovement
from mall.selectors import purchases
from members.models import (
    BehaviourEvent,
    BrandMembership,
    EventKind,
    GuideBinding,
    MemberDailyActivity,
    WeComFriendship,
)
from members.share_views import event_viewer, share_view_key
from retail_crm.locks import job_lock
from retail_crm.models import Brand, Guide, Store
from segments.models import CareItem, MemberRfm

LOCK = "analytics.facts"
_AMOUNT = DecimalField(max_digits=18, decimal_places=2)

SALES_TABLES = ("sales", "brand_sales", "guide_sales", "purchases", "guided_orders")
OTHER_TABLES = ("engagement", "member_growth", "member_count", "inventory", "guide_region")
ALL_TABLES = SALES_TABLES + OTHER_TABLES
#: Month rollups, rebuilt for every month a rebuild touched (from the day facts above).
MONTH_TABLES = ("store_month", "guide_month", "store_month_to_date", "guide_month_to_date", "member_month",
                "segment_month")

#: Behaviour events that count as a view of something a guide shared (share PV/UV).
VIEW_KINDS = (EventKind.PRODUCT_VIEW, EventKind.MATERIAL_VIEW, EventKind.LIVE_WATCH)
#: Binding reasons that mean the guide won the member (new members bound).
WON_REASONS = (GuideBinding.Reason.QR_SCAN, GuideBinding.Reason.SHARE_LINK)


@dataclass(frozen=True)
class FactRebuildResult:
    """What ``sales_facts_rebuild`` did to the SalesFact table over its range."""

    date_from: dt.date
    date_to: dt.date
    rows_deleted: int
    rows_written: int


@dataclass
class FactsRebuildResult:
    """What ``facts_rebuild`` wrote, per table, over its days."""

    date_from: dt.date
    date_to: dt.date
    days: int = 0
    rows_written: dict[str, int] = field(default_factory=dict)
    rows_deleted: dict[str, int] = field(default_factory=dict)
    duration_ms: int = 0

    def add(self, written: dict[str, int], deleted: dict[str, int]) -> None:
        for table, n in written.items():
            self.rows_written[table] = self.rows_written.get(table, 0) + n
        for table, n in deleted.items():
            self.rows_deleted[table] = self.rows_deleted.get(table, 0) + n


# ---------------------------------------------------------------------------- helpers


def _local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_default_timezone())


def _days(date_from: dt.date, date_to: dt.date) -> list[dt.date]:
    return [date_from + dt.timedelta(days=n) for n in range((date_to - date_from).days + 1)]


def _cents(expression) -> Cast:
    """An amount as integer cents computed by the database: exact sums, no Decimal per row in Python."""
    return Cast(Round(ExpressionWrapper(expression * Value(100), output_field=_AMOUNT)), BigIntegerField())


def _money(cents) -> Decimal:
    return Decimal(int(cents)).scaleb(-2)


def _id(value) -> int | None:
    return None if pd.isna(value) else int(value)


def _brand_ids(brand_id: int | None) -> list[int]:
    """The brands a build covers; spelled out so PostgreSQL can walk the (brand, ordered_at) index."""
    if brand_id is not None:
        return [brand_id]
    return sorted(Brand.objects.values_list("pk", flat=True))


def _copy_text(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _plain(value):
    """numpy scalars and pandas timestamps as the Python values database drivers know."""
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _save(model, objects: list) -> int:
    """Insert ``objects`` (unsaved instances of a fact model without JSON fields) in bulk, fast.

    COPY on PostgreSQL, one executemany elsewhere: Django's bulk_create prepares every
    value of every row through the field machinery, which costs more than the build itself.
    """
    if not objects:
        return 0
    fields = [f for f in model._meta.concrete_fields if not f.primary_key or not f.get_internal_type().endswith(
        "AutoField")]
    names = [f.attname for f in fields]
    rows = [tuple(_plain(getattr(o, name)) for name in names) for o in objects]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            buffer = io.StringIO("".join("\t".join(_copy_text(v) for v in row) + "\n" for row in rows))
            cursor.cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)
        else:
            marks = ", ".join(["%s"] * len(fields))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)  # noqa: S608
    return len(rows)


def _delete(queryset) -> int:
    deleted = queryset.delete()[1]
    return sum(deleted.values())


# ---------------------------------------------------------------------------- sales: the orders of a span of days


def _span(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    return _local_midnight(first), _local_midnight(last + dt.timedelta(days=1))


def _local_day(field_name: str) -> TruncDate:
    return TruncDate(field_name, tzinfo=timezone.get_default_timezone())


_ORDER_COLUMNS = ["order_id", "day", "brand_id", "member_id", "channel", "order_store_id", "order_guide_id", "status",
                  "total_c", "paid_c", "refunded_c"]


def _orders_frame(orders) -> pd.DataFrame:
    """The orders with their local day, amounts in cents, whether paid, whether a purchase, and their cost of goods."""
    rows = list(orders.annotate(fact_day=_local_day("ordered_at"), total_c=_cents(F("total_amount")),
                                paid_c=_cents(F("paid_amount")), refunded_c=_cents(F("refunded_amount")))
                .values_list("pk", "fact_day", "brand_id", "member_id", "channel", "store_id", "guide_id", "status",
                             "total_c", "paid_c", "refunded_c"))
    frame = pd.DataFrame(rows, columns=_ORDER_COLUMNS)
    if frame.empty:
        return frame
    for col in ("member_id", "order_store_id", "order_guide_id"):
        frame[col] = frame[col].astype("Int64")
    for col in ("total_c", "paid_c", "refunded_c"):
        frame[col] = frame[col].astype("int64")
    frame["paid"] = frame["status"].isin([s.value for s in PAID_STATUSES])
    frame["is_purchase"] = frame["order_id"].isin(set(purchases(orders).values_list("pk", flat=True)))
    frame["offline"] = frame["channel"].isin([c.value for c in OFFLINE_CHANNELS])
    paid_ids = orders.filter(status__in=PAID_STATUSES).values("pk")
    goods = dict(OrderLine.objects.filter(order_id__in=paid_ids, sku__isnull=False).order_by()
                 .values("order_id").annotate(c=_cents(Sum(F("quantity") * F("sku__cost_price"), output_field=_AMOUNT)))
                 .values_list("order_id", "c"))
    returned = dict(RefundLine.objects.filter(refund__order_id__in=paid_ids, refund__status=Refund.Status.REFUNDED,
                                              quantity__gt=0, order_line__sku__isnull=False).order_by()
                    .values("refund__order_id")
                    .annotate(c=_cents(Sum(F("quantity") * F("order_line__sku__cost_price"), output_field=_AMOUNT)))
                    .values_list("refund__order_id", "c"))
    cost = frame["order_id"].map(goods).fillna(0).astype("int64") - \
        frame["order_id"].map(returned).fillna(0).astype("int64")
    frame["cost_c"] = np.where(frame["paid"], cost, 0)
    return frame


def _credits_frame(orders) -> pd.DataFrame:
    """Per (order, kind, store, guide): the sum of the credit rows in cents and whether it is cross-brand."""
    rows = list(SalesCredit.objects.filter(order_id__in=orders.values("pk")).order_by()
                .values("order_id", "kind", "store_id", "guide_id")
                .annotate(c=Sum(_cents(F("amount"))), cross=Max(Cast("cross_brand", IntegerField())))
                .values_list("order_id", "kind", "store_id", "guide_id", "c", "cross"))
    frame = pd.DataFrame(rows, columns=["order_id", "kind", "store_id", "guide_id", "c", "cross"])
    frame["store_id"] = frame["store_id"].astype("Int64")
    frame["guide_id"] = frame["guide_id"].astype("Int64")
    frame["c"] = frame["c"].astype("int64")
    frame["cross"] = frame["cross"].astype(bool)
    return frame


def _file_orders(orders: pd.DataFrame, credits: pd.DataFrame) -> pd.DataFrame:
    """Add the credited ``store_id`` and ``guide_id`` of each order (see the module docstring)."""
    positive = credits[credits["c"] > 0].sort_values(["order_id", "c"], ascending=[True, False])

    def first_of(kind: str) -> pd.DataFrame:
        return positive[positive["kind"] == kind].drop_duplicates("order_id").set_index("order_id")

    store_credit = first_of(SalesCredit.Kind.STORE)
    exclusive = first_of(SalesCredit.Kind.EXCLUSIVE)["guide_id"]
    selling = first_of(SalesCredit.Kind.SELLING)["guide_id"]
    ids = orders["order_id"]
    has_store_credit = ids.isin(store_credit.index)
    orders["store_id"] = ids.map(store_credit["store_id"]).astype("Int64").where(has_store_credit,
                                                                                 orders["order_store_id"])
    guide = ids.map(exclusive).astype("Int64")
    guide = guide.fillna(ids.map(selling).astype("Int64"))
    has_guide_credit = ids.isin(exclusive.index) | ids.isin(selling.index)
    orders["guide_id"] = guide.where(has_guide_credit, orders["order_guide_id"])
    return orders


def _sales_measures(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The SalesMeasures of ``frame``'s orders grouped by ``keys`` (amounts still in cents)."""
    paid = frame["paid"]
    work = pd.DataFrame({
        **{k: frame[k] for k in keys},
        "orders": 1,
        "gmv": frame["total_c"],
        "paid_orders": paid.astype("int64"),
        "paid_amount": frame["paid_c"].where(paid, 0),
        "refunded_amount": frame["refunded_c"].where(paid, 0),
        "unpaid_orders": (~paid).astype("int64"),
        "unpaid_amount": frame["total_c"].where(~paid, 0),
        "refunded_orders": (paid & (frame["refunded_c"] > 0)).astype("int64"),
        "member_paid_orders": (paid & frame["member_id"].notna()).astype("int64"),
        "cost_of_goods": frame["cost_c"],
        "buyer": frame["member_id"].where(paid),
    })
    grouped = work.groupby(keys, dropna=False, sort=True)
    sums = grouped[["orders", "gmv", "paid_orders", "paid_amount", "refunded_amount", "unpaid_orders",
                    "unpaid_amount", "refunded_orders", "member_paid_orders", "cost_of_goods"]].sum()
    sums["buyers"] = grouped["buyer"].nunique()
    sums["sales_flow"] = sums["paid_amount"] - sums["refunded_amount"]
    return sums.reset_index()


_MONEY_MEASURES = ("gmv", "paid_amount", "refunded_amount", "sales_flow", "unpaid_amount", "cost_of_goods")
_COUNT_MEASURES = ("orders", "paid_orders", "buyers", "unpaid_orders", "refunded_orders", "member_paid_orders")


def _measures(row) -> dict:
    values = {name: _money(getattr(row, name)) for name in _MONEY_MEASURES}
    values.update({name: int(getattr(row, name)) for name in _COUNT_MEASURES})
    return values


def _build_sales(first: dt.date, last: dt.date, brand_ids: list[int],
                 tables: tuple[str, ...]) -> tuple[dict, dict]:
    """Replace the sales-side facts (SalesFact, BrandSalesFact, GuideSalesFact, PurchaseFact) of [first, last]."""
    start, end = _span(first, last)
    orders_qs = Order.objects.filter(brand_id__in=brand_ids, ordered_at__gte=start, ordered_at__lt=end).order_by()
    deleted = {}
    stale = {"sales": SalesFact.objects, "brand_sales": BrandSalesFact.objects,
             "guide_sales": GuideSalesFact.objects, "purchases": PurchaseFact.objects}
    for table, manager in stale.items():
        if table in tables:
            deleted[table] = _delete(manager.filter(day__gte=first, day__lte=last, brand_id__in=brand_ids))
    if "guided_orders" in tables:
        deleted["guided_orders"] = _delete(GuidedOrderFact.objects.filter(day__gte=first, day__lte=last,
                                                                          order_brand_id__in=brand_ids))
    written = dict.fromkeys((t for t in SALES_TABLES if t in tables), 0)
    orders = _orders_frame(orders_qs)
    if orders.empty:
        return written, deleted
    credits = _credits_frame(orders_qs)
    orders = _file_orders(orders, credits)

    if "sales" in tables:
        facts = [SalesFact(day=r.day, brand_id=int(r.brand_id), store_id=_id(r.store_id), guide_id=_id(r.guide_id),
                           channel=r.channel, **_measures(r))
                 for r in _sales_measures(orders, ["day", "brand_id", "store_id", "guide_id", "channel"]).itertuples()]
        _save(SalesFact, facts)
        written["sales"] = len(facts)
    if "brand_sales" in tables:
        facts = [BrandSalesFact(day=r.day, brand_id=int(r.brand_id), channel=r.channel, **_measures(r))
                 for r in _sales_measures(orders, ["day", "brand_id", "channel"]).itertuples()]
        _save(BrandSalesFact, facts)
        written["brand_sales"] = len(facts)
    if "guide_sales" in tables:
        written["guide_sales"] = _write_guide_sales(orders, credits)
    if "guided_orders" in tables:
        written["guided_orders"] = _write_guided_orders(orders, credits)
    if "purchases" in tables:
        bought = orders[orders["is_purchase"]]
        facts = [PurchaseFact(order_id=int(r.order_id), day=r.day, brand_id=int(r.brand_id), store_id=_id(r.store_id),
                              guide_id=_id(r.guide_id), member_id=_id(r.member_id), channel=r.channel,
                              offline=bool(r.offline), net_amount=_money(r.paid_c - r.refunded_c))
                 for r in bought.itertuples()]
        _save(PurchaseFact, facts)
        written["purchases"] = len(facts)
    return written, deleted


def _write_guide_sales(orders: pd.DataFrame, credits: pd.DataFrame) -> int:
    guide_credits = credits[credits["kind"] != SalesCredit.Kind.STORE]
    if guide_credits.empty:
        return 0
    frame = guide_credits.merge(orders[["order_id", "day", "brand_id", "channel"]], on="order_id", how="inner")
    store_of = dict(Guide.objects.filter(pk__in=[int(g) for g in frame["guide_id"].unique()])
                    .values_list("pk", "store_id"))
    frame["guide_store_id"] = frame["guide_id"].map(lambda g: store_of[int(g)])
    frame["credited"] = (frame["c"] > 0).astype("int64")
    grouped = frame.groupby(["day", "brand_id", "guide_id", "guide_store_id", "channel", "kind", "cross"], sort=True) \
        .agg(amount=("c", "sum"), orders=("credited", "sum")).reset_index()
    grouped = grouped[(grouped["amount"] != 0) | (grouped["orders"] != 0)]
    facts = [GuideSalesFact(day=r.day, brand_id=int(r.brand_id), guide_id=int(r.guide_id),
                            store_id=int(r.guide_store_id), channel=r.channel, kind=r.kind, cross_brand=bool(r.cross),
                            amount=_money(r.amount), orders=int(r.orders))
             for r in grouped.itertuples()]
    _save(GuideSalesFact, facts)
    return len(facts)


#: GuidedOrderFact: the levels of the organisation from a guide's node up, and the columns naming a node.
_GUIDED_LEVELS = (("store", ["group_id", "node_brand_id", "region_id", "store_id"]),
                  ("region", ["group_id", "node_brand_id", "region_id"]),
                  ("brand", ["group_id", "node_brand_id"]), ("group", ["group_id"]))
_GUIDED_ORDER_KEYS = ["order_id", "day", "brand_id", "channel"]


def _node(value) -> int | None:
    return None if value is None or pd.isna(value) or int(value) < 0 else int(value)


def _write_guided_orders(orders: pd.DataFrame, credits: pd.DataFrame) -> int:
    """GuidedOrderFact rows of the orders' positive guide credits (see the model: each order counted once in
    every view, so a node's row is its value less its children's)."""
    guided = credits[(credits["kind"] != SalesCredit.Kind.STORE) & (credits["c"] > 0)]
    if guided.empty:
        return 0
    frame = guided.merge(orders[_GUIDED_ORDER_KEYS], on="order_id", how="inner")
    if frame.empty:
        return 0
    places = pd.DataFrame(list(Guide.objects.filter(pk__in=[int(g) for g in frame["guide_id"].unique()])
                               .values_list("pk", "store_id", "store__region_id", "store__brand_id",
                                            "store__brand__group_id")),
                          columns=["guide_id", "store_id", "region_id", "node_brand_id", "group_id"])
    places = places.fillna({"region_id": -1}).astype("int64")  # a store without a region: -1
    frame = frame.drop(columns=["store_id"]).astype({"guide_id": "int64"}).merge(places, on="guide_id", how="inner")
    per_guide = frame.groupby([*_GUIDED_ORDER_KEYS, "guide_id", "store_id", "region_id", "node_brand_id",
                               "group_id"], sort=False).agg(a=("c", "max"), x=("cross", "max")).reset_index()

    def values(keys: list[str]) -> pd.DataFrame:  # each order's value at each node of one level
        grouped = per_guide.groupby([*_GUIDED_ORDER_KEYS, *keys], sort=False).agg(a=("a", "max"), x=("x", "max"))
        return pd.DataFrame({"amount": grouped["a"], "cross": grouped["a"].where(grouped["x"], 0)})

    value = {level: values(keys) for level, keys in _GUIDED_LEVELS}
    parts = []
    for grain, leaf in (("store", 0), ("region", 1), ("brand", 2), ("group", 3)):
        for i in range(leaf, len(_GUIDED_LEVELS)):
            level, keys = _GUIDED_LEVELS[i]
            rows = value[level]
            if i > leaf:  # less the children's values (orders' nodes with credited guides below)
                children = value[_GUIDED_LEVELS[i - 1][0]].groupby(level=[*_GUIDED_ORDER_KEYS, *keys]).sum()
                rows = rows.sub(children, fill_value=0)
            rows = rows[(rows["amount"] != 0) | (rows["cross"] != 0)].reset_index()
            if rows.empty:
                continue
            summed = rows.groupby(["day", "brand_id", "channel", *keys], sort=True)[["amount", "cross"]].sum() \
                .reset_index()
            parts += [GuidedOrderFact(
                day=r.day, grain=grain, level=level, order_brand_id=int(r.brand_id), channel=r.channel,
                group_id=int(r.group_id), brand_id=_id(getattr(r, "node_brand_id", None)),
                region_id=_node(getattr(r, "region_id", None)), store_id=_id(getattr(r, "store_id", None)),
                amount=_money(int(r.amount)), cross_amount=_money(int(r.cross))) for r in summed.itertuples()]
    _save(GuidedOrderFact, parts)
    return len(parts)


def facts_rebuild_guided_orders(*, first: dt.date, last: dt.date) -> int:
    """Rebuild GuidedOrderFact alone for the days [first, last] (every brand): from the orders' credits."""
    start, end = _span(first, last)
    orders_qs = Order.objects.filter(ordered_at__gte=start, ordered_at__lt=end).order_by()
    with transaction.atomic():
        job_lock(LOCK)
        GuidedOrderFact.objects.filter(day__gte=first, day__lte=last).delete()
        rows = list(orders_qs.annotate(fact_day=_local_day("ordered_at"))
                    .values_list("pk", "fact_day", "brand_id", "channel"))
        if not rows:
            return 0
        orders = pd.DataFrame(rows, columns=_GUIDED_ORDER_KEYS)
        return _write_guided_orders(orders, _credits_frame(orders_qs))


# ---------------------------------------------------------------------------- engagement: a guide's day


def _by_guide_day(queryset, day, **aggregates) -> pd.DataFrame:
    rows = list(queryset.order_by().annotate(fact_day=day).values("fact_day", "guide_id").annotate(**aggregates)
                .values_list("fact_day", "guide_id", *aggregates))
    return pd.DataFrame(rows, columns=["day", "guide_id", *aggregates]).set_index(["day", "guide_id"])


def _build_engagement(first: dt.date, last: dt.date, brand_ids: list[int]) -> tuple[int, int]:
    start, end = _span(first, last)
    deleted = _delete(EngagementFact.objects.filter(day__gte=first, day__lte=last, brand_id__in=brand_ids))
    guide_brand = Q(guide__store__brand_id__in=brand_ids)
    from guides.models import CommissionEntry, Share, TaskAssignment

    # PV counts a viewer's views of one share within one window once (members.share_views).
    viewer, view = event_viewer(), share_view_key()
    material = Q(kind=EventKind.MATERIAL_VIEW)
    frames = [
        _by_guide_day(Share.objects.filter(guide_brand, guide__isnull=False, created_at__gte=start,
                                           created_at__lt=end), _local_day("created_at"), shares=Count("pk")),
        _by_guide_day(BehaviourEvent.objects.filter(guide_brand, occurred_at__gte=start, occurred_at__lt=end,
                                                    guide__isnull=False, kind__in=VIEW_KINDS)
                      .exclude(share_token="").annotate(viewer=viewer, view=view), _local_day("occurred_at"),
                      share_pv=Count("view", distinct=True), share_uv=Count("viewer", distinct=True),
                      material_pv=Count("view", filter=material, distinct=True),
                      material_uv=Count("viewer", filter=material, distinct=True)),
        _by_guide_day(TaskAssignment.objects.filter(guide_brand, assigned_at__gte=start, assigned_at__lt=end),
                      _local_day("assigned_at"), tasks_assigned=Count("pk"),
                      tasks_executed=Count("pk", filter=Q(executed_at__isnull=False))),
        _by_guide_day(CareItem.objects.filter(guide_brand, day__gte=first, day__lte=last), F("day"),
                      care_items=Count("pk"), care_items_done=Count("pk", filter=Q(done_at__isnull=False))),
        _by_guide_day(WeComFriendship.objects.filter(guide_brand, added_at__gte=start, added_at__lt=end),
                      _local_day("added_at"), wecom_friends_added=Count("pk")),
        _by_guide_day(GuideBinding.objects.filter(guide_brand, started_at__gte=start, started_at__lt=end,
                                                  reason__in=WON_REASONS), _local_day("started_at"),
                      new_members=Count("pk")),
        _by_guide_day(CommissionEntry.objects.filter(
            guide_brand, guide__isnull=False, created_at__gte=start, created_at__lt=end,
            kind__in=[CommissionEntry.Kind.EARN, CommissionEntry.Kind.REVERSAL]),
            _local_day("created_at"), commission=_cents(Sum("amount"))),
    ]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return 0, deleted
    frame = pd.concat(frames, axis=1).fillna(0)
    guide_ids = sorted({int(g) for _day, g in frame.index})
    places = {g: (s, b) for g, s, b in Guide.objects.filter(pk__in=guide_ids)
              .values_list("pk", "store_id", "store__brand_id")}
    counts = [c for c in ("shares", "share_pv", "share_uv", "material_pv", "material_uv", "tasks_assigned",
                          "tasks_executed", "care_items", "care_items_done", "wecom_friends_added", "new_members")
              if c in frame.columns]
    has_commission = "commission" in frame.columns
    facts = []
    for (day, guide_id), row in zip(frame.index, frame.itertuples(index=False), strict=True):
        store_id, brand_id = places[int(guide_id)]
        facts.append(EngagementFact(day=day, brand_id=brand_id, store_id=store_id, guide_id=int(guide_id),
                                    commission=_money(row.commission) if has_commission else Decimal("0.00"),
                                    **{c: int(getattr(row, c)) for c in counts}))
    _save(EngagementFact, facts)
    return len(facts), deleted


# ---------------------------------------------------------------------------- members and inventory


def _build_member_growth(first: dt.date, last: dt.date, brand_ids: list[int]) -> tuple[int, int]:
    start, end = _span(first, last)
    deleted = _delete(MemberGrowthFact.objects.filter(day__gte=first, day__lte=last, brand_id__in=brand_ids))
    rows = (BrandMembership.objects.filter(brand_id__in=brand_ids, joined_at__gte=start, joined_at__lt=end)
            .order_by().annotate(fact_day=_local_day("joined_at"))
            .values("fact_day", "brand_id", "store_id", "join_channel").annotate(n=Count("pk")))
    facts = [MemberGrowthFact(day=r["fact_day"], brand_id=r["brand_id"], store_id=r["store_id"],
                              join_channel=r["join_channel"], new_members=r["n"]) for r in rows]
    _save(MemberGrowthFact, facts)
    return len(facts), deleted


def _build_member_count(first: dt.date, last: dt.date, brand_ids: list[int]) -> tuple[int, int]:
    """Memberships held at the end of each day: those joined before the span plus a running sum of its joins."""
    start, end = _span(first, last)
    deleted = _delete(MemberCountFact.objects.filter(day__gte=first, day__lte=last, brand_id__in=brand_ids))
    memberships = BrandMembership.objects.filter(brand_id__in=brand_ids).order_by()
    held = {(r["brand_id"], r["store_id"]): r["n"] for r in
            memberships.filter(joined_at__lt=start).values("brand_id", "store_id").annotate(n=Count("pk"))}
    joined: dict[dt.date, list[tuple[tuple, int]]] = {}
    for r in (memberships.filter(joined_at__gte=start, joined_at__lt=end).annotate(fact_day=_local_day("joined_at"))
              .values("fact_day", "brand_id", "store_id").annotate(n=Count("pk"))):
        joined.setdefault(r["fact_day"], []).append(((r["brand_id"], r["store_id"]), r["n"]))
    facts = []
    for day in _days(first, last):
        for key, n in joined.get(day, ()):
            held[key] = held.get(key, 0) + n
        facts.extend(MemberCountFact(day=day, brand_id=brand, store_id=store, members=n)
                     for (brand, store), n in held.items() if n)
    _save(MemberCountFact, facts)
    return len(facts), deleted


def _build_inventory(first: dt.date, last: dt.date, brand_ids: list[int]) -> tuple[int, int]:
    """Stock at the end of each day: today's stock minus every movement after that day, at today's cost."""
    deleted = _delete(InventorySnapshot.objects.filter(day__gte=first, day__lte=last, brand_id__in=brand_ids))
    today = timezone.localdate(timezone.now(), timezone.get_default_timezone())
    days = [d for d in _days(first, last) if d <= today]
    if not days:
        return 0, deleted
    stock = pd.DataFrame(list(Stock.objects.filter(sku__brand_id__in=brand_ids)
                              .values_list("sku_id", "sku__brand_id", "quantity", "sku__cost_price")),
                         columns=["sku_id", "brand_id", "quantity", "cost"])
    if stock.empty:
        return 0, deleted
    stock["cost_c"] = [int(Decimal(c) * 100) for c in stock["cost"]]
    moves = pd.DataFrame(list(StockMovement.objects.filter(sku__brand_id__in=brand_ids,
                                                           at__gte=_local_midnight(days[0] + dt.timedelta(days=1)))
                              .order_by().annotate(fact_day=_local_day("at")).values("sku_id", "fact_day")
                              .annotate(d=Sum("delta")).values_list("sku_id", "fact_day", "d")),
                         columns=["sku_id", "day", "delta"])
    facts = []
    for day in days:
        later = moves[moves["day"] > day].groupby("sku_id")["delta"].sum() if not moves.empty else pd.Series(dtype=int)
        quantity = stock["quantity"] - stock["sku_id"].map(later).fillna(0).astype("int64")
        frame = stock.assign(quantity=quantity.clip(lower=0))
        frame["value_c"] = frame["quantity"] * frame["cost_c"]
        frame["in_stock"] = (frame["quantity"] > 0).astype("int64")
        for brand_id, part in frame.groupby("brand_id"):
            facts.append(InventorySnapshot(day=day, brand_id=int(brand_id), units=int(part["quantity"].sum()),
                                           value_at_cost=_money(part["value_c"].sum()),
                                           skus_in_stock=int(part["in_stock"].sum())))
    _save(InventorySnapshot, facts)
    return len(facts), deleted


def _build_guide_region(first: dt.date, last: dt.date, brand_ids: list[int]) -> tuple[int, int]:
    """Sum each day's guide credits and engagement of each region's guides (the trend of guide ratios)."""
    deleted = _delete(GuideRegionFact.objects.filter(day__gte=first, day__lte=last, brand_id__in=brand_ids))
    keys = ("day", "store__brand_id", "store__region_id")
    days = Q(day__gte=first, day__lte=last)
    sales = {tuple(r[k] for k in keys): r for r in
             GuideSalesFact.objects.filter(days, store__brand_id__in=brand_ids).order_by().values(*keys)
             .annotate(sales=Sum("amount"), cross=Sum("amount", filter=Q(cross_brand=True)))}
    work = {tuple(r[k] for k in keys): r for r in
            EngagementFact.objects.filter(days, brand_id__in=brand_ids).order_by().values(*keys)
            .annotate(assigned=Sum("tasks_assigned"), executed=Sum("tasks_executed"), care=Sum("care_items"),
                      done=Sum("care_items_done"))}
    facts = []
    for key in sorted(set(sales) | set(work)):
        s, w = sales.get(key, {}), work.get(key, {})
        day, brand_id, region_id = key
        facts.append(GuideRegionFact(
            day=day, brand_id=brand_id, region_id=region_id, guide_sales=s.get("sales") or Decimal("0.00"),
            cross_brand_sales=s.get("cross") or Decimal("0.00"), tasks_assigned=w.get("assigned") or 0,
            tasks_executed=w.get("executed") or 0, care_items=w.get("care") or 0, care_items_done=w.get("done") or 0))
    _save(GuideRegionFact, facts)
    return len(facts), deleted


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def month_end(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _insert_select(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


_STORE_MEASURES = ("orders", "gmv", "paid_orders", "paid_amount", "refunded_amount", "sales_flow")
_STORE_KEYS = "brand_id, store_id, channel"


def _store_day_sql() -> str:
    """SalesFact rows (brand, credited store, channel, measures) of the days [%s, %s]: the store rollups' source."""
    return (f"SELECT {_STORE_KEYS}, {', '.join(_STORE_MEASURES)} "  # noqa: S608 (no input in SQL)
            f"FROM {SalesFact._meta.db_table} WHERE day >= %s AND day <= %s")


def _store_rollup_sql(table: str, period_column: str, source: str) -> str:
    """INSERT the sums of ``source`` (store rollup rows) per brand × store × channel, with the store's region."""
    return (f"INSERT INTO {table} ({period_column}, brand_id, region_id, store_id, channel, "  # noqa: S608
            f"{', '.join(_STORE_MEASURES)}) SELECT %s, u.brand_id, s.region_id, u.store_id, u.channel, "
            f"{', '.join(f'SUM(u.{m})' for m in _STORE_MEASURES)} FROM ({source}) u "
            f"LEFT JOIN {Store._meta.db_table} s ON s.id = u.store_id "
            "GROUP BY u.brand_id, s.region_id, u.store_id, u.channel")


def _build_store_month(month: dt.date) -> int:
    """Sales per month × brand × credited store × channel, summed from SalesFact in one INSERT … SELECT."""
    StoreMonthFact.objects.filter(month=month).delete()
    return _insert_select(_store_rollup_sql(StoreMonthFact._meta.db_table, "month", _store_day_sql()),
                          [month, month, month_end(month)])


_GUIDE_COUNTS = ("shares", "share_pv", "share_uv", "material_pv", "material_uv", "tasks_assigned", "tasks_executed",
                 "care_items", "care_items_done", "wecom_friends_added", "new_members")
_GUIDE_SALES = ("online_sales", "offline_sales", "sales", "cross_brand_sales")
_GUIDE_COLUMNS = (*_GUIDE_SALES, *_GUIDE_COUNTS, "commission")


def _guide_day_sql() -> str:
    """A guide's credited sales (online/offline/cross-brand) and engagement counters over the days [%s, %s] and
    again [%s, %s], one row per fact row (the guide rollups' source, to be summed per guide)."""
    offline = ", ".join(f"'{c.value}'" for c in OFFLINE_CHANNELS)
    zeros_counts = ", ".join(f"0 AS {c}" for c in (*_GUIDE_COUNTS, "commission"))
    zeros_sales = ", ".join(f"0 AS {c}" for c in _GUIDE_SALES)
    return (f"SELECT guide_id, CASE WHEN channel IN ({offline}) THEN 0 ELSE amount END AS online_sales, "  # noqa: S608
            f"CASE WHEN channel IN ({offline}) THEN amount ELSE 0 END AS offline_sales, amount AS sales, "
            f"CASE WHEN cross_brand THEN amount ELSE 0 END AS cross_brand_sales, {zeros_counts} "
            f"FROM {GuideSalesFact._meta.db_table} WHERE day >= %s AND day <= %s "
            f"UNION ALL SELECT guide_id, {zeros_sales}, {', '.join((*_GUIDE_COUNTS, 'commission'))} "
            f"FROM {EngagementFact._meta.db_table} WHERE day >= %s AND day <= %s")


def _guide_rollup_sql(table: str, period_column: str, source: str) -> str:
    """INSERT the sums of ``source`` (rows of guide_id + the guide columns) per guide, placed at its store."""
    return (f"INSERT INTO {table} ({period_column}, brand_id, region_id, store_id, guide_id, "  # noqa: S608
            f"{', '.join(_GUIDE_COLUMNS)}) SELECT %s, s.brand_id, s.region_id, g.store_id, u.guide_id, "
            f"{', '.join(f'SUM(u.{c})' for c in _GUIDE_COLUMNS)} FROM ({source}) u "
            f"JOIN {Guide._meta.db_table} g ON g.id = u.guide_id JOIN {Store._meta.db_table} s ON s.id = g.store_id "
            "GROUP BY u.guide_id, g.store_id, s.brand_id, s.region_id")


def _build_guide_month(month: dt.date) -> int:
    """A guide's month: credited sales (online/offline/cross-brand) and engagement counters, in one INSERT … SELECT."""
    GuideMonthFact.objects.filter(month=month).delete()
    last = month_end(month)
    return _insert_select(_guide_rollup_sql(GuideMonthFact._meta.db_table, "month", _guide_day_sql()),
                          [month, month, last, month, last])


def _to_date_days(month: dt.date, since: dt.date | None) -> list[dt.date]:
    """The days of ``month`` whose month-to-date rows a rebuild from ``since`` replaces (none after today)."""
    from analytics.services import local_today

    first = max(month, since) if since else month
    return _days(first, min(month_end(month), max(local_today(), first)))


def _build_store_month_to_date(month: dt.date, since: dt.date | None = None) -> int:
    """Month-to-date sales per store and channel for each day of ``month`` from ``since`` on: the day before's
    rows plus the day's SalesFact, one INSERT … SELECT a day (days before ``since`` are kept)."""
    days = _to_date_days(month, since)
    StoreMonthToDateFact.objects.filter(day__gte=days[0], day__lte=month_end(month)).delete()
    table, written = StoreMonthToDateFact._meta.db_table, 0
    source = (f"SELECT {_STORE_KEYS}, {', '.join(_STORE_MEASURES)} FROM {table} WHERE day = %s "  # noqa: S608
              f"UNION ALL {_store_day_sql()}")
    for day in days:
        before = day - dt.timedelta(days=1)  # a day of the month before when ``day`` is the first: no rows
        written += _insert_select(_store_rollup_sql(table, "day", source),
                                  [day, before if day > month else None, day, day])
    return written


def _build_guide_month_to_date(month: dt.date, since: dt.date | None = None) -> int:
    """Month-to-date guide KPIs for each day of ``month`` from ``since`` on (see _build_store_month_to_date)."""
    days = _to_date_days(month, since)
    GuideMonthToDateFact.objects.filter(day__gte=days[0], day__lte=month_end(month)).delete()
    table, written = GuideMonthToDateFact._meta.db_table, 0
    source = (f"SELECT guide_id, {', '.join(_GUIDE_COLUMNS)} FROM {table} WHERE day = %s "  # noqa: S608 (no input)
              f"UNION ALL {_guide_day_sql()}")
    for day in days:
        before = day - dt.timedelta(days=1)
        written += _insert_select(_guide_rollup_sql(table, "day", source),
                                  [day, before if day > month else None, day, day, day, day])
    return written


_LEVEL_KEYS = {"group": ["group_id"], "brand": ["group_id", "brand_id"],
               "region": ["group_id", "brand_id", "region_id"],
               "store": ["group_id", "brand_id", "region_id", "store_id"]}


def _org_maps() -> tuple[dict[int, int], dict[int, int]]:
    """store → region and brand → group, for placing rows on every level."""
    return (dict(Store.objects.values_list("pk", "region_id")), dict(Brand.objects.values_list("pk", "group_id")))


def _place(frame: pd.DataFrame, region_of: dict, group_of: dict) -> pd.DataFrame:
    frame["region_id"] = frame["store_id"].map(region_of).astype("Int64")
    frame["group_id"] = frame["brand_id"].map(group_of).astype("int64")
    return frame


def _per_level(frame: pd.DataFrame, count) -> dict[tuple, dict]:
    """``count(frame, keys)`` → a frame indexed by the level keys, for every level; rows keyed (level, ids)."""
    out: dict[tuple, dict] = {}
    for level, keys in _LEVEL_KEYS.items():
        part = frame.dropna(subset=[k for k in keys if k in ("region_id", "store_id")])
        if part.empty:
            continue
        counted = count(part, keys)
        for index, row in counted.iterrows():
            index = index if isinstance(index, tuple) else (index,)
            ids = dict(zip(keys, (int(v) for v in index), strict=True))
            out.setdefault((level, ids.get("group_id"), ids.get("brand_id"), ids.get("region_id"),
                            ids.get("store_id")), {}).update({k: int(v) for k, v in row.items()})
    return out


def _buyer_counts(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    per_member = frame.groupby([*keys, "member_id"], sort=False).agg(
        n=("offline", "size"), off=("offline", "max"), on=("online", "max"))
    grouped = per_member.groupby(level=keys, sort=False)
    return pd.DataFrame({"buyers": grouped.size(), "repeat_buyers": (per_member["n"] >= 2).groupby(level=keys).sum(),
                         "purchases": grouped["n"].sum(),
                         "cross_buyers": (per_member["on"] & per_member["off"]).groupby(level=keys).sum()})


def _member_counts(first: dt.date, last: dt.date) -> list[tuple[tuple, str, dict]]:
    """The distinct-member counts behind the member-level rates over the days [first, last], per level:
    ``(key, channel, counts)`` with key = (level, group, brand, region, store) (see MemberMonthFact)."""
    month = first
    end = _local_midnight(last + dt.timedelta(days=1))
    region_of, group_of = _org_maps()
    rows = list(PurchaseFact.objects.filter(day__gte=month, day__lte=last, member__isnull=False).order_by()
                .values_list("member_id", "brand_id", "store_id", "channel", "offline"))
    bought = _place(pd.DataFrame(rows, columns=["member_id", "brand_id", "store_id", "channel", "offline"])
                    .astype({"store_id": "Int64"}), region_of, group_of)
    bought["offline"] = bought["offline"].astype(bool)
    bought["online"] = ~bought["offline"]
    counts = _per_level(bought, _buyer_counts) if not bought.empty else {}
    by_channel = {channel: _per_level(part, _buyer_counts) for channel, part in bought.groupby("channel")}

    # Store buyers (member × brand with an offline purchase) and whether a guide of that brand has them as a
    # WeCom friend at the end of the month.
    friends = set(WeComFriendship.objects.filter(Q(removed_at__isnull=True) | Q(removed_at__gte=end),
                                                 added_at__lt=end).values_list("member_id", "guide__store__brand_id"))
    store_buyers = bought[bought["offline"].astype(bool)].drop_duplicates(["member_id", "brand_id", "store_id"])
    store_buyers = store_buyers.assign(friend=[(m, b) in friends for m, b in zip(
        store_buyers["member_id"], store_buyers["brand_id"], strict=True)])

    def pairs(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        unique = frame.drop_duplicates([*keys, "member_id", "brand_id"])
        grouped = unique.groupby(keys, sort=False)
        return pd.DataFrame({"store_buyers": grouped.size(), "wecom_store_buyers": grouped["friend"].sum()})

    for key, values in (_per_level(store_buyers, pairs) if not store_buyers.empty else {}).items():
        counts.setdefault(key, {}).update(values)

    # Memberships active in the mini-program during the month, placed at their join store.
    activity, membership = MemberDailyActivity._meta.db_table, BrandMembership._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT a.member_id, a.brand_id, m.store_id FROM {activity} a "  # noqa: S608
                       f"JOIN {membership} m ON m.member_id = a.member_id AND m.brand_id = a.brand_id "
                       "AND m.joined_at < %s WHERE a.day >= %s AND a.day <= %s", [end, month, last])
        active = _place(pd.DataFrame(cursor.fetchall(), columns=["member_id", "brand_id", "store_id"])
                        .astype({"store_id": "Int64"}), region_of, group_of)

    def active_count(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        return pd.DataFrame({"active_members": frame.groupby(keys, sort=False).size()})

    for key, values in (_per_level(active, active_count) if not active.empty else {}).items():
        counts.setdefault(key, {}).update(values)

    # Memberships at the end of the month (the last day with member counts).
    count_day = MemberCountFact.objects.filter(day__lte=last, day__gte=month).order_by("-day") \
        .values_list("day", flat=True).first()
    if count_day is not None:
        held = _place(pd.DataFrame(list(MemberCountFact.objects.filter(day=count_day)
                                        .values_list("brand_id", "store_id", "members")),
                                   columns=["brand_id", "store_id", "members"]).astype({"store_id": "Int64"}),
                      region_of, group_of)

        def members(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
            return pd.DataFrame({"members": frame.groupby(keys, sort=False)["members"].sum()})

        for key, values in _per_level(held, members).items():
            counts.setdefault(key, {}).update(values)

    out = [(key, "", values) for key, values in counts.items()]
    for channel, per_key in by_channel.items():
        out += [(key, channel, {k: values[k] for k in ("buyers", "repeat_buyers", "purchases")})
                for key, values in per_key.items()]
    return out


def _member_count_facts(model, counts: list[tuple[tuple, str, dict]], **period) -> list:
    facts = []
    for (level, group_id, brand_id, region_id, store_id), channel, values in counts:
        facts.append(model(level=level, group_id=group_id, brand_id=brand_id, region_id=region_id,
                           store_id=store_id, channel=channel, **period, **values))
    return facts


def _build_member_month(month: dt.date) -> int:
    """The distinct-member counts behind the member-level rates, per level (see MemberMonthFact)."""
    MemberMonthFact.objects.filter(month=month).delete()
    facts = _member_count_facts(MemberMonthFact, _member_counts(month, month_end(month)), month=month)
    _save(MemberMonthFact, facts)
    return len(facts)


#: The window lengths (days) built as MemberWindowFact: the dashboard's "last 7 / 30 days" presets.
WINDOW_LENGTHS = (7, 30)


def _year_earlier(day: dt.date) -> dt.date:
    year = day.year - 1
    return day.replace(year=year, day=min(day.day, calendar.monthrange(year, day.month)[1]))


def window_periods(ends: list[dt.date], lengths: tuple[int, ...] = WINDOW_LENGTHS) -> list[tuple[dt.date, dt.date]]:
    """The windows [end − (length − 1), end] of ``ends``, the same dates a year earlier (同比), the window of the
    same length just before (环比) and its year-earlier dates, so a preset's page reads them all from facts."""
    periods = set()
    for end in ends:
        for length in lengths:
            first = end - dt.timedelta(days=length - 1)
            periods.add((first, end))
            periods.add((_year_earlier(first), _year_earlier(end)))
            before = (first - dt.timedelta(days=length), first - dt.timedelta(days=1))
            periods.add(before)
            periods.add((_year_earlier(before[0]), _year_earlier(before[1])))  # the 环比 bundle carries its 同比
    return sorted(periods)


def facts_rebuild_windows(*, ends: list[dt.date], lengths: tuple[int, ...] = WINDOW_LENGTHS,
                          periods: list[tuple[dt.date, dt.date]] | None = None) -> int:
    """(Re)build MemberWindowFact for the windows of ``ends`` (see ``window_periods``), or for ``periods``
    [(first, last), …], from PurchaseFact and the other day facts; one transaction per window."""
    written = 0
    for first, last in periods if periods is not None else window_periods(ends, lengths):
        with transaction.atomic():
            job_lock(LOCK)
            MemberWindowFact.objects.filter(date_from=first, date_to=last).delete()
            facts = _member_count_facts(MemberWindowFact, _member_counts(first, last), date_from=first, date_to=last)
            _save(MemberWindowFact, facts)
            written += len(facts)
    return written


def _drop_stale_windows(days: list[dt.date]) -> int:
    """Delete the window facts holding one of ``days`` (rebuilt: the window's counts may have changed)."""
    stale = Q()
    for day in days:
        stale |= Q(date_from__lte=day, date_to__gte=day)
    return _delete(MemberWindowFact.objects.filter(stale)) if days else 0


def _build_segment_month(month: dt.date) -> int:
    """Per brand, region and store: members per current RFML class (placed at their join store) and the month's
    purchases by the buyer's current class (at the credited store)."""
    SegmentMonthFact.objects.filter(month=month).delete()
    purchase, rfm, membership = (PurchaseFact._meta.db_table, MemberRfm._meta.db_table,
                                 BrandMembership._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT p.member_id, p.brand_id, p.store_id, r.segment, p.net_amount FROM {purchase} p "  # noqa: S608
                       f"JOIN {rfm} r ON r.member_id = p.member_id AND r.brand_id = p.brand_id AND r.segment <> '' "
                       "WHERE p.day >= %s AND p.day <= %s", [month, month_end(month)])
        bought = cursor.fetchall()
        cursor.execute(f"SELECT r.brand_id, m.store_id, r.segment, COUNT(*) FROM {rfm} r "  # noqa: S608
                       f"LEFT JOIN {membership} m ON m.member_id = r.member_id AND m.brand_id = r.brand_id "
                       "WHERE r.segment <> '' GROUP BY r.brand_id, m.store_id, r.segment")
        classes = cursor.fetchall()
    if not bought and not classes:
        return 0
    region_of, group_of = _org_maps()
    frame = _place(pd.DataFrame(bought, columns=["member_id", "brand_id", "store_id", "segment", "net"])
                   .astype({"store_id": "Int64"}), region_of, group_of)
    frame["cents"] = [int(Decimal(v) * 100) for v in frame["net"]]
    sizes = _place(pd.DataFrame(classes, columns=["brand_id", "store_id", "segment", "members"])
                   .astype({"store_id": "Int64"}), region_of, group_of)
    facts = []
    for level, keys in (("brand", ["brand_id"]), ("region", ["brand_id", "region_id"]),
                        ("store", ["brand_id", "region_id", "store_id"])):
        places = [k for k in keys if k != "brand_id"]
        sales = frame.dropna(subset=places).groupby([*keys, "segment"]).agg(
            buyers=("member_id", "nunique"), purchases=("member_id", "size"), cents=("cents", "sum"))
        members = sizes.dropna(subset=places).groupby([*keys, "segment"])["members"].sum()
        grouped = sales.join(members, how="outer").fillna(0).reset_index()
        for r in grouped.itertuples():
            facts.append(SegmentMonthFact(month=month, level=level, brand_id=int(r.brand_id),
                                          region_id=_id(getattr(r, "region_id", None)),
                                          store_id=_id(getattr(r, "store_id", None)), segment=r.segment,
                                          members=int(r.members), buyers=int(r.buyers), purchases=int(r.purchases),
                                          sales_flow=_money(r.cents)))
    _save(SegmentMonthFact, facts)
    return len(facts)


_MONTH_BUILDERS = {"store_month": _build_store_month, "guide_month": _build_guide_month,
                   "store_month_to_date": _build_store_month_to_date,
                   "guide_month_to_date": _build_guide_month_to_date,
                   "member_month": _build_member_month, "segment_month": _build_segment_month}
_TO_DATE_TABLES = ("store_month_to_date", "guide_month_to_date")


def facts_rebuild_months(*, months: list[dt.date], tables: tuple[str, ...] = MONTH_TABLES,
                         since: dt.date | list[dt.date] | None = None) -> dict[str, int]:
    """Rebuild the month rollups of ``months`` (first days) from the day facts, one transaction per month.

    Rollups always cover every brand: they are derived from the day facts, so
    rebuilding them is cheap and keeps group-wide rows consistent. ``since``: the
    first day (or the days) that changed; the month-to-date rows of a month are
    rebuilt from its earliest changed day on (the rows before it cannot change).
    """
    changed = [since] if isinstance(since, dt.date) else list(since or [])
    written: dict[str, int] = {}
    for month in sorted(set(months)):
        first = min((d for d in changed if month_start(d) == month), default=None)
        with transaction.atomic():
            job_lock(LOCK)
            for table in tables:
                build = _MONTH_BUILDERS[table]
                rows = build(month, first) if table in _TO_DATE_TABLES else build(month)
                written[table] = written.get(table, 0) + rows
    return written


# ---------------------------------------------------------------------------- the builds


_DAY_BUILDERS = {"engagement": _build_engagement, "member_growth": _build_member_growth,
                 "member_count": _build_member_count, "inventory": _build_inventory,
                 "guide_region": _build_guide_region}


def facts_rebuild_span(*, first: dt.date, last: dt.date, brand_id: int | None = None,
                       tables: tuple[str, ...] = ALL_TABLES,
                       brand_ids: list[int] | None = None) -> tuple[dict[str, int], dict[str, int]]:
    """Replace every fact of the local days [first, last] (one brand, or all) in one transaction.

    Returns (rows written, rows deleted) per table. Each day gets a FactBuild row.
    """
    unknown = set(tables) - set(ALL_TABLES)
    if unknown:
        raise ValueError(f"unknown fact tables {sorted(unknown)}")
    brand_ids = brand_ids if brand_ids is not None else _brand_ids(brand_id)
    started = time.monotonic()
    with transaction.atomic():
        job_lock(LOCK)
        written, deleted = _build_sales(first, last, brand_ids, tables)
        for table, build in _DAY_BUILDERS.items():
            if table in tables:
                written[table], deleted[table] = build(first, last, brand_ids)
        built_at, duration = timezone.now(), int((time.monotonic() - started) * 1000)
        FactBuild.objects.bulk_create([FactBuild(day=day, brand_id=brand_id, built_at=built_at, duration_ms=duration,
                                                 rows=written) for day in _days(first, last)])
    return written, deleted


def facts_rebuild_day(*, day: dt.date, brand_id: int | None = None, tables: tuple[str, ...] = ALL_TABLES,
                      brand_ids: list[int] | None = None) -> tuple[dict[str, int], dict[str, int]]:
    """Replace every fact of one local day (one brand, or all) in one transaction; returns (written, deleted)."""
    return facts_rebuild_span(first=day, last=day, brand_id=brand_id, tables=tables, brand_ids=brand_ids)


def _month_spans(date_from: dt.date, date_to: dt.date) -> list[tuple[dt.date, dt.date]]:
    spans, first = [], date_from
    while first <= date_to:
        last = min(month_end(first), date_to)
        spans.append((first, last))
        first = last + dt.timedelta(days=1)
    return spans


def facts_rebuild(*, date_from: dt.date, date_to: dt.date, brand_id: int | None = None,
                  tables: tuple[str, ...] = ALL_TABLES, rollups: bool = True) -> FactsRebuildResult:
    """Rebuild every fact table for the local days [date_from, date_to], one transaction per calendar month of
    the range (each day's rows replaced together), then the month rollups of those months (``rollups=False``
    skips them).

    Idempotent: a second run over unchanged data writes the same rows. With
    ``brand_id`` only that brand's day rows are replaced (month rollups always cover every brand).
    """
    if date_to < date_from:
        raise ValueError("date_to is before date_from")
    started = time.monotonic()
    result = FactsRebuildResult(date_from=date_from, date_to=date_to)
    brand_ids = _brand_ids(brand_id)
    for first, last in _month_spans(date_from, date_to):
        written, deleted = facts_rebuild_span(first=first, last=last, brand_id=brand_id, tables=tables,
                                              brand_ids=brand_ids)
        result.add(written, deleted)
        result.days += (last - first).days + 1
    _delete(MemberWindowFact.objects.filter(date_from__lte=date_to, date_to__gte=date_from))  # stale windows
    if rollups:
        result.add(facts_rebuild_months(months=[first for first, _last in _month_spans(date_from, date_to)],
                                        since=date_from), {})
        result.add({"member_window": facts_rebuild_windows(ends=[date_to])}, {})
    result.duration_ms = int((time.monotonic() - started) * 1000)
    return result


@transaction.atomic
def sales_facts_rebuild(*, date_from: dt.date, date_to: dt.date, brand_id: int | None = None) -> FactRebuildResult:
    """Replace the sales facts (SalesFact and its rollup, guide sales, purchases) of [date_from, date_to].

    One transaction for the whole range. Returns what happened to SalesFact.
    """
    if date_to < date_from:
        raise ValueError("date_to is before date_from")
    job_lock(LOCK)
    written, deleted = _build_sales(date_from, date_to, _brand_ids(brand_id), SALES_TABLES)
    return FactRebuildResult(date_from=date_from, date_to=date_to, rows_deleted=deleted["sales"],
                             rows_written=written["sales"])


def facts_days_changed(*, since: dt.datetime, until: dt.datetime | None = None) -> list[dt.date]:
    """Local days whose facts changed after they were built: what happened in [since, until) and which day it hit.

    Orders placed, refunds completed (→ the order's day), task assignments
    executed (→ the day they were assigned), care items done (→ their day) and
    every day touched by the period itself.
    """
    until = until or timezone.now()
    tz = timezone.get_default_timezone()
    first = timezone.localtime(since, tz).date()
    last = timezone.localtime(until, tz).date()
    days = set(_days(first, last))
    day_of = TruncDate("order__ordered_at", tzinfo=tz)
    days |= set(Refund.objects.filter(status=Refund.Status.REFUNDED, requested_at__gte=since - dt.timedelta(days=60),
                                      refunded_at__gte=since, refunded_at__lt=until)
                .annotate(day=day_of).values_list("day", flat=True).distinct().order_by())
    from guides.models import TaskAssignment

    days |= set(TaskAssignment.objects.filter(executed_at__gte=since, executed_at__lt=until)
                .annotate(day=TruncDate("assigned_at", tzinfo=tz)).values_list("day", flat=True).distinct()
                .order_by())
    days |= set(CareItem.objects.filter(done_at__gte=since, done_at__lt=until)
                .values_list("day", flat=True).distinct().order_by())
    today = timezone.localdate(timezone.now(), tz)
    return sorted(d for d in days if d <= today)


def facts_rebuild_changed(*, since: dt.datetime, until: dt.datetime | None = None) -> FactsRebuildResult:
    """Rebuild the days ``facts_days_changed`` finds (the nightly run: yesterday and days changed late)."""
    days = facts_days_changed(since=since, until=until)
    if not days:
        today = timezone.localdate(timezone.now(), timezone.get_default_timezone())
        return FactsRebuildResult(date_from=today, date_to=today)
    started = time.monotonic()
    result = FactsRebuildResult(date_from=days[0], date_to=days[-1])
    brand_ids = _brand_ids(None)
    for day in days:
        written, deleted = facts_rebuild_day(day=day, brand_ids=brand_ids)
        result.add(written, deleted)
        result.days += 1
    result.add(facts_rebuild_months(months=[month_start(d) for d in days], since=days), {})
    _drop_stale_windows(days)
    result.add({"member_window": facts_rebuild_windows(ends=[days[-1]])}, {})
    result.duration_ms = int((time.monotonic() - started) * 1000)
    return result
