"""Property tests of every importer: arbitrary rows never crash an import, and the good rows around them go in.

Each example mixes known-good rows with arbitrary ones: random text (NUL, control characters, lone
surrogates, cells over csv's 128 KiB limit), numbers as text at and beyond every limit (2147483648,
99999999999, 1e308, NaN, ±Infinity), dates near year 1, missing columns. Most arbitrary rows start from a
row that would be valid and change some of its cells, so the extreme values reach the checks deep in the
row rather than stopping at an empty key. Every example runs in a savepoint that is rolled back, so each
starts from the same database. On PostgreSQL an out-of-range value that slips through is a DataError and
fails the example; on SQLite (which stores big integers) it is caught by the exact counts.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mall.importing import ORDER_COLUMNS, order_import
from mall.models import Order, OrderLine, Product, Sku
from members.importing import MEMBER_COLUMNS, WECOM_FRIEND_COLUMNS, member_import, wecom_friend_import
from members.models import Member, WeComFriendship
from retail_crm.csv_import import read_csv_rows
from retail_crm.models import Guide, Store
from retail_crm.services import GUIDE_COLUMNS, ORG_COLUMNS, guide_import, org_import
from tests.factories import (
    BrandFactory,
    GuideFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
    staff_user,
)

pytestmark = pytest.mark.django_db

settings.register_profile(
    "imports", max_examples=40, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.large_base_example])
PROFILE = settings.get_profile("imports")

HUGE = "字" * (130 * 1024)  # over csv's default 128 KiB field limit
EXTREMES = [
    "2147483647", "2147483648", "99999999999", "-1", "0", "1e308", "-1e308", "1e20", "1E+999999", "1e-400",
    "999999999999.99", "1000000000000", "0.001", "NaN", "nan", "sNaN", "Infinity", "-Infinity", "inf", "1_000",
    "0001-01-01", "0001-01-01T00:00:00", "9999-12-31T23:59:59-12:00", "1899-12-31", "2026-05-01", "2099-01-01",
    "\x00", "a\x00b", "\x1b[31mred", "tab\there", "line\nbreak", "\u0085", "\x7f", "\ud800", "x" * 1001, HUGE,
    "'", '"', ",", "", "女", "+8613800000000",
]
cell = st.one_of(
    st.sampled_from(EXTREMES),
    st.text(max_size=40),
    st.from_regex(r"-?[0-9]{1,25}(\.[0-9]{1,5})?([eE][-+]?[0-9]{1,4})?", fullmatch=True),
).filter(lambda value: not value.startswith("GOOD"))


def arbitrary_rows(columns: list[str], templates: list[dict]):
    """Rows that start from a nearly valid one (or nothing) and have some cells replaced or dropped."""
    changes = st.fixed_dictionaries({}, optional={column: cell for column in columns})
    dropped = st.sets(st.sampled_from(columns), max_size=2)
    row = st.builds(lambda base, change, drop: {k: v for k, v in {**base, **change}.items() if k not in drop},
                    st.sampled_from([{}, *templates]), changes, dropped)
    return st.lists(row, max_size=6)


@st.composite
def mixed(draw, columns: list[str], templates: list[dict], good: list[dict]):
    """The arbitrary rows with the good rows inserted at drawn positions; numbered from 2 as in a file."""
    rows = list(draw(arbitrary_rows(columns, templates)))
    for good_row in good:
        rows.insert(draw(st.integers(0, len(rows))), dict(good_row))
    return list(enumerate(rows, start=2))


def as_csv(columns: list[str], rows: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
    """Write the rows to a CSV file and read it back as the commands do (cells quoted, stripped, blank rows out)."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(row for _line, row in rows)
    buffer.seek(0)
    return read_csv_rows(buffer, columns)


def every_row_accounted_for(report, rows) -> None:
    """Each row is counted once: imported (created, updated or unchanged) or refused with its line."""
    assert report.ok_rows + len(report.errors) == len(rows)
    assert {error.line for error in report.errors} <= {line for line, _row in rows}


def rolled_back(run):
    """Run one example in a savepoint that is then rolled back."""
    with transaction.atomic():
        run()
        transaction.set_rollback(True)


