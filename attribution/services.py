"""Sales attribution (业绩归属): who gets credit for each purchase, and why.

For every purchase (``mall.selectors.purchases``: a paid order with net amount > 0)
the engine wants these credits, each worth the order's net amount (paid − refunded):

* exactly one **store** credit
    - ``offline_pos_store``: a store POS sale goes to the POS store (``order.store``);
    - ``store_live_host``: a store-livestream sale (channel ``store_live``) goes to the host store:
      ``order.store``, or the host store of the order's store session when the order names none;
    - ``online_bound_guide_store``: any other channel goes to the store of the member's
      bound guide *for the order's brand* at the time of the order (the binding's store,
      i.e. the guide's store when the binding started);
    - ``online_unbound_hq_pool``: no such binding → the HQ pool (``store`` empty).
    A POS order that names no store, or a livestream order that names none and carries no store
    session, is treated like an online order. HQ-central sales (``hq_live``) are online sales: the
    bound guide's store, or the HQ pool.
* an **exclusive** credit (专属业绩) to the member's bound guide at the time of the order,
  whatever the channel (``exclusive_bound_guide``). Without a binding for the order's
  brand, credit follows the member's guide in another brand of the group
  (``exclusive_cross_brand_guide``, ``cross_brand``): of the bindings open at the time of
  the order the most recently started one wins. The store credit does *not* follow it:
  a store is credited only with sales of its own brand.
* a **selling** credit (销售业绩) to the guide named by the share link or the POS
  (``order.guide``) when that guide is not the exclusive guide (``selling_named_guide``);
  ``cross_brand`` when that guide's store is of another brand. The binding is not moved.
* **Store livestreams** (DOMAIN.md "1+N"; issue 7: "guide credit to the member's bound guide if
  they belong to that store, else the session's host guide"). For a ``store_live`` order carrying a
  store session (``order.live_session`` of kind ``store``) whose bound guide — the guide of the
  exclusive credit above, same-brand or cross-brand — is *not* of the host store (the binding's store
  differs, or the member has no guide at all), the session's host guide gets the **selling** credit
  (``store_live_host_guide``): they sold it on air. That credit takes the place of a share-link
  selling credit (one selling credit per order, so guided sales are not counted twice). The
  exclusive credit stays with the bound guide whatever the channel: the original binding is
  protected (DOMAIN.md rule 3) and "credit follows the bound guide", so a store stream never takes a
  member's sales away from their own guide; the host guide is credited beside them. When the bound
  guide is of the host store, the guide credit is that exclusive credit and the host guide gets
  none (a share link by a colleague still earns its usual selling credit). A session without a host
  guide changes nothing.

"At the time of the order" means a binding with ``started_at <= ordered_at`` and
``ended_at`` empty or ``> ordered_at``: a binding started later does not count, and a
member transferred since keeps their old orders with the old guide.

Rows are append-only. The credit of (order, kind, target) — the target being the store
for a store credit and the guide for a guide credit — is the sum of its rows. Each run
computes the wanted credits, compares them with those sums and writes only the
difference: a refund adds a negative row (same rule), an order that is no longer a
purchase gets rows bringing each target to zero (rule ``reversal_not_purchase``), a
credit whose target changed (binding corrected, rule changed) gets a reversing row
for the old target (rule ``reversal_target_changed``) and a new row for the new one.
A second run over unchanged data writes nothing.

Everything is set-based: per chunk of orders one query for the orders, one join for the
bindings open at order time, one for the guides involved, one grouped query for the
credits already booked, pandas to compare, and one COPY (PostgreSQL) or bulk insert.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Round
from django.utils import timezone

from attribution.models import SalesCredit
from mall.models import PAID_STATUSES, Channel, Order
from mall.selectors import purchases
from members.models import GuideBinding
from retail_crm.locks import job_lock
from retail_crm.models import Guide, Store

KIND_STORE = SalesCredit.Kind.STORE.value
KIND_EXCLUSIVE = SalesCredit.Kind.EXCLUSIVE.value
KIND_SELLING = SalesCredit.Kind.SELLING.value


class Rule:
    """The names written to ``SalesCredit.rule``; the workbench explains each one."""

    OFFLINE_POS_STORE = "offline_pos_store"
    STORE_LIVE_HOST = "store_live_host"
    ONLINE_BOUND_GUIDE_STORE = "online_bound_guide_store"
    ONLINE_UNBOUND_HQ_POOL = "online_unbound_hq_pool"
    EXCLUSIVE_BOUND_GUIDE = "exclusive_bound_guide"
    EXCLUSIVE_CROSS_BRAND_GUIDE = "exclusive_cross_brand_guide"
    SELLING_NAMED_GUIDE = "selling_named_guide"
    STORE_LIVE_HOST_GUIDE = "store_live_host_guide"
    REVERSAL_NOT_PURCHASE = "reversal_not_purchase"
    REVERSAL_TARGET_CHANGED = "reversal_target_changed"


#: orders handled per transaction; bounds memory and how long the brand locks are held
CHUNK_ORDERS = 100_000
#: threads (each with its own PostgreSQL connection) for runs of several chunks
PARALLEL_WORKERS = 2
_AMOUNT = DecimalField(max_digits=16, decimal_places=2)
_KIND_RANK = {KIND_STORE: 0, KIND_EXCLUSIVE: 1, KIND_SELLING: 2}
_NO_ID = -1  # stands for "no store" (HQ pool) in comparison keys; ids are positive
_STORE_SESSION = "store"  # livestream.models.LiveSession.Kind.STORE (attribution reads it from the order's join)


@dataclass(frozen=True)
class CreditLine:
    """One credit an order should have (or a correcting row that was written)."""

    kind: str
    store_id: int | None
    guide_id: int | None
    amount: Decimal
    rule: str
    cross_brand: bool


@dataclass(frozen=True)
class AttributionResult:
    """What attribution decided for one order and how many rows it had to write."""

    order_id: int
    is_purchase: bool
    net_amount: Decimal
    credits: tuple[CreditLine, ...]
    rows_written: tuple[CreditLine, ...]


@dataclass
class AttributionRunResult:
    """Totals of a range or sweep run."""

    orders: int = 0
    purchases: int = 0
    rows_written: int = 0
    seconds: float = 0.0
    chunks: int = 0
    per_order: list[AttributionResult] = field(default_factory=list, repr=False)


# ---------------------------------------------------------------------------- public services

def attribute_orders(*, order_ids: Iterable[int]) -> list[AttributionResult]:
    """Bring the credits of these orders in line with the rules; one result per existing order.

    Safe to call any number of times: only differences are written.
    """
    ids = sorted({int(i) for i in order_ids})
    results: list[AttributionResult] = []
    for start in range(0, len(ids), CHUNK_ORDERS):
        part = ids[start:start + CHUNK_ORDERS]
        run = _attribute_chunk(Order.objects.filter(pk__in=part), detail=True)
        results.extend(run.per_order)
    return results


def attribute_range(*, brand_id: int, date_from: dt.date, date_to: dt.date) -> AttributionRunResult:
    """Re-run attribution for one brand over the orders placed on local days [date_from, date_to].

    Used when rules or bindings were corrected; with nothing changed it writes nothing.
    """
    if date_to < date_from:
        raise ValueError("date_to is before date_from")
    tz = timezone.get_default_timezone()
    start = dt.datetime.combine(date_from, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    orders = Order.objects.filter(brand_id=brand_id, ordered_at__gte=start, ordered_at__lt=end)
    return _attribute_in_id_chunks(orders)


def attribute_all(*, brand_id: int | None = None) -> AttributionRunResult:
    """Re-run attribution over every order of one brand (or of every brand): ``run_jobs`` and the demo call this."""
    brands = Order.objects.order_by().values("brand_id").annotate(first=Min("ordered_at"), last=Max("ordered_at"))
    if brand_id is not None:
        brands = brands.filter(brand_id=brand_id)
    tz = timezone.get_default_timezone()
    total = AttributionRunResult()
    started = time.perf_counter()
    for row in sorted(brands, key=lambda r: r["brand_id"]):
        run = attribute_range(brand_id=row["brand_id"], date_from=timezone.localtime(row["first"], tz).date(),
                              date_to=timezone.localtime(row["last"], tz).date())
        total.orders += run.orders
        total.purchases += run.purchases
        total.rows_written += run.rows_written
        total.chunks += run.chunks
    total.seconds = time.perf_counter() - started
    return total


def attribute_sweep(*, since: dt.datetime) -> AttributionRunResult:
    """Nightly safety net: attribute every order paid since ``since`` and every order whose credits are off.

    "Off" means the sum of its store credits differs from what it should be (the net
    amount of a purchase, zero otherwise) — a refund or import update whose task was lost —
    or a purchase with no credit row at all. Both are found with grouped queries.
    """
    paid_since = set(Order.objects.filter(paid_at__gte=since).values_list("pk", flat=True))
    never = set(purchases().filter(~Exists(SalesCredit.objects.filter(order_id=OuterRef("pk"))))
                .values_list("pk", flat=True))
    net = F("order__paid_amount") - F("order__refunded_amount")
    should_be = Case(When(Q(order__status__in=PAID_STATUSES, order__paid_amount__gt=F("order__refunded_amount")),
                          then=net), default=Value(Decimal("0")), output_field=DecimalField(max_digits=14,
                                                                                            decimal_places=2))
    off = set(SalesCredit.objects.filter(kind=KIND_STORE).values("order_id")
              .annotate(credited=Sum("amount"), should_be=Max(should_be)).order_by()
              .exclude(credited=F("should_be")).values_list("order_id", flat=True))
    ids = sorted(paid_since | never | off)
    return _run_chunks([Order.objects.filter(pk__in=ids[start:start + CHUNK_ORDERS])
                        for start in range(0, len(ids), CHUNK_ORDERS)])


# ---------------------------------------------------------------------------- the engine

def _add(total: AttributionRunResult, run: AttributionRunResult) -> None:
    total.orders += run.orders
    total.purchases += run.purchases
    total.rows_written += run.rows_written
    total.chunks += 1


def _attribute_in_id_chunks(orders: QuerySet[Order]) -> AttributionRunResult:
    """Walk a (possibly huge) order set in primary-key ranges of about CHUNK_ORDERS orders."""
    ids = np.fromiter(orders.order_by().values_list("pk", flat=True).iterator(chunk_size=50_000), dtype=np.int64)
    ids.sort()
    chunks = []
    for start in range(0, len(ids), CHUNK_ORDERS):
        lo, hi = int(ids[start]), int(ids[min(start + CHUNK_ORDERS, len(ids)) - 1])
        chunks.append(orders.filter(pk__gte=lo, pk__lte=hi))
    return _run_chunks(chunks)


def _run_chunks(chunks: list[QuerySet[Order]]) -> AttributionRunResult:
    """Attribute the chunks, each in its own transaction.

    A single chunk takes its brands' locks itself. Many chunks on PostgreSQL run on
    PARALLEL_WORKERS threads (each with its own connection) while this thread holds the
    brand locks of the whole set for the run: chunks are disjoint, so they cannot double-book
    an order, and any other attribution of those brands (a paid-order task, another run)
    waits until the run commits. While one thread waits for PostgreSQL (COPY, index and
    foreign-key upkeep) the other computes in pandas, which is what keeps a million
    orders within the target on two cores.
    """
    started = time.perf_counter()
    total = AttributionRunResult()
    if len(chunks) < 2 or connection.vendor != "postgresql" or PARALLEL_WORKERS < 2:
        for chunk in chunks:
            _add(total, _attribute_chunk(chunk, detail=False))
    else:
        with transaction.atomic():
            _lock_brands(chunks)
            with ThreadPoolExecutor(max_workers=PARALLEL_WORKERS) as pool:
                for run in pool.map(_attribute_chunk_in_thread, chunks):
                    _add(total, run)
    total.seconds = time.perf_counter() - started
    return total


def _attribute_chunk_in_thread(chunk: QuerySet[Order]) -> AttributionRunResult:
    try:
        return _attribute_chunk(chunk, detail=False, lock=False)
    finally:
        connection.close()  # the thread's own connection


def _lock_brands(chunks: list[QuerySet[Order]]) -> None:
    """Take the attribution lock of every brand of these orders, in id order (no lock cycles)."""
    brand_ids: set[int] = set()
    for chunk in chunks:
        brand_ids.update(chunk.order_by().values_list("brand_id", flat=True).distinct())
    for brand_id in sorted(brand_ids):
        # The name predates the attribution app; kept so workers of either release share one lock per brand.
        job_lock(f"analytics.attribution.brand.{brand_id}")


def _cents(value) -> int:
    return int((Decimal(value) * 100).to_integral_value()) if value is not None else 0


def _from_cents(cents) -> Decimal:
    return (Decimal(int(cents)) / 100).quantize(Decimal("0.01"))


def _to_utc(series: pd.Series) -> pd.Series:
    # SQLite hands raw datetimes back as text, PostgreSQL as aware datetimes.
    return pd.to_datetime(series, utc=True, format="ISO8601") if len(series) else series


def _money_text(cents: pd.Series) -> pd.Series:
    """Integer cents → '123.45' / '-0.50' text, vectorised."""
    absolute = cents.abs()
    text = (absolute // 100).astype(str) + "." + (absolute % 100).astype(str).str.zfill(2)
    return text.where(cents >= 0, "-" + text)


def _json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _as_json(values: pd.Series, render=None) -> pd.Series:
    """Each value rendered (e.g. an id to its code) as JSON text, nulls as ``null``; each distinct value once."""
    values = values.astype(object)
    present = values.notna()
    table = {v: _json_text(render(v) if render else v) for v in pd.unique(values[present])}
    return values.map(table).where(present, "null").astype(str)


def _attribute_chunk(orders_qs: QuerySet[Order], *, detail: bool, lock: bool = True) -> AttributionRunResult:
    """Attribute one chunk of orders in one transaction, holding the lock of each brand involved.

    ``lock=False`` only for chunks of a run whose coordinating thread holds those locks.
    """
    with transaction.atomic():
        if lock:
            _lock_brands([orders_qs])
        orders = _load_orders(orders_qs)
        run = AttributionRunResult(orders=len(orders))
        if orders.empty:
            return run
        run.purchases = int(orders["is_purchase"].sum())
        wanted, context = _wanted_credits(orders, orders_qs)
        existing, had_rows = _existing_credits(orders_qs)
        rows = _differences(orders, wanted, existing, had_rows, context)
        _write(rows)
        run.rows_written = len(rows)
        if detail:
            run.per_order = _per_order_results(orders, wanted, rows)
        return run


def _in_cents(expression) -> Cast:
    """An amount expression as integer cents, computed by the database (no Decimal per row in Python)."""
    return Cast(Round(ExpressionWrapper(expression * Value(100), output_field=_AMOUNT)), BigIntegerField())


def _load_orders(orders_qs: QuerySet[Order]) -> pd.DataFrame:
    columns = ["order_id", "brand_id", "member_id", "channel", "order_store_id", "order_guide_id", "ordered_at",
               "net_cents", "session_id", "session_kind", "session_store_id", "session_guide_id"]
    data = list(orders_qs.order_by()
                .annotate(net_cents=_in_cents(F("paid_amount") - F("refunded_amount")))
                .values_list("pk", "brand_id", "member_id", "channel", "store_id", "guide_id", "ordered_at",
                             "net_cents", "live_session_id", "live_session__kind", "live_session__host_store_id",
                             "live_session__host_guide_id"))
    frame = pd.DataFrame(data, columns=columns)
    if frame.empty:
        return frame
    for col in ("member_id", "order_store_id", "order_guide_id", "session_id", "session_store_id",
                "session_guide_id"):
        frame[col] = frame[col].astype("Int64")
    frame["net_cents"] = frame["net_cents"].astype("int64")
    purchase_ids = set(purchases(orders_qs.order_by()).values_list("pk", flat=True))
    frame["is_purchase"] = frame["order_id"].isin(purchase_ids)
    ordered = _to_utc(frame["ordered_at"])
    frame["ordered_at"] = ordered
    # Local day as ISO text; a chunk spans a few hundred days at most, so format each day once.
    days = ordered.dt.tz_convert(timezone.get_default_timezone()).dt.tz_localize(None).dt.normalize()
    frame["order_day"] = days.map({d: d.date().isoformat() for d in days.unique()})
    return frame


def _bindings_at_order_time(orders_qs: QuerySet[Order]) -> pd.DataFrame:
    """Every binding open when each order was placed, in one join (not one query per order)."""
    order_table = Order._meta.db_table
    binding_table = GuideBinding._meta.db_table
    sub_sql, sub_params = orders_qs.order_by().values("pk").query.sql_with_params()
    sql = (
        f"SELECT o.id, b.id, b.brand_id, b.guide_id, b.store_id, b.started_at, b.reason "  # noqa: S608
        f"FROM {order_table} o JOIN {binding_table} b ON b.member_id = o.member_id "
        f"AND b.started_at <= o.ordered_at AND (b.ended_at IS NULL OR b.ended_at > o.ordered_at) "
        f"WHERE o.id IN ({sub_sql})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, sub_params)
        data = cursor.fetchall()
    frame = pd.DataFrame(data, columns=["order_id", "binding_id", "binding_brand_id", "bound_guide_id",
                                        "binding_store_id", "binding_started_at", "binding_reason"])
    frame["binding_started_at"] = _to_utc(frame["binding_started_at"])
    return frame


@dataclass
class _Context:
    """What the inputs JSON of a chunk's new rows is made from (built only for rows to be written)."""

    buys: pd.DataFrame
    code_of_guide: dict
    code_of_store: dict


