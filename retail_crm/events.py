"""Domain events through a transactional outbox: record in the writing transaction, relay, deliver once.

A lower app says what happened; the apps above it decide what follows (ARCHITECTURE.md, "Events instead
of upward imports"):

    events.record("order_paid", order_id=order.pk, member_id=order.member_id, brand_id=order.brand_id)

writes one ``OutboxEvent`` row inside the caller's transaction. Upper apps subscribe in their
``AppConfig.ready``:

    events.subscribe("order_paid", "attribution.handlers.order_attribute", keys=("order_id",))

The **relay** (``relay``; the task ``retail_crm.events.relay``) hands each committed row to one
``retail_crm.events.deliver`` task per subscriber. It runs right after the recording transaction commits
(a best-effort kick) and every ``EVENTS_RELAY_SECONDS`` from beat, so a row whose kick was lost (the
broker was down, the process died) goes out at the next beat once the broker is back: late, never lost.
Rows are claimed with ``SKIP LOCKED``, so several relays never hand out the same row at once.

A **delivery** runs the handler and writes an ``EventDelivery`` row in one transaction. The unique
(event, handler) pair makes it idempotent: a message delivered twice, or a delivery the relay sent again
because it had not finished in time, finds the row and does nothing. A handler that raises leaves no row;
the relay sends it again after a back-off (``redeliver_after``), doubling per attempt up to six hours,
and logs an error from the fifth attempt on. The outbox is the retry mechanism: the Celery messages are
only the transport, and even a broker that lost its queue (Redis without persistence) loses nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string

from retail_crm.models import EventDelivery, OutboxEvent

logger = logging.getLogger(__name__)

#: The events apps may record, and what their payload carries. Recording any other name is a bug.
EVENTS: dict[str, str] = {
    "order_paid": "A mall order was paid: order_id, member_id, brand_id.",
    "order_refunded": "Money went back on an order (a refund or a return): order_id, member_id, brand_id.",
    "orders_imported": "POS or channel orders were imported: brand_id, date_from, date_to (local days).",
    "member_merged": "Two member records became one: survivor_id, absorbed_id, order_ids (orders re-attributed).",
    "credits_posted": "Sales credits of an order were (re)written by attribution: order_id.",
    "order_created": "A mall order was created (pending payment): order_id, member_id, brand_id.",
    "cart_item_added": "A member put a SKU in the cart (or changed its quantity): member_id, brand_id, sku_id, at.",
    "member_joined": "A member joined a brand (a new brand membership): member_id, brand_id.",
    "try_on_recorded": "A guide recorded an in-store try-on: event_id, member_id, brand_id, product_code, at.",
    "behaviour_recorded": "Behaviour events of members were stored (one per brand in a batch): brand_id, member_ids.",
    "rfml_class_changed": "A same-day RFML update moved a member's class (the nightly run records none): "
                          "member_id, brand_id, from_segment, to_segment, on (the local day of the change).",
}

REDELIVER_AFTER = dt.timedelta(minutes=5)
REDELIVER_MAX = dt.timedelta(hours=6)
RELAY_BATCH = 500


@dataclass(frozen=True)
class Subscription:
    """A handler (dotted path of a plain function) and the payload keys it takes as keyword arguments."""

    event: str
    handler: str
    keys: tuple[str, ...]


_subscriptions: dict[str, dict[str, Subscription]] = defaultdict(dict)


def subscribe(event: str, handler: str, *, keys: Iterable[str]) -> None:
    """Run ``handler(**{k: payload[k] for k in keys})`` once for every ``event`` recorded from now on.

    Called from an app's ``AppConfig.ready``; subscribing the same handler twice is harmless.
    """
    if event not in EVENTS:
        raise ValueError(f"Unknown event {event!r}; declare it in retail_crm.events.EVENTS")
    _subscriptions[event][handler] = Subscription(event=event, handler=handler, keys=tuple(keys))


def subscriptions(event: str) -> list[Subscription]:
    """The handlers of ``event``, in the order they subscribed."""
    return list(_subscriptions.get(event, {}).values())


def record(event: str, **payload) -> OutboxEvent:
    """Record ``event`` in the current transaction (its row commits or rolls back with the caller's writes).

    After the commit the relay is kicked so the follow-ups start within moments; if that kick fails (the
    broker is down) the beat relay picks the row up later. The kick never fails the caller.
    """
    if event not in EVENTS:
        raise ValueError(f"Unknown event {event!r}; declare it in retail_crm.events.EVENTS")
    row = OutboxEvent.objects.create(name=event, payload=payload)
    transaction.on_commit(_kick, robust=True)
    return row


def _kick() -> None:
    from retail_crm.tasks import events_relay

    events_relay.delay()


def _backoff(attempts: int) -> dt.timedelta:
    return min(REDELIVER_AFTER * (2 ** max(attempts - 1, 0)), REDELIVER_MAX)


@dataclass(frozen=True)
class RelayResult:
    relayed: int  # events handed out (or handed out again)
    deliveries: int  # deliver tasks sent
    done: int  # events found complete and closed


def relay(*, now: dt.datetime | None = None, limit: int = RELAY_BATCH,
          send: Callable[[int, str], None] | None = None) -> RelayResult:
    """Hand due outbox rows to their subscribers; close the rows every subscriber has handled.

    A row is due when it was never relayed, or when its last relay is older than its back-off and some
    subscriber has still not handled it. If sending fails (the broker is down) the transaction rolls back
    and every row stays due. ``send(event_id, handler)`` defaults to queuing ``retail_crm.events.deliver``.
    """
    now = now or timezone.now()
    if send is None:
        send = _send

    relayed = sent = closed = 0
    with transaction.atomic():
        rows = list(OutboxEvent.objects.select_for_update(skip_locked=True)
                    .filter(done_at__isnull=True)
                    .filter(Q(relayed_at__isnull=True) | Q(relayed_at__lte=now - REDELIVER_AFTER))
                    .order_by("pk")[:limit])
        handled = set(EventDelivery.objects.filter(event__in=[r.pk for r in rows])
                      .values_list("event_id", "handler"))
        finished, touched = [], []
        for row in rows:
            missing = [s for s in subscriptions(row.name) if (row.pk, s.handler) not in handled]
            if not missing:
                finished.append(row.pk)
                continue
            if row.relayed_at is not None and row.relayed_at > now - _backoff(row.attempts):
                continue
            if row.attempts >= 4:
                logger.error("event %s #%s: %s still not handled after %s attempts", row.name, row.pk,
                             ", ".join(s.handler for s in missing), row.attempts)
            for subscription in missing:
                send(row.pk, subscription.handler)
                sent += 1
            row.relayed_at, row.attempts = now, row.attempts + 1
            touched.append(row)
            relayed += 1
        OutboxEvent.objects.bulk_update(touched, ["relayed_at", "attempts"])
        if finished:
            closed = OutboxEvent.objects.filter(pk__in=finished).update(done_at=now)
    return RelayResult(relayed=relayed, deliveries=sent, done=closed)


def _send(event_id: int, handler: str) -> None:
    """Queue one delivery. Without a broker (eager Celery: tests, the demo) it runs here, and a failing
    handler is logged and left for the relay's next attempt instead of undoing the other deliveries."""
    from retail_crm.tasks import event_deliver

    if not event_deliver.app.conf.task_always_eager:
        event_deliver.delay(event_id, handler)
        return
    try:
        deliver(event_id=event_id, handler=handler)
    except Exception:
        logger.exception("event #%s: handler %s failed; the relay will try again", event_id, handler)


def deliver(*, event_id: int, handler: str) -> bool:
    """Run one subscriber for one event, once. Returns False when it had already run (or the event is gone).

    The handler's writes and the ``EventDelivery`` row commit together; a concurrent copy of the same
    delivery fails on the unique pair and rolls its writes back. The last subscriber to finish closes the
    event; if two finish at once the relay closes it on its next pass.
    """
    event = OutboxEvent.objects.filter(pk=event_id).first()
    if event is None:
        return False
    subscription = _subscriptions.get(event.name, {}).get(handler)
    if subscription is None:
        logger.warning("event %s #%s: no subscriber %s any more; skipped", event.name, event.pk, handler)
        return False
    try:
        with transaction.atomic():
            if EventDelivery.objects.filter(event_id=event_id, handler=handler).exists():
                return False
            function = import_string(handler)
            function(**{key: event.payload.get(key) for key in subscription.keys})
            EventDelivery.objects.create(event_id=event_id, handler=handler)
    except IntegrityError:
        if EventDelivery.objects.filter(event_id=event_id, handler=handler).exists():
            return False  # a concurrent copy of this delivery won; ours was rolled back
        raise
    wanted = {s.handler for s in subscriptions(event.name)}
    if wanted <= set(EventDelivery.objects.filter(event_id=event_id).values_list("handler", flat=True)):
        OutboxEvent.objects.filter(pk=event_id, done_at__isnull=True).update(done_at=timezone.now())
    return True


def purge(*, days: int = 7, now: dt.datetime | None = None) -> int:
    """Delete events closed more than ``days`` ago (and their deliveries); open events are never purged."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    done = OutboxEvent.objects.filter(done_at__lt=cutoff)
    EventDelivery.objects.filter(event__in=done.values("pk")).delete()
    deleted, _ = done.delete()
    return deleted
