"""Benchmark: livestream viewer-event ingestion through the HTTP API on gunicorn + PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench_live_events .venv/bin/python benchmarks/live_events.py

Builds its own database (dropped and created): one brand, ``--sessions`` live sessions with 20 products
each, ``--members`` members with mini-program tokens. Starts ``gunicorn retail_crm.wsgi -w N`` (DEBUG
off) on a free local port and drives ``POST /api/v1/mp/live/sessions/{id}/events/`` from this machine
with ``--procs`` × ``--threads`` keep-alive connections for ``--seconds``, batches of ``--batch`` events:
seven requests in ten from a logged-in member, three from an anonymous viewer; kinds mixed as in a real
room (joins, leaves, likes, comments, shares, product clicks naming a product of the session); every
event has a unique ``client_event_id`` (so the duplicate look-up runs on every batch). A short
``GET /healthz`` run gives the baseline. Reports events/s, latency p50/p95/p99, errors, and checks that
the rows stored equal the events the server accepted. Target (issue 7): at least 2,000 events/s in
batches of 100 on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._server import SERVER_ENV, drive, free_port, prepare_database, start_gunicorn, stop_gunicorn  # noqa: E402

MARK = "@@REQ@@"
KINDS = ["join"] * 30 + ["leave"] * 20 + ["like"] * 25 + ["comment"] * 15 + ["share"] * 3 + ["product_click"] * 7


def seed(n_members: int, n_sessions: int) -> dict:
    from django.db import transaction
    from django.utils import timezone

    from livestream.models import LiveSession
    from mall.models import Product
    from members.auth import member_token_issue
    from members.models import BrandMembership, Member
    from retail_crm.models import Brand, Region, RetailGroup, Store

    now = timezone.now()
    with transaction.atomic():
        group = RetailGroup.objects.create(code="bench", name="Bench")
        brand = Brand.objects.create(group=group, code="BEN", name="Bench brand")
        region = Region.objects.create(brand=brand, code="R1", name="R1")
        stores = Store.objects.bulk_create([Store(brand=brand, region=region, code=f"BEN-S{i:02d}", name=f"S{i}",
                                                  kind="direct") for i in range(n_sessions)])
        products = Product.objects.bulk_create([Product(brand=brand, code=f"P{i:03d}", name=f"商品{i}",
                                                        category="连衣裙") for i in range(20 * n_sessions)])
        sessions = []
        for i, store in enumerate(stores):
            session = LiveSession.objects.create(
                brand=brand, kind="store", title=f"Live {i}", host_store=store, status="live",
                planned_start=now - dt.timedelta(hours=1), planned_end=now + dt.timedelta(hours=3),
                actual_start=now - dt.timedelta(hours=1))
            session.products.set(products[20 * i:20 * (i + 1)])
            sessions.append((session.pk, [p.pk for p in products[20 * i:20 * (i + 1)]]))
        members = Member.objects.bulk_create([Member(group=group, code=f"BM{i:07d}", phone=f"+86137{i:08d}",
                                                     created_at=now) for i in range(n_members)])
        BrandMembership.objects.bulk_create([BrandMembership(member=m, brand=brand, joined_at=now,
                                                             join_channel="livestream") for m in members])
        tokens = [member_token_issue(member=m) for m in members]
    return {"sessions": sessions, "tokens": tokens}


def templates(ctx: dict, batch: int, client: int) -> list[tuple[str, dict, str]]:
    """20 request templates (path, headers, body with MARK where the request number goes) for one client."""
    rng = random.Random(client)
    now = dt.datetime.now(dt.UTC)
    out = []
    for t in range(20):
        session_id, product_ids = rng.choice(ctx["sessions"])
        token = rng.choice(ctx["tokens"]) if t % 10 < 7 else None
        events = []
        for i in range(batch):
            kind = rng.choice(KINDS)
            event = {"kind": kind, "occurred_at": (now - dt.timedelta(seconds=rng.randrange(1, 1800))).isoformat(),
                     "client_event_id": f"c{client}-t{t}-{MARK}-{i}"}
            if kind == "product_click":
                event["product_id"] = rng.choice(product_ids)
            if token is None:
                event["viewer_id"] = f"wx-anon-{client}-{t}"
            events.append(event)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Member {token}"
        out.append((f"/api/v1/mp/live/sessions/{session_id}/events/", headers, json.dumps({"events": events})))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--baseline-seconds", type=float, default=5)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--procs", type=int, default=2, help="load-generating processes")
    parser.add_argument("--threads", type=int, default=3, help="connections per load-generating process")
    args = parser.parse_args()
    prepare_database(os.environ.get("DATABASE_URL", ""))
    os.environ.update(SERVER_ENV)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from livestream.models import ViewerEvent

    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    ctx = seed(args.members, args.sessions)
    print(f"seeded {args.sessions} live sessions, {args.members} members with tokens in "
          f"{time.perf_counter() - t0:.1f} s")
    connection.close()  # no inherited connection in the forked clients

    built: dict[int, list] = {}
    run = {"tag": "warm"}

    def event_request(proc: int, thread: int, n: int):
        client = proc * args.threads + thread
        if client not in built:  # built in the forked child, once per client
            built[client] = templates(ctx, args.batch, client)
        path, headers, body = built[client][n % 20]
        return "POST", path, headers, body.replace(MARK, f"{run['tag']}{thread}x{n}").encode()

    def healthz(proc: int, thread: int, n: int):
        return "GET", "/healthz", {}, None

    def count(status: int, body: bytes) -> dict[str, int]:
        if status != 200:
            return {}
        data = json.loads(body)
        return {"accepted": data["accepted"], "duplicates": data["duplicates"], "rejected": len(data["rejected"])}

    port = free_port()
    server = start_gunicorn(port, args.workers)
    try:
        drive(port, healthz, procs=args.procs, threads=args.threads, seconds=2)
        warm = drive(port, event_request, procs=args.procs, threads=args.threads, seconds=3, count_response=count)
        # A production events table is large and analysed; plan the run on real statistics.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE livestream_viewerevent")
        connection.close()
        base = drive(port, healthz, procs=args.procs, threads=args.threads, seconds=args.baseline_seconds)
        run["tag"] = "run"
        result = drive(port, event_request, procs=args.procs, threads=args.threads, seconds=args.seconds,
                       count_response=count)
    finally:
        stop_gunicorn(server)

    stored = ViewerEvent.objects.count()
    expected = warm.get("accepted", 0) + result.get("accepted", 0)
    events_per_s = result.get("accepted", 0) / result["seconds"]
    print(f"\ngunicorn -w {args.workers} (sync), {args.procs}×{args.threads} keep-alive clients, "
          f"{os.cpu_count()} CPUs, batches of {args.batch}, {args.seconds:.0f} s")
    print(f"events accepted   {result.get('accepted', 0):>9,}  ({events_per_s:,.0f} events/s, "
          f"{result['rps']:,.1f} requests/s)")
    print(f"latency ms        p50 {result['p50']:.1f}  p95 {result['p95']:.1f}  p99 {result['p99']:.1f}")
    print(f"errors            {result['errors']} (non-200 or connection), duplicates {result.get('duplicates', 0)}, "
          f"rejected items {result.get('rejected', 0)}")
    print(f"baseline /healthz {base['rps']:,.0f} requests/s, p50 {base['p50']:.1f} ms; a batch costs "
          f"{base['rps'] / result['rps']:.1f}× a bare request")
    ok = stored == expected
    print(f"rows stored       {stored:,} == accepted {expected:,} (warm-up + run): {'OK' if ok else 'MISMATCH'}")
    target = events_per_s >= 2000 and result["errors"] == 0 and result.get("rejected", 0) == 0 and ok
    print(f"target ≥ 2,000 events/s, no errors, rows match: {'met' if target else 'NOT met'}")
    sys.exit(0 if target else 1)


if __name__ == "__main__":
    main()