def _wanted_credits(orders: pd.DataFrame, orders_qs: QuerySet[Order]) -> tuple[pd.DataFrame, _Context | None]:
    """The credits the purchases of the chunk should have, with rule and cross-brand flag."""
    buys = orders[orders["is_purchase"]].copy()
    columns = ["order_id", "kind", "store_id", "guide_id", "cents", "rule", "cross_brand"]
    if buys.empty:
        return pd.DataFrame(columns=columns), None
    bindings = _bindings_at_order_time(orders_qs)
    bindings = bindings.merge(buys[["order_id", "brand_id"]], on="order_id")
    bindings["same_brand"] = bindings["binding_brand_id"] == bindings["brand_id"]
    # Same-brand binding first; otherwise the most recently started binding of another brand.
    bindings = bindings.sort_values(["order_id", "same_brand", "binding_started_at", "binding_id"],
                                    ascending=[True, False, False, False])
    chosen = bindings.drop_duplicates("order_id")[["order_id", "binding_id", "binding_brand_id", "bound_guide_id",
                                                   "binding_store_id", "binding_started_at", "binding_reason",
                                                   "same_brand"]]
    buys = buys.merge(chosen, on="order_id", how="left")
    for col in ("binding_id", "binding_brand_id", "bound_guide_id", "binding_store_id"):
        buys[col] = buys[col].astype("Int64")
    buys["same_brand"] = buys["same_brand"].fillna(False).astype(bool)

    guide_ids = (set(buys["bound_guide_id"].dropna().tolist()) | set(buys["order_guide_id"].dropna().tolist())
                 | set(buys["session_guide_id"].dropna().tolist()))
    guides = pd.DataFrame(list(Guide.objects.filter(pk__in=[int(g) for g in guide_ids])
                               .values_list("pk", "code", "store_id", "store__brand_id")),
                          columns=["guide_id", "guide_code", "guide_store_id", "guide_brand_id"])
    code_of_guide = dict(zip(guides["guide_id"], guides["guide_code"], strict=True))
    store_of_guide = dict(zip(guides["guide_id"], guides["guide_store_id"], strict=True))
    brand_of_guide = dict(zip(guides["guide_id"], guides["guide_brand_id"], strict=True))
    store_ids = (set(buys["order_store_id"].dropna().tolist()) | set(buys["binding_store_id"].dropna().tolist())
                 | set(buys["session_store_id"].dropna().tolist()))
    code_of_store = dict(Store.objects.filter(pk__in=[int(s) for s in store_ids]).values_list("pk", "code"))

    # ---- store credit
    has_store = buys["order_store_id"].notna()
    offline = has_store & (buys["channel"] == Channel.STORE_POS.value)
    # A store-livestream sale's host store: the order's store, else its store session's host store.
    store_session = (buys["session_kind"] == _STORE_SESSION).fillna(False).astype(bool)
    host_store = buys["order_store_id"].where(has_store, buys["session_store_id"].where(store_session))
    live = host_store.notna() & (buys["channel"] == Channel.STORE_LIVE.value)
    bound_here = ~offline & ~live & buys["same_brand"]
    store_rule = np.select([offline, live, bound_here],
                           [Rule.OFFLINE_POS_STORE, Rule.STORE_LIVE_HOST, Rule.ONLINE_BOUND_GUIDE_STORE],
                           default=Rule.ONLINE_UNBOUND_HQ_POOL)
    store_target = buys["order_store_id"].where(offline, host_store.where(live, buys["binding_store_id"]
                                                                          .where(bound_here)))
    store_credit = pd.DataFrame({"order_id": buys["order_id"], "kind": KIND_STORE, "store_id": store_target,
                                 "guide_id": pd.array([pd.NA] * len(buys), dtype="Int64"),
                                 "cents": buys["net_cents"], "rule": store_rule, "cross_brand": False})

    # ---- exclusive credit
    bound = buys[buys["bound_guide_id"].notna()]
    exclusive = pd.DataFrame({
        "order_id": bound["order_id"], "kind": KIND_EXCLUSIVE, "store_id": bound["binding_store_id"],
        "guide_id": bound["bound_guide_id"], "cents": bound["net_cents"],
        "rule": np.where(bound["same_brand"], Rule.EXCLUSIVE_BOUND_GUIDE, Rule.EXCLUSIVE_CROSS_BRAND_GUIDE),
        "cross_brand": ~bound["same_brand"].to_numpy()})

    # ---- selling credit to a store session's host guide, when the member's guide is not of the host store
    host_guide = buys["session_guide_id"].where(live & store_session)
    bound_in_host = (buys["bound_guide_id"].notna() & (buys["binding_store_id"] == host_store)).fillna(False)
    on_air = (host_guide.notna() & ~bound_in_host.astype(bool)
              & (buys["bound_guide_id"].isna() | (buys["bound_guide_id"] != host_guide)).fillna(True)).astype(bool)
    hosted = buys[on_air]
    host_guides = host_guide[on_air].astype("int64")
    host_selling = pd.DataFrame({
        "order_id": hosted["order_id"], "kind": KIND_SELLING,
        "store_id": host_guides.map(store_of_guide).astype("Int64"),
        "guide_id": host_guides.astype("Int64"), "cents": hosted["net_cents"], "rule": Rule.STORE_LIVE_HOST_GUIDE,
        "cross_brand": (host_guides.map(brand_of_guide) != hosted["brand_id"]).to_numpy()})

    # ---- selling credit: another guide's share link or POS entry (unless the host guide took it)
    named = buys[buys["order_guide_id"].notna() & ~on_air
                 & (buys["bound_guide_id"].isna() | (buys["order_guide_id"] != buys["bound_guide_id"]))]
    named_guides = named["order_guide_id"].astype("int64")
    selling = pd.DataFrame({
        "order_id": named["order_id"], "kind": KIND_SELLING,
        "store_id": named_guides.map(store_of_guide).astype("Int64"),
        "guide_id": named["order_guide_id"], "cents": named["net_cents"], "rule": Rule.SELLING_NAMED_GUIDE,
        "cross_brand": (named_guides.map(brand_of_guide) != named["brand_id"]).to_numpy()})

    wanted = pd.concat([frame for frame in (store_credit, exclusive, host_selling, selling) if not frame.empty],
                       ignore_index=True)
    wanted["store_id"] = wanted["store_id"].astype("Int64")
    wanted["guide_id"] = wanted["guide_id"].astype("Int64")

    return wanted[columns], _Context(buys=buys, code_of_guide=code_of_guide, code_of_store=code_of_store)


