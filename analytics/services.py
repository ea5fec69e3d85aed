"""Building the dashboard's fact tables. Each rebuild is idempotent: same input, same rows."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

# The builders live in analytics.facts; these names stay importable from here.
from analytics.facts import FactRebuildResult, facts_rebuild, sales_facts_rebuild  # noqa: F401


def local_today() -> dt.date:
    return timezone.localdate(timezone.now(), timezone=timezone.get_default_timezone())
