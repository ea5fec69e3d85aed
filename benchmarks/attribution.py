"""Benchmark: attribution of 1,000,000 purchases with ``attribute_range``, cold and then re-run (idempotent).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench_attr .venv/bin/python benchmarks/attribution.py \
        --orders 1000000

Builds its own PostgreSQL database (dropped and created), then loads with COPY: one group, brand A
(300 stores) and brand B (50 stores), 10 guides a store, ``--members`` members (default 300,000);
80% bound in brand A (a fifth of those with an earlier, transferred binding), 10% bound only in brand
B (cross-brand credit), the rest unbound; and ``--orders`` paid orders over 18 months, 90% brand A:
45% store POS (85% with a member, 90% naming a POS guide), 30% mini-program, 8% store livestream,
7% HQ livestream, 5% community, 3% distribution, 2% e-commerce; a fifth of the online orders came
through a share link; 5% partly and 3% fully refunded.

Then runs ``attribute_range`` for each brand over the whole period (cold), and again (must write 0
rows), printing wall time, rows written and peak RSS. Target (issue 5): under 120 s for 1,000,000
orders on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NULL = "\\N"  # COPY text format
CHANNELS = [("store_pos", 45), ("mini_program", 30), ("store_live", 8), ("hq_live", 7), ("community", 5),
            ("distribution", 3), ("ecommerce", 2)]


def prepare_database(url: str) -> None:
    if not url.startswith("postgres"):
        raise SystemExit("This benchmark needs PostgreSQL (COPY): DATABASE_URL=postgres://…")
    import psycopg2

    name = url.rsplit("/", 1)[1]
    admin = psycopg2.connect(url.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_FILLERS = {"numeric": "0", "integer": "0", "bigint": "0", "smallint": "0", "boolean": "f", "text": "",
            "character varying": "", "jsonb": "{}"}


def copy_rows(table: str, columns: list[str], lines: list[str]) -> None:
    """COPY tab-separated lines into ``table``.

    NOT NULL columns the benchmark does not know about (added by other work since) get a neutral
    value of their type (0, false, empty); any other kind stops the benchmark with a message.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s "
            "AND is_nullable = 'NO' AND column_default IS NULL AND column_name <> 'id'", [table])
        extra = [(name, kind) for name, kind in cursor.fetchall() if name not in columns]
        unknown = [f"{name} ({kind})" for name, kind in extra if kind not in _FILLERS]
        if unknown:
            raise SystemExit(f"{table} has NOT NULL columns this benchmark cannot fill: {unknown}")
        suffix = "".join("\t" + _FILLERS[kind] for _name, kind in extra)
        buffer = io.StringIO("".join(line + suffix + "\n" for line in lines))
        names = columns + [name for name, _kind in extra]
        cursor.copy_expert(f"COPY {table} ({', '.join(names)}) FROM STDIN", buffer)


