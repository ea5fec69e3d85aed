"""Reads over orders. The definition of a purchase lives here and only here."""

from __future__ import annotations

from django.db.models import DecimalField, ExpressionWrapper, F, QuerySet

from mall.models import PAID_STATUSES, Order


def purchases(queryset: QuerySet[Order] | None = None) -> QuerySet[Order]:
    """A purchase: a paid order whose net amount (paid − refunded) is greater than zero.

    Segmentation, metrics and the dashboard all count purchases through this.
    """
    qs = Order.objects.all() if queryset is None else queryset
    return (
        qs.filter(status__in=PAID_STATUSES)
        .annotate(net=ExpressionWrapper(F("paid_amount") - F("refunded_amount"),
                                        output_field=DecimalField(max_digits=14, decimal_places=2)))
        .filter(net__gt=0)
    )