def _with_inputs(rows: pd.DataFrame, context: _Context) -> pd.DataFrame:
    """Add the inputs JSON (what the rule looked at) to new credit rows: the order's facts, then the rule."""
    buys = context.buys[context.buys["order_id"].isin(rows["order_id"])]
    order_inputs = _order_inputs(buys, context.code_of_guide, context.code_of_store)
    rows = rows.merge(order_inputs, on="order_id", how="left")
    rows["inputs"] = '{"rule": ' + _as_json(rows["rule"]) + ", " + rows["order_inputs"] + "}"
    return rows.drop(columns=["order_inputs"])


def _order_inputs(buys: pd.DataFrame, code_of_guide: dict, code_of_store: dict) -> pd.DataFrame:
    """The inputs JSON body (without the rule) of each order, built column-wise as text."""
    started = buys["binding_started_at"]
    body = (
        '"channel": ' + _as_json(buys["channel"])
        + ', "store": ' + _as_json(buys["order_store_id"], code_of_store.get)
        + ', "order_guide": ' + _as_json(buys["order_guide_id"], code_of_guide.get)
        + ', "binding": ' + _as_json(buys["binding_id"], int)
        + ', "bound_guide": ' + _as_json(buys["bound_guide_id"], code_of_guide.get)
        + ', "binding_store": ' + _as_json(buys["binding_store_id"], code_of_store.get)
        + ', "binding_reason": ' + _as_json(buys["binding_reason"])
        + ', "binding_started_at": ' + _as_json(started, lambda t: t.isoformat())
        + ', "binding_cross_brand": ' + np.where(buys["bound_guide_id"].notna() & ~buys["same_brand"],
                                                 "true", "false")
        + ', "net_amount": "' + _money_text(buys["net_cents"]) + '"'
        + _session_inputs(buys, code_of_guide, code_of_store)
    )
    return pd.DataFrame({"order_id": buys["order_id"], "order_inputs": body})


