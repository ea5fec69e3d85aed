"""livestream.selectors: read-only queries for the schedule (排班) views, always scoped."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.utils import timezone

from livestream.models import LiveSession
from retail_crm.errors import ApplicationError
from retail_crm.models import Store
from retail_crm.scoping import Actor, actor_for, in_scope, scoped


def store_schedule(*, actor, store: Store, week_start: dt.date) -> QuerySet[LiveSession]:
    """The store's sessions planned to start in the 7 local days from ``week_start``, earliest first.

    Cancelled sessions are included (the workbench shows them struck through). 404 for a store outside
    the actor's scope.
    """
    actor = actor if isinstance(actor, Actor) else actor_for(actor)
    if not in_scope(store, actor):
        raise ApplicationError("not_found", "No such store.", status=404)
    # Weeks are local weeks: a session at 01:00 Monday Shanghai time belongs to that Monday's week.
    start = timezone.make_aware(dt.datetime.combine(week_start, dt.time.min))
    end = timezone.make_aware(dt.datetime.combine(week_start + dt.timedelta(days=7), dt.time.min))
    return (scoped(LiveSession.objects.filter(host_store=store, planned_start__gte=start, planned_start__lt=end),
                   actor)
            .select_related("host_guide", "follows")
            .order_by("planned_start", "pk"))
