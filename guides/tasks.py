"""Celery tasks for guides. Each area keeps its tasks in its own module; importing them here registers them."""

from guides import commission_tasks  # noqa: F401
