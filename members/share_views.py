"""Counting views of a guide's share (share PV/UV) so one visitor cannot inflate them.

The rule, used by every figure built on share views (the share funnel in ``guides.sharing``, the workbench's
material PV/UV in ``guides.selectors``, the guide's daily ``EngagementFact`` in ``analytics.facts`` and so the
guide KPIs and rankings):

* **Who the viewer is**: the logged-in member; an anonymous visitor is the ``visitor_id`` the mini-program sends
  (required on every anonymous event; the mini-program keeps one per install). The server does not guess people
  from IP and user agent: behind one shared NAT (a mall's Wi-Fi) the same phone model would merge real people.
  A script inventing visitor ids is held back by the rate limits instead (README "Rate limits": per client and
  per IP).
* **PV (views)**: a viewer's views of one share within one window of ``settings.SHARE_VIEW_WINDOW_MINUTES``
  (default 30) count **once**. The windows are fixed clock windows (00:00–00:30, 00:30–01:00 …, counted
  from 1970-01-01 UTC; with a window that divides a day they also start at local midnight in whole-hour time
  zones such as Asia/Shanghai). So 100 views of one share by one visitor in 12:00–12:30 are PV 1; a view at
  12:10 and one at 12:40 are PV 2.
* **UV (visitors)**: distinct viewers, whatever the windows.

Decision: applied when counting, not at ingestion. Every raw event is kept as sent (daily activity counters,
tags and segments read them too); counting distinct (share, viewer, window) keys is exact even when two
batches of one visitor arrive at once (an ingestion-time "first in the window" check would race), needs no
migration, applies to the events already stored, and follows a change of the window setting. Reads stay cheap:
the funnel reads one share's events through the share-token index, and the dashboards read the daily facts.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import BigIntegerField, Case, CharField, F, Func, Value, When
from django.db.models.functions import Cast, Concat


class ClockWindow(Func):
    """The number of the fixed clock window (``seconds`` long, counted from 1970-01-01 UTC) a time falls in."""

    arity = 1
    output_field = BigIntegerField()
    template = "CAST(FLOOR(EXTRACT(EPOCH FROM %(expressions)s) / %(seconds)d) AS bigint)"

    def __init__(self, expression, *, seconds: int):
        if not isinstance(seconds, int) or seconds <= 0:
            raise ValueError("seconds must be a positive whole number")
        super().__init__(expression, seconds=seconds)

    def as_sqlite(self, compiler, connection, **extra_context):
        # Times are stored as UTC text 'YYYY-MM-DD HH:MM:SS.ffffff'; strftime('%s') of its whole seconds (it
        # would round 59.9999995 up into the next window) is the Unix time. '%%%%' survives two % formattings.
        return self.as_sql(compiler, connection,
                           template="(CAST(strftime('%%%%s', substr(%(expressions)s, 1, 19)) AS INTEGER) "
                                    "/ %(seconds)d)",
                           **extra_context)


def window_seconds() -> int:
    return settings.SHARE_VIEW_WINDOW_MINUTES * 60


def event_viewer():
    """A behaviour event's viewer: ``m<member id>`` for a member, else ``v<visitor id>``.

    An explicit CASE: Concat turns NULL into "" on every database, which would merge members with visitors.
    """
    return Case(When(member_id__isnull=False, then=Concat(Value("m"), Cast("member_id", CharField()))),
                default=Concat(Value("v"), F("visitor_id")), output_field=CharField())


def share_view_key():
    """One value per counted share view: share code, viewer and window. Count it ``distinct=True`` for PV."""
    window = Cast(ClockWindow("occurred_at", seconds=window_seconds()), CharField())
    return Concat(F("share_token"), Value("|"), event_viewer(), Value("|"), window, output_field=CharField())
