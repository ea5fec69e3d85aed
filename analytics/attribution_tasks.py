"""Celery tasks for attribution (filled by the attribution work)."""
