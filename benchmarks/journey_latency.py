"""Benchmark: from a behaviour event to its journey action being queued, under 2,000 events/s of HTTP traffic.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench_journeys REDIS_URL=redis://127.0.0.1:6379/8 \\
        .venv/bin/python benchmarks/journey_latency.py

Builds its own database (dropped and created) and empties the Redis database of ``REDIS_URL`` (its own: the
Celery broker and the cache). Seeds one brand with 20 products, ``--members`` background members and
``--samples`` sample members (each with a phone and a mini-program token, none with an order), brand reach
rules without quiet hours (the run may fall in the night), and one active journey: trigger "product viewed ≥ 3
times in 7 days without an order" on one product, first step an SMS send. Each sample member has viewed the
journey's product twice in the last three days.

Then it starts the production topology on this machine: ``gunicorn retail_crm.wsgi -w 3`` (DEBUG off) and
``celery -A retail_crm worker -B`` (prefork, ``--concurrency``, queues default and analytics, beat embedded:
the outbox relay every 5 s besides the kick after each commit, the journey executor every minute besides the
kick after each enrolment), both with ``REDIS_URL``. The worker uses the fake SMS adapter (a staging box's
``ALLOW_FAKE_PROVIDERS_IN_PRODUCTION``); the measured moment is the delivery being queued, not sent.

Load: ``--procs`` × ``--threads`` keep-alive clients post batches of ``--batch`` events to
``POST /api/v1/mp/events/``, paced to a steady ``--rate`` events/s in all for ``--seconds``. Seven batches in
ten are a background member's, three an anonymous visitor's; background events never view the journey's
product. Spread evenly over the first 90 % of the run, each sample member sends one batch of their own
carrying their third view of the journey's product (and ``batch - 1`` other events). Every batch of a member
records one ``behaviour_recorded`` domain event, so the worker handles all of them (the journey trigger and the
behaviour-tag subscriber), not only the samples'.

Latency of a sample = the moment its ``Delivery`` row was first seen committed (a poller in this process reads
new journey deliveries every 50 ms) minus the moment the HTTP request carrying the third view returned 200.
Also reported per stage, from the rows' own timestamps: request returned → relay (the outbox row's
``relayed_at``) → the journey handler starting (the enrolment's ``entered_at``) → the handler committed (its
``EventDelivery``) → the executor starting (the delivery's ``planned_at``) → visible. Plus events/s achieved,
HTTP latency, errors, the load average and CPU seconds per process group. Gunicorn and the worker are
stopped at the end. Target (issue 18): p99 < 5 s, every sample member's action queued, no errors.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._server import SECRET, free_port, prepare_database, start_gunicorn, stop_gunicorn  # noqa: E402

MARK = b"@@REQ@@"
BRAND = "JRN"
SMS = {"sms": {"template": "SMS_VIEWED", "params": {"name": "{name}"}}}


# ---------------------------------------------------------------------------- set-up

def seed(n_members: int, n_samples: int) -> dict:
    """Brand, products, members with tokens, reach rules, the journey, the samples' first two views."""
    from django.core.management import call_command
    from django.db import transaction
    from django.utils import timezone

    from mall.models import Product
    from marketing.journeys import StepSpec, journey_save, journey_transition
    from marketing.models import Journey, ReachRules
    from members.auth import member_token_issue
    from members.models import BehaviourEvent, EventKind, Member
    from retail_crm.models import Brand, RetailGroup

    call_command("migrate", verbosity=0)
    now = timezone.now()
    with transaction.atomic():
        group = RetailGroup.objects.create(code="bench", name="Bench")
        brand = Brand.objects.create(group=group, code=BRAND, name="Journey bench brand")
        products = Product.objects.bulk_create([Product(brand=brand, code=f"P{i:03d}", name=f"商品{i}",
                                                        category="鞋") for i in range(20)])
        target, others = products[0], products[1:]
        # No quiet hours (start == end): the run may fall at night, and a message waiting for the morning is
        # queued too, but "waiting" would hide whether the rules held anyone back.
        ReachRules.objects.create(group=group, brand=brand, quiet_start=dt.time(0), quiet_end=dt.time(0))
        members = Member.objects.bulk_create([Member(group=group, code=f"JM{i:07d}", phone=f"+86137{i:08d}",
                                                     name=f"会员{i}", created_at=now)
                                              for i in range(n_members + n_samples)])
        tokens = [member_token_issue(member=m) for m in members]
        samples = members[n_members:]
        BehaviourEvent.objects.bulk_create([
            BehaviourEvent(brand=brand, member=m, kind=EventKind.PRODUCT_VIEW, object_type="product",
                           object_id=str(target.pk), occurred_at=now - dt.timedelta(days=day, hours=1),
                           received_at=now - dt.timedelta(days=day, hours=1), client_event_id=f"seed-{m.pk}-{day}")
            for m in samples for day in (1, 2)])
        journey = journey_save(
            journey=None, brand=brand, name="看了3次没买", trigger=Journey.Trigger.PRODUCT_VIEWS,
            trigger_params={"views": 3, "days": 7, "product_ids": [target.pk]}, reentry=Journey.Reentry.ONCE,
            reentry_days=None, holdout_percent=Decimal("0"), exit_on_conversion=True,
            conversion_days=7, steps=[StepSpec(kind="send", params={"channels": ["sms"], "content": SMS})])
    journey_transition(journey=journey, action="activate")
    return {"brand": brand.code, "journey": journey.pk, "target": str(target.pk),
            "others": [str(p.pk) for p in others],
            "background_tokens": tokens[:n_members],
            "samples": [(m.pk, tokens[n_members + i]) for i, m in enumerate(samples)]}


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def start_worker(concurrency: int, log: Path, beat: bool) -> subprocess.Popen:
    """``celery -A retail_crm worker`` (prefork) on the benchmark's database and Redis, in its own group."""
    env = dict(os.environ, DEBUG="0", SECRET_KEY=SECRET, DJANGO_SETTINGS_MODULE="retail_crm.settings",
               SMS_PROVIDER="fake", ALLOW_FAKE_PROVIDERS_IN_PRODUCTION="1", LOG_LEVEL="ERROR",
               PYTHONWARNINGS="ignore")
    command = [str(ROOT / ".venv/bin/celery"), "-A", "retail_crm", "worker", "--pool=prefork",
               f"--concurrency={concurrency}", "-Q", "default,analytics", "--loglevel=WARNING",
               "--without-gossip", "--without-mingle", "--hostname", f"journey-bench-{os.getpid()}@%h"]
    if beat:
        command += ["-B", "--schedule", str(log.with_suffix(".beat"))]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    from retail_crm.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the Celery worker exited; its log:\n{log.read_text()[-3000:]}")
        if app.control.ping(timeout=1.0):
            return proc
    stop_group(proc)
    raise SystemExit(f"the Celery worker did not answer a ping within 60 s; its log:\n{log.read_text()[-3000:]}")


