"""Celery tasks of the mall: thin, take ids or nothing, call a service; safe to run twice."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="mall.tasks.orders_expire")
def orders_expire() -> dict:
    from mall.checkout import orders_expire as expire

    return {"expired": expire()}
