"""Celery tasks for behaviour events (filled by the events work)."""
