"""livestream.selectors: read-only queries for the schedule (排班) views, always scoped; and the session an order
names at checkout (answering mall's ``order_live_session`` hook)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.utils import timezone

from livestream.models import LiveSession
from mall.checkout import OrderLiveSession
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand, Store
from retail_crm.scoping import Actor, actor_for, in_scope, scoped
from retail_crm.vocabulary import Channel


def store_schedule(*, actor, store: Store, week_start: dt.date) -> QuerySet[LiveSession]:
    """The store's sessions planned to start in the 7 local days from ``week_start``, earliest first.

    Cancelled sessions are included (the workbench shows them struck through). 404 for a store outside
    the actor's scope.

    The schedule is the store's, so whoever sees the store sees all of its sessions: a guide sees every
    session of their own store (the ones colleagues host, and the store's 1+N sessions that follow an HQ
    central one), not only those they host (LiveSession's own guide-level scope, which still governs the
    session figures and coaching notes). Visibility goes through the store's scope rule.
    """
    actor = actor if isinstance(actor, Actor) else actor_for(actor)
    visible_store = scoped(Store.objects.filter(pk=store.pk), actor)
    if not visible_store.exists():
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such store.", status=404)
    # Weeks are local weeks: a session at 01:00 Monday Shanghai time belongs to that Monday's week.
    start = timezone.make_aware(dt.datetime.combine(week_start, dt.time.min))
    end = timezone.make_aware(dt.datetime.combine(week_start + dt.timedelta(days=7), dt.time.min))
    return (LiveSession.objects.filter(host_store__in=visible_store.values("pk"), planned_start__gte=start,
                                       planned_start__lt=end)
            .select_related("host_guide", "follows")
            .order_by("planned_start", "pk"))


@dataclass(frozen=True)
class StoreWeekSummary:
    """One store's week against the schedule: the phase-1 KPI inputs (session count and hours live)."""

    store_id: int
    planned: int  # sessions still planned or already held (cancelled ones excluded)
    held: int  # sessions that ended
    cancelled: int
    planned_hours: Decimal  # planned duration of the non-cancelled sessions
    live_hours: Decimal  # actual duration of the ended sessions


def _hours(value: dt.timedelta | None) -> Decimal:
    seconds = Decimal(int((value or dt.timedelta()).total_seconds()))
    return (seconds / Decimal(3600)).quantize(Decimal("0.01"))


def brand_week_summary(*, actor, brand: Brand, week_start: dt.date) -> list[StoreWeekSummary]:
    """Per store of the brand that the actor sees: planned vs held sessions and hours in one local week.

    One grouped query; stores without sessions that week are left out. 404 for a brand outside the scope.
    """
    actor = actor if isinstance(actor, Actor) else actor_for(actor)
    if not in_scope(brand, actor):
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such brand.", status=404)
    start = timezone.make_aware(dt.datetime.combine(week_start, dt.time.min))
    end = timezone.make_aware(dt.datetime.combine(week_start + dt.timedelta(days=7), dt.time.min))
    active = ~Q(status=LiveSession.Status.CANCELLED)
    ended = Q(status=LiveSession.Status.ENDED)
    duration = ExpressionWrapper(F("planned_end") - F("planned_start"), output_field=DurationField())
    live = ExpressionWrapper(F("actual_end") - F("actual_start"), output_field=DurationField())
    rows = (scoped(LiveSession.objects.filter(brand=brand, kind=LiveSession.Kind.STORE, planned_start__gte=start,
                                              planned_start__lt=end), actor)
            .values("host_store_id")
            .annotate(planned=Count("pk", filter=active), held=Count("pk", filter=ended),
                      cancelled=Count("pk", filter=~active), planned_time=Sum(duration, filter=active),
                      live_time=Sum(live, filter=ended))
            .order_by("host_store_id"))
    return [StoreWeekSummary(store_id=r["host_store_id"], planned=r["planned"], held=r["held"],
                             cancelled=r["cancelled"], planned_hours=_hours(r["planned_time"]),
                             live_hours=_hours(r["live_time"])) for r in rows]


def order_live_session(*, live_session_id: int, brand: Brand) -> OrderLiveSession | None:
    """An order placed in the brand's session ``live_session_id``: its channel and host store (hook of mall)."""
    session = LiveSession.objects.filter(pk=live_session_id, brand=brand).first()
    if session is None:
        return None
    channel = Channel.STORE_LIVE if session.kind == LiveSession.Kind.STORE else Channel.HQ_LIVE
    return OrderLiveSession(session_id=session.pk, channel=channel, store=session.host_store)
