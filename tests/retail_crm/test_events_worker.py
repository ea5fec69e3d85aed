"""Follow-ups survive the broker and the worker: real Redis, a real Celery worker, PostgreSQL.

1. Redis is stopped while a payment notification arrives: the notification still answers 200 and the
   order is paid (its ``order_paid`` event committed with it). Redis comes back empty (it keeps nothing on
   disk); within 60 s the worker's beat relay has handed the event out and the order's sales credits, the
   commission entry and the buyer's tag recompute exist, each handler having run exactly once.
2. The whole worker (main process and pool) is killed with SIGKILL mid-task. A new worker reruns the task
   to completion, once, within the visibility timeout plus one restore sweep (README, "Crashes").

Each test starts its own redis-server on a spare port, so stopping it touches nothing else.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import kombu.pools
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from attribution.models import SalesCredit
from guides.models import CommissionEntry, CommissionRule
from mall.models import Order
from mall.payments.fake import FakeWeChatPay
from mall.payments.services import payment_prepare
from members.models import MemberTag
from members.tags import tag_rules_install_defaults
from retail_crm.celery import app as celery_app
from retail_crm.models import EventDelivery, OutboxEvent
from tests.factories import GuideBindingFactory, GuideFactory, StoreFactory
from tests.factories_payments import paid_ready_order

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOTIFY_URL = "/api/v1/pay/notify/wechat/"

pytestmark = [
    pytest.mark.celery_worker,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the PostgreSQL + Redis CI leg)"),
    pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                       reason="a worker process cannot share the in-memory SQLite test database"),
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server to start a private Redis"),
    pytest.mark.django_db(transaction=True),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """A redis-server of the test's own on a spare port, stopped and started at will (nothing kept on disk)."""

    def __init__(self):
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


def _worker(broker: str, *, extra_env: dict | None = None, beat: bool = False, queues: str = "default,analytics",
            include: str | None = None, log: Path) -> subprocess.Popen:
    """A `celery worker` (prefork, one child) on the test database, in its own process group."""
    db = connection.settings_dict
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": broker, "DJANGO_SETTINGS_MODULE": "retail_crm.settings", "DEBUG": "1",
        "PAYMENT_PROVIDER": "fake", "WECHAT_PROVIDER": "fake", "WECOM_CLIENT": "fake",
    })
    env.setdefault("SECRET_KEY", "worker-test-secret")
    env.update(extra_env or {})
    command = [sys.executable, "-m", "celery", "-A", "retail_crm", "worker", "--pool=prefork", "--concurrency=1",
               "-Q", queues, "--loglevel=INFO", "--without-gossip", "--without-mingle",
               "--hostname", f"events-test-{os.getpid()}-{time.monotonic_ns()}@%h"]
    if beat:
        command += ["-B", "--schedule", str(log.with_suffix(".beat"))]
    if include:
        command += ["-I", include]
    return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=20)


def _use_broker(url: str) -> None:
    """Point this process's Celery app at ``url`` (closing the pooled connections to the old broker).

    ``kombu.pools.reset()`` closes every pooled connection and forgets the pools: kombu keeps its pools in a
    process-wide registry keyed by broker URL, so a pool only closed would be handed back, closed, when a
    later test uses the old URL again ("Acquire on closed pool", even for eager tasks).
    """
    kombu.pools.reset()
    celery_app.conf.broker_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def private_redis():
    redis = PrivateRedis()
    redis.start()
    previous = (celery_app.conf.broker_url, celery_app.conf.task_always_eager)
    celery_app.conf.task_always_eager = False
    _use_broker(redis.url)
    yield redis
    _use_broker(previous[0])
    celery_app.conf.task_always_eager = previous[1]
    redis.stop()