def backend_cpu_seconds() -> float:
    """CPU time so far of this thread's PostgreSQL backend (same machine: read from /proc)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=300_000)
    parser.add_argument("--reuse", action="store_true",
                        help="keep the database of a previous run; only empty the credit rows and re-time")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/crm_bench_attr")
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "retail_crm.settings")
    if not args.reuse:
        prepare_database(url)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from attribution.models import SalesCredit
    from mall.models import Order
    from members.models import GuideBinding, Member
    from retail_crm.models import Brand, Guide, Region, RetailGroup, Store

    call_command("migrate", verbosity=0)
    if args.reuse:
        with connection.cursor() as cursor:
            # Other tables (commission entries) may point at credit rows: empty them together.
            cursor.execute(f"TRUNCATE {SalesCredit._meta.db_table} CASCADE")
        brands = list(Brand.objects.order_by("pk"))
        print(f"PostgreSQL (reused): {Order.objects.count():,} orders, {Member.objects.count():,} members, "
              f"{GuideBinding.objects.count():,} bindings; load average {os.getloadavg()[0]:.1f}")
        return time_runs(brands)
    rng = random.Random(5)
    started = time.perf_counter()
    group = RetailGroup.objects.create(code="bench", name="Bench")
    brands, stores_of, guides_of = [], {}, {}
    for code, n_stores in (("A", 300), ("B", 50)):
        brand = Brand.objects.create(group=group, code=code, name=f"Brand {code}")
        region = Region.objects.create(brand=brand, code=f"{code}-R1", name="R1")
        stores = Store.objects.bulk_create([Store(brand=brand, region=region, code=f"{code}-S{i:03d}", name="s",
                                                  kind="direct") for i in range(n_stores)])
        guides = Guide.objects.bulk_create([Guide(store=s, code=f"{s.code}-G{j}", name="g") for s in stores
                                            for j in range(10)])
        brands.append(brand)
        stores_of[brand.pk], guides_of[brand.pk] = stores, guides
    brand_a, brand_b = brands
    tz = "+08"
    t_start = dt.datetime(2025, 1, 1)

    def stamp(moment: dt.datetime) -> str:
        return moment.strftime("%Y-%m-%d %H:%M:%S") + tz

    member_lines = [
        f"{group.pk}\tK{i:07d}\t+86135{i:08d}\t\t\t\t\t\t\t\t[]\t[]\t[]\t{stamp(t_start)}\t{stamp(t_start)}"
        for i in range(args.members)]
    copy_rows(Member._meta.db_table, ["group_id", "code", "phone", "unionid", "openid", "name", "gender", "address",
                                      "clothing_size", "shoe_size", "preferred_colours", "preferred_styles",
                                      "preferred_materials", "created_at", "updated_at"], member_lines)
    del member_lines
    member_ids = list(Member.objects.order_by("pk").values_list("pk", flat=True))

    binding_lines = []
    for member_id in member_ids:
        roll = rng.random()
        if roll < 0.8:
            brand, pool = brand_a, guides_of[brand_a.pk]
        elif roll < 0.9:
            brand, pool = brand_b, guides_of[brand_b.pk]
        else:
            continue
        start = dt.datetime(2024, 1, 1) + dt.timedelta(minutes=rng.randrange(60 * 24 * 540))
        if rng.random() < 0.2:  # an earlier binding, transferred at `start`
            old = rng.choice(pool)
            first = start - dt.timedelta(days=rng.randrange(30, 300))
            binding_lines.append(f"{member_id}\t{brand.pk}\t{old.pk}\t{old.store_id}\t{stamp(first)}\t{stamp(start)}"
                                 f"\tqr_scan")
            reason = "transfer"
        else:
            reason = rng.choice(("qr_scan", "share_link", "store_purchase"))
        guide = rng.choice(pool)
        binding_lines.append(f"{member_id}\t{brand.pk}\t{guide.pk}\t{guide.store_id}\t{stamp(start)}\t\\N\t{reason}")
    copy_rows(GuideBinding._meta.db_table, ["member_id", "brand_id", "guide_id", "store_id", "started_at",
                                            "ended_at", "reason"], binding_lines)
    n_bindings = len(binding_lines)
    del binding_lines

    channels = [c for c, weight in CHANNELS for _ in range(weight)]
    order_lines = []
    for n in range(args.orders):
        brand = brand_a if rng.random() < 0.9 else brand_b
        channel = rng.choice(channels)
        store = guide = None
        member = rng.choice(member_ids)
        if channel == "store_pos":
            store = rng.choice(stores_of[brand.pk])
            guide = guides_of[brand.pk][stores_of[brand.pk].index(store) * 10 + rng.randrange(10)] \
                if rng.random() < 0.9 else None
            member = member if rng.random() < 0.85 else None
        elif channel == "store_live":
            store = rng.choice(stores_of[brand.pk])
        elif rng.random() < 0.2:
            guide = rng.choice(guides_of[brand.pk])
        when = stamp(t_start + dt.timedelta(seconds=rng.randrange(86400 * 545)))
        paid = rng.randrange(1000, 200_000)
        roll = rng.random()
        refunded = paid if roll < 0.03 else (rng.randrange(1, paid) if roll < 0.08 else 0)
        order_lines.append(
            f"{brand.pk}\tBN{n:09d}\t{member or NULL}\t{channel}\t{store.pk if store else NULL}\t"
            f"{guide.pk if guide else NULL}\tcompleted\t{when}\t{when}\t{paid / 100:.2f}\t{paid / 100:.2f}\t"
            f"{refunded / 100:.2f}")
        if len(order_lines) == 200_000:
            copy_rows(Order._meta.db_table, ["brand_id", "order_no", "member_id", "channel", "store_id", "guide_id",
                                             "status", "ordered_at", "paid_at", "total_amount", "paid_amount",
                                             "refunded_amount"], order_lines)
            order_lines = []
    if order_lines:
        copy_rows(Order._meta.db_table, ["brand_id", "order_no", "member_id", "channel", "store_id", "guide_id",
                                         "status", "ordered_at", "paid_at", "total_amount", "paid_amount",
                                         "refunded_amount"], order_lines)
    del order_lines
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"PostgreSQL: {args.orders:,} orders, {len(member_ids):,} members, {n_bindings:,} bindings; "
          f"data loaded in {time.perf_counter() - started:.1f} s; load average {os.getloadavg()[0]:.1f}")

    print(f"  RSS after loading {peak_rss_mib():,.0f} MiB")
    time_runs(brands)


def time_runs(brands) -> None:
    """attribute_range over every brand: cold, then again (must write nothing)."""
    # Count the CPU of the PostgreSQL backends too: each worker chunk has its own connection.
    import threading

    from django.db import connection

    from attribution import services as attribution
    from attribution.models import SalesCredit
    from attribution.services import attribute_range

    server_cpu = {"seconds": 0.0}
    guard = threading.Lock()

    def measured_chunk(chunk):
        try:
            run = attribution._attribute_chunk(chunk, detail=False, lock=False)
            spent = backend_cpu_seconds()
            with guard:
                server_cpu["seconds"] += spent
            return run
        finally:
            connection.close()

    attribution._attribute_chunk_in_thread = measured_chunk
    period = (dt.date(2024, 12, 31), dt.date(2026, 12, 31))
    for label in ("cold", "re-run (unchanged)"):
        t0, cpu0, main0 = time.perf_counter(), time.process_time(), backend_cpu_seconds()
        server_cpu["seconds"] = 0.0
        orders = purchases = written = 0
        for brand in brands:
            result = attribute_range(brand_id=brand.pk, date_from=period[0], date_to=period[1])
            orders, purchases, written = orders + result.orders, purchases + result.purchases, \
                written + result.rows_written
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        pg_cpu = server_cpu["seconds"] + backend_cpu_seconds() - main0
        print(f"  {label}: {elapsed:.1f} s for {orders:,} orders ({purchases:,} purchases), "
              f"{written:,} rows written, {orders / elapsed:,.0f} orders/s, CPU: Python {cpu:.1f} s + PostgreSQL "
              f"{pg_cpu:.1f} s, peak RSS {peak_rss_mib():,.0f} MiB, "
              f"load average {os.getloadavg()[0]:.1f}")
    print(f"  credit rows: {SalesCredit.objects.count():,}")


if __name__ == "__main__":
    main()
