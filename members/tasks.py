"""Celery tasks of the members app; each area keeps its tasks in its own module, registered here."""

from members import event_tasks, tag_tasks  # noqa: F401