def test_a_payment_notified_while_redis_is_down_gets_its_follow_ups_once_redis_is_back(
        private_redis, api_client, tmp_path):
    store = StoreFactory()
    guide = GuideFactory(store=store)
    example = paid_ready_order(brand=store.brand)
    GuideBindingFactory(member=example.member, guide=guide, started_at=timezone.now() - dt.timedelta(days=1))
    CommissionRule.objects.create(brand=store.brand, rate=Decimal("0.0300"))
    tag_rules_install_defaults(store.brand)
    payment = payment_prepare(order=example.order, member=example.member).payment
    fake = FakeWeChatPay()
    headers, body = fake.notification(fake.pay(payment.out_trade_no))
    http_headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k != "Content-Type"}
    log = tmp_path / "worker.log"
    worker = _worker(private_redis.url, beat=True, extra_env={"EVENTS_RELAY_SECONDS": "2"}, log=log)
    try:
        private_redis.stop()
        response = api_client.post(NOTIFY_URL, data=body, content_type="application/json", **http_headers)
        assert (response.status_code, response.json()) == (200, {"code": "SUCCESS"})
        order = Order.objects.get(pk=example.order.pk)
        assert order.status == "paid"
        event = OutboxEvent.objects.get(name="order_paid")
        assert (event.payload, event.relayed_at) == (
            {"order_id": order.pk, "member_id": example.member.pk, "brand_id": store.brand_id}, None)
        assert not SalesCredit.objects.filter(order=order).exists()

        private_redis.start()
        deadline = time.monotonic() + 60
        handlers = {"attribution.handlers.order_attribute", "members.handlers.member_tags_after_order",
                    "guides.handlers.order_commission_post", "marketing.handlers.order_campaign_attribute",
                    "marketing.handlers.journeys_order_paid", "segments.handlers.member_segments_after_order"}
        while time.monotonic() < deadline:
            if set(EventDelivery.objects.values_list("handler", flat=True)) >= handlers:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"follow-ups not done within 60 s; worker log:\n{log.read_text()[-4000:]}")
    finally:
        _kill_group(worker)

    assert sorted(EventDelivery.objects.values_list("handler", flat=True)) == sorted(handlers)
    credits = list(SalesCredit.objects.filter(order=order).values_list("store_id", "guide_id", "amount"))
    assert sorted(credits, key=str) == sorted([(store.pk, None, Decimal("437.00")),  # the bound guide's store
                                              (store.pk, guide.pk, Decimal("437.00"))], key=str)
    assert list(CommissionEntry.objects.values_list("guide_id", "kind", "amount")) == [
        (guide.pk, "earn", Decimal("13.11"))]
    assert MemberTag.objects.filter(member=example.member, source="rule").exists()
    assert OutboxEvent.objects.filter(done_at__isnull=True).count() == 0


def test_a_killed_worker_s_task_is_rerun_once_within_the_visibility_timeout(private_redis, tmp_path):
    probe = tmp_path / "probe.txt"
    queue = f"crash-{os.getpid()}"
    env = {"CELERY_VISIBILITY_TIMEOUT": "10"}
    first = _worker(private_redis.url, queues=queue, include="tests.worker_tasks", extra_env=env,
                    log=tmp_path / "first.log")
    second = None
    try:
        celery_app.send_task("tests.worker_tasks.crash_probe", args=[str(probe)], queue=queue)
        deadline = time.monotonic() + 60
        while not (probe.exists() and "start" in probe.read_text()):
            assert time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.2)
        taken = time.monotonic()
        _kill_group(first)  # main process and pool child, no chance to requeue
        second = _worker(private_redis.url, queues=queue, include="tests.worker_tasks", extra_env=env,
                         log=tmp_path / "second.log")
        while "done" not in probe.read_text():
            assert time.monotonic() - taken < 60, (tmp_path / "second.log").read_text()[-3000:]
            time.sleep(0.2)
        rerun_after = time.monotonic() - taken
        time.sleep(3)  # nothing runs it a third time
    finally:
        for worker in (first, second):
            if worker is not None:
                _kill_group(worker)

    assert probe.read_text().splitlines() == ["start", "start", "done"]
    # visibility timeout (10 s) + one restore sweep (10 s) + the new worker's start-up
    assert 10 <= rerun_after < 10 + 10 + 15
