"""marketing.audiences: saved definitions compiled into one member query, and the scoped audience API.

Hand-made members of two brands of one group; "now" is 2030-03-20 10:00 Shanghai (the conditions are evaluated
``at`` it). Brand WA's consumption cycle is set to 45 days (care 15, marketing from day 40, lapsed from day 90).

=====  ===============================================================================================
alice  WA since 2029-06-01 at SA1 (east) by guide QR; bound to GA1 and his WeCom friend; tags M, vip;
       RFML important_value / mature, last purchase 2030-03-10 (10 days: care); 500 points; an unused T1
       coupon; viewed P001 3× and favourited it once in March; bought P001 (连衣裙) 300 on 03-10 and P003
       (羽绒服) 600 on 2029-03-25
bob    WA since 2030-01-15 at SA2 (west) by store card; bound to GA2, WeCom friendship removed; tag L;
       general_develop / new, last purchase 2030-01-30 (49 days: market); no points; viewed P001 once,
       put P002 (鞋) in the cart twice; bought P002 150 on 01-30; a P001 order on 03-18 fully refunded
carol  WA since 2028-05-05 at SA1 by store card, AND WB (bound to GB1 there, GB1's WeCom friend); tags M,
       bv (WB's); WA: important_retain / lapsed, last purchase 2029-10-01 (170 days: winback), 70 points
       (100 − 30), bought P003 800 on 2029-10-01, her T1 coupon void; WB: 1,000 points, a WB coupon, a WB
       order on 2030-03-12, 5 views of a WB product
dan    WB only (matches most conditions there): never in a WA audience
erin   WA since 2030-03-01 by livestream, no store, no guide, no purchase; −20 points; an expired T2 coupon;
       favourited P001 twice on 03-18, viewed P002 on 02-01 (outside 30 days)
frank  WA, merged into alice (a tombstone): never in any audience
=====  ===============================================================================================
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mall.models import Coupon, CouponStatus, CouponTemplate, OrderLine, Product, Sku
from marketing.audiences import (
    audience_count,
    audience_member_ids_sql,
    audience_members,
    audience_query_settings,
)
from marketing.models import Audience
from members.events import activity_summarise
from members.models import BehaviourEvent, JoinChannel, MemberTag, WeComFriendship
from members.services import points_post
from members.tags import tag_group_get_or_create, tag_value_get_or_create
from retail_crm.errors import ApplicationError
from segments.models import MemberRfm, SegmentationSettings
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    GuideBindingFactory,
    GuideFactory,
    MemberFactory,
    OrderFactory,
    RegionFactory,
    StoreFactory,
    staff_user,
)

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2030, 3, 20, 10, 0, tzinfo=SH)
URL = "/api/v1/marketing/audiences/"


def local(y: int, m: int, d: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(y, m, d, hour, tzinfo=SH)


class World:
    pass


@pytest.fixture
def w():
    w = World()
    w.a = BrandFactory(code="WA")
    w.b = BrandFactory(code="WB", group=w.a.group)
    w.group = w.a.group
    w.east = RegionFactory(brand=w.a, code="east")
    w.west = RegionFactory(brand=w.a, code="west")
    w.sa1 = StoreFactory(region=w.east, code="SA1")
    w.sa2 = StoreFactory(region=w.west, code="SA2")
    w.sb1 = StoreFactory(region=RegionFactory(brand=w.b, code="b-east"), code="SB1")
    w.ga1 = GuideFactory(store=w.sa1, code="GA1")
    w.ga2 = GuideFactory(store=w.sa2, code="GA2")
    w.gb1 = GuideFactory(store=w.sb1, code="GB1")
    SegmentationSettings.objects.create(brand=w.a, cycle_days=45)

    size = tag_group_get_or_create(group=w.group, code="size", name="尺码")
    w.tag_m = tag_value_get_or_create(tag_group=size, code="M")
    w.tag_l = tag_value_get_or_create(tag_group=size, code="L")
    w.tag_vip = tag_value_get_or_create(tag_group=tag_group_get_or_create(group=w.group, brand=w.a, code="interest",
                                                                          name="兴趣"), code="vip")
    w.tag_bv = tag_value_get_or_create(tag_group=tag_group_get_or_create(group=w.group, brand=w.b, code="bvip",
                                                                         name="B 会员"), code="bv")

    def product(brand, code, category):
        item = Product.objects.create(brand=brand, code=code, name=code, category=category)
        Sku.objects.create(product=item, brand=brand, code=f"{code}-M", list_price=Decimal("999.00"),
                           member_price=Decimal("999.00"), cost_price=Decimal("100.00"))
        return item

    w.p001, w.p002, w.p003 = product(w.a, "P001", "连衣裙"), product(w.a, "P002", "鞋"), product(w.a, "P003", "羽绒服")
    w.q001 = product(w.b, "Q001", "连衣裙")

    def template(brand, name):
        return CouponTemplate.objects.create(brand=brand, name=name, kind="threshold", discount_amount=Decimal("20"),
                                             valid_days=30)

    w.t1, w.t2, w.tb = template(w.a, "T1"), template(w.a, "T2"), template(w.b, "TB")

    def member(code, phone, name, *brands):
        person = MemberFactory(group=w.group, code=code, phone=phone, name=name)
        for brand, store, channel, joined in brands:
            BrandMembershipFactory(member=person, brand=brand, store=store, join_channel=channel, joined_at=joined)
        return person

    w.alice = member("alice", "+8613800000001", "王丽", (w.a, w.sa1, JoinChannel.GUIDE_QR, local(2029, 6, 1, 10)))
    w.bob = member("bob", "+8613800000002", "李强", (w.a, w.sa2, JoinChannel.STORE_CARD, local(2030, 1, 15)))
    w.carol = member("carol", "+8613800000003", "=HYPERLINK(1)",
                     (w.a, w.sa1, JoinChannel.STORE_CARD, local(2028, 5, 5)),
                     (w.b, w.sb1, JoinChannel.STORE_CARD, local(2029, 1, 1)))
    w.dan = member("dan", "+8613800000004", "赵四", (w.b, w.sb1, JoinChannel.GUIDE_QR, local(2030, 1, 1)))
    w.erin = member("erin", "+8613800000005", "", (w.a, None, JoinChannel.LIVESTREAM, local(2030, 3, 1)))
    w.frank = member("frank", "+8613800000006", "", (w.a, w.sa1, JoinChannel.GUIDE_QR, local(2029, 6, 1)))
    w.frank.merged_into = w.alice
    w.frank.save(update_fields=["merged_into"])

    GuideBindingFactory(member=w.alice, guide=w.ga1)
    GuideBindingFactory(member=w.bob, guide=w.ga2)
    GuideBindingFactory(member=w.carol, guide=w.gb1)
    GuideBindingFactory(member=w.dan, guide=w.gb1)
    GuideBindingFactory(member=w.erin, guide=w.ga1, started_at=local(2030, 3, 1), ended_at=local(2030, 3, 2))
    for person, guide, removed in ((w.alice, w.ga1, None), (w.bob, w.ga2, local(2030, 3, 1)),
                                   (w.carol, w.gb1, None), (w.dan, w.gb1, None)):
        WeComFriendship.objects.create(member=person, guide=guide, added_at=local(2030, 1, 1), removed_at=removed,
                                       source="api")
    for person, values in ((w.alice, [w.tag_m, w.tag_vip]), (w.bob, [w.tag_l]), (w.carol, [w.tag_m, w.tag_bv]),
                           (w.dan, [w.tag_m, w.tag_l]), (w.frank, [w.tag_m])):
        for value in values:
            MemberTag.objects.create(member=person, tag_value=value, source="manual", assigned_at=NOW)

    def rfm(person, brand, segment, stage, last):
        MemberRfm.objects.create(member=person, brand=brand, segment=segment, lifecycle_stage=stage,
                                 last_purchase_on=last, first_purchase_on=last, frequency=1, purchases_total=1)

    rfm(w.alice, w.a, "important_value", "mature", dt.date(2030, 3, 10))
    rfm(w.bob, w.a, "general_develop", "new", dt.date(2030, 1, 30))
    rfm(w.carol, w.a, "important_retain", "lapsed", dt.date(2029, 10, 1))
    rfm(w.carol, w.b, "important_value", "mature", dt.date(2030, 3, 12))
    rfm(w.dan, w.b, "important_value", "mature", dt.date(2030, 3, 1))

    for person, brand, deltas in ((w.alice, w.a, [500]), (w.carol, w.a, [100, -30]), (w.carol, w.b, [1000]),
                                  (w.dan, w.b, [2000]), (w.erin, w.a, [-20])):
        for delta in deltas:
            points_post(member=person, brand=brand, delta=delta, reason="adjust", allow_overdraw=True)

    def coupon(person, template, code, *, status=CouponStatus.AVAILABLE, valid_to=local(2030, 4, 30)):
        Coupon.objects.create(template=template, member=person, code=code, issued_at=local(2030, 3, 1),
                              valid_from=local(2030, 2, 1), valid_to=valid_to, status=status)

    coupon(w.alice, w.t1, "C1")
    coupon(w.carol, w.t1, "C2", status=CouponStatus.VOID)
    coupon(w.carol, w.tb, "C3")
    coupon(w.dan, w.tb, "C4")
    coupon(w.erin, w.t2, "C5", valid_to=local(2030, 3, 1))

    def events(person, brand, kind, product, *days):
        for day in days:
            BehaviourEvent.objects.create(brand=brand, member=person, kind=kind, occurred_at=local(*day),
                                          object_type="product", object_id=product.code)

    events(w.alice, w.a, "product_view", w.p001, (2030, 3, 5), (2030, 3, 6), (2030, 3, 7))
    events(w.alice, w.a, "favourite", w.p001, (2030, 3, 7))
    events(w.bob, w.a, "product_view", w.p001, (2030, 3, 15))
    events(w.bob, w.a, "add_to_cart", w.p002, (2030, 3, 15), (2030, 3, 16))
    events(w.carol, w.b, "product_view", w.q001, *[(2030, 3, day) for day in range(10, 15)])
    events(w.dan, w.b, "product_view", w.q001, (2030, 3, 10))
    events(w.erin, w.a, "favourite", w.p001, (2030, 3, 18), (2030, 3, 18))
    events(w.erin, w.a, "product_view", w.p002, (2030, 2, 1))
    activity_summarise(date_from=dt.date(2030, 1, 1), date_to=dt.date(2030, 3, 20))

    def order(person, brand, product, amount, when, refunded="0.00"):
        placed = OrderFactory(brand=brand, member=person, ordered_at=when, total_amount=Decimal(amount),
                              paid_amount=Decimal(amount), refunded_amount=Decimal(refunded))
        sku = product.skus.get()
        OrderLine.objects.create(order=placed, brand=brand, sku=sku, quantity=1, list_price=Decimal(amount),
                                 unit_price=Decimal(amount), amount=Decimal(amount), refunded_amount=Decimal(refunded))

    order(w.alice, w.a, w.p001, "300.00", local(2030, 3, 10))
    order(w.alice, w.a, w.p003, "600.00", local(2029, 3, 25))
    order(w.bob, w.a, w.p002, "150.00", local(2030, 1, 30))
    order(w.bob, w.a, w.p001, "200.00", local(2030, 3, 18), refunded="200.00")
    order(w.carol, w.a, w.p003, "800.00", local(2029, 10, 1))
    order(w.carol, w.b, w.q001, "500.00", local(2030, 3, 12))
    order(w.dan, w.b, w.q001, "900.00", local(2030, 3, 1))
    return w


def codes(w, definition, brand=None) -> set[str]:
    return set(audience_members(brand=brand or w.a, definition=definition, at=NOW).values_list("code", flat=True))


def resolve(w, definition):
    """Turn {"$name": …} placeholders into the world's ids."""
    if isinstance(definition, dict):
        return {key: resolve(w, value) for key, value in definition.items()}
    if isinstance(definition, list):
        return [resolve(w, value) for value in definition]
    if isinstance(definition, str) and definition.startswith("$"):
        return getattr(w, definition[1:]).pk
    return definition