def _session_inputs(buys: pd.DataFrame, code_of_guide: dict, code_of_store: dict) -> pd.Series | str:
    """``, "live_session": {...}`` for orders placed from a live session (nothing for the others)."""
    has_session = buys["session_id"].notna()
    if not has_session.any():
        return ""
    sessions = buys.loc[has_session, ["session_id", "session_kind", "session_store_id", "session_guide_id"]]
    text = {int(r.session_id): _json_text({
        "id": int(r.session_id), "kind": r.session_kind,
        "host_store": None if pd.isna(r.session_store_id) else code_of_store.get(int(r.session_store_id)),
        "host_guide": None if pd.isna(r.session_guide_id) else code_of_guide.get(int(r.session_guide_id))})
        for r in sessions.drop_duplicates("session_id").itertuples(index=False)}
    mapped = buys["session_id"].astype(object).map(lambda v: text.get(int(v)) if pd.notna(v) else "")
    return (', "live_session": ' + mapped).where(has_session, "")


def _existing_credits(orders_qs: QuerySet[Order]) -> tuple[pd.DataFrame, set[int]]:
    """Sums of the rows already booked per (order, kind, store, guide), and the orders having any row."""
    rows = list(SalesCredit.objects.filter(order__in=orders_qs.order_by().values("pk"))
                .values_list("order_id", "kind", "store_id", "guide_id").annotate(cents=_in_cents(Sum("amount")))
                .order_by())
    frame = pd.DataFrame(rows, columns=["order_id", "kind", "store_id", "guide_id", "cents"])
    frame["cents"] = frame["cents"].astype("int64")
    frame["store_id"] = frame["store_id"].astype("Int64")
    frame["guide_id"] = frame["guide_id"].astype("Int64")
    had_rows = set(frame["order_id"].tolist())
    return frame, had_rows


