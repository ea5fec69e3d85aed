"""Money sums stay exact Decimals with two places, even where SQLite sums in floating point."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from analytics import selectors
from analytics.services import sales_facts_rebuild
from retail_crm.money import money
from retail_crm.scoping import actor_for
from tests.factories import OrderFactory, StoreFactory, staff_user

SH = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(("raw", "expected"), [
    (None, "0.00"), (0.30000000000000004, "0.30"), (7552908.69999998, "7552908.70"), (Decimal("1.005"), "1.01"),
    (Decimal("-2.5"), "-2.50"), (12, "12.00"),
])
def test_money_rounds_to_the_cent(raw, expected):
    assert str(money(raw)) == expected


@pytest.mark.django_db
def test_dashboard_totals_are_exact_cents():
    store = StoreFactory()
    day = dt.date(2026, 5, 20)
    # 0.1 + 0.2 + 0.7 is 0.9999999999999999 in binary floating point.
    for index, amount in enumerate(("0.10", "0.20", "0.70")):
        OrderFactory(brand=store.brand, store=store, ordered_at=dt.datetime(2026, 5, 20, 10 + index, tzinfo=SH),
                     total_amount=Decimal(amount), paid_amount=Decimal(amount))
    sales_facts_rebuild(date_from=day, date_to=day)
    actor = actor_for(staff_user("hq", group=store.brand.group))

    summary = selectors.sales_summary(actor=actor, date_from=day, date_to=day)

    assert (str(summary.gmv), str(summary.sales_flow), str(summary.average_order_value)) == ("1.00", "1.00", "0.33")
    [row] = selectors.sales_by(actor=actor, date_from=day, date_to=day, dimension="store")
    assert str(row.sales_flow) == "1.00"
