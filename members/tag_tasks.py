"""Celery tasks for tags (filled by the tags work)."""
