"""Celery tasks for RFML, consumption cycles and care lists (filled by the RFML work)."""