# ---------------------------------------------------------------------------- each condition, exact sets

@pytest.mark.parametrize(("definition", "expected"), [
    ({}, {"alice", "bob", "carol", "erin"}),
    # tags
    ({"tags": {"any": ["$tag_m"]}}, {"alice", "carol"}),
    ({"tags": {"any": ["$tag_m", "$tag_l"]}}, {"alice", "bob", "carol"}),
    ({"tags": {"all": ["$tag_m", "$tag_vip"]}}, {"alice"}),
    ({"tags": {"none": ["$tag_m"]}}, {"bob", "erin"}),
    ({"tags": {"any": ["$tag_m", "$tag_l"], "none": ["$tag_vip"]}}, {"bob", "carol"}),
    # RFML class, lifecycle stage
    ({"rfml_classes": ["important_value", "important_retain"]}, {"alice", "carol"}),
    ({"rfml_classes": ["general_develop"]}, {"bob"}),
    ({"lifecycle_stages": ["lapsed"]}, {"carol"}),
    ({"lifecycle_stages": ["new", "mature"]}, {"alice", "bob"}),
    # care stage (cycle 45: care ≤ 15 days, market from 40, winback from 90 or lapsed)
    ({"care_stages": ["care"]}, {"alice"}),
    ({"care_stages": ["market"]}, {"bob"}),
    ({"care_stages": ["winback"]}, {"carol"}),
    ({"care_stages": ["care", "market"]}, {"alice", "bob"}),
    # days since the last purchase (alice 10, bob 49, carol 170), in days or cycles of 45
    ({"last_purchase": {"min_days": 40}}, {"bob", "carol"}),
    ({"last_purchase": {"max_days": 10}}, {"alice"}),
    ({"last_purchase": {"min_days": 11, "max_days": 49}}, {"bob"}),
    ({"last_purchase": {"min_cycles": 1, "max_cycles": 2}}, {"bob"}),        # 45–90 days
    ({"last_purchase": {"min_cycles": "1.08"}}, {"bob", "carol"}),          # ⌈48.6⌉ = 49
    ({"last_purchase": {"min_cycles": 1.1}}, {"carol"}),                    # ⌈49.5⌉ = 50
    # behaviour (window: the last N local days, today included)
    ({"behaviour": [{"event": "product_view", "products": ["P001"], "days": 30, "min": 3}]}, {"alice"}),
    ({"behaviour": [{"event": "product_view", "products": ["P001"], "days": 30}]}, {"alice", "bob"}),
    ({"behaviour": [{"event": "product_view", "products": ["P002"], "days": 30}]}, set()),
    ({"behaviour": [{"event": "add_to_cart", "categories": ["鞋"], "days": 30, "min": 2}]}, {"bob"}),
    ({"behaviour": [{"event": "favourite", "days": 30, "min": 2}]}, {"erin"}),
    ({"behaviour": [{"event": "favourite", "days": 30, "min": 0, "max": 0}]}, {"bob", "carol"}),
    ({"behaviour": [{"event": "favourite", "products": ["P001"], "days": 3}]}, {"erin"}),
    ({"behaviour": [{"event": "product_view", "days": 30, "min": 1, "max": 1}]}, {"bob"}),
    # purchases (bob's 03-18 order was fully refunded: not a purchase; carol's 03-12 one is WB's)
    ({"purchase": [{"days": 30}]}, {"alice"}),
    ({"purchase": [{"days": 30, "bought": False}]}, {"bob", "carol", "erin"}),
    ({"purchase": [{"same_period_last_year_days": 30}]}, {"alice"}),        # 2029-03-20 … 2029-04-18
    ({"purchase": [{"categories": ["羽绒服"]}]}, {"alice", "carol"}),
    ({"purchase": [{"order_value": {"min": "600.00"}}]}, {"alice", "carol"}),
    ({"purchase": [{"order_value": {"min": 150, "max": "300"}}]}, {"alice", "bob"}),
    ({"purchase": [{"from": "2029-10-01", "to": "2029-10-01"}]}, {"carol"}),
    ({"purchase": [{"categories": ["连衣裙"], "order_value": {"min": "500"}}]}, set()),  # one order must hold both
    ({"purchase": [{"bought": False}]}, {"erin"}),
    # WeCom friendship with a guide of the brand
    ({"wecom_friend": True}, {"alice"}),
    ({"wecom_friend": False}, {"bob", "carol", "erin"}),
    # bound now to a guide, of a store, of a region (erin's binding to GA1 has ended; carol is bound in WB only)
    ({"guides": ["$ga1"]}, {"alice"}),
    ({"guides": ["$ga1", "$ga2"]}, {"alice", "bob"}),
    ({"stores": ["$sa1"]}, {"alice"}),
    ({"stores": ["$sa2"]}, {"bob"}),
    ({"regions": ["$east"]}, {"alice"}),
    ({"regions": ["$west", "$east"]}, {"alice", "bob"}),
    # join store, join channel and local join day
    ({"join_stores": ["$sa1"]}, {"alice", "carol"}),
    ({"join_stores": ["$sa2", "$sa1"]}, {"alice", "bob", "carol"}),
    ({"join_channels": ["livestream"]}, {"erin"}),
    ({"join_channels": ["store_card"]}, {"bob", "carol"}),
    ({"joined": {"from": "2030-01-01"}}, {"bob", "erin"}),
    ({"joined": {"to": "2029-06-01"}}, {"alice", "carol"}),
    ({"joined": {"from": "2030-01-15", "to": "2030-01-15"}}, {"bob"}),
    # points balance in the brand (carol's 1,000 WB points do not count)
    ({"points": {"min": 100}}, {"alice"}),
    ({"points": {"min": 50, "max": 100}}, {"carol"}),
    ({"points": {"max": 0}}, {"bob", "erin"}),
    ({"points": {"min": 0, "max": 0}}, {"bob"}),
    ({"points": {"min": -100, "max": 80}}, {"bob", "carol", "erin"}),
    # unused coupons of the brand's templates (carol's T1 is void, erin's T2 expired, carol's WB one not WA's)
    ({"coupons": {"held": True}}, {"alice"}),
    ({"coupons": {"templates": ["$t1"]}}, {"alice"}),
    ({"coupons": {"templates": ["$t2"]}}, set()),
    ({"coupons": {"held": False}}, {"bob", "carol", "erin"}),
])
def test_each_condition_selects_exactly_its_members(w, definition, expected):
    assert codes(w, resolve(w, definition)) == expected


