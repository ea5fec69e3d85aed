"""Shared plumbing for the HTTP benchmarks: a fresh database, gunicorn on a free port, a keep-alive load.

The load generator runs ``procs`` processes × ``threads`` threads on this machine, each thread holding one
keep-alive ``http.client`` connection and sending requests built by a caller-supplied function until a
shared deadline. Results: request count, errors, latency percentiles, and whatever the caller's
``on_response`` counts.
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "benchmark-only-secret-key-not-for-production"  # noqa: S105
SERVER_ENV = {"DEBUG": "0", "SECRET_KEY": SECRET, "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "0",
              "LOG_LEVEL": "ERROR", "DJANGO_SETTINGS_MODULE": "retail_crm.settings",
              "PYTHONWARNINGS": "ignore:No directory at",  # whitenoise: no collectstatic here
              # A handful of load clients stand for thousands of phones: the per-client rate limits would
              # measure the throttle, not ingestion (README "Rate limits").
              "THROTTLE_ENABLED": "0"}


def prepare_database(url: str) -> None:
    """Drop and create the PostgreSQL database named in ``url`` (benchmarks never reuse a dirty one)."""
    if not url.startswith("postgres"):
        raise SystemExit("This benchmark needs PostgreSQL: set DATABASE_URL=postgres://…")
    import psycopg2

    name = url.rsplit("/", 1)[1]
    admin = psycopg2.connect(url.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port: int, workers: int) -> subprocess.Popen:
    """gunicorn with production settings (DEBUG off); waits until /healthz answers."""
    env = dict(os.environ, **SERVER_ENV)
    proc = subprocess.Popen([str(ROOT / ".venv/bin/gunicorn"), "retail_crm.wsgi", "-w", str(workers),
                             "-b", f"127.0.0.1:{port}", "--log-level", "warning"], cwd=ROOT, env=env,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return proc
        except OSError:
            time.sleep(0.2)
    stop_gunicorn(proc)
    raise SystemExit("gunicorn did not answer /healthz within 30 s")


def stop_gunicorn(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# A request factory: (process index, thread index, request number) → (method, path, headers, body or None).
RequestFactory = Callable[[int, int, int], tuple[str, str, dict, bytes | None]]
# Called with (status, body) for every response; returns counters to add up (e.g. {"accepted": 100}).
ResponseCounter = Callable[[int, bytes], dict[str, int]]


def _client_proc(args) -> dict:
    port, make_request, count_response, threads, start_at, seconds, proc_index = args
    latencies: list[float] = []
    totals: dict[str, int] = {"requests": 0, "errors": 0}
    lock = threading.Lock()

    def run(thread: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        local_lat: list[float] = []
        local: dict[str, int] = {"requests": 0, "errors": 0}
        n = 0
        while time.time() < start_at:
            time.sleep(0.005)
        deadline = start_at + seconds
        while time.time() < deadline:
            n += 1
            method, path, headers, body = make_request(proc_index, thread, n)
            t0 = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                local["errors"] += 1
                continue
            local_lat.append(time.perf_counter() - t0)
            local["requests"] += 1
            if response.status >= 400:
                local["errors"] += 1
            if count_response is not None:
                for key, value in count_response(response.status, payload).items():
                    local[key] = local.get(key, 0) + value
        conn.close()
        with lock:
            latencies.extend(local_lat)
            for key, value in local.items():
                totals[key] = totals.get(key, 0) + value

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return {"latencies": latencies, **totals}


def drive(port: int, make_request: RequestFactory, *, procs: int, threads: int, seconds: float,
          count_response: ResponseCounter | None = None) -> dict:
    """Run the load for ``seconds``; returns totals, requests/s and latency p50/p95/p99 in ms."""
    start_at = time.time() + 1.5  # every process is ready before the clock starts
    ctx = mp.get_context("fork")  # forked children inherit the factories: closures need no pickling
    results = ctx.Queue()

    def child(proc_index: int) -> None:
        results.put(_client_proc((port, make_request, count_response, threads, start_at, seconds, proc_index)))

    children = [ctx.Process(target=child, args=(p,)) for p in range(procs)]
    for process in children:
        process.start()
    parts = [results.get(timeout=seconds + 120) for _ in children]
    for process in children:
        process.join()
    latencies = sorted(lat for part in parts for lat in part["latencies"])
    keys = {key for part in parts for key in part if key != "latencies"}
    out: dict = {key: sum(part.get(key, 0) for part in parts) for key in keys}
    out["seconds"] = seconds
    out["rps"] = out["requests"] / seconds

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    out.update(p50=pct(0.50), p95=pct(0.95), p99=pct(0.99))
    return out
