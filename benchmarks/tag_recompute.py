"""Benchmark: ``brand_tags_recompute`` for one brand of 200,000 members (issue 3 target: under 60 s).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench_tags .venv/bin/python benchmarks/tag_recompute.py \
        --members 200000

Creates the database if it is missing and migrates it. The first time (or with ``--regenerate``) it
generates one brand with ``--members`` members and about 3 purchases each (1–5 orders a member, 1–3 lines
an order, 4 % unpaid orders, 3 % wholly refunded lines, prices at 0/15/30/50 % off), written with COPY.
Later runs reuse the data. Then it installs the nine default rules, deletes the brand's rule tags and
runs the recompute twice: cold (every tag created) and warm (nothing to change). Prints the wall time
and the peak resident memory (VmHWM, reset before each run) of each, the phase timings the recompute logs,
the cold/warm ratio and the load average (the machine may be shared).

A cold run's wall time includes its commit, where PostgreSQL checks the deferred foreign keys of every
new tag row; the nightly run is the warm case (few changes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BRAND_CODE = "BTAG"
CATEGORIES = ("跑鞋", "板鞋", "运动T恤", "运动裤", "卫衣", "帽子")
COLOURS = ("黑色", "白色", "米色", "藏青", "酒红", "雾霾蓝", "燕麦色", "黄色")
MATERIALS = ("棉", "羊毛", "涤纶", "亚麻", "皮革")


def ensure_database(url: str, drop: bool) -> None:
    import psycopg2

    name = url.rsplit("/", 1)[1]
    admin = psycopg2.connect(url.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        if drop:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def peak_reset() -> None:
    # Writing 5 to clear_refs resets VmHWM (Linux), so each phase reports its own peak.
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def copy_rows(model, frame) -> None:
    """COPY a frame into ``model``'s table; columns the frame lacks get the field's default."""
    from django.db import connection

    columns, not_null_text = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        if field.column not in frame.columns:
            default = field.get_default()
            frame[field.column] = json.dumps(default) if field.get_internal_type() == "JSONField" else default
        columns.append(field.column)
        if not field.null and field.get_internal_type() in ("CharField", "TextField", "SlugField"):
            not_null_text.append(field.column)
    # An unquoted empty CSV field is NULL to COPY; for text columns that may not be NULL it means "".
    force = f", FORCE_NOT_NULL ({', '.join(not_null_text)})" if not_null_text else ""
    buffer = io.StringIO()
    frame[columns].to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(
            f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv{force})", buffer)


def generate(members: int) -> None:
    from decimal import Decimal

    import numpy as np
    import pandas as pd
    from django.db import connection, transaction

    from mall.models import Order, OrderLine, Product, Sku
    from members.models import BrandMembership, Member
    from retail_crm.models import Brand, Region, RetailGroup, Store

    rng = np.random.default_rng(42)
    now = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
    with transaction.atomic():
        group = RetailGroup.objects.create(code="bench-tags", name="Bench tags")
        brand = Brand.objects.create(group=group, code=BRAND_CODE, name="Bench tags brand")
        region = Region.objects.create(brand=brand, code="R1", name="R1")
        stores = Store.objects.bulk_create([Store(brand=brand, region=region, code=f"{BRAND_CODE}-S{i:03d}",
                                                  name=f"Store {i}", kind="direct") for i in range(50)])
        products = Product.objects.bulk_create([Product(brand=brand, code=f"P{i:03d}", name=f"p{i}",
                                                        category=CATEGORIES[i % len(CATEGORIES)]) for i in range(120)])
        skus = []
        for product in products:
            shoe = "鞋" in product.category
            price = Decimal(int(rng.integers(10, 110)) * 10 + 9)
            material = MATERIALS[int(rng.integers(len(MATERIALS)))]
            for colour in rng.choice(COLOURS, 2, replace=False):
                for size in (("35", "36", "37", "38", "39", "40", "41", "42") if shoe else ("S", "M", "L", "XL")):
                    skus.append(Sku(product=product, brand=brand, code=f"{product.code}-{len(skus):04d}",
                                    colour=str(colour), size=size, material=material, list_price=price,
                                    member_price=price, cost_price=price / 3))
        skus = Sku.objects.bulk_create(skus)

        created = pd.Timestamp(now - dt.timedelta(days=800))
        copy_rows(Member, pd.DataFrame({"group_id": group.pk,
                                        "code": [f"BT{i:07d}" for i in range(members)],
                                        "created_at": created, "updated_at": created}))
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM members_member WHERE group_id = %s ORDER BY id", [group.pk])
            member_ids = np.array([row[0] for row in cursor.fetchall()], dtype="int64")
        copy_rows(BrandMembership, pd.DataFrame({"member_id": member_ids, "brand_id": brand.pk,
                                                 "joined_at": created, "join_channel": "store_card",
                                                 "store_id": rng.choice([s.pk for s in stores], members)}))

        orders_per_member = rng.integers(1, 6, members)  # 1–5, mean 3
        n_orders = int(orders_per_member.sum())
        order_member = np.repeat(member_ids, orders_per_member)
        ordered_at = pd.Timestamp(now) - pd.to_timedelta(rng.integers(0, 400 * 24 * 60, n_orders), unit="min")
        status = np.where(rng.random(n_orders) < 0.04, "pending_payment", "paid")
        lines_per_order = rng.integers(1, 4, n_orders)
        n_lines = int(lines_per_order.sum())
        line_order = np.repeat(np.arange(n_orders), lines_per_order)
        sku_index = rng.integers(0, len(skus), n_lines)
        list_cents = np.array([int(s.list_price * 100) for s in skus], dtype="int64")[sku_index]
        quantity = rng.choice([1, 1, 1, 2, 3], n_lines)
        unit_cents = (list_cents * rng.choice([100, 85, 70, 50], n_lines, p=[0.5, 0.25, 0.15, 0.1])) // 100
        amount_cents = unit_cents * quantity
        refunded_cents = np.where(rng.random(n_lines) < 0.03, amount_cents, 0)
        totals = pd.DataFrame({"o": line_order, "a": amount_cents, "r": refunded_cents}).groupby("o").sum()
        paid = status == "paid"

        def money(cents):
            cents = np.asarray(cents, dtype="int64")
            return pd.Series(cents // 100).astype(str) + "." + pd.Series(cents % 100).astype(str).str.zfill(2)

        copy_rows(Order, pd.DataFrame({
            "brand_id": brand.pk, "order_no": [f"BT{i:09d}" for i in range(n_orders)], "member_id": order_member,
            "channel": rng.choice(["store_pos", "mini_program", "store_live"], n_orders, p=[0.6, 0.3, 0.1]),
            "store_id": rng.choice([s.pk for s in stores], n_orders), "status": status,
            "ordered_at": ordered_at, "paid_at": pd.Series(ordered_at).where(paid, None),
            "total_amount": money(totals["a"]), "paid_amount": money(np.where(paid, totals["a"], 0)),
            "refunded_amount": money(np.where(paid, totals["r"], 0))}))
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM mall_order WHERE brand_id = %s ORDER BY id", [brand.pk])
            order_ids = np.array([row[0] for row in cursor.fetchall()], dtype="int64")
        copy_rows(OrderLine, pd.DataFrame({
            "order_id": order_ids[line_order], "brand_id": brand.pk,
            "sku_id": np.array([s.pk for s in skus], dtype="int64")[sku_index], "quantity": quantity,
            "list_price": money(list_cents), "unit_price": money(unit_cents), "amount": money(amount_cents),
            "refunded_amount": money(np.where(paid[line_order], refunded_cents, 0))}))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"generated {members:,} members, {n_orders:,} orders, {n_lines:,} lines")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--regenerate", action="store_true", help="drop the database and generate the data anew")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/crm_bench_tags")
    if not url.startswith("postgres"):
        sys.exit("This benchmark runs on PostgreSQL (DATABASE_URL=postgres://…).")
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "benchmark-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "retail_crm.settings")
    ensure_database(url, drop=args.regenerate)

    import django

    # The recompute logs its phase timings (load, rules, apply: copy_in, delete, update, insert) at INFO.
    os.environ.setdefault("LOG_LEVEL", "INFO")
    django.setup()
    from django.core.management import call_command

    from members.models import BrandMembership, MemberTag, TagSource
    from members.tags import brand_tags_recompute, tag_rules_install_defaults
    from retail_crm.models import Brand

    call_command("migrate", verbosity=0)
    brand = Brand.objects.filter(code=BRAND_CODE).first()
    if brand is None:
        started = time.perf_counter()
        generate(args.members)
        print(f"  generation: {time.perf_counter() - started:.1f} s")
        brand = Brand.objects.get(code=BRAND_CODE)
    else:
        print(f"reusing data: {BrandMembership.objects.filter(brand=brand).count():,} members "
              "(--regenerate to build it anew)")
    tag_rules_install_defaults(brand)
    removed, _per_model = MemberTag.objects.filter(source=TagSource.RULE, tag_value__tag_group__brand=brand).delete()
    print(f"  removed {removed:,} rule tags left by an earlier run")

    timings = {}
    as_of = dt.datetime.now(dt.UTC)  # one "now" for both runs, so no lookback window edge moves between them
    for label in ("cold", "warm"):
        peak_reset()
        started = time.perf_counter()
        result = brand_tags_recompute(brand, as_of=as_of)
        timings[label] = time.perf_counter() - started
        print(f"  {label}: {timings[label]:.1f} s, peak RSS {peak_mib():,.0f} MiB; created {result.created:,}, "
              f"updated {result.updated:,}, deleted {result.deleted:,}; {result.members:,} members, "
              f"{result.rules} rules")
    print(f"  cold/warm ratio: {timings['cold'] / timings['warm']:.2f}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