@pytest.mark.parametrize(("definition", "expected"), [
    ({"tags": {"any": ["$tag_m"]}, "rfml_classes": ["important_value", "important_retain"], "wecom_friend": True},
     {"alice"}),
    ({"care_stages": ["winback"], "points": {"min": 50}}, {"carol"}),
    ({"purchase": [{"days": 30, "bought": False}], "behaviour": [{"event": "add_to_cart", "days": 30}],
      "stores": ["$sa2"]}, {"bob"}),
    ({"join_stores": ["$sa1"], "regions": ["$east"]}, {"alice"}),
    ({"behaviour": [{"event": "product_view", "products": ["P001"], "days": 30},
                    {"event": "favourite", "days": 30}], "purchase": [{"days": 30}]}, {"alice"}),
    ({"purchase": [{"categories": ["羽绒服"]}, {"days": 30, "bought": False}]}, {"carol"}),
    ({"join_channels": ["guide_qr", "livestream"], "coupons": {"held": False}}, {"erin"}),
])
def test_conditions_combine_with_and(w, definition, expected):
    assert codes(w, resolve(w, definition)) == expected


def test_another_brand_s_audience_holds_only_its_own_members_even_a_shared_one(w):
    everyone = {"alice", "bob", "carol", "dan", "erin", "frank"}
    assert codes(w, {}, brand=w.b) == {"carol", "dan"}
    assert codes(w, {"tags": {"any": [w.tag_m.pk]}}, brand=w.b) == {"carol", "dan"}
    assert codes(w, {"rfml_classes": ["important_value"]}, brand=w.b) == {"carol", "dan"}
    assert codes(w, {"points": {"min": 1000}}, brand=w.b) == {"carol", "dan"}
    # The same definitions in WA: dan (WB only) never, carol only as WA sees her.
    assert codes(w, {"rfml_classes": ["important_value"]}) == {"alice"}
    assert codes(w, {"points": {"min": 1000}}) == set()
    assert "dan" not in codes(w, {}) and codes(w, {}) < everyone