def stop_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# ---------------------------------------------------------------------------- CPU accounting

def _group_cpu(pgid: int | None, comm: str | None = None) -> float:
    """CPU seconds (user + system, reaped children included) of a process group, or of every process named comm."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if (comm is not None and name == comm) or (pgid is not None and int(fields[2]) == pgid):
            # Own time, and that of children already reaped (gunicorn's and the pool's, PostgreSQL's backends).
            total += sum(int(value) for value in fields[11:15])
    return total / tick


def _machine_idle() -> float:
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return (int(fields[3]) + int(fields[4])) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(server: subprocess.Popen, worker: subprocess.Popen) -> dict[str, float]:
    return {"gunicorn": _group_cpu(server.pid), "celery": _group_cpu(worker.pid),
            "postgres": _group_cpu(None, "postgres"), "clients": _group_cpu(os.getpgid(0)), "idle": _machine_idle()}


# ---------------------------------------------------------------------------- load

def background_templates(ctx: dict, batch: int, worker: int, rng: random.Random) -> list[tuple[dict, bytes]]:
    """Background request templates (headers, body): never a view of the journey's product."""
    kinds = ["product_view"] * 6 + ["favourite", "add_to_cart", "share", "material_view"]
    now = dt.datetime.now(dt.UTC)
    out = []
    for t in range(20):
        member_token = rng.choice(ctx["background_tokens"]) if t % 10 < 7 else None
        events = []
        for i in range(batch):
            event = {"kind": rng.choice(kinds), "brand": ctx["brand"], "object_type": "product",
                     "object_id": rng.choice(ctx["others"]),
                     "occurred_at": (now - dt.timedelta(seconds=rng.randrange(1, 3600))).isoformat(),
                     "client_event_id": f"w{worker}-t{t}-@@REQ@@-{i}"}
            if member_token is None:
                event["visitor_id"] = f"v{worker}-{t}"
            events.append(event)
        headers = {"Content-Type": "application/json"}
        if member_token:
            headers["Authorization"] = f"Member {member_token}"
        out.append((headers, json.dumps({"events": events}).encode()))
    return out


