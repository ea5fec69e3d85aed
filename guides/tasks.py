"""Celery tasks for guides. Each area keeps its tasks in its own module; importing them here registers them."""

from __future__ import annotations

from celery import shared_task

from guides import commission_tasks  # noqa: F401
from guides.handlers import order_commission_post as commission_post


@shared_task(name="mall.tasks.order_commission_post")
def order_commission_post(order_id: int) -> dict:
    """Post the commission an order's sales credits call for (idempotent).

    Nothing queues this any more: commission follows ``credits_posted`` (``guides.handlers``). It keeps the
    name it had in ``mall`` so messages queued before the change still find a task and run.
    """
    return {"order_id": order_id, "posted": commission_post(order_id=order_id)}
