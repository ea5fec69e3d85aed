"""Benchmark: the HQ dashboard at scale (issue 8) — building one day's facts, and every page's data.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench_dash .venv/bin/python benchmarks/dashboard.py \
        --members 1000000 --orders 10000000                # generate (≈ 20–40 min on 2 cores), then measure
    … benchmarks/dashboard.py --reuse                      # measure again on the generated data
    … benchmarks/dashboard.py --members 20000 --orders 200000 --days 400   # a quick small run

Generation (skipped with ``--reuse``; the database is dropped and created, then migrated). Everything is
produced inside PostgreSQL by ``INSERT … SELECT … FROM generate_series`` (seeded ``setseed``), big tables
with their secondary indexes dropped and rebuilt afterwards and foreign-key triggers off:

* one group of 22 brands, 8 regions a brand, 20 stores a region (3,520 stores), 10 guides a store;
  100 SKUs a brand with stock; ``--members`` members, each a member of one brand (30 % of two), 60 % of
  memberships bound to a guide of the brand;
* ``--orders`` orders over ``--days`` days up to AS_OF (2026-06-30): 45 % store POS (85 % with a member,
  90 % naming a guide), 30 % mini-program, 8 % store livestream, 7 % HQ livestream, 5 % community, 3 %
  distribution, 2 % e-commerce; 3 % never paid, 3 % fully and 5 % partly refunded; one order line each;
* sales credits as attribution books them (store credit: the POS / host store or the bound guide's store,
  else the HQ pool; exclusive credit: the bound guide of the brand, else the member's guide in another
  brand (cross-brand); selling credit: the POS / share guide when it is not the exclusive one);
* the fact tables for the whole history, written by SQL that follows ``analytics.facts`` (credited
  store and guide, purchases, guide sales, member growth and counts, inventory snapshots) — the real
  builder is then timed on AS_OF and its rows compared with the generated ones; engagement facts (15 %
  of guides a day), mini-program activity (``--active-share`` of memberships a day, in the measured
  months and the same months a year earlier), RFML classes (two runs a brand) and 600 live sessions
  are synthetic.

Measurement:

1. ``facts_rebuild_day`` for AS_OF (every fact table of one day, ≈ orders/days orders): target < 30 s.
2. Every dashboard page's data (``analytics.dashboard_pages`` when present, else the same
   ``analytics.metrics`` calls) for HQ, a brand operator and a regional manager over the last 30
   days (June 2026, with June 2025 for "same period last year"; ``--to`` moves the period so that it
   cuts two months): ``--requests`` timed calls per page after one warm-up call, p50 / p95 / max.
   Target: p95 < 300 ms.

The machine may be shared: the load average is printed with each figure.
"""

# ruff: noqa: S608 — the generator's SQL is assembled from table names and constants, never from input.
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AS_OF = dt.date(2026, 6, 30)
N_BRANDS, N_REGIONS, N_STORES, N_GUIDES, N_SKUS = 22, 8, 20, 10, 100  # regions a brand, stores a region …
TZ = "Asia/Shanghai"


def prepare_database(url: str) -> None:
    import psycopg2

    name = url.rsplit("/", 1)[1]
    admin = psycopg2.connect(url.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


class Step:
    """Prints how long each generation step took."""

    def __init__(self):
        self.started = time.monotonic()

    def done(self, what: str) -> None:
        print(f"  {what}: {time.monotonic() - self.started:.0f} s ({load()})", flush=True)


def _defaults(model, given: set[str]) -> tuple[list[str], list]:
    """Every other NOT NULL column (later schema additions included) with its field default, as a parameter."""
    import json

    names, values = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key or field.null or field.column in given:
            continue
        value = field.get_default()
        names.append(field.column)
        values.append(json.dumps(value) if isinstance(value, (list, dict)) else value)
    return names, values


def insert_select(cursor, model, columns: dict[str, str], from_sql: str, params: list) -> None:
    """INSERT INTO model (columns…) SELECT expressions… FROM ``from_sql``; defaults fill the rest."""
    names, values = _defaults(model, set(columns))
    select = ", ".join([*columns.values(), *(["%s"] * len(values))])
    # Parameters: those of the expressions come first in the SQL text, then the defaults, then FROM's.
    expr_params = params[:_count(columns)]
    cursor.execute(f"INSERT INTO {model._meta.db_table} ({', '.join([*columns, *names])}) "
                   f"SELECT {select} FROM {from_sql}", [*expr_params, *values, *params[_count(columns):]])


def _count(columns: dict[str, str]) -> int:
    return sum(expr.count("%s") for expr in columns.values())


def without_indexes(cursor, table: str) -> list[str]:
    """Drop the table's secondary indexes and unique constraints; return the statements that rebuild them."""
    cursor.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                   "WHERE conrelid = %s::regclass AND contype = 'u'", [table])
    constraints = cursor.fetchall()
    cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
                   "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)", [table, table])
    indexes = cursor.fetchall()
    for name, _definition in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _definition in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    return [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for name, definition in constraints] + [
        definition for _name, definition in indexes]


# ---------------------------------------------------------------------------- generation


