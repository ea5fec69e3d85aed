"""Benchmark: a live session's figures from 100,000 viewer events on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench_live_metrics .venv/bin/python benchmarks/live_metrics.py

Builds its own database (dropped and created): one brand, one store session that ran two hours, and
``--events`` viewer events for it (``--viewers`` viewers, each joining one to three times with a leave
after a few minutes, one in seven never leaving, one in twenty re-joining without a leave, lobby joins
before the start and leaves after the end; the rest likes, comments, shares and product clicks), plus
``--orders`` orders from the session (three in four paid, some refunded) and the members who joined
through it. Another session of the same store gets the same number of events so the query has to pick
its rows out. Times ``session_figures`` (compute only) and ``session_stats_refresh`` (compute + upsert)
``--repeat`` times each after ANALYZE and prints the figures. Target (issue 7): under 2 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._server import SERVER_ENV, prepare_database  # noqa: E402

INTERACTIONS = ["like"] * 60 + ["comment"] * 25 + ["share"] * 5 + ["product_click"] * 10


def event_stream(rng: random.Random, *, start: dt.datetime, end: dt.datetime, viewers: int, events: int,
                 product_ids: list[int]) -> list[tuple]:
    """(viewer_id, kind, occurred_at, product_id) rows: presences first, then interactions up to ``events``."""
    run = (end - start).total_seconds()
    rows: list[tuple] = []
    for v in range(viewers):
        viewer = f"BM{v:07d}" if v % 3 else f"anon:wx-{v}"
        for _stint in range(rng.choice((1, 1, 2, 3))):
            joined = start + dt.timedelta(seconds=rng.uniform(-900, run))  # some in the lobby
            rows.append((viewer, "join", joined, None))
            if rng.random() < 0.05:  # re-join without a leave (the app reopened)
                rows.append((viewer, "join", joined + dt.timedelta(seconds=rng.uniform(5, 120)), None))
            if rng.random() >= 1 / 7:
                rows.append((viewer, "leave", joined + dt.timedelta(seconds=rng.expovariate(1 / 600)), None))
    while len(rows) < events:
        kind = rng.choice(INTERACTIONS)
        rows.append((f"BM{rng.randrange(viewers):07d}", kind, start + dt.timedelta(seconds=rng.uniform(0, run)),
                     rng.choice(product_ids) if kind == "product_click" else None))
    return rows[:events]


def copy_events(session_id: int, rows: list[tuple], received: dt.datetime) -> None:
    from django.db import connection

    null = "\\N"  # COPY's NULL
    buffer = io.StringIO()
    for i, (viewer, kind, at, product) in enumerate(rows):
        buffer.write(f"{session_id}\t{viewer}\t{kind}\t{at.isoformat()}\t{received.isoformat()}\t"
                     f"{product if product is not None else null}\tc{session_id}-{i}\n")
    buffer.seek(0)
    with connection.cursor() as cursor:
        cursor.copy_expert("COPY livestream_viewerevent (session_id, viewer_id, kind, occurred_at, received_at, "
                           "product_id, client_event_id) FROM STDIN", buffer)


def seed(args) -> tuple[int, dict]:
    from django.db import transaction

    from livestream.models import LiveSession
    from mall.models import Order, Product
    from members.models import BrandMembership, Member
    from retail_crm.models import Brand, Region, RetailGroup, Store

    rng = random.Random(7)
    start = dt.datetime(2026, 3, 2, 19, 0, tzinfo=dt.UTC)
    end = start + dt.timedelta(hours=2)
    with transaction.atomic():
        group = RetailGroup.objects.create(code="bench", name="Bench")
        brand = Brand.objects.create(group=group, code="BEN", name="Bench brand")
        region = Region.objects.create(brand=brand, code="R1", name="R1")
        store = Store.objects.create(brand=brand, region=region, code="BEN-S1", name="S1", kind="direct")
        products = Product.objects.bulk_create([Product(brand=brand, code=f"P{i:03d}", name=f"商品{i}",
                                                        category="连衣裙") for i in range(30)])
        sessions = [LiveSession.objects.create(brand=brand, kind="store", title=f"Live {d}", host_store=store,
                                               status="ended", planned_start=start + dt.timedelta(days=d),
                                               planned_end=end + dt.timedelta(days=d),
                                               actual_start=start + dt.timedelta(days=d, minutes=2),
                                               actual_end=end + dt.timedelta(days=d, minutes=10))
                    for d in (0, 1)]
        for session in sessions:
            session.products.set(products)
            rows = event_stream(rng, start=session.actual_start, end=session.actual_end, viewers=args.viewers,
                                events=args.events, product_ids=[p.pk for p in products])
            copy_events(session.pk, rows, end)
        members = Member.objects.bulk_create([Member(group=group, code=f"BM{i:07d}", created_at=start)
                                              for i in range(args.viewers)])
        BrandMembership.objects.bulk_create([BrandMembership(member=m, brand=brand, joined_at=start,
                                                             join_channel="livestream", store=store,
                                                             live_session=sessions[0])
                                             for m in members[:args.viewers // 20]])
        orders = []
        for i in range(args.orders):
            paid = rng.random() < 0.75
            total = Decimal(rng.choice((199, 299, 399, 599, 899)))
            refunded = total if paid and rng.random() < 0.08 else Decimal(0)
            orders.append(Order(brand=brand, order_no=f"L{i:08d}", member=rng.choice(members), channel="store_live",
                                store=store, live_session=sessions[0], status="paid" if paid else "cancelled",
                                ordered_at=start + dt.timedelta(minutes=rng.uniform(0, 120)), total_amount=total,
                                paid_amount=total if paid else 0, refunded_amount=refunded))
        Order.objects.bulk_create(orders, batch_size=2000)
    return sessions[0].pk, {"start": start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--viewers", type=int, default=12_000)
    parser.add_argument("--orders", type=int, default=3_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    prepare_database(os.environ.get("DATABASE_URL", ""))
    os.environ.update(SERVER_ENV)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from livestream.metrics import session_figures, session_stats_refresh
    from livestream.models import LiveSession, SessionStats, ViewerEvent

    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    session_id, _ctx = seed(args)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    session = LiveSession.objects.get(pk=session_id)
    n_events = ViewerEvent.objects.filter(session=session).count()
    print(f"seeded {n_events:,} events for the session ({ViewerEvent.objects.count():,} in the table), "
          f"{args.orders:,} orders in {time.perf_counter() - t0:.1f} s")

    compute, refresh = [], []
    figures = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        figures = session_figures(session=session)
        compute.append(time.perf_counter() - t0)
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        session_stats_refresh(session=session)
        refresh.append(time.perf_counter() - t0)
    stats = SessionStats.objects.get(session=session)
    print(f"\nfigures: viewers {figures.viewers:,}, views {figures.views:,}, peak {figures.peak_concurrent:,}, "
          f"watch {figures.watch_seconds:,} s (avg {figures.avg_watch_seconds} s), likes {figures.likes:,}, "
          f"comments {figures.comments:,}, shares {figures.shares:,}, clicks {figures.product_clicks:,}; "
          f"orders {figures.orders:,}, GMV {figures.gmv:,}, paid {figures.paid_orders:,} = {figures.paid_sales:,} "
          f"net, buyers {figures.buyers:,}, conversion {figures.conversion}, new members {figures.new_members:,}")
    print(f"session_figures        first {compute[0]:.3f} s, median {statistics.median(compute):.3f} s, "
          f"max {max(compute):.3f} s ({args.repeat} runs)")
    print(f"session_stats_refresh  median {statistics.median(refresh):.3f} s, max {max(refresh):.3f} s; "
          f"stored row matches: {stats.viewers == figures.viewers and stats.paid_sales == figures.paid_sales}")
    worst = max(compute + refresh)
    target = worst < 2.0
    print(f"target < 2 s for {n_events:,} events (worst run {worst:.3f} s): {'met' if target else 'NOT met'}")
    sys.exit(0 if target else 1)


if __name__ == "__main__":
    main()
