"""Building the dashboard's fact tables. Each rebuild is idempotent: same input, same rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from analytics.models import SalesFact
from mall.models import PAID_STATUSES, Order
from retail_crm.locks import job_lock
from retail_crm.money import money


@dataclass(frozen=True)
class FactRebuildResult:
    date_from: dt.date
    date_to: dt.date
    rows_deleted: int
    rows_written: int


def _day_bounds(date_from: dt.date, date_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_default_timezone()
    start = dt.datetime.combine(date_from, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return start, end


@transaction.atomic
def sales_facts_rebuild(*, date_from: dt.date, date_to: dt.date, brand_id: int | None = None) -> FactRebuildResult:
    """Replace the sales facts of [date_from, date_to] with a fresh aggregate of the orders.

    With ``brand_id`` only that brand's facts are replaced. One grouped query
    over the orders of the range, one bulk insert; the job
    lock keeps an hourly and a nightly run from interleaving their rows.
    """
    if date_to < date_from:
        raise ValueError("date_to is before date_from")
    job_lock("analytics.sales_facts")
    start, end = _day_bounds(date_from, date_to)
    paid = Q(status__in=PAID_STATUSES)
    orders = Order.objects.filter(ordered_at__gte=start, ordered_at__lt=end)
    stale = SalesFact.objects.filter(day__gte=date_from, day__lte=date_to)
    if brand_id is not None:
        orders, stale = orders.filter(brand_id=brand_id), stale.filter(brand_id=brand_id)
    rows = (
        orders
        .annotate(day=TruncDate("ordered_at", tzinfo=timezone.get_default_timezone()))
        .values("day", "brand_id", "store_id", "guide_id", "channel")
        .annotate(
            n_orders=Count("id"),
            gmv_sum=Sum("total_amount"),
            n_paid=Count("id", filter=paid),
            paid_sum=Sum("paid_amount", filter=paid),
            refunded_sum=Sum("refunded_amount", filter=paid),
            n_buyers=Count("member_id", filter=paid, distinct=True),
        )
        .order_by()
    )
    facts = []
    for row in rows.iterator(chunk_size=5000):
        paid_sum = money(row["paid_sum"])
        refunded_sum = money(row["refunded_sum"])
        facts.append(SalesFact(
            day=row["day"], brand_id=row["brand_id"], store_id=row["store_id"], guide_id=row["guide_id"],
            channel=row["channel"], orders=row["n_orders"], gmv=money(row["gmv_sum"]),
            paid_orders=row["n_paid"], paid_amount=paid_sum, refunded_amount=refunded_sum,
            sales_flow=paid_sum - refunded_sum, buyers=row["n_buyers"],
        ))
    deleted, _ = stale.delete()
    SalesFact.objects.bulk_create(facts, batch_size=2000)
    return FactRebuildResult(date_from=date_from, date_to=date_to, rows_deleted=deleted, rows_written=len(facts))


def local_today() -> dt.date:
    return timezone.localdate(timezone.now(), timezone=timezone.get_default_timezone())
