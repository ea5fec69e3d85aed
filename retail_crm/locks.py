"""Serialising jobs that rebuild derived tables."""

from __future__ import annotations

from django.db import transaction


def job_lock(name: str) -> None:
    """Take the named job lock for the rest of the current transaction.

    On PostgreSQL this is a row lock held until commit; on SQLite the write
    below takes the database write lock, which serialises writers anyway.
    """
    from retail_crm.models import JobLock

    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("job_lock() must be called inside transaction.atomic()")
    JobLock.objects.get_or_create(name=name)
    JobLock.objects.select_for_update().get(name=name)
