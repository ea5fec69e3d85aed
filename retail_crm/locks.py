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


def job_lock_shared(name: str) -> None:
    """Take the named job lock shared for the rest of the current transaction.

    Many holders of the shared lock run at once; the job (``job_lock``) waits for them all and they wait
    for it: small updates of a few rows of a derived table exclude its full rebuild, not one another.
    On SQLite writers are serialised anyway.
    """
    from retail_crm.models import JobLock

    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("job_lock_shared() must be called inside transaction.atomic()")
    JobLock.objects.get_or_create(name=name)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {JobLock._meta.db_table} WHERE name = %s FOR SHARE", [name])  # noqa: S608
