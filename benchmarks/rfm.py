"""Benchmark: ``recompute_rfml`` for one brand with many members and purchases on PostgreSQL (issue 5).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench_rfm .venv/bin/python benchmarks/rfm.py \
        --members 1000000 --purchases 10000000            # generate (minutes), then measure
    … benchmarks/rfm.py --reuse                           # measure again on the generated data
    … benchmarks/rfm.py --reuse --lifetimes /tmp/lifetimes-venv/bin/python   # plus the lifetimes comparison

Generation (skipped with ``--reuse``): the database is dropped and created, migrated, and one brand gets
``--members`` members and ``--purchases`` orders written with COPY from CSV generated in chunks by numpy
(seeded, so every run builds the same data). Order dates spread over 1,100 days before the as-of date;
buyers are skewed (some buy often, many once); about 3% of orders are unpaid or cancelled, 3% fully
refunded (net 0, not purchases) and 5% partly refunded. Foreign-key triggers are skipped during the load
(``session_replication_role = replica``): every id written exists by construction.

Measurement: the ``recompute_rfml`` command in this process, wall time and peak memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, so everything the process ever held), run twice (the
first run inserts every member row, the second updates them). Targets: under 60 s, under 4 GiB.

With ``--lifetimes PYTHON`` the same purchase rows (member, local date, net) are written to a CSV and
``lifetimes.utils.summary_data_from_transaction_data`` is timed on them in that interpreter (a throwaway
venv: lifetimes is not a project dependency); the ratio of its time to ours is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AS_OF = dt.date(2026, 6, 30)

LIFETIMES_SCRIPT = r"""
import sys, time
import pandas as pd
from lifetimes.utils import summary_data_from_transaction_data
path, as_of = sys.argv[1], sys.argv[2]
started = time.monotonic()
frame = pd.read_csv(path, header=None, names=["member_id", "date", "net"], parse_dates=["date"])
read = time.monotonic() - started
summary = summary_data_from_transaction_data(frame, "member_id", "date", monetary_value_col="net",
                                             observation_period_end=as_of, freq="D")
