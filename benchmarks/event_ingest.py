"""Benchmark: behaviour-event ingestion through the HTTP API on gunicorn + PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench_events .venv/bin/python benchmarks/event_ingest.py

Builds its own database (dropped and created), seeds one brand with 10 stores, 50 guides (each with a
share token) and ``--members`` members, each with a mini-program token, then starts
``gunicorn retail_crm.wsgi -w 3`` on a free local port (DEBUG off, as in production) and drives it
from this machine: ``--procs`` processes × ``--threads`` threads, each with a keep-alive
``http.client`` connection, posting batches of ``--batch`` events to ``POST /api/v1/mp/events/`` for
``--seconds``. Seven requests in ten come from a logged-in member, three from an anonymous visitor; a
third of the events carry a share token; every event has a unique ``client_event_id`` (so the
duplicate look-up runs on every batch). A short ``GET /healthz`` run (one trivial query) gives the
baseline the endpoint is compared with. Reports events/s, request latency p50/p95/p99, errors, and
checks that the rows stored equal the events the server said it accepted. Gunicorn is stopped at the
end. Target (issue 3): at least 2,000 events/s in batches of 100 on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import multiprocessing as mp
import os
import random
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._server import SECRET, free_port, prepare_database, start_gunicorn, stop_gunicorn  # noqa: E402

MARK = b"@@REQ@@"


def seed(n_members: int) -> dict:
    """Brand, stores, guides with share tokens, members with tokens; returns what the clients need."""
    from django.core.management import call_command
    from django.db import transaction
    from django.utils import timezone

    from guides.services import guide_token_issue
    from members.auth import member_token_issue
    from members.models import Member
    from retail_crm.models import Brand, Guide, Region, RetailGroup, Store

    call_command("migrate", verbosity=0)
    with transaction.atomic():
        group = RetailGroup.objects.create(code="bench", name="Bench")
        brand = Brand.objects.create(group=group, code="BEN", name="Bench brand")
        region = Region.objects.create(brand=brand, code="R1", name="R1")
        stores = Store.objects.bulk_create([Store(brand=brand, region=region, code=f"BEN-S{i:02d}", name=f"S{i}",
                                                  kind="direct") for i in range(10)])
        guides = Guide.objects.bulk_create([Guide(store=s, code=f"{s.code}-G{j}", name="g", phone="",
                                                  hired_at=dt.date(2024, 1, 1)) for s in stores for j in range(5)])
        share_tokens = [guide_token_issue(guide=g).token for g in guides]
        now = timezone.now()
        members = Member.objects.bulk_create([Member(group=group, code=f"BM{i:07d}", phone=f"+86137{i:08d}",
                                                     created_at=now) for i in range(n_members)])
        member_tokens = [member_token_issue(member=m) for m in members]
    return {"brand": brand.code, "share_tokens": share_tokens, "member_tokens": member_tokens}


def body_templates(ctx: dict, batch: int, worker: int, rng: random.Random) -> list[tuple[dict, bytes]]:
    """A few request templates (headers, body); MARK in the body becomes the request number."""
    kinds = ["product_view"] * 6 + ["favourite", "add_to_cart", "share", "material_view"]
    now = dt.datetime.now(dt.UTC)
    out = []
    for t in range(20):
        member_token = rng.choice(ctx["member_tokens"]) if t % 10 < 7 else None
        events = []
        for i in range(batch):
            event = {"kind": rng.choice(kinds),
                     "occurred_at": (now - dt.timedelta(seconds=rng.randrange(1, 3600))).isoformat(),
                     "brand": ctx["brand"], "object_type": "product", "object_id": f"P{rng.randrange(500):03d}",
                     "client_event_id": f"w{worker}-t{t}-@@REQ@@-{i}"}
            if rng.random() < 1 / 3:
                event["share_token"] = rng.choice(ctx["share_tokens"])
            if member_token is None:
                event["visitor_id"] = f"v{worker}-{t}"
            events.append(event)
        headers = {"Content-Type": "application/json"}
        if member_token:
            headers["Authorization"] = f"Member {member_token}"
        out.append((headers, json.dumps({"events": events}).encode()))
    return out


def client_proc(args: tuple) -> dict:
    """One load-generating process: ``threads`` keep-alive connections until the deadline."""
    port, ctx, batch, threads, start_at, seconds, worker, path = args
    rng = random.Random(worker)
    run_id = f"{start_at:.3f}"  # client ids unique across the warm-up and the measured run
    templates = body_templates(ctx, batch, worker, rng) if path != "/healthz" else []
    latencies: list[float] = []
    counts = {"requests": 0, "accepted": 0, "duplicates": 0, "rejected": 0, "errors": 0}
    lock = threading.Lock()

    def run(thread: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        local_lat, local = [], dict.fromkeys(counts, 0)
        n = 0
        while time.time() < start_at:
            time.sleep(0.005)
        deadline = start_at + seconds
        while time.time() < deadline:
            n += 1
            t0 = time.perf_counter()
            try:
                if path == "/healthz":
                    conn.request("GET", path)
                else:
                    headers, template = templates[n % len(templates)]
                    body = template.replace(MARK, f"{run_id}-{thread}x{n}".encode())
                    conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                local["errors"] += 1
                continue
            local_lat.append(time.perf_counter() - t0)
            local["requests"] += 1
            if status != 200:
                local["errors"] += 1
                continue
            if path != "/healthz":
                data = json.loads(payload)
                local["accepted"] += data["accepted"]
                local["duplicates"] += data["duplicates"]
                local["rejected"] += len(data["rejected"])
        conn.close()
        with lock:
            latencies.extend(local_lat)
            for key, value in local.items():
                counts[key] += value

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return {"latencies": latencies, **counts}


def drive(port: int, ctx: dict, *, batch: int, procs: int, threads: int, seconds: float, path: str) -> dict:
    start_at = time.time() + 1.5  # every process built its bodies before the clock starts
    with mp.get_context("fork").Pool(procs) as pool:
        parts = pool.map(client_proc, [(port, ctx, batch, threads, start_at, seconds, w, path)
                                       for w in range(procs)])
    latencies = sorted(lat for part in parts for lat in part["latencies"])
    out = {key: sum(part[key] for part in parts) for key in ("requests", "accepted", "duplicates", "rejected",
                                                             "errors")}
    out["seconds"] = seconds

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    out.update(p50=pct(0.50), p95=pct(0.95), p99=pct(0.99))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--baseline-seconds", type=float, default=5)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--procs", type=int, default=2, help="load-generating processes")
    parser.add_argument("--threads", type=int, default=3, help="connections per load-generating process")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    prepare_database(url)
    os.environ.update(DEBUG="0", SECRET_KEY=SECRET, SECURE_SSL_REDIRECT="0", LOG_LEVEL="ERROR",
                      DJANGO_SETTINGS_MODULE="retail_crm.settings")

    import django

    django.setup()
    from django.db import connection

    from members.models import BehaviourEvent

    t0 = time.perf_counter()
    ctx = seed(args.members)
    print(f"seeded 1 brand, 50 guides, {args.members} members with tokens in {time.perf_counter() - t0:.1f} s")
    connection.close()  # no inherited connection in the forked clients

    port = free_port()
    server = start_gunicorn(port, args.workers)
    try:
        drive(port, ctx, batch=args.batch, procs=args.procs, threads=args.threads, seconds=2, path="/healthz")
        warm = drive(port, ctx, batch=args.batch, procs=args.procs, threads=args.threads, seconds=3,
                     path="/api/v1/mp/events/")
        # A production events table is large and analysed; a fresh one would be planned on empty-table
        # statistics (sequential filters instead of the unique index), which no real deployment sees.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE members_behaviourevent")
        connection.close()
        base = drive(port, ctx, batch=args.batch, procs=args.procs, threads=args.threads,
                     seconds=args.baseline_seconds, path="/healthz")
        run = drive(port, ctx, batch=args.batch, procs=args.procs, threads=args.threads, seconds=args.seconds,
                    path="/api/v1/mp/events/")
    finally:
        stop_gunicorn(server)

    stored = BehaviourEvent.objects.count()
    expected = warm["accepted"] + run["accepted"]
    events_per_s = run["accepted"] / run["seconds"]
    ingest_rps = run["requests"] / run["seconds"]
    base_rps = base["requests"] / base["seconds"]
    cores = os.cpu_count()
    print(f"\ngunicorn -w {args.workers} (sync), {args.procs}×{args.threads} keep-alive clients, {cores} CPUs, "
          f"batches of {args.batch}, {args.seconds:.0f} s")
    print(f"events accepted   {run['accepted']:>9,}  ({events_per_s:,.0f} events/s, {ingest_rps:,.1f} requests/s)")
    print(f"latency ms        p50 {run['p50']:.1f}  p95 {run['p95']:.1f}  p99 {run['p99']:.1f}")
    print(f"errors            {run['errors']} (non-200 or connection), duplicates {run['duplicates']}, "
          f"rejected items {run['rejected']}")
    print(f"baseline /healthz {base_rps:,.0f} requests/s, p50 {base['p50']:.1f} ms, errors {base['errors']}; "
          f"an event batch costs {base_rps / ingest_rps:.1f}× a bare request "
          f"({ingest_rps / base_rps:.1%} of the baseline rate)")
    ok = stored == expected
    print(f"rows stored       {stored:,} == accepted {expected:,} (warm-up {warm['accepted']:,} + run): "
          f"{'OK' if ok else 'MISMATCH'}")
    target = events_per_s >= 2000 and run["errors"] == 0 and ok
    print(f"target ≥ 2,000 events/s, no errors, rows match: {'met' if target else 'NOT met'}")
    sys.exit(0 if target else 1)


if __name__ == "__main__":
    main()