@pytest.fixture
def shop():
    group = RetailGroupFactory()
    brand = BrandFactory(group=group, code="WOM")
    store = StoreFactory(brand=brand, region=RegionFactory(brand=brand), code="WOM-S1")
    guide = GuideFactory(store=store, code="WOM-G1")
    product = Product.objects.create(brand=brand, code="P1", name="连衣裙", category="连衣裙")
    Sku.objects.create(product=product, brand=brand, code="P1-M", size="M", list_price=Decimal("599.00"),
                       member_price=Decimal("509.00"), cost_price=Decimal("200.00"))
    return {"group": group, "brand": brand, "store": store, "guide": guide}


# ---------------------------------------------------------------------------- organisation and guides

ORG_TEMPLATE = {"brand_code": "ARB", "brand_name": "任意", "region_code": "R", "region_name": "区",
                "store_code": "ARB-S", "store_name": "店", "store_kind": "direct", "city": "上海"}
ORG_GOOD = [{**ORG_TEMPLATE, "brand_code": "GOODB", "store_code": f"GOOD-S{i}", "store_name": f"好店{i}"}
            for i in (1, 2)]


@PROFILE
@given(rows=mixed(ORG_COLUMNS, [ORG_TEMPLATE], ORG_GOOD))
def test_org_import_never_raises_and_imports_the_good_rows(shop, rows):
    def run():
        read = as_csv(ORG_COLUMNS, rows)
        report = org_import(rows=read, group=shop["group"])
        every_row_accounted_for(report, read)
        assert sorted(Store.objects.filter(code__startswith="GOOD").values_list("code", "name", "brand__code")) == [
            ("GOOD-S1", "好店1", "GOODB"), ("GOOD-S2", "好店2", "GOODB")]
    rolled_back(run)


GUIDE_TEMPLATE = {"guide_code": "ARB-G", "name": "导购", "phone": "13700000001", "store_code": "WOM-S1",
                  "role": "guide", "hired_at": "2024-01-01", "left_at": ""}
GUIDE_GOOD = [{**GUIDE_TEMPLATE, "guide_code": f"GOOD-G{i}", "name": f"好导购{i}", "phone": f"1390000000{i}"}
              for i in (1, 2)]


@PROFILE
@given(rows=mixed(GUIDE_COLUMNS, [GUIDE_TEMPLATE], GUIDE_GOOD))
def test_guide_import_never_raises_and_imports_the_good_rows(shop, rows):
    def run():
        read = as_csv(GUIDE_COLUMNS, rows)
        report = guide_import(rows=read)
        every_row_accounted_for(report, read)
        assert sorted(Guide.objects.filter(code__startswith="GOOD").values_list("code", "phone", "user__username")) \
            == [("GOOD-G1", "+8613900000001", "GOOD-G1"), ("GOOD-G2", "+8613900000002", "GOOD-G2")]
    rolled_back(run)


# ---------------------------------------------------------------------------- members and WeCom friendships

MEMBER_TEMPLATE = {"member_code": "ARB-M", "phone": "13700000001", "name": "任意", "gender": "F",
                   "birthday": "1990-05-01", "store_code": "WOM-S1", "guide_code": "WOM-G1",
                   "joined_at": "2024-01-01", "join_channel": "import"}
MEMBER_GOOD = [{**MEMBER_TEMPLATE, "member_code": f"GOOD-M{i}", "phone": f"1390000000{i}", "name": f"好会员{i}"}
               for i in (1, 2)]


@PROFILE
@given(rows=mixed(MEMBER_COLUMNS, [MEMBER_TEMPLATE], MEMBER_GOOD))
def test_member_import_never_raises_and_imports_the_good_rows(shop, rows):
    def run():
        read = as_csv(MEMBER_COLUMNS, rows)
        report = member_import(rows=read, brand=shop["brand"])
        every_row_accounted_for(report, read)
        good = Member.objects.filter(code__startswith="GOOD").order_by("code")
        assert [(m.code, m.phone, m.memberships.get().brand.code, m.bindings.get().guide.code)
                for m in good] == [("GOOD-M1", "+8613900000001", "WOM", "WOM-G1"),
                                   ("GOOD-M2", "+8613900000002", "WOM", "WOM-G1")]
    rolled_back(run)


FRIEND_TEMPLATE = {"member_code": "ARB-C", "guide_code": "WOM-G1", "external_userid": "wmARB",
                   "added_at": "2024-01-01", "removed_at": ""}
