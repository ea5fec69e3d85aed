"""Event subscribers of the guides app (subscribed in ``GuidesConfig.ready``); each is safe to run twice."""

from __future__ import annotations

from guides.commission import commission_post_for_credits
from mall.models import Order


def order_commission_post(*, order_id: int) -> int:
    """Credits of an order were written: post the commission they call for (one entry per credit and kind).

    Returns how many entries it posted (0 for an order that is gone).
    """
    order = Order.objects.filter(pk=order_id).first()
    return len(commission_post_for_credits(order=order)) if order is not None else 0
