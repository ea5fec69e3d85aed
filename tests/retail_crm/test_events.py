"""retail_crm.events: the outbox records with the writing transaction, relays, and delivers each handler once.

Handlers here are small functions in this module that count their calls in a list, subscribed for the
duration of a test (the app's own subscriptions are swapped out and restored).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from retail_crm import events
from retail_crm.models import EventDelivery, OutboxEvent

pytestmark = pytest.mark.django_db

CALLS: list[tuple[str, int]] = []
FAIL: set[str] = set()


def note_paid(*, order_id):
    if "note_paid" in FAIL:
        raise RuntimeError("handler down")
    CALLS.append(("note_paid", order_id))


def note_buyer(*, member_id, brand_id):
    CALLS.append(("note_buyer", member_id))


HANDLERS = ("tests.retail_crm.test_events.note_paid", "tests.retail_crm.test_events.note_buyer")


@pytest.fixture(autouse=True)
def only_test_subscribers(monkeypatch):
    monkeypatch.setattr(events, "_subscriptions", events.defaultdict(dict))
    events.subscribe("order_paid", HANDLERS[0], keys=("order_id",))
    events.subscribe("order_paid", HANDLERS[1], keys=("member_id", "brand_id"))
    CALLS.clear()
    FAIL.clear()
    yield
    CALLS.clear()
    FAIL.clear()


def sent_to(log):
    return lambda event_id, handler: log.append((event_id, handler))


def test_a_rolled_back_change_records_nothing():
    with pytest.raises(RuntimeError), transaction.atomic():
        events.record("order_paid", order_id=1, member_id=2, brand_id=3)
        raise RuntimeError("the order write failed")
    assert OutboxEvent.objects.count() == 0


def test_unknown_events_are_refused():
    with pytest.raises(ValueError, match="Unknown event 'order_payed'"):
        events.record("order_payed", order_id=1)
    with pytest.raises(ValueError):
        events.subscribe("nothing_happened", "x.y", keys=())


def test_relay_hands_each_subscriber_once_and_delivery_is_idempotent():
    row = events.record("order_paid", order_id=7, member_id=70, brand_id=1)
    log: list = []

    first = events.relay(send=sent_to(log))
    second = events.relay(send=sent_to(log))  # nothing due: just relayed, not yet past its back-off

    assert (first.relayed, first.deliveries, first.done) == (1, 2, 0)
    assert (second.relayed, second.deliveries) == (0, 0)
    assert log == [(row.pk, HANDLERS[0]), (row.pk, HANDLERS[1])]
    assert events.deliver(event_id=row.pk, handler=HANDLERS[0]) is True
    assert events.deliver(event_id=row.pk, handler=HANDLERS[0]) is False  # a redelivered message
    row.refresh_from_db()
    assert row.done_at is None  # one subscriber still to run
    assert events.deliver(event_id=row.pk, handler=HANDLERS[1]) is True
    row.refresh_from_db()
    assert row.done_at is not None
    assert CALLS == [("note_paid", 7), ("note_buyer", 70)]
    assert EventDelivery.objects.filter(event=row).count() == 2


def test_a_failing_handler_is_sent_again_after_a_doubling_back_off():
    FAIL.add("note_paid")
    row = events.record("order_paid", order_id=8, member_id=80, brand_id=1)
    start = timezone.now()
    log: list = []

    events.relay(now=start, send=sent_to(log))
    with pytest.raises(RuntimeError):
        events.deliver(event_id=row.pk, handler=HANDLERS[0])
    events.deliver(event_id=row.pk, handler=HANDLERS[1])
    too_soon = events.relay(now=start + dt.timedelta(minutes=4, seconds=59), send=sent_to(log))
    retry_1 = events.relay(now=start + dt.timedelta(minutes=5), send=sent_to(log))
    too_soon_2 = events.relay(now=start + dt.timedelta(minutes=14), send=sent_to(log))  # back-off now 10 min
    retry_2 = events.relay(now=start + dt.timedelta(minutes=15), send=sent_to(log))

    assert (too_soon.deliveries, retry_1.deliveries, too_soon_2.deliveries, retry_2.deliveries) == (0, 1, 0, 1)
    assert log == [(row.pk, HANDLERS[0]), (row.pk, HANDLERS[1]), (row.pk, HANDLERS[0]), (row.pk, HANDLERS[0])]
    assert not EventDelivery.objects.filter(event=row, handler=HANDLERS[0]).exists()  # its writes rolled back
    FAIL.clear()
    assert events.deliver(event_id=row.pk, handler=HANDLERS[0]) is True
    row.refresh_from_db()
    assert (row.attempts, row.done_at is not None) == (3, True)
    assert CALLS == [("note_buyer", 80), ("note_paid", 8)]


def test_a_broker_failure_while_relaying_leaves_every_row_due():
    first = events.record("order_paid", order_id=1, member_id=10, brand_id=1)
    events.record("order_paid", order_id=2, member_id=20, brand_id=1)

    def broker_down(event_id, handler):
        raise ConnectionError("redis: connection refused")

    with pytest.raises(ConnectionError):
        events.relay(send=broker_down)
    assert OutboxEvent.objects.filter(relayed_at__isnull=True, attempts=0).count() == 2
    log: list = []
    assert events.relay(send=sent_to(log)).deliveries == 4
    assert log[0] == (first.pk, HANDLERS[0])


def test_an_event_every_subscriber_handled_is_closed_by_the_relay_and_purged_after_a_week():
    row = events.record("order_paid", order_id=3, member_id=30, brand_id=1)
    now = timezone.now()
    EventDelivery.objects.bulk_create([EventDelivery(event=row, handler=h) for h in HANDLERS])
    assert events.relay(now=now, send=sent_to([])).done == 1
    assert events.purge(days=7, now=now + dt.timedelta(days=6)) == 0
    assert events.purge(days=7, now=now + dt.timedelta(days=8)) == 1
    assert not EventDelivery.objects.exists()


def test_after_commit_the_kick_delivers_at_once_without_a_broker(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            row = events.record("order_paid", order_id=5, member_id=50, brand_id=1)
            assert CALLS == []  # nothing runs before the commit
    row.refresh_from_db()
    assert CALLS == [("note_paid", 5), ("note_buyer", 50)]
    assert row.done_at is not None
