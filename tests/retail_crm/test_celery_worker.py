"""A task run by a real Celery worker process, through Redis, against PostgreSQL.

Runs in the PostgreSQL + Redis leg of CI (REDIS_URL set, DATABASE_URL on
PostgreSQL); on the embedded SQLite default it is skipped, because an
in-memory test database cannot be shared with another process.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from analytics.models import SalesFact
from mall.models import Channel, OrderStatus
from retail_crm.celery import app as celery_app
from tests.factories import GuideFactory, MemberFactory, OrderFactory

PROJECT_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.celery_worker,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the PostgreSQL + Redis CI leg)"),
    pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                       reason="a worker process cannot share the in-memory SQLite test database"),
]


@pytest.fixture
def celery_worker_process(transactional_db):
    """Start `celery worker` on the test database; stop it afterwards."""
    db = connection.settings_dict
    env = dict(os.environ)
    env["DATABASE_URL"] = (f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
                           f"{db['NAME']}")
    env["DJANGO_SETTINGS_MODULE"] = "retail_crm.settings"
    env.setdefault("SECRET_KEY", "worker-test-secret")
    env["DEBUG"] = "1"
    queue = f"test-{os.getpid()}"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "retail_crm", "worker", "--pool=solo", "--concurrency=1",
         "-Q", queue, "--hostname", f"{queue}@%h", "--loglevel=WARNING", "--without-gossip", "--without-mingle"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"celery worker exited early:\n{process.stdout.read()}")
            replies = celery_app.control.ping(destination=[f"{queue}@{os.uname().nodename}"], timeout=1.0)
            if replies:
                break
        else:
            pytest.fail("celery worker did not answer a ping within 60 s")
        yield queue
    finally:
        celery_app.conf.task_always_eager = previous
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_sales_facts_task_runs_in_a_real_worker(celery_worker_process):
    from analytics.tasks import sales_facts_rebuild_range

    guide = GuideFactory()
    store, brand = guide.store, guide.store.brand
    member = MemberFactory(group=brand.group)
    day = dt.date(2026, 3, 8)
    at = dt.datetime(2026, 3, 8, 15, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    OrderFactory(brand=brand, store=store, guide=guide, member=member, channel=Channel.STORE_POS, ordered_at=at,
                 total_amount=Decimal("899.00"), paid_amount=Decimal("899.00"), refunded_amount=Decimal("100.00"))
    OrderFactory(brand=brand, store=store, guide=guide, member=member, channel=Channel.STORE_POS, ordered_at=at,
                 total_amount=Decimal("300.00"), paid_amount=Decimal("300.00"))
    OrderFactory(brand=brand, store=store, guide=guide, member=None, channel=Channel.STORE_POS, ordered_at=at,
                 status=OrderStatus.CANCELLED, paid_at=None, total_amount=Decimal("50.00"),
                 paid_amount=Decimal("0.00"))

    result = sales_facts_rebuild_range.apply_async(args=[day.isoformat(), day.isoformat()],
                                                   queue=celery_worker_process)
    assert result.get(timeout=60) == {"date_from": "2026-03-08", "date_to": "2026-03-08", "rows_written": 1}

    fact = SalesFact.objects.get()
    assert (fact.day, fact.brand_id, fact.store_id, fact.guide_id, fact.channel) == (
        day, brand.pk, store.pk, guide.pk, "store_pos")
    assert (fact.orders, fact.gmv, fact.paid_orders) == (3, Decimal("1249.00"), 2)
    assert (fact.paid_amount, fact.refunded_amount, fact.sales_flow, fact.buyers) == (
        Decimal("1199.00"), Decimal("100.00"), Decimal("1099.00"), 1)

    # Safe to run twice: the second delivery rewrites the same single row.
    again = sales_facts_rebuild_range.apply_async(args=[day.isoformat(), day.isoformat()],
                                                  queue=celery_worker_process)
    assert again.get(timeout=60)["rows_written"] == 1
    assert SalesFact.objects.count() == 1