total = time.monotonic() - started
print(f"{total:.2f} {read:.2f} {len(summary)}")
"""


def prepare_database(url: str) -> None:
    import psycopg2

    name = url.rsplit("/", 1)[1]
    admin = psycopg2.connect(url.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def default_literals(model, given: set[str]) -> dict[str, object]:
    """Every other NOT NULL column (later schema additions included) with its field default, as a parameter."""
    import json

    out = {}
    for field in model._meta.concrete_fields:
        if field.primary_key or field.null or field.column in given:
            continue
        value = field.get_default()
        out[field.column] = json.dumps(value) if isinstance(value, (list, dict)) else value
    return out


def insert_generated(cursor, model, columns: dict[str, str], params: list, rows: int) -> None:
    """INSERT … SELECT over generate_series(1, rows) AS g: ``columns`` maps a column to its SQL expression."""
    defaults = default_literals(model, set(columns))
    names = [*columns, *defaults]
    exprs = [*columns.values(), *(["%s"] * len(defaults))]
    cursor.execute(f"INSERT INTO {model._meta.db_table} ({', '.join(names)}) "  # noqa: S608
                   f"SELECT {', '.join(exprs)} FROM generate_series(1, %s) AS g",
                   [*params, *defaults.values(), rows])


def without_indexes(cursor, table: str):
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


def generate(members: int, purchases: int) -> None:
    """One brand's members and orders, generated inside PostgreSQL (seeded: the same data every time).

    Rows are produced by ``INSERT … SELECT … FROM generate_series`` with the table's secondary indexes
    dropped and rebuilt afterwards and foreign-key triggers off, which is several times faster than
    streaming CSV through COPY from Python (pandas' to_csv alone needs ~16 s per million order rows).
    """
    from django.core.management import call_command
    from django.db import connection

    from mall.models import Order
    from members.models import Member
    from retail_crm.models import Brand, Region, RetailGroup, Store

    call_command("migrate", verbosity=0)
    group = RetailGroup.objects.create(code="bench", name="Bench")
    brand = Brand.objects.create(group=group, code="BEN", name="Bench brand")
    region = Region.objects.create(brand=brand, code="R1", name="R1")
    stores = Store.objects.bulk_create([Store(brand=brand, region=region, code=f"BEN-S{i:03d}", name=f"S{i}",
                                              kind="direct") for i in range(50)])
    store_ids = [s.pk for s in stores]
    started = time.monotonic()
    end = dt.datetime.combine(AS_OF, dt.time(23, 59), tzinfo=dt.timezone(dt.timedelta(hours=8)))
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute("SELECT setseed(0.42)")
        insert_generated(cursor, Member, {
            "group_id": "%s", "code": "'BM' || lpad(g::text, 8, '0')",
            "created_at": "TIMESTAMPTZ '2023-01-01 00:00+08'", "updated_at": "TIMESTAMPTZ '2023-01-01 00:00+08'",
        }, [group.pk], members)
        cursor.execute(f"SELECT min(id) FROM {Member._meta.db_table}")  # noqa: S608
        first_id = cursor.fetchone()[0]
        print(f"members: {members:,} in {time.monotonic() - started:.1f} s", flush=True)
        table = Order._meta.db_table
        rebuild = without_indexes(cursor, table)
        given = ["brand_id", "order_no", "member_id", "channel", "store_id", "status", "ordered_at", "paid_at",
                 "total_amount", "paid_amount", "refunded_amount"]
        extra = default_literals(Order, set(given))
        # Per row: u picks the buyer (index N·u², so low indexes buy often and the tail once or never), s the
        # store, k the kind (3% unpaid, 3% fully refunded, 5% refunded 30%), a the amount, t the moment.
        cursor.execute(
            f"INSERT INTO {table} ({', '.join([*given, *extra])}) "  # noqa: S608
            "SELECT %s, 'BO' || lpad(g::text, 10, '0'), %s + floor(u * u * %s)::bigint, 'store_pos', "
            "(%s::bigint[])[1 + floor(s * 50)::int], "
            "CASE WHEN k > 0.97 THEN 'pending_payment' ELSE 'completed' END, "
            "t, CASE WHEN k > 0.97 THEN NULL ELSE t END, a, CASE WHEN k > 0.97 THEN 0 ELSE a END, "
            "CASE WHEN k > 0.97 THEN 0 WHEN k < 0.03 THEN a WHEN k < 0.08 THEN round(a * 0.3, 2) ELSE 0 END"
            + "".join(", %s" for _ in extra)
            + " FROM (SELECT g, random() AS u, random() AS s, random() AS k, "
            "round((49 + random() * 1950)::numeric, 2) AS a, %s - random() * interval '1100 days' AS t "
            "FROM generate_series(1, %s) AS g) AS r",
            [brand.pk, first_id, members, store_ids, *extra.values(), end, purchases])
        print(f"orders: {purchases:,} after {time.monotonic() - started:.0f} s", flush=True)
        for statement in rebuild:
            cursor.execute(statement)
        print(f"indexes rebuilt after {time.monotonic() - started:.0f} s", flush=True)
        cursor.execute("SET session_replication_role = DEFAULT")
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Order._meta.db_table}")  # noqa: S608
        cursor.execute(f"VACUUM ANALYZE {Member._meta.db_table}")  # noqa: S608
    print(f"generated in {time.monotonic() - started:.0f} s", flush=True)


def measure(runs: int) -> list[tuple[float, int]]:
    from django.core.management import call_command

    results = []
    for _ in range(runs):
        started = time.monotonic()
        call_command("recompute_rfml", "--brand", "BEN", "--as-of", AS_OF.isoformat())
        seconds = time.monotonic() - started
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        results.append((seconds, peak_kib))
        print(f"recompute_rfml: {seconds:.1f} s, peak RSS {peak_kib / 1024 / 1024:.2f} GiB", flush=True)
    return results


def lifetimes_compare(python: str, ours: float) -> None:
    from django.db import connection

    from retail_crm.models import Brand
    from segments.rfm import _purchase_query

    sql, params = _purchase_query(Brand.objects.get(code="BEN"), AS_OF)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "purchases.csv"
        script = Path(tmp) / "lifetimes_summary.py"
        script.write_text(LIFETIMES_SCRIPT)
        with connection.cursor() as cursor, path.open("w") as out:
            literal = cursor.cursor.mogrify(sql, params).decode()
            cursor.cursor.copy_expert(f"COPY ({literal}) TO STDOUT WITH (FORMAT csv)", out)
        print(f"purchase rows exported: {path.stat().st_size / 1e6:.0f} MB", flush=True)
        result = subprocess.run([python, str(script), str(path), AS_OF.isoformat()], capture_output=True, text=True,
                                check=False)
    if result.returncode != 0:
        print("lifetimes failed:\n" + result.stderr[-3000:])
        return
    total, read, rows = result.stdout.split()[-3:]
    # The like-for-like part of ours: the same summary in memory (read the purchases, compute), no writes.
    from segments.rfm import load_purchases, rfm_compute

    brand = Brand.objects.get(code="BEN")
    started = time.monotonic()
    arrays = load_purchases(brand=brand, as_of=AS_OF)
    loaded = time.monotonic() - started
    rfm_compute(arrays=arrays, as_of=AS_OF, window_days=365, mature_after_days=180)
    in_memory = time.monotonic() - started
    print(f"lifetimes summary_data_from_transaction_data: {float(total):.1f} s (of which reading the CSV "
          f"{float(read):.1f} s) for {int(rows):,} customers", flush=True)
    print(f"ours in memory (read purchases from PostgreSQL {loaded:.1f} s + RFML and cycle): {in_memory:.1f} s",
          flush=True)
    print(f"ratio lifetimes / our in-memory RFML = {float(total) / in_memory:.1f}×; "
          f"lifetimes / whole recompute_rfml (with every write) = {float(total) / ours:.1f}×", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--purchases", type=int, default=10_000_000)
    parser.add_argument("--reuse", action="store_true", help="measure on the data generated before")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--lifetimes", metavar="PYTHON", help="interpreter of a venv with lifetimes installed")
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
        generate(args.members, args.purchases)
    results = measure(args.runs)
    if args.lifetimes:
        lifetimes_compare(args.lifetimes, min(seconds for seconds, _ in results))


if __name__ == "__main__":
    main()