def generate(members: int, orders: int, days: int, active_share: float) -> None:
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    step = Step()
    org = _organisation()
    step.done(f"organisation ({len(org['stores']):,} stores, {len(org['guides']):,} guides, "
              f"{len(org['skus']):,} SKUs)")
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute("SET work_mem = '256MB'")
        cursor.execute("SELECT setseed(0.8)")
        _members(cursor, org, members)
        step.done(f"{members:,} members, memberships, bindings")
        _orders(cursor, org, orders, days)
        step.done(f"{orders:,} orders and their lines")
        _credits_and_sales_facts(cursor, org)
        step.done("sales credits and sales facts")
        _member_facts(cursor, org, days)
        step.done("member growth and counts, inventory snapshots")
        _engagement(cursor, org, days, active_share)
        step.done("engagement facts, mini-program activity")
        _rfm_and_live(cursor, org)
        step.done("RFML runs and classes, live sessions")
        _guide_regions(cursor, days)
        step.done("guide region facts")
        cursor.execute("SET session_replication_role = DEFAULT")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    step.done("vacuum analyze")
    from analytics.facts import facts_rebuild_months

    first = AS_OF - dt.timedelta(days=days - 1)
    months = sorted({(first + dt.timedelta(days=n)).replace(day=1) for n in range(days)})
    for month in months:
        started = time.monotonic()
        written = facts_rebuild_months(months=[month])
        print(f"    month rollups {month:%Y-%m}: {time.monotonic() - started:.1f} s {written}", flush=True)
    step.done(f"month rollups of {len(months)} months (the real builder)")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def _organisation() -> dict:
    from decimal import Decimal

    from mall.models import Product, Sku, Stock
    from retail_crm.models import Brand, Guide, Region, RetailGroup, Store

    group = RetailGroup.objects.create(code="bench", name="Bench group")
    brands = Brand.objects.bulk_create([Brand(group=group, code=f"B{b:02d}", name=f"Brand {b:02d}")
                                        for b in range(N_BRANDS)])
    regions = Region.objects.bulk_create([Region(brand=brand, code=f"R{r}", name=f"Region {r}")
                                          for brand in brands for r in range(N_REGIONS)])
    stores = Store.objects.bulk_create([
        Store(brand=region.brand, region=region, code=f"{region.brand.code}-{region.code}-S{s:02d}",
              name=f"Store {s}", kind="direct") for region in regions for s in range(N_STORES)])
    guides = Guide.objects.bulk_create([Guide(store=store, code=f"{store.code}-G{g}", name=f"Guide {g}")
                                        for store in stores for g in range(N_GUIDES)], batch_size=5000)
    products = Product.objects.bulk_create([Product(brand=brand, code=f"P{p:03d}", name="p", category="c")
                                            for brand in brands for p in range(N_SKUS // 5)])
    skus = Sku.objects.bulk_create([
        Sku(product=product, brand=product.brand, code=f"{product.code}-{k}", list_price=Decimal("500.00"),
            member_price=Decimal("450.00"), cost_price=Decimal(150 + (product.pk * 7 + k * 13) % 100))
        for product in products for k in range(5)])
    Stock.objects.bulk_create([Stock(sku=sku, quantity=(sku.pk * 37) % 500) for sku in skus])
    return {"group": group, "brands": [b.pk for b in brands], "stores": [s.pk for s in stores],
            "guides": [g.pk for g in guides], "skus": [s.pk for s in skus], "regions": [r.pk for r in regions]}


def _members(cursor, org: dict, members: int) -> None:
    from members.models import BrandMembership, GuideBinding, Member

    end = f"TIMESTAMPTZ '{AS_OF} 23:59+08'"
    insert_select(cursor, Member, {"group_id": "%s", "code": "'BM' || lpad(g::text, 8, '0')",
                                   "created_at": f"{end} - interval '1100 days'",
                                   "updated_at": f"{end} - interval '1100 days'"},
                  "generate_series(1, %s) AS g", [org["group"].pk, members])
    # Each member joins brand b (and 30 % another brand b2 ≠ b); 60 % of memberships at a store of the brand.
    per_brand = N_REGIONS * N_STORES
    cursor.execute("CREATE TEMP TABLE bench_join AS "
                   "SELECT id AS member_id, b, (b + 1 + floor(random() * %s)::int) %% %s AS b2, random() AS two "
                   f"FROM (SELECT id, floor(random() * %s)::int AS b FROM {Member._meta.db_table}) m",
                   [N_BRANDS - 1, N_BRANDS, N_BRANDS])
    channels = "(ARRAY['store_card','pay_as_join','guide_qr','livestream','parcel_card','community','import'])"
    for brand_column, condition in (("b", "TRUE"), ("b2", "two < 0.3")):
        insert_select(
            cursor, BrandMembership,
            {"member_id": "member_id", "brand_id": f"(%s::bigint[])[1 + {brand_column}]",
             "joined_at": f"{end} - random() * interval '1100 days'",
             "join_channel": f"{channels}[1 + floor(random() * 7)::int]",
             "store_id": f"CASE WHEN random() < 0.6 THEN (%s::bigint[])[1 + {brand_column} * {per_brand} "
                         f"+ floor(random() * {per_brand})::int] END"},
            f"bench_join WHERE {condition}", [org["brands"], org["stores"]])
    # 60 % bound to a guide of a store of the brand, from the day they joined.
    guides_per_brand = per_brand * N_GUIDES
    insert_select(
        cursor, GuideBinding,
        {"member_id": "member_id", "brand_id": "brand_id",
         "guide_id": f"(%s::bigint[])[bi * {guides_per_brand} + gi + 1]",
         "store_id": f"(%s::bigint[])[bi * {per_brand} + gi / {N_GUIDES} + 1]",
         "started_at": "joined_at", "reason": "(ARRAY['qr_scan','share_link','store_purchase'])[1 + (gi %% 3)]"},
        f"(SELECT member_id, brand_id, joined_at, array_position(%s::bigint[], brand_id) - 1 AS bi, "
        f"floor(random() * {guides_per_brand})::int AS gi FROM {BrandMembership._meta.db_table} "
        f"WHERE random() < 0.6) x", [org["guides"], org["stores"], org["brands"]])


def _orders(cursor, org: dict, orders: int, days: int) -> None:
    from mall.models import Order, OrderLine
    from members.models import Member

    cursor.execute(f"SELECT min(id), count(*) FROM {Member._meta.db_table}")
    first_member, n_members = cursor.fetchone()
    per_brand = N_REGIONS * N_STORES
    rebuild = without_indexes(cursor, Order._meta.db_table)
    end = f"TIMESTAMPTZ '{AS_OF} 23:59:59+08'"
    # c: channel roll, k: status roll, s/gj: store and guide within the brand, mm: member roll.
    channel = ("CASE WHEN c < 0.45 THEN 'store_pos' WHEN c < 0.75 THEN 'mini_program' WHEN c < 0.83 THEN "
               "'store_live' WHEN c < 0.90 THEN 'hq_live' WHEN c < 0.95 THEN 'community' WHEN c < 0.98 THEN "
               "'distribution' ELSE 'ecommerce' END")
    insert_select(cursor, Order, {
        "brand_id": "(%s::bigint[])[1 + b]",
        "order_no": "'DO' || lpad(g::text, 10, '0')",
        "member_id": f"CASE WHEN c < 0.45 AND mm > 0.85 THEN NULL ELSE {first_member} + mi END",
        "channel": channel,
        "store_id": f"CASE WHEN c < 0.45 OR (c >= 0.75 AND c < 0.83) THEN (%s::bigint[])[1 + b * {per_brand} + s] "
                    "END",
        "guide_id": f"CASE WHEN (c < 0.45 AND gr < 0.9) OR (c >= 0.45 AND gr < 0.2) THEN "
                    f"(%s::bigint[])[1 + (b * {per_brand} + s) * {N_GUIDES} + gj] END",
        "status": "CASE WHEN k > 0.97 THEN 'expired' ELSE 'completed' END",
        "ordered_at": "t", "paid_at": "CASE WHEN k > 0.97 THEN NULL ELSE t END",
        "total_amount": "a", "paid_amount": "CASE WHEN k > 0.97 THEN 0 ELSE a END",
        "refunded_amount": "CASE WHEN k > 0.97 THEN 0 WHEN k < 0.03 THEN a WHEN k < 0.08 THEN round(a * 0.3, 2) "
                           "ELSE 0 END",
        "items_amount": "a",
    }, f"(SELECT g, floor(random() * {N_BRANDS})::int AS b, random() AS c, floor(random() * {per_brand})::int AS s, "
       f"random() AS k, round((49 + random() * 1950)::numeric, 2) AS a, "
       f"{end} - random() * interval '{days} days' AS t, random() AS mm, random() AS gr, "
       f"floor(random() * {N_GUIDES})::int AS gj, floor(random() * {n_members})::int AS mi "
       "FROM generate_series(1, %s) AS g) r", [org["brands"], org["stores"], org["guides"], orders])
    for statement in rebuild:
        cursor.execute(statement)
    rebuild = without_indexes(cursor, OrderLine._meta.db_table)
    insert_select(cursor, OrderLine, {
        "order_id": "o.id", "brand_id": "o.brand_id",
        "sku_id": f"(%s::bigint[])[(array_position(%s::bigint[], o.brand_id) - 1) * {N_SKUS} "
                  f"+ 1 + floor(random() * {N_SKUS})::int]",
        "quantity": "1 + floor(random() * 3)::int", "list_price": "o.total_amount", "unit_price": "o.total_amount",
        "amount": "o.total_amount", "refunded_amount": "o.refunded_amount"},
        f"{Order._meta.db_table} o", [org["skus"], org["brands"]])
    for statement in rebuild:
        cursor.execute(statement)
    cursor.execute(f"ANALYZE {Order._meta.db_table}")


def _credits_and_sales_facts(cursor, org: dict) -> None:
    """Credits as attribution books them, and the sales facts built from the same filing (see analytics.facts)."""
    from analytics.models import BrandSalesFact, GuideSalesFact, PurchaseFact, SalesFact
    from attribution.models import SalesCredit
    from mall.models import Order, OrderLine, Sku
    from members.models import GuideBinding
    from retail_crm.models import Guide

    o, b, ol, sku = (Order._meta.db_table, GuideBinding._meta.db_table, OrderLine._meta.db_table,
                     Sku._meta.db_table)
    cursor.execute(f"CREATE TEMP TABLE bench_first_binding AS SELECT DISTINCT ON (member_id) member_id, guide_id, "
                   f"store_id, started_at FROM {b} ORDER BY member_id, started_at")
    cursor.execute("CREATE INDEX ON bench_first_binding (member_id)")
    # One row per order: whether paid / a purchase, its credited store and guide, cost of goods.
    base = (
        "SELECT o.id, o.brand_id, o.member_id, o.channel, o.store_id AS own_store, o.guide_id AS own_guide, "
        "(o.ordered_at AT TIME ZONE %s)::date AS day, o.total_amount, o.paid_amount, o.refunded_amount, "
        "o.status IN ('paid', 'shipped', 'completed') AS paid, "
        "(o.status IN ('paid', 'shipped', 'completed') AND o.paid_amount - o.refunded_amount > 0) AS purchase, "
        "o.channel = 'store_pos' AS offline, sb.guide_id AS bound_guide, sb.store_id AS bound_store, "
        "fb.guide_id AS other_guide, fb.store_id AS other_store, "
        "CASE WHEN o.status IN ('paid', 'shipped', 'completed') THEN l.quantity * s.cost_price ELSE 0 END AS cost "
        f"FROM {o} o JOIN {ol} l ON l.order_id = o.id JOIN {sku} s ON s.id = l.sku_id "
        f"LEFT JOIN {b} sb ON sb.member_id = o.member_id AND sb.brand_id = o.brand_id AND sb.ended_at IS NULL "
        "AND sb.started_at <= o.ordered_at "
        "LEFT JOIN bench_first_binding fb ON sb.id IS NULL AND fb.member_id = o.member_id "
        "AND fb.started_at <= o.ordered_at")
    credited = (
        "SELECT *, CASE WHEN purchase THEN coalesce(bound_guide, other_guide) END AS excl_guide, "
        "bound_guide IS NULL AND other_guide IS NOT NULL AS cross_brand, "
        "CASE WHEN NOT purchase THEN own_store WHEN channel IN ('store_pos', 'store_live') AND own_store IS NOT NULL "
        f"THEN own_store ELSE bound_store END AS store_id FROM ({base}) x")
    selling = (
        "SELECT *, CASE WHEN purchase AND own_guide IS NOT NULL AND own_guide IS DISTINCT FROM excl_guide "
        f"THEN own_guide END AS sell_guide FROM ({credited}) y")
    cursor.execute(
        "CREATE TEMP TABLE bench_filed AS SELECT *, CASE WHEN purchase AND coalesce(excl_guide, sell_guide) IS NOT "
        f"NULL THEN coalesce(excl_guide, sell_guide) ELSE own_guide END AS guide_id FROM ({selling}) z", [TZ])
    rebuild = without_indexes(cursor, SalesCredit._meta.db_table)
    net = "paid_amount - refunded_amount"
    for kind, guide, store, cross, condition in (
            ("store", "NULL", "store_id", "false", "purchase"),
            ("exclusive", "excl_guide", "coalesce(bound_store, other_store)", "cross_brand",
             "excl_guide IS NOT NULL"),
            ("selling", "sell_guide", "own_store", "false", "sell_guide IS NOT NULL")):
        insert_select(cursor, SalesCredit, {
            "order_id": "id", "kind": f"'{kind}'", "brand_id": "brand_id", "store_id": store, "guide_id": guide,
            "member_id": "member_id", "amount": net, "order_day": "day", "booked_at": "now()", "channel": "channel",
            "rule": f"'bench_{kind}'", "cross_brand": cross}, f"bench_filed WHERE {condition}", [])
    for statement in rebuild:
        cursor.execute(statement)

    insert_select(cursor, PurchaseFact, {
        "order_id": "id", "day": "day", "brand_id": "brand_id", "store_id": "store_id", "guide_id": "guide_id",
        "member_id": "member_id", "channel": "channel", "offline": "offline", "net_amount": net},
        "bench_filed WHERE purchase", [])
    measures = {
        "orders": "count(*)", "gmv": "sum(total_amount)", "paid_orders": "count(*) FILTER (WHERE paid)",
        "paid_amount": "coalesce(sum(paid_amount) FILTER (WHERE paid), 0)",
        "refunded_amount": "coalesce(sum(refunded_amount) FILTER (WHERE paid), 0)",
        "sales_flow": "coalesce(sum(paid_amount - refunded_amount) FILTER (WHERE paid), 0)",
        "buyers": "count(DISTINCT member_id) FILTER (WHERE paid)",
        "unpaid_orders": "count(*) FILTER (WHERE NOT paid)",
        "unpaid_amount": "coalesce(sum(total_amount) FILTER (WHERE NOT paid), 0)",
        "refunded_orders": "count(*) FILTER (WHERE paid AND refunded_amount > 0)",
        "member_paid_orders": "count(*) FILTER (WHERE paid AND member_id IS NOT NULL)",
        "cost_of_goods": "sum(cost)"}
    insert_select(cursor, SalesFact, {"day": "day", "brand_id": "brand_id", "store_id": "store_id",
                                      "guide_id": "guide_id", "channel": "channel", **measures},
                  "bench_filed GROUP BY day, brand_id, store_id, guide_id, channel", [])
    insert_select(cursor, BrandSalesFact, {"day": "day", "brand_id": "brand_id", "channel": "channel", **measures},
                  "bench_filed GROUP BY day, brand_id, channel", [])
    g = Guide._meta.db_table
    insert_select(cursor, GuideSalesFact, {
        "day": "c.order_day", "brand_id": "c.brand_id", "guide_id": "c.guide_id", "store_id": "gd.store_id",
        "channel": "c.channel", "kind": "c.kind", "cross_brand": "c.cross_brand", "amount": "sum(c.amount)",
        "orders": "count(*) FILTER (WHERE c.amount > 0)"},
        f"{SalesCredit._meta.db_table} c JOIN {g} gd ON gd.id = c.guide_id WHERE c.kind <> 'store' "
        "GROUP BY c.order_day, c.brand_id, c.guide_id, gd.store_id, c.channel, c.kind, c.cross_brand", [])


def _member_facts(cursor, org: dict, days: int) -> None:
    from analytics.models import InventorySnapshot, MemberCountFact, MemberGrowthFact
    from mall.models import Sku, Stock
    from members.models import BrandMembership

    m = BrandMembership._meta.db_table
    first = AS_OF - dt.timedelta(days=days - 1)
    insert_select(cursor, MemberGrowthFact, {
        "day": "(joined_at AT TIME ZONE %s)::date", "brand_id": "brand_id", "store_id": "store_id",
        "join_channel": "join_channel", "new_members": "count(*)"},
        f"{m} WHERE joined_at >= %s GROUP BY 1, 2, 3, 4", [TZ, first])
    # Memberships held at the end of each day per brand × join store: those joined before the first day,
    # plus a running sum of the daily joins.
    cursor.execute(f"CREATE TEMP TABLE bench_keys AS SELECT brand_id, store_id, count(*) FILTER (WHERE "
                   f"(joined_at AT TIME ZONE %s)::date < %s) AS base FROM {m} GROUP BY 1, 2", [TZ, first])
    insert_select(cursor, MemberCountFact, {
        "day": "d.day", "brand_id": "k.brand_id", "store_id": "k.store_id",
        "members": "k.base + sum(coalesce(n.new, 0)) OVER (PARTITION BY k.brand_id, k.store_id ORDER BY d.day)"},
        "(SELECT generate_series(%s::date, %s::date, interval '1 day')::date AS day) d CROSS JOIN bench_keys k "
        f"LEFT JOIN (SELECT (joined_at AT TIME ZONE %s)::date AS day, brand_id, store_id, count(*) AS new FROM {m} "
        "GROUP BY 1, 2, 3) n ON n.day = d.day AND n.brand_id = k.brand_id "
        "AND n.store_id IS NOT DISTINCT FROM k.store_id", [first, AS_OF, TZ])
    insert_select(cursor, InventorySnapshot, {
        "day": "d.day", "brand_id": "s.brand_id", "units": "sum(st.quantity)",
        "value_at_cost": "sum(st.quantity * s.cost_price)", "skus_in_stock": "count(*) FILTER (WHERE st.quantity > 0)"},
        f"generate_series(%s::date, %s::date, interval '1 day') AS d(day) CROSS JOIN {Stock._meta.db_table} st "
        f"JOIN {Sku._meta.db_table} s ON s.id = st.sku_id GROUP BY 1, 2", [first, AS_OF])


def _engagement(cursor, org: dict, days: int, active_share: float) -> None:
    from analytics.models import EngagementFact
    from members.models import BrandMembership, MemberDailyActivity
    from retail_crm.models import Guide, Store

    first = AS_OF - dt.timedelta(days=days - 1)
    rebuild = without_indexes(cursor, EngagementFact._meta.db_table)
    insert_select(cursor, EngagementFact, {
        "day": "d.day", "brand_id": "s.brand_id", "store_id": "g.store_id", "guide_id": "g.id",
        "shares": "1 + floor(random() * 4)::int", "share_pv": "floor(random() * 30)::int",
        "share_uv": "floor(random() * 12)::int", "material_pv": "floor(random() * 10)::int",
        "material_uv": "floor(random() * 5)::int", "tasks_assigned": "CASE WHEN random() < 0.3 THEN 1 ELSE 0 END",
        "tasks_executed": "CASE WHEN random() < 0.2 THEN 1 ELSE 0 END", "care_items": "floor(random() * 8)::int",
        "care_items_done": "floor(random() * 4)::int", "wecom_friends_added": "floor(random() * 3)::int",
        "new_members": "floor(random() * 2)::int", "commission": "round((random() * 50)::numeric, 2)"},
        f"generate_series(%s::date, %s::date, interval '1 day') AS d(day) CROSS JOIN {Guide._meta.db_table} g "
        f"JOIN {Store._meta.db_table} s ON s.id = g.store_id WHERE random() < 0.15", [first, AS_OF])
    for statement in rebuild:
        cursor.execute(statement)
    # Mini-program activity in the measured months (May–June) and the same months a year earlier.
    rebuild = without_indexes(cursor, MemberDailyActivity._meta.db_table)
    for start in (dt.date(2026, 5, 1), dt.date(2025, 5, 1)):
        insert_select(cursor, MemberDailyActivity, {
            "member_id": "m.member_id", "brand_id": "m.brand_id", "day": "d.day",
            "product_views": "1 + floor(random() * 5)::int"},
            f"generate_series(%s::date, %s::date, interval '1 day') AS d(day) "
            f"CROSS JOIN {BrandMembership._meta.db_table} m WHERE random() < %s",
            [start, start + dt.timedelta(days=60), active_share])
    for statement in rebuild:
        cursor.execute(statement)


def _guide_regions(cursor, days: int) -> None:
    """GuideRegionFact for the history: the day's guide credits and engagement summed per brand × region."""
    from analytics.models import EngagementFact, GuideRegionFact, GuideSalesFact
    from retail_crm.models import Store

    st = Store._meta.db_table
    insert_select(cursor, GuideRegionFact, {
        "day": "day", "brand_id": "brand_id", "region_id": "region_id", "guide_sales": "sum(sales)",
        "cross_brand_sales": "sum(cross_sales)", "tasks_assigned": "sum(assigned)", "tasks_executed": "sum(executed)",
        "care_items": "sum(care)", "care_items_done": "sum(done)"},
        f"(SELECT f.day, s.brand_id, s.region_id, f.amount AS sales, CASE WHEN f.cross_brand THEN f.amount ELSE 0 END "
        f"AS cross_sales, 0 AS assigned, 0 AS executed, 0 AS care, 0 AS done FROM {GuideSalesFact._meta.db_table} f "
        f"JOIN {st} s ON s.id = f.store_id UNION ALL SELECT e.day, s.brand_id, s.region_id, 0, 0, e.tasks_assigned, "
        f"e.tasks_executed, e.care_items, e.care_items_done FROM {EngagementFact._meta.db_table} e "
        f"JOIN {st} s ON s.id = e.store_id) x GROUP BY day, brand_id, region_id", [])


def _rfm_and_live(cursor, org: dict) -> None:
    from django.utils import timezone

    from livestream.models import LiveSession, SessionStats
    from members.models import BrandMembership
    from segments.models import MemberRfm, RfmClassChange, RfmRun, Segment

    segments = "(ARRAY[" + ", ".join(f"'{s}'" for s in Segment.values) + "])"
    now = timezone.now()
    runs = []
    for brand_id in org["brands"]:
        for as_of in (dt.date(2026, 6, 1), dt.date(2026, 6, 29)):
            runs.append(RfmRun.objects.create(brand_id=brand_id, as_of=as_of, window_days=365, started_at=now,
                                              counts={s: 1000 for s in Segment.values}, cycle_days=45))
    m = BrandMembership._meta.db_table
    insert_select(cursor, MemberRfm, {
        "member_id": "member_id", "brand_id": "brand_id", "segment": f"{segments}[1 + floor(random() * 8)::int]",
        "lifecycle_stage": "'growing'", "frequency": "1 + floor(random() * 6)::int", "updated_at": "now()"},
        f"{m}", [])
    by_brand = {}
    for run in runs:
        by_brand.setdefault(run.brand_id, []).append(run.pk)
    first_runs, second_runs = [ids[0] for ids in by_brand.values()], [ids[1] for ids in by_brand.values()]
    insert_select(cursor, RfmClassChange, {
        "member_id": "member_id", "brand_id": "brand_id",
        "run_id": "(%s::bigint[])[array_position(%s::bigint[], brand_id)]", "from_segment": "''",
        "to_segment": f"{segments}[1 + floor(random() * 8)::int]", "changed_on": "'2026-06-01'"},
        f"{MemberRfm._meta.db_table}", [first_runs, org["brands"]])
    insert_select(cursor, RfmClassChange, {
        "member_id": "member_id", "brand_id": "brand_id",
        "run_id": "(%s::bigint[])[array_position(%s::bigint[], brand_id)]", "from_segment": f"{segments}[1]",
        "to_segment": "segment", "changed_on": "'2026-06-29'"},
        f"{MemberRfm._meta.db_table} WHERE random() < 0.2", [second_runs, org["brands"]])
    sessions = []
    tz = dt.timezone(dt.timedelta(hours=8))
    for n in range(600):
        start = dt.datetime.combine(AS_OF - dt.timedelta(days=n * 730 // 600), dt.time(19, 0), tzinfo=tz)
        store = org["stores"][(n * 131) % len(org["stores"])] if n % 6 else None
        brand = org["brands"][(org["stores"].index(store) // (N_REGIONS * N_STORES)) if store else n % N_BRANDS]
        sessions.append(LiveSession(brand_id=brand, kind="store" if store else "hq_central", title=f"Live {n}",
                                    host_store_id=store, status="ended", planned_start=start,
                                    planned_end=start + dt.timedelta(hours=2), actual_start=start,
                                    actual_end=start + dt.timedelta(hours=1, minutes=30 + n % 60)))
    LiveSession.objects.bulk_create(sessions)
    SessionStats.objects.bulk_create([SessionStats(session=s, viewers=500 + n * 7 % 3000, views=900, buyers=n % 90,
                                                   gmv=10000 + n * 37, paid_sales=9000 + n * 31)
                                      for n, s in enumerate(sessions)])


# ---------------------------------------------------------------------------- measurement


def measure_build(day: dt.date) -> None:
    """Time the real builder on one day and compare its rows with the generated ones of that day."""
    from django.db.models import Count, Sum

    from analytics.facts import facts_rebuild_day, facts_rebuild_months
    from analytics.models import GuideSalesFact, PurchaseFact, SalesFact
    from mall.models import Order

    def totals():
        sales = SalesFact.objects.filter(day=day).aggregate(n=Count("pk"), orders=Sum("orders"), gmv=Sum("gmv"),
                                                            flow=Sum("sales_flow"), cost=Sum("cost_of_goods"))
        sales["purchases"] = PurchaseFact.objects.filter(day=day).count()
        sales["guide_sales"] = GuideSalesFact.objects.filter(day=day).aggregate(s=Sum("amount"))["s"]
        return sales

    tz = dt.timezone(dt.timedelta(hours=8))
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    n_orders = Order.objects.filter(ordered_at__gte=start, ordered_at__lt=start + dt.timedelta(days=1)).count()
    generated = totals()
    timings, month_timings = [], []
    for _ in range(2):
        started = time.monotonic()
        written, _deleted = facts_rebuild_day(day=day)
        timings.append(time.monotonic() - started)
        started = time.monotonic()
        months = facts_rebuild_months(months=[day.replace(day=1)], since=day)  # as the nightly run does
        month_timings.append(time.monotonic() - started)
    built = totals()
    rows = ", ".join(f"{table} {n:,}" for table, n in {**written, **months}.items())
    print(f"facts_rebuild_day({day}): {n_orders:,} orders that day, {min(timings):.1f} s best of 2 "
          f"({', '.join(f'{t:.1f}' for t in timings)} s; target < 30 s; {load()}); then the month's rollups "
          f"{min(month_timings):.1f} s ({', '.join(f'{t:.1f}' for t in month_timings)} s); rows: {rows}",
          flush=True)
    same = all(generated[k] == built[k] for k in ("n", "orders", "gmv", "flow", "cost", "purchases", "guide_sales"))
    print(f"  generated vs built for {day}: {'identical totals' if same else 'DIFFERENT'} "
          f"(generated {generated}, built {built})", flush=True)


def backfill_month_to_date(last_day: dt.date) -> None:
    """A database generated before the month-to-date rollups existed: migrate, and build them for the months the
    measured period and the same period last year touch (the pages read no others; about 40 s a month)."""
    from django.core.management import call_command

    from analytics.facts import facts_rebuild_months
    from analytics.models import StoreMonthToDateFact

    call_command("migrate", verbosity=0)
    first_day = last_day - dt.timedelta(days=29)
    months = sorted({day.replace(day=1) for day in (first_day, last_day)}
                    | {day.replace(year=day.year - 1, day=1) for day in (first_day, last_day)})
    months = [m for m in months if not StoreMonthToDateFact.objects.filter(day=m).exists()]
    if not months:
        return
    step = Step()
    for month in months:
        started = time.monotonic()
        written = facts_rebuild_months(months=[month], tables=("store_month_to_date", "guide_month_to_date"))
        print(f"    month-to-date rollups {month:%Y-%m}: {time.monotonic() - started:.1f} s {written}", flush=True)
    step.done(f"month-to-date rollups of {len(months)} months (the real builder)")


def backfill_period_facts(last_day: dt.date) -> None:
    """The facts of issue 24 for the measured 30-day period and the same days last year, when missing (a database
    generated before them, or by this generator, which writes the history's day facts in SQL): GuidedOrderFact
    of those days (the real builder, from the credits) and the MemberWindowFact of those two windows (built
    nightly for the last 7 and 30 days), and those of the period before (环比)."""
    from analytics.facts import _year_earlier, facts_rebuild_guided_orders, facts_rebuild_windows
    from analytics.metrics import Filters
    from analytics.models import GuidedOrderFact, MemberWindowFact

    first_day = last_day - dt.timedelta(days=29)
    before = Filters(date_from=first_day, date_to=last_day).previous()  # the 环比 the pages show beside it
    periods = [(first_day, last_day), (_year_earlier(first_day), _year_earlier(last_day)),
               (before.date_from, before.date_to), (_year_earlier(before.date_from), _year_earlier(before.date_to))]
    step = Step()
    for first, last in periods:
        if not GuidedOrderFact.objects.filter(day=first).exists() or \
                not GuidedOrderFact.objects.filter(day=last).exists():
            started = time.monotonic()
            rows = facts_rebuild_guided_orders(first=first, last=last)
            print(f"    guided order facts {first}..{last}: {time.monotonic() - started:.1f} s, {rows:,} rows",
                  flush=True)
        if not MemberWindowFact.objects.filter(date_from=first, date_to=last).exists():
            started = time.monotonic()
            rows = facts_rebuild_windows(ends=[], periods=[(first, last)])
            print(f"    member window facts {first}..{last}: {time.monotonic() - started:.1f} s, {rows:,} rows",
                  flush=True)
    step.done("issue-24 facts of the measured period, last year's and the previous period's (the real builders)")


def _page_functions():
    """The dashboard pages' data builders, with the filters object each takes."""
    from analytics import metrics

    try:
        from analytics import dashboard_pages as pages
        from analytics.dashboard_tables import metric_memo
        from analytics.filters import DashboardQuery
    except ImportError:  # the pages are another helper's work; measure the metric calls they make
        pages = None

    if pages is not None:
        def page(fn, **extra):
            def call(actor, filters):
                with metric_memo():
                    return fn(actor=actor, query=DashboardQuery(filters=filters), **extra)
            return call
        return {"overview": page(pages.overview), "brands": page(pages.brands), "regions": page(pages.regions),
                "stores": page(pages.stores), "guides": page(pages.guides),
                "segments": page(pages.segments, params={}), "livestream": page(pages.livestream),
                "core": page(pages.core)}, "analytics.dashboard_pages"

    return {
        "overview": lambda a, f: metrics.overview(actor=a, filters=f),
        "brands": lambda a, f: metrics.ranking(actor=a, filters=f, level="brand"),
        "regions": lambda a, f: metrics.ranking(actor=a, filters=f, level="region"),
        "stores": lambda a, f: (metrics.ranking(actor=a, filters=f, level="store", limit=100),
                                metrics.store_monthly_private_domain_sales(actor=a, filters=f),
                                metrics.store_month_rows(actor=a, filters=f)),
        "guides": lambda a, f: (metrics.guide_kpis(actor=a, filters=f),
                                metrics.task_execution_rate(actor=a, filters=f)),
        "segments": lambda a, f: (metrics.segment_sizes(actor=a, filters=f),
                                  metrics.segment_sales(actor=a, filters=f),
                                  metrics.consumption_cycles(actor=a, filters=f),
                                  metrics.care_list_completion(actor=a, filters=f)),
        "livestream": lambda a, f: metrics.livestream_summary(actor=a, filters=f),
        "core": lambda a, f: metrics.core_indicators(actor=a, filters=f),
    }, "analytics.metrics"


def measure_pages(requests: int, only: list[str] | None,
                  period_end: dt.date = AS_OF) -> list[tuple[str, str, float, float, float]]:
    from django.contrib.auth import get_user_model
    from django.utils import translation

    from analytics.metrics import Filters
    from retail_crm.models import Brand, Region, RetailGroup, StaffProfile
    from retail_crm.scoping import actor_for

    user_model = get_user_model()
    group = RetailGroup.objects.get(code="bench")
    brand = Brand.objects.filter(group=group).order_by("pk").first()
    region = Region.objects.filter(brand=brand).order_by("pk").first()
    actors = {}
    for role, scope in (("hq", {}), ("brand_operator", {"brand": brand}), ("region_manager", {"region": region})):
        user, _ = user_model.objects.get_or_create(username=f"bench-{role}")
        StaffProfile.objects.get_or_create(user=user, defaults={"role": role, "group": group, **scope})
        actors[role] = actor_for(user)
    filters = Filters(date_from=period_end - dt.timedelta(days=29), date_to=period_end)
    functions, source = _page_functions()
    print(f"page data ({source}) for {filters.date_from}..{filters.date_to}, {requests} timed calls after one "
          f"warm-up:", flush=True)
    results = []
    translation.activate("zh-hans")
    for role, actor in actors.items():
        for page, call in functions.items():
            if only and page not in only:
                continue
            call(actor, filters)
            timings = []
            for _ in range(requests):
                started = time.perf_counter()
                call(actor, filters)
                timings.append((time.perf_counter() - started) * 1000)
            timings.sort()
            p50, p95 = statistics.median(timings), timings[max(0, int(round(0.95 * len(timings))) - 1)]
            results.append((role, page, p50, p95, timings[-1]))
            flag = "" if p95 < 300 else "  ← over 300 ms"
            print(f"  {role:15s} {page:11s} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  max {timings[-1]:7.1f} ms "
                  f"({load()}){flag}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=730, help="days of order history up to AS_OF")
    parser.add_argument("--active-share", type=float, default=0.03,
                        help="share of memberships active in the mini-program on a day")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--pages", help="comma-separated page names to measure (default: all)")
    parser.add_argument("--reuse", action="store_true", help="measure on the data generated before")
    parser.add_argument("--skip-build", action="store_true", help="do not time the one-day build")
    parser.add_argument("--to", type=dt.date.fromisoformat, default=AS_OF,
                        help="last day of the measured 30-day period (default AS_OF: exactly June 2026; "
                             "another day makes the period cut two months: edges read month-to-date rollups)")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("DATABASE_URL must name a PostgreSQL database (it is dropped and created unless --reuse)")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "retail_crm.settings")
    if not args.reuse:
        prepare_database(url)

    import django

    django.setup()
    if not args.reuse:
        started = time.monotonic()
        print(f"generating {args.members:,} members and {args.orders:,} orders over {args.days} days …", flush=True)
        generate(args.members, args.orders, args.days, args.active_share)
        print(f"generated in {time.monotonic() - started:.0f} s", flush=True)
    else:
        backfill_month_to_date(args.to)
    backfill_period_facts(args.to)
    if not args.skip_build:
        measure_build(AS_OF)
    measure_pages(args.requests, args.pages.split(",") if args.pages else None, args.to)


if __name__ == "__main__":
    main()