def sample_request(ctx: dict, batch: int, member_id: int, token: str, rng: random.Random) -> tuple[dict, bytes]:
    """A sample member's batch: their third view of the journey's product and ``batch - 1`` other events."""
    now = dt.datetime.now(dt.UTC)
    events = [{"kind": "product_view", "brand": ctx["brand"], "object_type": "product", "object_id": ctx["target"],
               "occurred_at": now.isoformat(), "client_event_id": f"sample-{member_id}-third"}]
    for i in range(batch - 1):
        events.append({"kind": rng.choice(["product_view", "favourite", "material_view"]), "brand": ctx["brand"],
                       "object_type": "product", "object_id": rng.choice(ctx["others"]),
                       "occurred_at": (now - dt.timedelta(seconds=rng.randrange(1, 600))).isoformat(),
                       "client_event_id": f"sample-{member_id}-{i}"})
    return ({"Content-Type": "application/json", "Authorization": f"Member {token}"},
            json.dumps({"events": events}).encode())


def client_proc(args: tuple) -> dict:
    """One load process: ``threads`` keep-alive connections, each sending on a fixed schedule until the end."""
    port, ctx, batch, threads, start_at, seconds, worker, interval, samples = args
    rng = random.Random(worker)
    run_id = f"{start_at:.3f}"
    templates = background_templates(ctx, batch, worker, rng)
    latencies: list[float] = []
    sample_rows: list[tuple[int, float, float, int, int]] = []
    counts = {"requests": 0, "accepted": 0, "duplicates": 0, "rejected": 0, "errors": 0, "late": 0}
    lock = threading.Lock()
    per_request = int(seconds / interval)

    def run(thread: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = samples[thread::threads]
        # Sample slots spread evenly over the first 90 % of the run.
        slots = {int((j + 0.5) * 0.9 * per_request / len(mine)): s for j, s in enumerate(mine)} if mine else {}
        thread_rng = random.Random(worker * 1000 + thread)
        local_lat, local, local_samples = [], dict.fromkeys(counts, 0), []
        offset = interval * thread / threads  # the threads of a process do not all send at once
        n = 0
        while True:
            due = start_at + offset + n * interval
            if due >= start_at + seconds:
                break
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            elif wait < -interval:
                local["late"] += 1  # behind schedule by more than one interval: the server is not keeping up
            sample = slots.get(n)
            if sample is not None:
                headers, body = sample_request(ctx, batch, sample[0], sample[1], thread_rng)
            else:
                headers, template = templates[n % len(templates)]
                body = template.replace(MARK, f"{run_id}-{thread}x{n}".encode())
            n += 1
            sent = time.time()
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/api/v1/mp/events/", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                local["errors"] += 1
                if sample is not None:
                    local_samples.append((sample[0], sent, time.time(), 0, 0))
                continue
            done = time.time()
            local_lat.append(time.perf_counter() - t0)
            local["requests"] += 1
            if status != 200:
                local["errors"] += 1
                if sample is not None:
                    local_samples.append((sample[0], sent, done, status, 0))
                continue
            data = json.loads(payload)
            local["accepted"] += data["accepted"]
            local["duplicates"] += data["duplicates"]
            local["rejected"] += len(data["rejected"])
            if sample is not None:
                local_samples.append((sample[0], sent, done, status, data["accepted"]))
        conn.close()
        with lock:
            latencies.extend(local_lat)
            sample_rows.extend(local_samples)
            for key, value in local.items():
                counts[key] += value

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return {"latencies": latencies, "samples": sample_rows, **counts}


class DeliveryPoller:
    """Notes when each journey delivery is first seen committed (every ``every`` seconds, in a thread)."""

    def __init__(self, every: float = 0.05):
        self.every, self.seen = every, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from django.db import connection

        from marketing.models import Delivery

        try:
            while not self._stop.is_set():
                self.poll(Delivery)
                self._stop.wait(self.every)
            self.poll(Delivery)
        finally:
            connection.close()

    def poll(self, model) -> None:
        # Every journey delivery each time (a few hundred rows at most): ids are not committed in id order
        # (two executors at once), so a high-water mark could skip a row committed late.
        rows = list(model.objects.filter(source__startswith="journey:").values_list("member_id", flat=True))
        moment = time.time()
        for member_id in rows:
            self.seen.setdefault(member_id, moment)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def drive(port: int, ctx: dict, *, batch: int, procs: int, threads: int, seconds: float, rate: float,
          samples: list, poller: DeliveryPoller | None = None, drain: float = 0) -> dict:
    """Paced load for ``seconds``; with a poller, waits up to ``drain`` s after it for every sample's delivery."""
    interval = procs * threads * batch / rate  # each connection's time between two requests
    start_at = time.time() + 3  # every process started and built its bodies before the clock starts
    # Spawned, not forked: by now this process has threads (the Celery control connection's), and a child
    # forked while one of them held a lock hung before its first request.
    with mp.get_context("spawn").Pool(procs) as pool:
        pending = pool.map_async(client_proc, [(port, ctx, batch, threads, start_at, seconds, w, interval,
                                                samples[w::procs]) for w in range(procs)])
        if poller is not None:
            poller.start()
        parts = pending.get(timeout=seconds + 120)
    ended = time.time()
    if poller is not None:
        wanted = {member_id for member_id, _token in samples}
        while time.time() < ended + drain and not wanted <= set(poller.seen):
            time.sleep(0.1)
        poller.stop()
    latencies = sorted(lat for part in parts for lat in part["latencies"])
    out = {key: sum(part[key] for part in parts) for key in ("requests", "accepted", "duplicates", "rejected",
                                                             "errors", "late")}
    out["seconds"] = seconds
    out["samples"] = [row for part in parts for row in part["samples"]]
    out.update(p50=pct(latencies, 0.50) * 1000, p95=pct(latencies, 0.95) * 1000, p99=pct(latencies, 0.99) * 1000)
    return out


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] if values else float("nan")


