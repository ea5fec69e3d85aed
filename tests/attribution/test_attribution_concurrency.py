"""Attribution under real concurrency and in parallel chunks (PostgreSQL only).

SQLite serialises writers on a file lock and proves nothing; the parallel-chunk path only runs on
PostgreSQL. Threads wait on a barrier so the calls really overlap and close their own connections.
"""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Sum

from attribution import services as attribution
from attribution.models import SalesCredit
from attribution.services import attribute_orders, attribute_range
from mall.models import Channel
from tests.attribution.test_attribution import Org, bind, order
from tests.factories import MemberFactory

pytestmark = [
    pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                       reason="concurrency tests need PostgreSQL (set DATABASE_URL)"),
    pytest.mark.django_db(transaction=True),
]


def run_at_once(calls):
    barrier = threading.Barrier(len(calls))

    def worker(call):
        try:
            barrier.wait(timeout=10)
            return call()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [f.result(timeout=60) for f in [pool.submit(worker, call) for call in calls]]


def test_eight_simultaneous_attributions_of_one_order_book_it_once():
    org = Org()
    member = MemberFactory(group=org.group)
    bind(org, member, org.ga3)
    sale = order(org, member, guide=org.ga1, paid="120.00")

    results = run_at_once([lambda: attribute_orders(order_ids=[sale.pk])] * 8)

    assert sorted(len(r[0].rows_written) for r in results) == [0] * 7 + [3]
    assert list(SalesCredit.objects.filter(order=sale).order_by("pk").values_list("kind", "amount")) == [
        ("store", Decimal("120.00")), ("exclusive", Decimal("120.00")), ("selling", Decimal("120.00"))]


def test_a_range_of_several_chunks_runs_in_parallel_threads_and_is_idempotent(monkeypatch):
    monkeypatch.setattr(attribution, "CHUNK_ORDERS", 2)
    org = Org()
    bound = MemberFactory(group=org.group)
    bind(org, bound, org.ga1)
    orders = [order(org, bound, paid="10.00", when=1), order(org, bound, paid="20.00", when=2),
              order(org, None, channel=Channel.STORE_POS, store=org.sa2, guide=org.ga3, paid="30.00", when=3),
              order(org, MemberFactory(group=org.group), paid="40.00", when=4),
              order(org, bound, guide=org.ga2, paid="50.00", when=5)]

    first = attribute_range(brand_id=org.brand_a.pk, date_from=dt.date(2024, 3, 1), date_to=dt.date(2024, 3, 31))
    again = attribute_range(brand_id=org.brand_a.pk, date_from=dt.date(2024, 3, 1), date_to=dt.date(2024, 3, 31))

    # rows: 2 + 2 + 2 (store, selling) + 1 (HQ pool) + 3 (store, exclusive, selling);
    # exclusive GA1: 10 + 20 + 50; selling: GA3 30 + GA2 50
    assert (first.orders, first.purchases, first.chunks, first.rows_written) == (5, 5, 3, 10)
    assert (again.orders, again.chunks, again.rows_written) == (5, 3, 0)
    by_kind = dict(SalesCredit.objects.values_list("kind").annotate(total=Sum("amount")).order_by())
    assert by_kind == {"store": Decimal("150.00"), "exclusive": Decimal("80.00"), "selling": Decimal("80.00")}
    assert SalesCredit.objects.filter(order__in=orders).count() == 10
