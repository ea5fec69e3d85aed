"""mall.checkout and the mini-program mall API: pricing, stock, coupons, points, cancel and expiry."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from mall.checkout import LineRequest, order_cancel, order_create, orders_expire, stock_adjust
from mall.coupons import coupon_issue
from mall.models import (
    CartItem,
    Coupon,
    CouponTemplate,
    MallSettings,
    Order,
    OrderLine,
    OrderTransition,
    Product,
    Sku,
    Stock,
    StockMovement,
)
from members.auth import member_token_issue
from members.models import BehaviourEvent, BrandMembership, PointsEntry
from members.services import points_balance, points_post
from retail_crm.errors import ApplicationError
from tests.factories import BrandFactory, GuideFactory, MemberFactory, RetailGroupFactory, StoreFactory, staff_user

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def mall():
    group = RetailGroupFactory()
    brand = BrandFactory(group=group, code="WOM")
    other = BrandFactory(group=group, code="MEN")
    dress = Product.objects.create(brand=brand, code="DRESS", name="真丝连衣裙", category="连衣裙")
    shirt = Product.objects.create(brand=other, code="SHIRT", name="衬衫", category="衬衫")
    sku_m = Sku.objects.create(product=dress, brand=brand, code="DRESS-M", colour="黑色", size="M",
                               list_price=D("599.00"), member_price=D("509.00"), cost_price=D("200.00"))
    sku_l = Sku.objects.create(product=dress, brand=brand, code="DRESS-L", colour="黑色", size="L",
                               list_price=D("599.00"), member_price=D("509.00"), cost_price=D("200.00"))
    sku_shirt = Sku.objects.create(product=shirt, brand=other, code="SHIRT-M", size="M", list_price=D("299.00"),
                                   member_price=D("259.00"), cost_price=D("90.00"))
    for sku, quantity in ((sku_m, 5), (sku_l, 2), (sku_shirt, 9)):
        Stock.objects.create(sku=sku, quantity=quantity)
    member = MemberFactory(group=group)
    BrandMembership.objects.create(member=member, brand=brand, joined_at=timezone.now(), join_channel="guide_qr")
    return {"group": group, "brand": brand, "other": other, "m": sku_m, "l": sku_l, "shirt": sku_shirt,
            "member": member}


def stock(sku) -> int:
    return Stock.objects.get(sku=sku).quantity


def test_a_member_of_the_brand_pays_member_prices_and_stock_is_reserved(mall):
    order = order_create(member=mall["member"], lines=[LineRequest(mall["m"].pk, 2), LineRequest(mall["l"].pk, 1)])
    assert (order.status, order.channel, order.member_price_applied) == ("pending_payment", "mini_program", True)
    assert (order.items_amount, order.total_amount) == (D("1527.00"), D("1527.00"))  # 3 × 509.00
    assert order.expires_at == order.ordered_at + dt.timedelta(minutes=30)
    assert sorted(order.lines.values_list("sku__code", "quantity", "unit_price", "amount")) == [
        ("DRESS-L", 1, D("509.00"), D("509.00")), ("DRESS-M", 2, D("509.00"), D("1018.00"))]
    assert (stock(mall["m"]), stock(mall["l"])) == (3, 1)
    assert sorted(StockMovement.objects.values_list("sku__code", "delta", "reason")) == [
        ("DRESS-L", -1, "reserve"), ("DRESS-M", -2, "reserve")]
    assert list(OrderTransition.objects.values_list("from_status", "to_status", "by_member")) == [
        ("", "pending_payment", mall["member"].pk)]


def test_a_non_member_of_the_brand_pays_list_price(mall):
    order = order_create(member=mall["member"], lines=[LineRequest(mall["shirt"].pk, 1)])
    assert (order.total_amount, order.member_price_applied) == (D("299.00"), False)


def test_a_threshold_coupon_and_points_are_taken_off_and_shared_over_the_lines(mall):
    template = CouponTemplate.objects.create(brand=mall["brand"], name="满1000减100", kind="threshold",
                                             threshold_amount=D("1000.00"), discount_amount=D("100.00"),
                                             valid_days=30)
    coupon = coupon_issue(template=template, member=mall["member"])
    points_post(member=mall["member"], brand=mall["brand"], delta=30000, reason="adjust")
    order = order_create(member=mall["member"], lines=[LineRequest(mall["m"].pk, 2), LineRequest(mall["l"].pk, 1)],
                         coupon_code=coupon.code, points=20000)
    # 1527.00 − 100.00 coupon = 1427.00; 20,000 points × 0.01 = 200.00 (cap: half of 1427.00 = 713.50).
    assert (order.coupon_discount, order.points_used, order.points_discount, order.total_amount) == (
        D("100.00"), 20000, D("200.00"), D("1227.00"))
    # 300.00 of discounts over 509.00 (DRESS-L) and 1018.00 (DRESS-M): 100.00 and the rest, 200.00.
    assert sorted(order.lines.values_list("sku__code", "discount_amount", "amount")) == [
        ("DRESS-L", D("100.00"), D("409.00")), ("DRESS-M", D("200.00"), D("818.00"))]
    coupon.refresh_from_db()
    assert (coupon.status, coupon.used_order) == ("locked", order)
    assert points_balance(member=mall["member"], brand=mall["brand"]) == 10000


def test_a_percentage_coupon_rounds_to_the_cent(mall):
    template = CouponTemplate.objects.create(brand=mall["brand"], name="88折", kind="discount",
                                             discount_rate=D("0.880"), valid_days=30)
    coupon = coupon_issue(template=template, member=mall["member"])
    order = order_create(member=mall["member"], lines=[LineRequest(mall["m"].pk, 1)], coupon_code=coupon.code)
    assert (order.coupon_discount, order.total_amount) == (D("61.08"), D("447.92"))  # 509.00 × 0.12 = 61.08


@pytest.mark.parametrize("case, code, status", [
    ("other brand", "coupon_not_applicable", 400),
    ("below threshold", "coupon_not_applicable", 400),
    ("already locked", "coupon_unavailable", 409),
    ("expired", "coupon_unavailable", 409),
    ("someone else's", "coupon_unavailable", 400),
])
def test_coupons_that_do_not_apply_are_refused_and_nothing_is_reserved(mall, case, code, status):
    brand = mall["other"] if case == "other brand" else mall["brand"]
    threshold = D("5000.00") if case == "below threshold" else D("0.00")
    template = CouponTemplate.objects.create(brand=brand, name="c", kind="threshold", threshold_amount=threshold,
                                             discount_amount=D("10.00"), valid_days=1)
    holder = MemberFactory(group=mall["group"]) if case == "someone else's" else mall["member"]
    coupon = coupon_issue(template=template, member=holder)
    if case == "already locked":
        order_create(member=mall["member"], lines=[LineRequest(mall["l"].pk, 1)], coupon_code=coupon.code)
    if case == "expired":
        Coupon.objects.filter(pk=coupon.pk).update(valid_to=timezone.now() - dt.timedelta(seconds=1),
                                                   valid_from=timezone.now() - dt.timedelta(days=1))
    before = (stock(mall["m"]), Order.objects.count())
    with pytest.raises(ApplicationError) as refused:
        order_create(member=mall["member"], lines=[LineRequest(mall["m"].pk, 1)], coupon_code=coupon.code)
    assert (refused.value.code, refused.value.status) == (code, status)
    assert (stock(mall["m"]), Order.objects.count()) == before


def test_points_above_the_cap_or_the_balance_are_refused(mall):
    points_post(member=mall["member"], brand=mall["brand"], delta=100, reason="adjust")
    with pytest.raises(ApplicationError) as too_many:
        order_create(member=mall["member"], lines=[LineRequest(mall["m"].pk, 1)], points=30000)
    assert too_many.value.code == "points_invalid"  # 300.00 > half of 509.00
    with pytest.raises(ApplicationError) as short:
        order_create(member=mall["member"], lines=[LineRequest(mall["m"].pk, 1)], points=200)
    assert (short.value.code, short.value.status) == ("insufficient_points", 409)
    assert stock(mall["m"]) == 5 and not Order.objects.exists()


def test_not_enough_stock_is_a_409_naming_the_sku_and_nothing_changes(mall):
    with pytest.raises(ApplicationError) as refused:
        order_create(member=mall["member"], lines=[LineRequest(mall["m"].pk, 1), LineRequest(mall["l"].pk, 3)])
    assert (refused.value.code, refused.value.status, refused.value.fields) == (
        "out_of_stock", 409, {"DRESS-L": ["Only 2 left."]})
    assert (stock(mall["m"]), stock(mall["l"]), StockMovement.objects.count()) == (5, 2, 0)


def test_one_order_is_for_one_brand(mall):
    with pytest.raises(ApplicationError) as refused:
        order_create(member=mall["member"], lines=[LineRequest(mall["m"].pk, 1), LineRequest(mall["shirt"].pk, 1)])
    assert (refused.value.code, refused.value.status) == ("mixed_brands", 400)


def test_a_share_link_names_the_guide_and_their_store(mall):
    from guides.services import guide_token_current, guide_token_revoke

    guide = GuideFactory(store=StoreFactory(brand=mall["brand"], region__brand=mall["brand"]))
    token = guide_token_current(guide=guide)
    guide_token_revoke(token=token)  # rotated since the link was shared: it still credits the guide
    order = order_create(member=mall["member"], lines=[LineRequest(mall["m"].pk, 1)], share_token=token.token)
    assert (order.guide, order.store, order.share_token) == (guide, guide.store, token.token)
    with pytest.raises(ApplicationError) as forged:
        order_create(member=mall["member"], lines=[LineRequest(mall["m"].pk, 1)], share_token="forged:token")
    assert forged.value.fields == {"share_token": ["Not a valid guide token."]}


def test_cancelling_gives_back_stock_coupon_and_points_and_is_409_the_second_time(mall):
    template = CouponTemplate.objects.create(brand=mall["brand"], name="c", kind="threshold",
                                             discount_amount=D("10.00"), valid_days=1)
    coupon = coupon_issue(template=template, member=mall["member"])
    points_post(member=mall["member"], brand=mall["brand"], delta=5000, reason="adjust")
    order = order_create(member=mall["member"], lines=[LineRequest(mall["m"].pk, 2)], coupon_code=coupon.code,
                         points=5000)
    order_cancel(order=order, by_member=mall["member"])
    order.refresh_from_db()
    coupon.refresh_from_db()
    assert (order.status, stock(mall["m"]), coupon.status, coupon.used_order) == ("cancelled", 5, "available", None)
    assert points_balance(member=mall["member"], brand=mall["brand"]) == 5000
    assert list(PointsEntry.objects.filter(order=order).order_by("pk").values_list("reason", "delta")) == [
        ("spend", -5000), ("release", 5000)]
    with pytest.raises(ApplicationError) as again:
        order_cancel(order=order, by_member=mall["member"])
    assert (again.value.code, again.value.status) == ("invalid_transition", 409)


def test_expiry_releases_only_orders_past_their_deadline_and_records_the_unpaid_order(mall):
    MallSettings.objects.create(brand=mall["brand"], payment_minutes=15)
    start = timezone.now()
    early = order_create(member=mall["member"], lines=[LineRequest(mall["m"].pk, 1)], at=start)
    late = order_create(member=mall["member"], lines=[LineRequest(mall["l"].pk, 1)],
                        at=start + dt.timedelta(minutes=10))
    assert orders_expire(now=start + dt.timedelta(minutes=16)) == 1
    early.refresh_from_db()
    late.refresh_from_db()
    assert (early.status, late.status, stock(mall["m"]), stock(mall["l"])) == ("expired", "pending_payment", 5, 1)
    assert list(BehaviourEvent.objects.values_list("kind", "object_id")) == [("order_unpaid", early.order_no)]
    assert orders_expire(now=start + dt.timedelta(minutes=16)) == 0  # nothing twice


def test_stock_adjust_never_goes_below_zero(mall):
    user = staff_user("hq", group=mall["group"])
    assert stock_adjust(sku=mall["l"], delta=-2, user=user, note="count").quantity == 0
    with pytest.raises(ApplicationError) as refused:
        stock_adjust(sku=mall["l"], delta=-1, user=user)
    assert (refused.value.status, stock(mall["l"])) == (409, 0)


# ---------------------------------------------------------------------------- the API

def member_client(api_client, member):
    api_client.credentials(HTTP_AUTHORIZATION=f"Member {member_token_issue(member=member)}")
    return api_client


def test_catalogue_lists_products_with_prices_and_stock_and_filters(mall, api_client):
    rows = api_client.get("/api/v1/mp/products/").json()["results"]
    assert [(r["brand"], r["code"], r["price_from"], r["member_price_from"], r["in_stock"]) for r in rows] == [
        ("MEN", "SHIRT", "299.00", "259.00", 9), ("WOM", "DRESS", "599.00", "509.00", 7)]
    assert [r["code"] for r in api_client.get("/api/v1/mp/products/?brand=WOM").json()["results"]] == ["DRESS"]
    assert [r["code"] for r in api_client.get("/api/v1/mp/products/?price_max=300").json()["results"]] == ["SHIRT"]
    Stock.objects.filter(sku=mall["l"]).update(quantity=0)
    assert api_client.get("/api/v1/mp/products/?size=L").json()["results"] == []
    assert [r["code"] for r in api_client.get("/api/v1/mp/products/?q=真丝").json()["results"]] == ["DRESS"]
    bad = api_client.get("/api/v1/mp/products/?price_min=10&price_max=5")
    assert bad.status_code == 400 and bad.json()["error"]["fields"] == {"price_max": ["Must not be below price_min."]}


def test_product_detail_shows_each_skus_stock_and_404s_unknown_products(mall, api_client):
    detail = api_client.get(f"/api/v1/mp/products/{mall['m'].product_id}/").json()
    assert [(s["code"], s["member_price"], s["stock"]) for s in detail["skus"]] == [
        ("DRESS-L", "509.00", 2), ("DRESS-M", "509.00", 5)]
    assert api_client.get("/api/v1/mp/products/999999/").status_code == 404


def test_cart_then_checkout_from_the_cart(mall, api_client):
    client = member_client(api_client, mall["member"])
    response = client.put("/api/v1/mp/cart/items/", {"sku_id": mall["m"].pk, "quantity": 2}, format="json")
    assert [(i["sku_code"], i["quantity"]) for i in response.json()] == [("DRESS-M", 2)]
    client.put("/api/v1/mp/cart/items/", {"sku_id": mall["shirt"].pk, "quantity": 1}, format="json")
    created = client.post("/api/v1/mp/orders/create/", {"from_cart_brand": "WOM"}, format="json")
    assert created.status_code == 201
    assert (created.json()["total_amount"], created.json()["status"]) == ("1018.00", "pending_payment")
    assert list(CartItem.objects.values_list("sku__code", flat=True)) == ["SHIRT-M"]


def test_order_creation_with_an_idempotency_key_happens_once(mall, api_client):
    client = member_client(api_client, mall["member"])
    body = {"lines": [{"sku_id": mall["m"].pk, "quantity": 1}]}
    first = client.post("/api/v1/mp/orders/create/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post("/api/v1/mp/orders/create/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert (Order.objects.count(), stock(mall["m"])) == (1, 4)
    other = client.post("/api/v1/mp/orders/create/", {"lines": [{"sku_id": mall["m"].pk, "quantity": 2}]},
                        format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert (other.status_code, other.json()["error"]["code"]) == (422, "idempotency_key_reused")
    # A request that failed keeps no record: the client may fix it and retry with the key.
    short = client.post("/api/v1/mp/orders/create/", {"lines": [{"sku_id": mall["l"].pk, "quantity": 3}]},
                        format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert short.status_code == 409
    fixed = client.post("/api/v1/mp/orders/create/", {"lines": [{"sku_id": mall["l"].pk, "quantity": 3}]},
                        format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert fixed.status_code == 409 and Order.objects.count() == 1


@pytest.mark.parametrize("body, field", [
    ({}, "lines"),
    ({"lines": [{"sku_id": 1, "quantity": 0}]}, "lines"),
    ({"lines": [{"sku_id": "x", "quantity": 1}]}, "lines"),
    ({"lines": [{"sku_id": 999999, "quantity": 1}]}, "lines"),
    ({"from_cart_brand": "WOM"}, "from_cart_brand"),
    ({"lines": [{"sku_id": 1, "quantity": 1}], "points": -1}, "points"),
])
def test_bad_order_requests_are_400_with_field_messages(mall, api_client, body, field):
    client = member_client(api_client, mall["member"])
    response = client.post("/api/v1/mp/orders/create/", body, format="json")
    assert response.status_code == 400
    assert any(key == field or key.startswith(field + ".") for key in response.json()["error"]["fields"])


def test_orders_are_private_to_their_member(mall, api_client):
    order = order_create(member=mall["member"], lines=[LineRequest(mall["m"].pk, 1)])
    stranger = MemberFactory(group=mall["group"])
    client = member_client(api_client, stranger)
    assert client.get(f"/api/v1/mp/orders/{order.order_no}/").status_code == 404
    assert client.post(f"/api/v1/mp/orders/{order.order_no}/cancel/").status_code == 404
    assert client.get("/api/v1/mp/orders/").json()["results"] == []
    owner = member_client(api_client, mall["member"])
    assert owner.get(f"/api/v1/mp/orders/{order.order_no}/").json()["total_amount"] == "509.00"
    assert owner.post(f"/api/v1/mp/orders/{order.order_no}/cancel/").json()["status"] == "cancelled"
    assert owner.post(f"/api/v1/mp/orders/{order.order_no}/cancel/").status_code == 409
    assert owner.get("/api/v1/mp/orders/?status=bogus").status_code == 400


def test_order_endpoints_need_a_member_token(mall, api_client):
    assert api_client.get("/api/v1/mp/orders/").status_code == 401
    assert api_client.post("/api/v1/mp/orders/create/", {}, format="json").status_code == 401
    api_client.force_authenticate(staff_user("hq", group=mall["group"]))
    assert api_client.get("/api/v1/mp/cart/").status_code in (401, 403)


def test_an_idempotency_key_older_than_24_hours_is_free_again(mall, api_client):
    from retail_crm.models import IdempotencyRecord

    client = member_client(api_client, mall["member"])
    body = {"lines": [{"sku_id": mall["m"].pk, "quantity": 1}]}
    client.post("/api/v1/mp/orders/create/", body, format="json", HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyRecord.objects.update(created_at=timezone.now() - dt.timedelta(hours=24, seconds=1))
    again = client.post("/api/v1/mp/orders/create/", body, format="json", HTTP_IDEMPOTENCY_KEY="old")
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert (Order.objects.count(), IdempotencyRecord.objects.count()) == (2, 1)


def test_the_written_out_order_response_equals_the_declared_serializer_fields(mall):
    """OrderOutputSerializer.to_representation is hand-written for speed; it must say what the fields say."""
    from rest_framework import serializers

    from mall.api.mp_views import OrderOutputSerializer

    order = order_create(member=mall["member"], lines=[LineRequest(sku_id=mall["m"].pk, quantity=2),
                                                       LineRequest(sku_id=mall["l"].pk, quantity=1)])
    paid_at = dt.datetime(2026, 3, 1, 2, 3, 4, 567890, tzinfo=dt.UTC)
    Order.objects.filter(pk=order.pk).update(status="paid", paid_at=paid_at, paid_amount=D("1527.00"),
                                             refunded_amount=D("509.5"))
    order = Order.objects.select_related("brand").prefetch_related("lines__sku__product").get(pk=order.pk)
    fast = OrderOutputSerializer(order).data
    declared = serializers.Serializer.to_representation(OrderOutputSerializer(order), order)
    assert fast == declared
    assert fast["paid_at"] == "2026-03-01T10:03:04.567890+08:00"
    assert fast["refunded_amount"] == "509.50"
    assert fast["expires_at"] is not None and fast["shipped_at"] is None
    assert [(line["sku_code"], line["quantity"], line["amount"]) for line in fast["lines"]] == [
        ("DRESS-M", 2, "1018.00"), ("DRESS-L", 1, "509.00")]


def test_a_sku_that_never_had_a_stock_row_is_out_of_stock_and_an_unknown_one_is_400(mall):
    bare = Sku.objects.create(product=mall["m"].product, brand=mall["brand"], code="DRESS-XS", size="XS",
                              list_price=D("599.00"), member_price=D("509.00"), cost_price=D("200.00"))
    with pytest.raises(ApplicationError) as refused:
        order_create(member=mall["member"], lines=[LineRequest(mall["m"].pk, 1), LineRequest(bare.pk, 1)])
    assert (refused.value.code, refused.value.status, refused.value.fields) == (
        "out_of_stock", 409, {"DRESS-XS": ["Only 0 left."]})
    with pytest.raises(ApplicationError) as unknown:
        order_create(member=mall["member"], lines=[LineRequest(bare.pk, 1), LineRequest(bare.pk + 1000, 1)])
    assert (unknown.value.code, unknown.value.status, unknown.value.fields) == (
        "sku_unavailable", 400, {"lines": [f"Unknown sku_id {bare.pk + 1000}."]})
    assert (stock(mall["m"]), Order.objects.count(), StockMovement.objects.count()) == (5, 0, 0)


def test_the_order_checkout_returns_is_the_order_it_stored(mall):
    """The order, its lines and their SKUs come back from hand-written SQL: every field must equal a re-read."""
    template = CouponTemplate.objects.create(brand=mall["brand"], name="满1000减100", kind="threshold",
                                             threshold_amount=D("1000.00"), discount_amount=D("100.00"),
                                             valid_days=30)
    coupon = coupon_issue(template=template, member=mall["member"])
    made = order_create(member=mall["member"], lines=[LineRequest(mall["l"].pk, 1), LineRequest(mall["m"].pk, 2)],
                        coupon_code=coupon.code)
    stored = Order.objects.get(pk=made.pk)
    fields = [f.attname for f in Order._meta.concrete_fields]
    assert [getattr(made, f) for f in fields] == [getattr(stored, f) for f in fields]
    line_fields = [f.attname for f in OrderLine._meta.concrete_fields]
    assert [[getattr(line, f) for f in line_fields] for line in made.lines.all()] == [
        [getattr(line, f) for f in line_fields] for line in stored.lines.order_by("sku_id")]
    assert [(line.sku.code, line.sku.product.name, line.sku.brand.code, line.sku.list_price)
            for line in made.lines.all()] == [("DRESS-M", "真丝连衣裙", "WOM", D("599.00")),
                                              ("DRESS-L", "真丝连衣裙", "WOM", D("599.00"))]
    assert (made.brand.code, made.total_amount, made.coupon_discount) == ("WOM", D("1427.00"), D("100.00"))
    assert made.coupons.get() == coupon and Coupon.objects.get(pk=coupon.pk).locked_at == made.ordered_at


def test_sku_ids_no_key_can_hold_are_unknown_not_a_server_error(mall, api_client):
    token = member_token_issue(member=mall["member"])
    response = api_client.post("/api/v1/mp/orders/create/", {"lines": [{"sku_id": 2**63, "quantity": 1},
                                                                        {"sku_id": mall["m"].pk, "quantity": 1}]},
                               format="json", HTTP_AUTHORIZATION=f"Member {token}")
    assert (response.status_code, response.json()["error"]["fields"]) == (400, {"lines": [f"Unknown sku_id {2**63}."]})
    with pytest.raises(ApplicationError) as refused:
        order_create(member=mall["member"], lines=[LineRequest(2**70, 1)])
    assert (refused.value.status, refused.value.fields) == (400, {"lines": [f"Unknown sku_id {2**70}."]})
    assert Order.objects.count() == 0


def test_an_order_number_drawn_twice_is_a_409_and_the_checkout_leaves_nothing(mall, monkeypatch):
    first = order_create(member=mall["member"], lines=[LineRequest(mall["m"].pk, 1)])
    monkeypatch.setattr("mall.checkout._new_order_no", lambda brand, at: first.order_no)
    with pytest.raises(ApplicationError) as refused:
        order_create(member=mall["member"], lines=[LineRequest(mall["l"].pk, 1)])
    assert (refused.value.code, refused.value.status) == ("conflict", 409)
    assert (Order.objects.count(), stock(mall["m"]), stock(mall["l"]), StockMovement.objects.count(),
            OrderLine.objects.count()) == (1, 4, 2, 1, 1)