def spread(values: list[float]) -> str:
    if not values:
        return "no values"
    return (f"p50 {pct(values, 0.5):6.2f}  p95 {pct(values, 0.95):6.2f}  p99 {pct(values, 0.99):6.2f}  "
            f"max {max(values):6.2f} s")


# ---------------------------------------------------------------------------- the stages

def stages(rows: list[tuple[int, float, float, int, int]], seen: dict[int, float], journey_id: int) -> dict:
    """Per sample: returned, relayed, handler started, handler committed, executor started, visible (epoch s)."""
    from marketing.models import Delivery, JourneyEnrolment
    from retail_crm.models import EventDelivery, OutboxEvent

    members = [row[0] for row in rows]
    entered = dict(JourneyEnrolment.objects.filter(journey_id=journey_id, member_id__in=members)
                   .values_list("member_id", "entered_at"))
    planned = dict(Delivery.objects.filter(member_id__in=members, source__startswith="journey:")
                   .values_list("member_id", "planned_at"))
    outbox: dict[int, tuple] = {}
    for pk, payload, relayed_at in (OutboxEvent.objects.filter(name="behaviour_recorded")
                                    .values_list("pk", "payload", "relayed_at")):
        if len(payload["member_ids"]) == 1 and payload["member_ids"][0] in entered:
            outbox[payload["member_ids"][0]] = (pk, relayed_at)
    handled = dict(EventDelivery.objects.filter(event_id__in=[pk for pk, _ in outbox.values()],
                                                handler="marketing.handlers.journeys_behaviour_recorded")
                   .values_list("event_id", "delivered_at"))
    out = {}
    for member_id, _sent, returned, _status, _accepted in rows:
        event_id, relayed_at = outbox.get(member_id, (None, None))
        times = [returned, relayed_at, entered.get(member_id), handled.get(event_id), planned.get(member_id),
                 seen.get(member_id)]
        out[member_id] = [t if t is None or isinstance(t, float) else t.timestamp() for t in times]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=3000, help="background members")
    parser.add_argument("--samples", type=int, default=300, help="members whose third view is timed")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rate", type=float, default=2000, help="events/s in all")
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--drain", type=float, default=60, help="s to wait for the last actions after the load")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--no-beat", action="store_true", help="no beat in the worker: only the commit kicks")
    parser.add_argument("--procs", type=int, default=2, help="load-generating processes")
    parser.add_argument("--threads", type=int, default=3, help="connections per load-generating process")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url.startswith("redis"):
        raise SystemExit("This benchmark needs a Celery broker: set REDIS_URL=redis://…/<a database of its own>")
    connections = args.procs * args.threads
    per_connection = int(args.seconds / (connections * args.batch / args.rate))
    if -(-args.samples // connections) > 0.9 * per_connection:
        raise SystemExit(f"{args.samples} samples do not fit in the first 90 % of {per_connection} requests per "
                         f"connection: fewer samples or a longer run")
    prepare_database(url)
    flush_redis(redis_url)
    os.environ.update(DEBUG="0", SECRET_KEY=SECRET, SECURE_SSL_REDIRECT="0", LOG_LEVEL="ERROR",
                      DJANGO_SETTINGS_MODULE="retail_crm.settings")

    import django

    django.setup()
    from django.db import connection
    from django.db.models import Count

    from marketing.models import Delivery, JourneyEnrolment
    from retail_crm.models import OutboxEvent

    t0 = time.perf_counter()
    ctx = seed(args.members, args.samples)
    print(f"seeded 1 brand, 20 products, {args.members} background + {args.samples} sample members with tokens, "
          f"the journey, in {time.perf_counter() - t0:.1f} s")
    connection.close()  # no inherited connection in the forked clients

    log = Path(tempfile.mkdtemp(prefix="journey-bench-")) / "worker.log"
    port = free_port()
    server = start_gunicorn(port, args.workers)
    worker = None
    try:
        worker = start_worker(args.concurrency, log, beat=not args.no_beat)
        warm = drive(port, ctx, batch=args.batch, procs=args.procs, threads=args.threads, seconds=3,
                     rate=args.rate, samples=[])
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE members_behaviourevent")
        connection.close()
        time.sleep(2)  # the warm-up's domain events handled before the clock starts
        before, clock = cpu_snapshot(server, worker), time.time()
        poller = DeliveryPoller()
        run = drive(port, ctx, batch=args.batch, procs=args.procs, threads=args.threads, seconds=args.seconds,
                    rate=args.rate, samples=ctx["samples"], poller=poller, drain=args.drain)
        after, wall = cpu_snapshot(server, worker), time.time() - clock
        load = os.getloadavg()
    finally:
        if worker is not None:
            stop_group(worker)
        stop_gunicorn(server)

    samples = run["samples"]
    timed = stages(samples, poller.seen, ctx["journey"])
    sample_ids = {member_id for member_id, _ in ctx["samples"]}
    ok_requests = [row for row in samples if row[3] == 200 and row[4] == args.batch]
    latency = [timed[m][5] - timed[m][0] for m in timed if timed[m][5] is not None]
    from_sent = [poller.seen[row[0]] - row[1] for row in samples if row[0] in poller.seen]
    enrolled = JourneyEnrolment.objects.filter(journey_id=ctx["journey"])
    strays = enrolled.exclude(member_id__in=sample_ids).count()
    statuses = dict(Delivery.objects.filter(source__startswith="journey:").values_list("status")
                    .annotate(n=Count("pk")).order_by())
    pending = OutboxEvent.objects.filter(done_at__isnull=True).count()
    member_events = OutboxEvent.objects.filter(name="behaviour_recorded").count()

    events_per_s = run["accepted"] / run["seconds"]
    cpu = {key: after[key] - before[key] for key in before}
    print(f"\ngunicorn -w {args.workers} (sync), celery worker --concurrency {args.concurrency}"
          f"{'' if args.no_beat else ' -B'}, {args.procs}×{args.threads} paced keep-alive clients, "
          f"{os.cpu_count()} CPUs, batches of {args.batch} at {args.rate:,.0f} events/s for {args.seconds:.0f} s")
    print(f"events accepted    {run['accepted']:>9,}  ({events_per_s:,.0f} events/s, "
          f"{run['requests'] / run['seconds']:,.1f} requests/s; {run['late']} sends more than one interval late)")
    print(f"HTTP latency ms    p50 {run['p50']:.1f}  p95 {run['p95']:.1f}  p99 {run['p99']:.1f}")
    print(f"errors             {run['errors']} (non-200 or connection), duplicates {run['duplicates']}, "
          f"rejected items {run['rejected']}; the 3 s warm-up before: {warm['accepted']:,} events, "
          f"{warm['errors']} errors")
    print(f"member batches     {member_events:,} behaviour_recorded events in all (warm-up included); "
          f"outbox rows still open at the end: {pending}")
    print(f"samples            {len(samples)} sent, {len(ok_requests)} stored whole, {len(latency)} actions seen; "
          f"enrolments {enrolled.count()} (of other members: {strays}); journey deliveries by status {statuses}")
    print(f"event → action     {spread(latency)}   (from the request returning 200 to the delivery committed)")
    print(f"  from the send    {spread(from_sent)}")
    names = ["returned → relay picked it up", "relay → journey handler started", "handler ran and committed",
             "handler → executor started", "executor → delivery visible"]
    for i, name in enumerate(names):
        values = [t[i + 1] - t[i] for t in timed.values() if t[i] is not None and t[i + 1] is not None]
        print(f"  {name:<32} {spread(values)}")
    print(f"load average       {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min) at the end of the run")
    print("CPU seconds        " + ", ".join(f"{key} {value:.1f}" for key, value in cpu.items())
          + f" over {wall:.0f} s (the load, its 3 s start and the drain; {os.cpu_count()} CPUs: "
          f"{os.cpu_count() * wall:.0f} CPU seconds in all)")
    met = (len(latency) == len(sample_ids) == len(ok_requests) and run["errors"] == warm["errors"] == 0
           and pct(latency, 0.99) < 5 and strays == 0)
    print(f"target p99 < 5 s, every sample's action queued, no errors: {'met' if met else 'NOT met'}")
    if not met:
        print(f"worker log: {log}")
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