def test_the_audience_is_one_query_and_counts_without_loading_members(w):
    definition = resolve(w, {"tags": {"any": ["$tag_m"]}, "care_stages": ["care", "winback"],
                             "behaviour": [{"event": "favourite", "days": 30, "min": 0, "max": 5}],
                             "purchase": [{"same_period_last_year_days": 30, "bought": False}],
                             "wecom_friend": False, "join_stores": ["$sa1"], "points": {"min": 50},
                             "coupons": {"held": False}})
    members = audience_members(brand=w.a, definition=definition, at=NOW)
    with CaptureQueriesContext(connection) as queries:
        assert members.count() == 1
    assert len(queries) == 1
    assert audience_count(brand=w.a, definition=definition, at=NOW) == 1
    sql, params = audience_member_ids_sql(brand=w.a, definition=definition, at=NOW)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        assert cursor.fetchall() == [(w.carol.pk,)]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner settings")
def test_audience_queries_get_their_planner_settings_and_give_them_back(w):
    def current() -> tuple[str, str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('work_mem'), current_setting('jit')")
            return cursor.fetchone()

    with transaction.atomic():  # a campaign's own transaction
        before = current()
        with audience_query_settings():
            assert current() == ("64MB", "off")
            assert audience_members(brand=w.a, definition={"points": {"max": 0}}, at=NOW).count() == 2
        assert current() == before
        with pytest.raises(ApplicationError), audience_query_settings():
            audience_count(brand=w.a, definition={"guides": [w.gb1.pk]})
        assert current() == before


def test_a_saved_definition_that_no_longer_fits_its_brand_is_refused_when_resolved(w):
    definition = {"tags": {"none": [w.tag_vip.pk]}}
    assert codes(w, definition) == {"bob", "carol", "erin"}
    w.tag_vip.delete()
    with pytest.raises(ApplicationError) as error:
        audience_members(brand=w.a, definition=definition, at=NOW)
    assert (error.value.status, error.value.fields) == (
        400, {"definition.tags.none": [f"No such tag value in the audience's brand: {definition['tags']['none'][0]}."]})


# ---------------------------------------------------------------------------- validation

def invalid(w, definition, brand=None) -> dict:
    with pytest.raises(ApplicationError) as error:
        audience_members(brand=brand or w.a, definition=definition, at=NOW)
    assert (error.value.status, error.value.code) == (400, "invalid")
    return error.value.fields


def test_unknown_keys_and_wrong_types_are_named_field_by_field(w):
    assert invalid(w, {
        "colour": ["red"],
        "tags": {"any": [w.tag_m.pk, "x"], "some": [2]},
        "rfml_classes": ["vip"],
        "wecom_friend": 1,
        "points": {"min": "100"},
        "joined": {"from": "2030-02-30"},
        "last_purchase": {"min_days": -1, "max_cycles": "1.005"},
        "behaviour": [{"event": "click", "days": 31, "min": True, "colour": 1}],
        "purchase": [{"days": 30, "from": "2030-01-01", "order_value": {"min": "9", "max": "5"}}, "x"],
        "coupons": {"held": "yes", "templates": []},
    }) == {
        "definition.colour": ["Unknown condition."],
        "definition.tags.some": ["Unknown key."],
        "definition.tags.any.1": ["Expected an id (a whole number)."],
        "definition.rfml_classes.0": ["Unknown value 'vip'; one of: general_develop, general_retain, "
                                      "general_value, general_winback, important_develop, important_retain, "
                                      "important_value, important_winback."],
        "definition.wecom_friend": ["Expected true or false."],
        "definition.points.min": ["Expected a whole number."],
        "definition.joined.from": ["Expected a date (YYYY-MM-DD)."],
        "definition.last_purchase.min_days": ["Must be between 0 and 3660."],
        "definition.last_purchase.max_cycles": ["At most 2 decimal places."],
        "definition.behaviour.0.colour": ["Unknown key."],
        "definition.behaviour.0.event": ["One of: product_view, favourite, add_to_cart, share."],
        "definition.behaviour.0.days": ["Must be between 1 and 30."],
        "definition.behaviour.0.min": ["Expected a whole number."],
        "definition.purchase.0": ["Give one window: days, same_period_last_year_days, or from/to."],
        "definition.purchase.0.order_value.max": ["Must not be below the minimum."],
        "definition.purchase.1": ["Expected an object."],
        "definition.coupons.held": ["Expected true or false."],
        "definition.coupons.templates": ["Expected a non-empty list."],
    }


def test_ids_codes_and_categories_outside_the_brand_are_refused(w):
    assert invalid(w, {
        "tags": {"any": [w.tag_bv.pk], "all": [w.tag_m.pk]},
        "guides": [w.gb1.pk, w.ga1.pk],
        "stores": [w.sb1.pk],
        "join_stores": [w.sa1.pk, w.sb1.pk],
        "regions": [w.sb1.region_id],
        "coupons": {"templates": [w.tb.pk]},
        "behaviour": [{"event": "product_view", "products": ["Q001", "P001"], "days": 7},
                      {"event": "favourite", "categories": ["帽子"], "days": 7}],
        "purchase": [{"categories": ["连衣裙", "袜子"]}],
    }) == {
        "definition.tags.any": [f"No such tag value in the audience's brand: {w.tag_bv.pk}."],
        "definition.guides": [f"No such guide in the audience's brand: {w.gb1.pk}."],
        "definition.stores": [f"No such store in the audience's brand: {w.sb1.pk}."],
        "definition.join_stores": [f"No such store in the audience's brand: {w.sb1.pk}."],
        "definition.regions": [f"No such region in the audience's brand: {w.sb1.region_id}."],
        "definition.coupons.templates": [f"No such coupon template in the audience's brand: {w.tb.pk}."],
        "definition.behaviour.0.products": ["No such product in the audience's brand: Q001."],
        "definition.behaviour.1.categories": ["No such product category in the audience's brand: 帽子."],
        "definition.purchase.0.categories": ["No such product category in the audience's brand: 袜子."],
    }


def test_shapes_that_say_nothing_or_contradict_themselves_are_refused(w):
    assert invalid(w, []) == {"definition": ["Expected an object."]}
    assert invalid(w, {"tags": {}, "points": {}, "joined": {"from": "2030-02-01", "to": "2030-01-01"},
                       "behaviour": [{"event": "favourite", "min": 0}], "purchase": [],
                       "guides": [], "last_purchase": {}}) == {
        "definition.tags": ["Give any, all or none."],
        "definition.points": ["Give min, max or both."],
        "definition.joined.to": ["Must not be below the minimum."],
        "definition.behaviour.0.days": ["This field is required."],
        "definition.behaviour.0.min": ["With min 0 give a max (e.g. 0 for none at all)."],
        "definition.purchase": ["Expected a list of 1–10 conditions."],
        "definition.guides": ["Expected a non-empty list."],
        "definition.last_purchase": ["Give min_days, max_days, min_cycles or max_cycles."],
    }


def test_cycle_conditions_need_the_brand_s_consumption_cycle(w):
    assert invalid(w, {"care_stages": ["market"]}, brand=w.b) == {
        "definition.care_stages": ["The brand has no consumption cycle yet (no RFML run and no cycle set)."]}
    assert invalid(w, {"last_purchase": {"max_cycles": 1}}, brand=w.b) == {
        "definition.last_purchase": ["The brand has no consumption cycle yet (no RFML run and no cycle set)."]}
    assert codes(w, {"last_purchase": {"max_days": 30}}, brand=w.b) == {"carol", "dan"}  # days need no cycle


# ---------------------------------------------------------------------------- the API: scope and roles

@pytest.fixture
def users(w):
    return {
        "hq": staff_user("hq", group=w.group),
        "wa": staff_user("brand_operator", brand=w.a),
        "wb": staff_user("brand_operator", brand=w.b),
        "region": staff_user("region_manager", region=w.east),
        "store": staff_user("store_manager", store=w.sa1),
        "guide": staff_user("guide", guide=w.ga1),
    }


def as_user(api_client, user):
    api_client.force_authenticate(user)
    return api_client


def test_brand_operators_create_and_see_only_their_brand_s_audiences(w, users, api_client):
    tag_m = {"tags": {"any": [w.tag_m.pk]}}
    wa = as_user(api_client, users["wa"]).post(URL, {"name": "M 码", "definition": tag_m}, format="json")
    assert wa.status_code == 201, wa.json()
    assert {k: wa.json()[k] for k in ("brand", "name", "definition")} == {"brand": "WA", "name": "M 码",
                                                                           "definition": tag_m}
    wb = as_user(api_client, users["wb"]).post(URL, {"name": "M 码", "definition": tag_m}, format="json")
    hq = as_user(api_client, users["hq"]).post(URL, {"brand": "WA", "name": "全部", "definition": {}}, format="json")
    assert (wb.status_code, hq.status_code) == (201, 201)
    saved = Audience.objects.get(pk=wa.json()["id"])
    assert (saved.brand, saved.group, saved.created_by) == (w.a, w.group, users["wa"])

    def names(user):
        return [(row["brand"], row["name"]) for row in as_user(api_client, user).get(URL).json()["results"]]

    assert names(users["wa"]) == [("WA", "M 码"), ("WA", "全部")]
    assert names(users["wb"]) == [("WB", "M 码")]
    assert names(users["hq"]) == [("WA", "M 码"), ("WA", "全部"), ("WB", "M 码")]
    # Another brand's audience does not exist for a brand operator, whatever the method.
    b_url = f"{URL}{wb.json()['id']}/"
    client = as_user(api_client, users["wa"])
    assert [client.get(b_url).status_code, client.patch(b_url, {"name": "x"}, format="json").status_code,
            client.delete(b_url).status_code, client.get(f"{b_url}export/").status_code,
            client.get(f"{b_url}size/").status_code] == [404, 404, 404, 404, 404]
    assert Audience.objects.filter(pk=wb.json()["id"], name="M 码").exists()


def test_a_brand_operator_cannot_create_or_preview_for_another_brand(w, users, api_client):
    client = as_user(api_client, users["wa"])
    for url, body in ((URL, {"brand": "WB", "name": "x", "definition": {}}),
                      (f"{URL}preview/", {"brand": "WB", "definition": {}})):
        response = client.post(url, body, format="json")
        assert (response.status_code, response.json()["error"]["fields"]) == (400, {
            "brand": ["No such brand in your scope."]})
    hq = as_user(api_client, users["hq"]).post(f"{URL}preview/", {"definition": {}}, format="json")
    assert (hq.status_code, hq.json()["error"]["fields"]) == (400, {"brand": ["This field is required."]})


def test_preview_counts_live_within_the_operator_s_brand_only(w, users, api_client):
    tag_m = {"tags": {"any": [w.tag_m.pk]}}
    wa = as_user(api_client, users["wa"]).post(f"{URL}preview/", {"definition": tag_m}, format="json")
    wb = as_user(api_client, users["wb"]).post(f"{URL}preview/", {"definition": tag_m}, format="json")
    hq = as_user(api_client, users["hq"]).post(f"{URL}preview/", {"brand": "WB", "definition": {}}, format="json")
    assert [r.json() for r in (wa, wb, hq)] == [{"count": 2}, {"count": 2}, {"count": 2}]  # alice+carol, carol+dan
    bad = as_user(api_client, users["wa"]).post(f"{URL}preview/", {"definition": {"guides": [w.gb1.pk]}},
                                                format="json")
    assert (bad.status_code, bad.json()["error"]["fields"]) == (400, {
        "definition.guides": [f"No such guide in the audience's brand: {w.gb1.pk}."]})
    assert not Audience.objects.exists()


def test_a_saved_audience_is_counted_now_within_the_caller_s_scope(w, users, api_client):
    tag_m = Audience.objects.create(group=w.group, brand=w.a, name="M", definition={"tags": {"any": [w.tag_m.pk]}})
    everyone_b = Audience.objects.create(group=w.group, brand=w.b, name="全部", definition={})
    no_vip = Audience.objects.create(group=w.group, brand=w.a, name="非 vip",
                                     definition={"tags": {"none": [w.tag_vip.pk]}})

    def size(user, audience):
        return as_user(api_client, user).get(f"{URL}{audience.pk}/size/")

    before = timezone.now()
    answer = size(users["wa"], tag_m)
    after = timezone.now()
    assert answer.status_code == 200 and set(answer.json()) == {"count", "counted_at"}
    assert answer.json()["count"] == 2  # alice, carol; frank was merged away
    assert before <= dt.datetime.fromisoformat(answer.json()["counted_at"]) <= after
    assert [size(users["hq"], a).json()["count"] for a in (tag_m, everyone_b, no_vip)] == [2, 2, 3]
    assert (size(users["wb"], tag_m).status_code, size(users["wa"], everyone_b).status_code) == (404, 404)
    assert size(users["wa"], no_vip).json()["count"] == 3  # bob, carol, erin

    vip = w.tag_vip.pk
    w.tag_vip.delete()
    refused = size(users["wa"], no_vip)
    assert (refused.status_code, refused.json()["error"]["code"], refused.json()["error"]["fields"]) == (
        400, "invalid", {"definition.tags.none": [f"No such tag value in the audience's brand: {vip}."]})
    assert Audience.objects.get(pk=no_vip.pk).definition == {"tags": {"none": [vip]}}  # counting changes nothing


@pytest.mark.parametrize("role", ["region", "store", "guide"])
def test_region_store_and_guide_roles_have_no_audiences(w, users, api_client, role):
    audience = Audience.objects.create(group=w.group, brand=w.a, name="全部", definition={})
    client = as_user(api_client, users[role])
    answers = [client.get(URL), client.post(URL, {"name": "x", "definition": {}}, format="json"),
               client.post(f"{URL}preview/", {"definition": {}}, format="json"),
               client.get(f"{URL}{audience.pk}/"), client.patch(f"{URL}{audience.pk}/", {"name": "y"}, format="json"),
               client.delete(f"{URL}{audience.pk}/"), client.get(f"{URL}{audience.pk}/export/"),
               client.get(f"{URL}{audience.pk}/size/")]
    assert [(r.status_code, r.json()["error"]["code"]) for r in answers] == [(403, "permission_denied")] * 8
    assert Audience.objects.get().name == "全部"


def test_update_validates_like_create_and_names_are_unique_per_brand(w, users, api_client):
    client = as_user(api_client, users["wa"])
    first = client.post(URL, {"name": "甲", "definition": {}}, format="json").json()
    second = client.post(URL, {"name": "乙", "definition": {}}, format="json").json()
    clash = client.post(URL, {"name": "甲", "definition": {}}, format="json")
    renamed_onto = client.patch(f"{URL}{second['id']}/", {"name": "甲"}, format="json")
    bad = client.patch(f"{URL}{first['id']}/", {"definition": {"points": {"min": 1.5}}}, format="json")
    good = client.patch(f"{URL}{first['id']}/", {"definition": {"points": {"min": 100}}}, format="json")
    assert [clash.status_code, renamed_onto.status_code, bad.status_code, good.status_code] == [409, 409, 400, 200]
    assert bad.json()["error"]["fields"] == {"definition.points.min": ["Expected a whole number."]}
    assert Audience.objects.get(pk=first["id"]).definition == {"points": {"min": 100}}
    assert client.delete(f"{URL}{second['id']}/").status_code == 204
    assert list(Audience.objects.values_list("name", flat=True)) == ["甲"]


# ---------------------------------------------------------------------------- CSV export

def export(api_client, user, audience) -> list[list[str]]:
    response = as_user(api_client, user).get(f"{URL}{audience.pk}/export/")
    assert response.status_code == 200
    assert response.streaming and response["Content-Type"] == "text/csv; charset=utf-8"
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


def test_the_export_masks_phones_unless_the_role_sees_them_whole(w, users, api_client):
    audience = Audience.objects.create(group=w.group, brand=w.a, name="M", definition={"tags": {"any": [w.tag_m.pk]}})
    header = ["member_code", "name", "phone", "brand", "store", "guide", "rfml_class", "last_purchase_on"]
    assert export(api_client, users["wa"], audience) == [
        header,
        ["alice", "王丽", "138****0001", "WA", "SA1", "GA1", "important_value", "2030-03-10"],
        ["carol", "'=HYPERLINK(1)", "138****0003", "WA", "SA1", "", "important_retain", "2029-10-01"],
    ]
    callers = Group.objects.create(name="Operators who call members")
    callers.permissions.add(Permission.objects.get(content_type__app_label="members", codename="view_full_phone"))
    users["hq"].groups.add(callers)
    assert [row[2] for row in export(api_client, users["hq"], audience)] == ["phone", "13800000001", "13800000003"]
    assert [row[2] for row in export(api_client, users["wa"], audience)] == ["phone", "138****0001", "138****0003"]


def test_the_export_streams_every_member_in_chunks(w, users, api_client, monkeypatch):
    monkeypatch.setattr("marketing.audiences.EXPORT_CHUNK", 2)
    audience = Audience.objects.create(group=w.group, brand=w.a, name="全部", definition={})
    rows = export(api_client, users["hq"], audience)
    assert [row[0] for row in rows] == ["member_code", "alice", "bob", "carol", "erin"]
    assert rows[-1] == ["erin", "", "138****0005", "WA", "", "", "", ""]


def test_a_brand_without_guides_stores_or_coupon_templates_still_compiles(w):
    bare = BrandFactory(code="WC", group=w.group)
    empty_region = RegionFactory(brand=bare, code="c-north")
    person = MemberFactory(group=w.group, code="gina", phone="+8613800000007")
    BrandMembershipFactory(member=person, brand=bare, store=None)
    assert codes(w, {"wecom_friend": True}, brand=bare) == set()
    assert codes(w, {"wecom_friend": False}, brand=bare) == {"gina"}
    assert codes(w, {"coupons": {"held": True}}, brand=bare) == set()
    assert codes(w, {"coupons": {"held": False}}, brand=bare) == {"gina"}
    assert codes(w, {"regions": [empty_region.pk]}, brand=bare) == set()
    assert audience_count(brand=bare, definition={"wecom_friend": False, "coupons": {"held": False}}, at=NOW) == 1


def test_previews_and_exports_are_rate_limited_per_user(w, users, api_client, settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "audience_preview": "2/min", "export": "1/hour"}
    audience = Audience.objects.create(group=w.group, brand=w.a, name="全部", definition={})
    client = as_user(api_client, users["wa"])
    previews = [client.post(f"{URL}preview/", {"definition": {}}, format="json") for _ in range(3)]
    exports = [client.get(f"{URL}{audience.pk}/export/") for _ in range(2)]
    assert [r.status_code for r in previews + exports] == [200, 200, 429, 200, 429]
    assert previews[2].json()["error"]["code"] == "throttled" and int(previews[2]["Retry-After"]) > 0
    other = as_user(api_client, users["hq"]).post(f"{URL}preview/", {"brand": "WA", "definition": {}}, format="json")
    assert other.json() == {"count": 4}