def _target(frame: pd.DataFrame) -> pd.Series:
    """The comparison key within (order, kind): the store of a store credit, the guide of a guide credit."""
    return frame["store_id"].fillna(_NO_ID).where(frame["kind"] == KIND_STORE, frame["guide_id"]).astype("int64")


def _differences(orders: pd.DataFrame, wanted: pd.DataFrame, existing: pd.DataFrame,
                 had_rows: set[int], context: _Context | None) -> pd.DataFrame:
    """The rows to append so that every (order, kind, target) sums to what it should."""
    key = ["order_id", "kind", "target"]
    wanted = wanted.assign(target=_target(wanted)) if not wanted.empty else wanted.assign(target=pd.Series(
        dtype="int64"))
    existing = existing.assign(target=_target(existing)) if not existing.empty else existing.assign(
        target=pd.Series(dtype="int64"))
    have = existing.groupby(key, as_index=False)["cents"].sum().rename(columns={"cents": "have"})

    # Wanted targets: top up (or take back) the difference, with the wanted rule and inputs.
    topped = wanted.merge(have, on=key, how="left")
    topped["cents"] = topped["cents"] - topped["have"].fillna(0).astype("int64")
    topped = topped[topped["cents"] != 0].drop(columns=["have"])
    if not topped.empty:
        topped = _with_inputs(topped, context)

    # Targets no longer wanted: bring each booked (store, guide) group back to zero.
    gone = existing.merge(wanted[key].drop_duplicates(), on=key, how="left", indicator=True)
    gone = gone[(gone["_merge"] == "left_only") & (gone["cents"] != 0)].drop(columns=["_merge"])
    if not gone.empty:
        gone = gone.assign(cents=-gone["cents"])
        purchase_ids = set(orders.loc[orders["is_purchase"], "order_id"].tolist())
        gone["rule"] = np.where(gone["order_id"].isin(purchase_ids), Rule.REVERSAL_TARGET_CHANGED,
                                Rule.REVERSAL_NOT_PURCHASE)
        gone = _reversal_details(gone, orders, wanted)

    if topped.empty and gone.empty:
        return topped
    # A stable, readable order: per order, new credits first, then reversals; store, exclusive, selling.
    rows = pd.concat([frame.assign(section=section) for section, frame in enumerate((topped, gone))
                      if not frame.empty], ignore_index=True)
    rows["kind_rank"] = rows["kind"].map(_KIND_RANK)
    rows = rows.sort_values(["order_id", "section", "kind_rank", "target"], kind="stable") \
        .drop(columns=["section", "kind_rank"]).reset_index(drop=True)
    facts = orders[["order_id", "brand_id", "member_id", "channel", "order_day"]]
    rows = rows.merge(facts, on="order_id", how="left")
    rows["is_correction"] = rows["order_id"].isin(had_rows)
    return rows.drop(columns=["target"])


