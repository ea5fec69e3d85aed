"""Benchmark: ``import_orders`` of 100,000 order lines, first import and an identical re-import.

    DATABASE_URL=sqlite:////tmp/bench_orders.sqlite3 .venv/bin/python benchmarks/order_import.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench_orders .venv/bin/python benchmarks/order_import.py

Builds its own database (SQLite file or PostgreSQL database, created if missing and emptied first), one
brand with 20 stores, 200 guides, 500 SKUs and 10,000 known members, then writes a CSV of ``--lines``
order lines (about 2.5 lines an order; half the buyers known members, a quarter new members by phone, a
quarter walk-ins; a few unknown SKU codes) and imports it twice through the management command.
Prints the wall time of each run and the rows per second. Target (issue 4): under 60 s on both backends.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def prepare_database(url: str) -> None:
    if url.startswith("sqlite:"):
        path = Path(url.split("sqlite:///", 1)[1])
        path.unlink(missing_ok=True)
        return
    import psycopg2

    name = url.rsplit("/", 1)[1]
    admin = psycopg2.connect(url.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=100_000)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "sqlite:////tmp/bench_orders.sqlite3")
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "retail_crm.settings")
    prepare_database(url)

    import django

    django.setup()
    from decimal import Decimal

    from django.core.management import call_command

    from mall.importing import ORDER_COLUMNS
    from mall.models import Order, OrderLine, Product, Sku
    from members.models import Member
    from retail_crm.models import Brand, Guide, Region, RetailGroup, Store

    call_command("migrate", verbosity=0)
    rng = random.Random(42)
    group = RetailGroup.objects.create(code="bench", name="Bench")
    brand = Brand.objects.create(group=group, code="BEN", name="Bench brand")
    region = Region.objects.create(brand=brand, code="R1", name="R1")
    stores = Store.objects.bulk_create([Store(brand=brand, region=region, code=f"BEN-S{i:03d}", name=f"S{i}",
                                              kind="direct") for i in range(20)])
    guides = Guide.objects.bulk_create([Guide(store=s, code=f"{s.code}-G{j:02d}", name="g") for s in stores
                                        for j in range(10)])
    products = Product.objects.bulk_create([Product(brand=brand, code=f"P{i:03d}", name="p", category="c")
                                            for i in range(100)])
    skus = Sku.objects.bulk_create([Sku(product=p, brand=brand, code=f"{p.code}-{k}", size=str(k),
                                        list_price=Decimal("399.00"), member_price=Decimal("339.15"),
                                        cost_price=Decimal("120.00")) for p in products for k in range(5)])
    now = dt.datetime(2026, 6, 1, 12, 0)
    Member.objects.bulk_create([Member(group=group, code=f"K{i:06d}", phone=f"+86135{i:08d}",
                                       created_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)) for i in range(10_000)],
                               batch_size=5000)

    csv_path = Path(tempfile.gettempdir()) / "bench_orders.csv"
    with open(csv_path, "w", encoding="utf-8") as handle:
        handle.write(",".join(ORDER_COLUMNS) + "\n")
        written, order = 0, 0
        while written < args.lines:
            order += 1
            store = rng.choice(stores)
            guide = guides[stores.index(store) * 10 + rng.randrange(10)]
            roll = rng.random()
            if roll < 0.5:
                code, phone = f"K{rng.randrange(10_000):06d}", ""
            elif roll < 0.75:
                code, phone = "", f"137{rng.randrange(10**8):08d}"
            else:
                code, phone = "", ""
            when = (now - dt.timedelta(minutes=rng.randrange(500_000))).isoformat(timespec="seconds")
            for _ in range(min(rng.choice((1, 2, 3, 4)), args.lines - written)):
                sku = rng.choice(skus).code if rng.random() > 0.01 else "LEGACY-999"
                quantity = rng.choice((1, 1, 1, 2))
                paid = Decimal("399.00") * quantity * Decimal(rng.choice(("1", "0.9", "0.7")))
                refunded = paid if rng.random() < 0.03 else Decimal("0")
                handle.write(f"BEN{order:08d},{when},store_pos,{store.code},{guide.code},{code},{phone},{sku},"
                             f"{quantity},399.00,{paid:.2f},{refunded:.2f}\n")
                written += 1

    engine = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(f"{engine}: {args.lines} lines in {order} orders ({csv_path})")
    for label in ("first import", "re-import (unchanged)"):
        started = time.perf_counter()
        call_command("import_orders", str(csv_path), "--brand", "BEN")
        elapsed = time.perf_counter() - started
        print(f"  {label}: {elapsed:.1f} s, {args.lines / elapsed:,.0f} lines/s")
    print(f"  orders {Order.objects.count()}, lines {OrderLine.objects.count()}, members {Member.objects.count()}")


if __name__ == "__main__":
    main()
