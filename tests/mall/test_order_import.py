"""mall.importing through ``import_orders``: POS and other-channel order lines, set-based and idempotent."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from mall.importing import ORDER_COLUMNS, UNSPECIFIED_CODE, order_import
from mall.models import Order, OrderLine, Product, Sku
from members.models import BrandMembership, Member
from members.services import member_merge
from retail_crm.csv_import import read_csv_rows
from tests.factories import BrandFactory, GuideFactory, MemberFactory, RegionFactory, RetailGroupFactory, StoreFactory

pytestmark = pytest.mark.django_db
SH = timezone.get_default_timezone()
HEADER = ",".join(ORDER_COLUMNS)


@pytest.fixture
def shop():
    group = RetailGroupFactory()
    brand = BrandFactory(group=group, code="WOM")
    other = BrandFactory(group=group, code="MEN")
    region = RegionFactory(brand=brand)
    store = StoreFactory(brand=brand, region=region, code="WOM-S1")
    other_store = StoreFactory(region=RegionFactory(brand=other), code="MEN-S1")
    guide = GuideFactory(store=store, code="WOM-G1")
    product = Product.objects.create(brand=brand, code="P1", name="连衣裙", category="连衣裙")
    sku = Sku.objects.create(product=product, brand=brand, code="P1-M-BLK", colour="黑色", size="M",
                             list_price=Decimal("599.00"), member_price=Decimal("509.15"),
                             cost_price=Decimal("200.00"))
    member = MemberFactory(group=group, code="POS001", phone="+8613800000001")
    return {"brand": brand, "other": other, "store": store, "other_store": other_store, "guide": guide,
            "sku": sku, "member": member, "group": group}


def run(brand, text: str):
    return order_import(brand=brand, rows=read_csv_rows(StringIO(HEADER + "\n" + text), ORDER_COLUMNS))


GOOD = """\
A1,2026-05-01T14:30:00,store_pos,WOM-S1,WOM-G1,POS001,,P1-M-BLK,2,599.00,1078.20,
A1,2026-05-01T14:30:00,store_pos,WOM-S1,WOM-G1,POS001,,,1,99.00,99.00,99.00
A2,2026-05-02,store_pos,WOM-S1,,,13900000002,P1-M-BLK,1,599.00,599.00,
A3,2026-05-03T10:00:00+08:00,store_pos,WOM-S1,,,,P1-M-BLK,1,599.00,450.00,
"""


def test_good_lines_become_orders_with_their_lines_amounts_and_buyers(shop):
    result = run(shop["brand"], GOOD)
    report = result.report
    assert (report.created, report.updated, report.unchanged, report.errors) == (4, 0, 0, [])
    a1 = Order.objects.get(order_no="A1")
    assert (a1.channel, a1.status, a1.store, a1.guide, a1.member) == ("store_pos", "completed", shop["store"],
                                                                      shop["guide"], shop["member"])
    assert a1.ordered_at == dt.datetime(2026, 5, 1, 14, 30, tzinfo=SH) == a1.paid_at
    # paid 1078.20 + 99.00; the second line was refunded in full.
    assert (a1.total_amount, a1.paid_amount, a1.refunded_amount) == (Decimal("1177.20"), Decimal("1177.20"),
                                                                     Decimal("99.00"))
    lines = {ln.sku.code: ln for ln in a1.lines.select_related("sku")}
    assert (lines["P1-M-BLK"].quantity, lines["P1-M-BLK"].list_price, lines["P1-M-BLK"].unit_price,
            lines["P1-M-BLK"].amount) == (2, Decimal("599.00"), Decimal("599.00"), Decimal("1078.20"))
    # No SKU code: booked against the brand's unspecified item, priced as sold.
    assert (lines[UNSPECIFIED_CODE].list_price, lines[UNSPECIFIED_CODE].refunded_amount) == (Decimal("99.00"),
                                                                                            Decimal("99.00"))
    # A bare date is local midnight; an unknown phone creates a member who joins the brand through import.
    a2 = Order.objects.get(order_no="A2")
    assert a2.ordered_at == dt.datetime(2026, 5, 2, tzinfo=SH)
    assert a2.member.phone == "+8613900000002" and a2.member.created_at == a2.ordered_at
    membership = BrandMembership.objects.get(member=a2.member, brand=shop["brand"])
    assert (membership.join_channel, membership.store, membership.joined_at) == ("import", shop["store"],
                                                                                a2.ordered_at)
    # The known member had no membership of the brand either: joined at the first imported order.
    assert BrandMembership.objects.get(member=shop["member"]).joined_at == a1.ordered_at
    # No member at all: a walk-in.
    assert Order.objects.get(order_no="A3").member is None
    assert result.members_created == 1
    assert sorted(result.member_ids) == sorted([shop["member"].pk, a2.member_id])


def test_importing_the_same_file_twice_changes_nothing(shop):
    run(shop["brand"], GOOD)
    snapshot = list(OrderLine.objects.order_by("pk").values_list("pk", "order_id", "amount"))
    again = run(shop["brand"], GOOD).report
    assert (again.created, again.updated, again.unchanged, again.errors) == (0, 0, 4, [])
    assert list(OrderLine.objects.order_by("pk").values_list("pk", "order_id", "amount")) == snapshot
    assert (Order.objects.count(), Member.objects.count(), BrandMembership.objects.count()) == (3, 2, 2)


def test_reimporting_an_order_with_new_figures_updates_it_in_place(shop):
    run(shop["brand"], GOOD)
    a3 = Order.objects.get(order_no="A3")
    report = run(shop["brand"], "A3,2026-05-03T10:00:00+08:00,store_pos,WOM-S1,,,,P1-M-BLK,1,599.00,450.00,"
                                "200.00\n").report
    assert (report.created, report.updated, report.unchanged) == (0, 1, 0)
    a3.refresh_from_db()
    assert (a3.paid_amount, a3.refunded_amount, a3.lines.get().refunded_amount) == (
        Decimal("450.00"), Decimal("200.00"), Decimal("200.00"))
    assert Order.objects.filter(order_no="A3").count() == 1


def test_bad_rows_are_reported_with_their_line_and_reason_and_good_orders_go_in(shop):
    text = (
        "B1,2026-05-01,store_pos,WOM-S1,,,,P1-M-BLK,1,599.00,599.00,\n"          # line 2: good
        "B2,yesterday,store_pos,WOM-S1,,,,P1-M-BLK,1,599.00,599.00,\n"           # 3
        "B3,2026-05-01,telepathy,WOM-S1,,,,P1-M-BLK,1,599.00,599.00,\n"          # 4
        "B4,2026-05-01,store_pos,,,,,P1-M-BLK,1,599.00,599.00,\n"                # 5
        "B5,2026-05-01,store_pos,WOM-S1,,,12345,P1-M-BLK,1,599.00,599.00,\n"     # 6
        "B6,2026-05-01,store_pos,WOM-S1,,,,P1-M-BLK,0,599.00,599.00,\n"          # 7
        "B7,2026-05-01,store_pos,WOM-S1,,,,P1-M-BLK,1,abc,599.00,\n"             # 8
        "B8,2026-05-01,store_pos,WOM-S1,,,,P1-M-BLK,1,599.00,599.001,\n"         # 9
        "B9,2026-05-01,store_pos,WOM-S1,,,,P1-M-BLK,1,599.00,100.00,100.01\n"    # 10
        "B10,2026-05-01,store_pos,NOPE,,,,P1-M-BLK,1,599.00,599.00,\n"           # 11
        "B11,2026-05-01,store_pos,MEN-S1,,,,P1-M-BLK,1,599.00,599.00,\n"         # 12
        "B12,2026-05-01,store_pos,WOM-S1,GHOST,,,P1-M-BLK,1,599.00,599.00,\n"    # 13
        "B13,2026-05-01,store_pos,WOM-S1,,,,P1-M-BLK,1,599.00,599.00,\n"         # 14: good line of a bad order
        "B13,2026-05-01,store_pos,WOM-S1,,,,P1-M-BLK,-1,599.00,599.00,\n"        # 15
        "B14,2026-05-01,store_pos,WOM-S1,,,,P1-M-BLK,1,599.00,599.00,\n"         # 16
        "B14,2026-05-02,store_pos,WOM-S1,,,,P1-M-BLK,1,599.00,599.00,\n"         # 17
        "B15,2099-01-01,store_pos,WOM-S1,,,,P1-M-BLK,1,599.00,-5,\n"             # 18
        ",2026-05-01,store_pos,WOM-S1,,,,P1-M-BLK,1,599.00,599.00,\n"            # 19
        "B16,2026-05-01,mini_program,,,POS001,13800000009,P1-M-BLK,1,599.00,599.00,\n"  # 20
    )
    report = run(shop["brand"], text).report
    assert report.created == 1
    assert [(e.line, e.reason) for e in report.errors] == [
        (3, "ordered_at 'yesterday' is not an ISO 8601 date or datetime"),
        (4, "channel 'telepathy' is not one of mini_program, store_pos, store_live, hq_live, community, "
            "distribution, ecommerce"),
        (5, "store_code is empty (a store POS sale names its store)"),
        (6, "member_phone: '12345' is not an 11-digit mainland mobile number"),
        (7, "quantity 0 must be at least 1"),
        (8, "unit_price 'abc' is not a number"),
        (9, "paid_amount 599.001 has more than two decimals"),
        (10, "refunded_amount 100.01 is more than paid_amount 100.00"),
        (11, "store_code NOPE is not a known store"),
        (12, "store MEN-S1 is not a store of brand WOM"),
        (13, "guide_code GHOST is not a known guide"),
        (14, "order B13 not imported: line 15 is invalid"),
        (15, "quantity -1 must be at least 1"),
        (16, "order B14 not imported: line 17 is invalid"),
        (17, "ordered_at differs from line 16 of order B14"),
        (18, "ordered_at 2099-01-01 is in the future"),
        (19, "order_no is empty"),
        (20, "member POS001 has another phone number on record"),
    ]
    assert list(Order.objects.values_list("order_no", flat=True)) == ["B1"]


def test_a_phone_of_one_member_with_the_code_of_another_is_refused(shop):
    MemberFactory(group=shop["group"], code="POS002", phone="+8613800000002")
    report = run(shop["brand"], "C1,2026-05-01,store_pos,WOM-S1,,POS001,13800000002,P1-M-BLK,1,1.00,1.00,\n").report
    assert [(e.line, e.reason) for e in report.errors] == [(2, "member_phone belongs to member POS002, not POS001")]


def test_orders_of_a_merged_member_go_to_the_survivor(shop):
    survivor = MemberFactory(group=shop["group"], code="APP-1", phone="")
    member_merge(survivor=survivor, absorbed=shop["member"], reason="test")
    run(shop["brand"], "D1,2026-05-01,store_pos,WOM-S1,,POS001,,P1-M-BLK,1,1.00,1.00,\n")
    assert Order.objects.get(order_no="D1").member == survivor


def test_one_new_member_across_several_orders_of_one_file(shop):
    run(shop["brand"], "E1,2026-05-01,store_pos,WOM-S1,,NEW1,13700000001,P1-M-BLK,1,1.00,1.00,\n"
                       "E2,2026-05-03,store_pos,WOM-S1,,NEW1,,P1-M-BLK,1,1.00,1.00,\n"
                       "E3,2026-05-02,store_pos,WOM-S1,,,13700000001,P1-M-BLK,1,1.00,1.00,\n")
    member = Member.objects.get(code="NEW1")
    assert set(Order.objects.values_list("member_id", flat=True)) == {member.pk}
    assert BrandMembership.objects.get(member=member).joined_at == dt.datetime(2026, 5, 1, tzinfo=SH)


def test_command_reports_rows_and_exits_non_zero_when_rows_were_refused(shop, tmp_path):
    path = tmp_path / "pos.csv"
    path.write_text(HEADER + "\nF1,2026-05-01,store_pos,WOM-S1,,,,P1-M-BLK,1,1.00,1.00,\n"
                             "F2,2026-05-01,store_pos,WOM-S1,,,,P1-M-BLK,x,1.00,1.00,\n", encoding="utf-8")
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("import_orders", str(path), "--brand", "WOM", stdout=out, stderr=err)
    assert exited.value.code == 1
    assert err.getvalue() == "line 3: quantity 'x' is not a whole number\n"
    assert out.getvalue().endswith("created 1, updated 0, unchanged 0, rejected 1\n")
    with pytest.raises(CommandError, match="--brand NOPE: no such brand"):
        call_command("import_orders", str(path), "--brand", "NOPE")


# ---------------------------------------------------------------- the POS push API

URL = "/api/v1/pos/orders/import/"


def row(**values):
    base = {"order_no": "P1", "ordered_at": "2026-05-01T12:00:00", "channel": "store_pos", "store_code": "WOM-S1",
            "sku_code": "P1-M-BLK", "quantity": "1", "unit_price": "599.00", "paid_amount": "599.00"}
    return base | values


def test_pos_push_imports_good_rows_and_reports_bad_ones_by_index(shop, api_client):
    from tests.factories import staff_user

    api_client.force_authenticate(staff_user("store_manager", store=shop["store"]))
    body = {"brand": "WOM", "rows": [row(), row(order_no="P2", quantity="two"), row(order_no="P3", quantity=2,
                                                                                 paid_amount=1198)]}
    response = api_client.post(URL, body, format="json")
    assert response.status_code == 200
    assert response.json() == {"created": 2, "updated": 0, "unchanged": 0,
                               "rejected": [{"row": 2, "reason": "quantity 'two' is not a whole number"}]}
    assert Order.objects.get(order_no="P3").paid_amount == Decimal("1198.00")
    again = api_client.post(URL, body, format="json").json()
    assert (again["created"], again["unchanged"]) == (0, 2)


def test_pos_push_is_limited_to_the_callers_stores_and_brands(shop, api_client):
    from tests.factories import staff_user

    sibling = StoreFactory(brand=shop["brand"], region=shop["store"].region, code="WOM-S2")
    api_client.force_authenticate(staff_user("store_manager", store=sibling))
    response = api_client.post(URL, {"brand": "WOM", "rows": [row()]}, format="json")
    assert response.json()["rejected"] == [{"row": 1, "reason": "store WOM-S1 is outside your scope"}]
    api_client.force_authenticate(staff_user("brand_operator", brand=shop["other"]))
    response = api_client.post(URL, {"brand": "WOM", "rows": [row()]}, format="json")
    assert response.status_code == 404
    assert not Order.objects.exists()


@pytest.mark.parametrize("body, field", [
    ({"rows": [{"order_no": "X"}]}, "brand"),
    ({"brand": "WOM", "rows": []}, "rows"),
    ({"brand": "WOM", "rows": "nope"}, "rows"),
    ({"brand": "WOM"}, "rows"),
])
def test_pos_push_refuses_malformed_bodies_with_field_messages(shop, api_client, body, field):
    from tests.factories import staff_user

    api_client.force_authenticate(staff_user("hq", group=shop["group"]))
    response = api_client.post(URL, body, format="json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert response.json()["error"]["code"] == "invalid"
    assert any(key == field or key.startswith(field + ".") for key in fields)


def test_pos_push_needs_a_staff_login(shop, api_client):
    assert api_client.post(URL, {"brand": "WOM", "rows": [row()]}, format="json").status_code == 401


def test_an_import_attributes_the_imported_days_and_recomputes_tags_after_commit(shop,
                                                                                django_capture_on_commit_callbacks):
    from attribution.models import SalesCredit

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run(shop["brand"], GOOD)
    assert len(callbacks) == 1
    # A1 (POS, guide WOM-G1, paid 1177.20 − 99.00 refunded): the store and the selling guide are credited.
    a1 = Order.objects.get(order_no="A1")
    assert sorted(SalesCredit.objects.filter(order=a1).values_list("kind", "amount")) == [
        ("selling", Decimal("1078.20")), ("store", Decimal("1078.20"))]