def _reversal_details(gone: pd.DataFrame, orders: pd.DataFrame, wanted: pd.DataFrame) -> pd.DataFrame:
    """Inputs and cross-brand flag of reversing rows: what is taken back, and the order's facts now."""
    guide_ids = [int(g) for g in gone["guide_id"].dropna().unique()]
    guides = dict(Guide.objects.filter(pk__in=guide_ids).values_list("pk", "store__brand_id"))
    brand_of_order = dict(zip(orders["order_id"], orders["brand_id"], strict=True))
    gone["cross_brand"] = [pd.notna(g) and guides.get(int(g)) != brand_of_order[o]
                           for o, g in zip(gone["order_id"], gone["guide_id"], strict=True)]
    net_of_order = dict(zip(orders["order_id"], orders["net_cents"], strict=True))
    purchase = dict(zip(orders["order_id"], orders["is_purchase"], strict=True))
    channel = dict(zip(orders["order_id"], orders["channel"], strict=True))
    gone["inputs"] = [
        _json_text({"rule": rule, "channel": channel[o], "is_purchase": bool(purchase[o]),
                    "net_amount": str(_from_cents(net_of_order[o])),
                    "reverses": {"kind": kind, "store_id": None if pd.isna(s) else int(s),
                                 "guide_id": None if pd.isna(g) else int(g)}})
        for o, kind, s, g, rule in zip(gone["order_id"], gone["kind"], gone["store_id"], gone["guide_id"],
                                       gone["rule"], strict=True)
    ]
    return gone


