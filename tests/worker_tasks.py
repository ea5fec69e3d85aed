"""A task only the crash test's worker loads (``celery worker -I tests.worker_tasks``).

``crash_probe`` writes ``start`` to a file each time it begins and ``done`` when it ends. The first run
then stays busy long enough for the test to kill the whole worker; a rerun finds its earlier ``start`` and
finishes at once.
"""

from __future__ import annotations

import time
from pathlib import Path

from celery import shared_task


@shared_task(name="tests.worker_tasks.crash_probe")
def crash_probe(path: str, busy_seconds: float = 120.0) -> str:
    log = Path(path)
    rerun = log.exists() and "start" in log.read_text()
    with log.open("a") as out:
        out.write("start\n")
    if not rerun:
        time.sleep(busy_seconds)
    with log.open("a") as out:
        out.write("done\n")
    return "done"
