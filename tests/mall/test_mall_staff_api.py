"""The staff mall API: scoped order lists and detail with masked phones, stock adjustment, coupon campaigns."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from mall.models import Coupon, CouponTemplate, Product, Sku, Stock
from members.models import BrandMembership, MemberTag, TagGroup, TagValue
from tests.factories import (
    BrandFactory,
    GuideBindingFactory,
    GuideFactory,
    MemberFactory,
    OrderFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
    staff_user,
)

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def world():
    group = RetailGroupFactory()
    wom, men = BrandFactory(group=group, code="WOM"), BrandFactory(group=group, code="MEN")
    east, west = RegionFactory(brand=wom, code="EAST"), RegionFactory(brand=wom, code="WEST")
    s_east, s_west = StoreFactory(brand=wom, region=east, code="WOM-E1"), StoreFactory(brand=wom, region=west,
                                                                                         code="WOM-W1")
    s_men = StoreFactory(brand=men, region=RegionFactory(brand=men), code="MEN-1")
    guide = GuideFactory(store=s_east, code="G-E1")
    buyer = MemberFactory(group=group, code="M1", phone="+8613812345678")
    GuideBindingFactory(member=buyer, guide=guide)
    at = timezone.now()
    orders = {
        "east": OrderFactory(brand=wom, store=s_east, guide=guide, member=buyer, order_no="E1", ordered_at=at,
                             channel="store_pos"),
        "west": OrderFactory(brand=wom, store=s_west, order_no="W1", ordered_at=at, channel="store_pos"),
        "men": OrderFactory(brand=men, store=s_men, order_no="N1", ordered_at=at, channel="mini_program",
                            status="pending_payment", paid_amount=D("0")),
    }
    product = Product.objects.create(brand=wom, code="P", name="p", category="c")
    sku = Sku.objects.create(product=product, brand=wom, code="P-M", list_price=D("100"), member_price=D("90"),
                             cost_price=D("30"))
    Stock.objects.create(sku=sku, quantity=3)
    return locals()


def nos(response):
    return sorted(row["order_no"] for row in response.json()["results"])


def test_each_role_lists_only_the_orders_of_its_scope(world, api_client):
    for user, expected in [
        (staff_user("hq", group=world["group"]), ["E1", "N1", "W1"]),
        (staff_user("brand_operator", brand=world["wom"]), ["E1", "W1"]),
        (staff_user("region_manager", brand=world["wom"], region=world["east"]), ["E1"]),
        (staff_user("guide", guide=world["guide"]), ["E1"]),
        (staff_user("store_manager", store=world["s_men"]), ["N1"]),
    ]:
        api_client.force_authenticate(user)
        assert nos(api_client.get("/api/v1/mall/orders/")) == expected


def test_filters_narrow_the_list_and_bad_filters_are_400(world, api_client):
    api_client.force_authenticate(staff_user("hq", group=world["group"]))
    assert nos(api_client.get("/api/v1/mall/orders/?brand=WOM&store=WOM-W1")) == ["W1"]
    assert nos(api_client.get("/api/v1/mall/orders/?status=pending_payment")) == ["N1"]
    assert nos(api_client.get("/api/v1/mall/orders/?channel=store_pos&member=M1")) == ["E1"]
    bad = api_client.get("/api/v1/mall/orders/?status=lost&date_from=2026-13-01")
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {"status", "date_from"}
    reversed_range = api_client.get("/api/v1/mall/orders/?date_from=2026-05-02&date_to=2026-05-01")
    assert reversed_range.json()["error"]["fields"] == {"date_to": ["Must not be before date_from."]}


def test_phones_are_whole_for_the_bound_guide_and_permission_holders_masked_otherwise(world, api_client):
    api_client.force_authenticate(staff_user("guide", guide=world["guide"]))
    assert api_client.get("/api/v1/mall/orders/").json()["results"][0]["member_phone"] == "13812345678"
    manager = staff_user("region_manager", brand=world["wom"], region=world["east"])
    api_client.force_authenticate(manager)
    assert api_client.get("/api/v1/mall/orders/").json()["results"][0]["member_phone"] == "138****5678"
    detail = api_client.get(f"/api/v1/mall/orders/{world['orders']['east'].pk}/").json()
    assert detail["member_phone"] == "138****5678"
    manager.user_permissions.add(Permission.objects.get(codename="view_full_phone"))
    manager = type(manager).objects.get(pk=manager.pk)  # fresh permission cache
    api_client.force_authenticate(manager)
    assert api_client.get(f"/api/v1/mall/orders/{world['orders']['east'].pk}/").json()["member_phone"] == \
        "13812345678"


def test_order_detail_is_404_outside_scope(world, api_client):
    api_client.force_authenticate(staff_user("region_manager", brand=world["wom"], region=world["east"]))
    assert api_client.get(f"/api/v1/mall/orders/{world['orders']['west'].pk}/").status_code == 404
    assert api_client.get("/api/v1/mall/orders/999999/").status_code == 404


def test_stock_adjust_by_brand_staff_only_and_never_negative(world, api_client):
    url = f"/api/v1/mall/skus/{world['sku'].pk}/stock/adjust/"
    api_client.force_authenticate(staff_user("store_manager", store=world["s_east"]))
    assert api_client.post(url, {"delta": 5}, format="json").status_code == 403
    api_client.force_authenticate(staff_user("brand_operator", brand=world["men"]))
    assert api_client.post(url, {"delta": 5}, format="json").status_code == 404
    api_client.force_authenticate(staff_user("brand_operator", brand=world["wom"]))
    assert api_client.post(url, {"delta": 5, "note": "到货"}, format="json").json() == {"sku_code": "P-M",
                                                                                      "quantity": 8}
    short = api_client.post(url, {"delta": -9}, format="json")
    assert (short.status_code, short.json()["error"]["code"]) == (409, "out_of_stock")
    assert api_client.post(url, {"delta": "many"}, format="json").status_code == 400
    assert Stock.objects.get(sku=world["sku"]).quantity == 8


def test_coupon_templates_are_validated_and_created_for_brands_in_scope(world, api_client):
    api_client.force_authenticate(staff_user("brand_operator", brand=world["wom"]))
    good = {"brand": "WOM", "name": "满300减30", "kind": "threshold", "threshold_amount": "300.00",
            "discount_amount": "30.00", "valid_days": 14}
    created = api_client.post("/api/v1/mall/coupon-templates/", good, format="json")
    assert created.status_code == 201 and created.json()["discount_amount"] == "30.00"
    other_brand = api_client.post("/api/v1/mall/coupon-templates/", good | {"brand": "MEN"}, format="json")
    assert other_brand.json()["error"]["fields"] == {"brand": ["No such brand in your scope."]}
    both = api_client.post("/api/v1/mall/coupon-templates/", good | {"discount_rate": "0.9", "valid_from":
                                                                     "2026-01-01T00:00:00+08:00"}, format="json")
    assert set(both.json()["error"]["fields"]) == {"discount_rate", "valid_days"}
    assert [t["name"] for t in api_client.get("/api/v1/mall/coupon-templates/").json()] == ["满300减30"]


def test_coupons_go_to_the_tagged_members_in_scope_once(world, api_client):
    template = CouponTemplate.objects.create(brand=world["wom"], name="沙龙券", kind="threshold",
                                             discount_amount=D("50.00"), valid_days=7)
    group_tag = TagGroup.objects.create(group=world["group"], brand=world["wom"], code="vip", name="VIP")
    gold = TagValue.objects.create(tag_group=group_tag, code="gold", name="金卡")
    tagged = [MemberFactory(group=world["group"]) for _ in range(3)]
    for member in tagged:
        BrandMembership.objects.create(member=member, brand=world["wom"], joined_at=timezone.now(),
                                       join_channel="store_card", store=world["s_east"])
        MemberTag.objects.create(member=member, tag_value=gold, source="manual", assigned_at=timezone.now())
    BrandMembership.objects.filter(member=tagged[2]).update(store=world["s_west"])  # another region
    url = f"/api/v1/mall/coupon-templates/{template.pk}/issue/"
    api_client.force_authenticate(staff_user("region_manager", brand=world["wom"], region=world["east"]))
    first = api_client.post(url, {"tag": "vip:gold"}, format="json", HTTP_IDEMPOTENCY_KEY="camp-1")
    assert first.json() == {"issued": 2, "skipped_holding": 0}
    assert sorted(Coupon.objects.values_list("member__code", flat=True)) == sorted(m.code for m in tagged[:2])
    assert api_client.post(url, {"tag": "vip:gold"}, format="json").json() == {"issued": 0, "skipped_holding": 2}
    assert api_client.post(url, {"tag": "vip:gold", "segment": "important_value"},
                           format="json").status_code == 400
    assert api_client.post(url, {"segment": "vip"}, format="json").status_code == 400
    api_client.force_authenticate(staff_user("guide", guide=world["guide"]))  # guides do not see templates
    assert api_client.post(url, {"tag": "vip:gold"}, format="json").status_code == 404
    assert Coupon.objects.count() == 2


def test_staff_mall_api_needs_a_staff_login(world, api_client):
    assert api_client.get("/api/v1/mall/orders/").status_code == 401