_COLUMNS = ["order_id", "kind", "brand_id", "store_id", "guide_id", "member_id", "amount", "order_day", "booked_at",
            "channel", "rule", "inputs", "cross_brand", "is_correction"]


def _write(rows: pd.DataFrame) -> None:
    """Append the rows: COPY on PostgreSQL (millions of rows), bulk_create elsewhere."""
    if rows.empty:
        return
    rows = rows.assign(amount=_money_text(rows["cents"].astype("int64")))
    booked_at = timezone.now()
    if connection.vendor == "postgresql":
        _copy(rows, booked_at)
        return
    credits = [
        SalesCredit(order_id=int(r.order_id), kind=r.kind, brand_id=int(r.brand_id),
                    store_id=None if pd.isna(r.store_id) else int(r.store_id),
                    guide_id=None if pd.isna(r.guide_id) else int(r.guide_id),
                    member_id=None if pd.isna(r.member_id) else int(r.member_id),
                    amount=Decimal(r.amount), order_day=dt.date.fromisoformat(r.order_day), booked_at=booked_at,
                    channel=r.channel, rule=r.rule, inputs=json.loads(r.inputs), cross_brand=bool(r.cross_brand),
                    is_correction=bool(r.is_correction))
        for r in rows.itertuples(index=False)
    ]
    SalesCredit.objects.bulk_create(credits, batch_size=2000)