FRIEND_GOOD = [{**FRIEND_TEMPLATE, "member_code": f"GOOD-C{i}", "external_userid": f"wmGOOD{i}"} for i in (1, 2)]


@PROFILE
@given(rows=mixed(WECOM_FRIEND_COLUMNS, [FRIEND_TEMPLATE], FRIEND_GOOD))
def test_wecom_friend_import_never_raises_and_imports_the_good_rows(shop, rows):
    for code in ("ARB-C", "GOOD-C1", "GOOD-C2"):
        Member.objects.get_or_create(group=shop["group"], code=code,
                                     defaults={"created_at": dt.datetime(2023, 1, 1, tzinfo=dt.UTC)})

    def run():
        read = as_csv(WECOM_FRIEND_COLUMNS, rows)
        report = wecom_friend_import(rows=read)
        every_row_accounted_for(report, read)
        assert sorted(WeComFriendship.objects.filter(member__code__startswith="GOOD").values_list(
            "member__code", "guide__code", "external_userid", "removed_at")) == [
            ("GOOD-C1", "WOM-G1", "wmGOOD1", None), ("GOOD-C2", "WOM-G1", "wmGOOD2", None)]
    rolled_back(run)


# ---------------------------------------------------------------------------- orders: file and POS push API

ORDER_TEMPLATE = {"order_no": "ARB-1", "ordered_at": "2026-05-01T12:00:00", "channel": "store_pos",
                  "store_code": "WOM-S1", "guide_code": "WOM-G1", "member_code": "", "member_phone": "",
                  "sku_code": "P1-M", "quantity": "1", "unit_price": "599.00", "paid_amount": "599.00",
                  "refunded_amount": ""}
ORDER_GOOD = [{**ORDER_TEMPLATE, "order_no": f"GOOD-O{i}", "quantity": "2", "paid_amount": "1198.00"}
              for i in (1, 2)]


def good_orders_stored():
    return sorted(OrderLine.objects.filter(order__order_no__startswith="GOOD").values_list(
        "order__order_no", "sku__code", "quantity", "unit_price", "amount"))


GOOD_ORDER_LINES = [("GOOD-O1", "P1-M", 2, Decimal("599.00"), Decimal("1198.00")),
                    ("GOOD-O2", "P1-M", 2, Decimal("599.00"), Decimal("1198.00"))]


@PROFILE
@given(rows=mixed(ORDER_COLUMNS, [ORDER_TEMPLATE], ORDER_GOOD))
def test_order_import_never_raises_and_imports_the_good_rows(shop, rows):
    def run():
        read = as_csv(ORDER_COLUMNS, rows)
        report = order_import(brand=shop["brand"], rows=read).report
        every_row_accounted_for(report, read)
        assert good_orders_stored() == GOOD_ORDER_LINES
    rolled_back(run)


api_value = st.one_of(cell, st.integers(min_value=-(10**30), max_value=10**30),
                      st.floats(allow_nan=False, allow_infinity=False), st.none(), st.booleans(),
                      st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                           max_size=1))


@st.composite
def pos_items(draw):
    items = []
    for _ in range(draw(st.integers(0, 5))):
        base = dict(draw(st.sampled_from([{}, ORDER_TEMPLATE])))
        base.update(draw(st.fixed_dictionaries({}, optional={column: api_value for column in ORDER_COLUMNS})))
        items.append(base)
    for good_row in ORDER_GOOD:
        items.insert(draw(st.integers(0, len(items))), dict(good_row))
    return items


@PROFILE
@given(items=pos_items())
def test_pos_push_never_fails_and_imports_the_good_items(shop, api_client, items):
    good_indexes = {index for index, item in enumerate(items, start=1) if item in ORDER_GOOD}

    def run():
        api_client.force_authenticate(staff_user("store_manager", store=shop["store"], username="pos-prop"))
        response = api_client.post("/api/v1/pos/orders/import/", {"brand": "WOM", "rows": items}, format="json")
        assert response.status_code == 200, response.content[:500]
        body = response.json()
        rejected = {error["row"] for error in body["rejected"]}
        assert not rejected & good_indexes
        assert body["created"] + body["updated"] + body["unchanged"] + len(body["rejected"]) == len(items)
        assert good_orders_stored() == GOOD_ORDER_LINES
        assert Order.objects.filter(order_no__startswith="GOOD").count() == 2
    rolled_back(run)