def _copy(rows: pd.DataFrame, booked_at: dt.datetime) -> None:
    """COPY the rows in PostgreSQL's text format, built column-wise (much faster than DataFrame.to_csv)."""
    null = "\\N"

    def ids(values: pd.Series) -> list[str]:
        return values.astype("Int64").astype("string").fillna(null).astype(str).tolist()

    def flags(values: pd.Series) -> list[str]:
        return np.where(values.astype(bool).to_numpy(), "t", "f").tolist()

    inputs = rows["inputs"].astype(str)
    if inputs.str.contains("\\", regex=False).any():  # JSON escapes: the text format needs them doubled
        inputs = inputs.str.replace("\\", "\\\\", regex=False)
    columns = [ids(rows["order_id"]), rows["kind"].astype(str).tolist(), ids(rows["brand_id"]), ids(rows["store_id"]),
               ids(rows["guide_id"]), ids(rows["member_id"]), rows["amount"].tolist(), rows["order_day"].tolist(),
               [booked_at.isoformat()] * len(rows), rows["channel"].astype(str).tolist(),
               rows["rule"].astype(str).tolist(), inputs.tolist(), flags(rows["cross_brand"]),
               flags(rows["is_correction"])]
    text = "".join("\t".join(values) + "\n" for values in zip(*columns, strict=True))
    with connection.cursor() as cursor:
        cursor.copy_expert(f"COPY {SalesCredit._meta.db_table} ({', '.join(_COLUMNS)}) FROM STDIN", io.StringIO(text))


def _per_order_results(orders: pd.DataFrame, wanted: pd.DataFrame, rows: pd.DataFrame) -> list[AttributionResult]:
    def lines(frame: pd.DataFrame) -> dict[int, list[CreditLine]]:
        out: dict[int, list[CreditLine]] = {}
        for r in frame.itertuples(index=False):
            out.setdefault(int(r.order_id), []).append(CreditLine(
                kind=r.kind, store_id=None if pd.isna(r.store_id) else int(r.store_id),
                guide_id=None if pd.isna(r.guide_id) else int(r.guide_id),
                amount=_from_cents(r.cents), rule=r.rule, cross_brand=bool(r.cross_brand)))
        return out

    wanted_by_order, written_by_order = lines(wanted), lines(rows)
    return [AttributionResult(order_id=int(o.order_id), is_purchase=bool(o.is_purchase),
                              net_amount=_from_cents(o.net_cents),
                              credits=tuple(wanted_by_order.get(int(o.order_id), ())),
                              rows_written=tuple(written_by_order.get(int(o.order_id), ())))
            for o in orders.sort_values("order_id").itertuples(index=False)]


