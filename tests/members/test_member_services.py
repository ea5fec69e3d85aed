"""members.services: identity, merging, guide binding (DOMAIN.md "Members", "Guide binding") and points.

Every test works out its expected values by hand from the rows it builds and checks that
refused operations leave the database exactly as it was.
"""

from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace

import pytest
from django.utils import timezone

from mall.models import Order
from members.models import BindingPolicy, BrandMembership, GuideBinding, JoinChannel, Member, MemberMerge, PointsEntry
from members.services import (
    binding_bind,
    binding_record_service,
    binding_transfer,
    guide_leave,
    member_find,
    member_get_or_create,
    member_merge,
    membership_join,
    points_balance,
    points_post,
)
from retail_crm.errors import ApplicationError
from retail_crm.scoping import actor_for
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    GuideBindingFactory,
    GuideFactory,
    MemberFactory,
    OrderFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
    UserFactory,
    staff_user,
)

pytestmark = pytest.mark.django_db

# What member_merge reports for the other features' rows when the absorbed member had none.
NOTHING_ELSE_MOVED = {"tags": 0, "events": 0, "wecom_friendships": 0, "coupons": 0, "tokens": 0, "cart_items": 0,
                      "rfm_changes": 0, "care_items": 0, "live_viewer_events": 0}

T0 = dt.datetime(2024, 3, 1, 2, 0, tzinfo=dt.UTC)


def days(n: int) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


def binding_rows(member, brand=None):
    """(guide code, reason, started_at, ended_at) of every binding row of a member, oldest first."""
    rows = GuideBinding.objects.filter(member=member)
    if brand is not None:
        rows = rows.filter(brand=brand)
    return [(b.guide.code, b.reason, b.started_at, b.ended_at) for b in rows.order_by("started_at", "pk")]


# ---------------------------------------------------------------------------- identity

@pytest.fixture
def group():
    return RetailGroupFactory()


@pytest.mark.parametrize(
    "written",
    ["138 1234 5678", "13812345678", "+86 138-1234-5678", "8613812345678", "008613812345678",
     "(+86) 138.1234.5678", "１３８１２３４５６７８"],
)
def test_member_find_by_phone_in_any_written_form(group, written):
    member = MemberFactory(group=group, phone="+8613812345678")
    MemberFactory(group=group, phone="+8613812345679")

    assert member_find(group=group, phone=written) == [member]


def test_member_find_by_openid_unionid_and_code(group):
    member = MemberFactory(group=group, code="POS-0001", phone="", openid="wx-open-1", unionid="wx-union-1")
    MemberFactory(group=group, code="POS-0002", openid="wx-open-2", unionid="wx-union-2")

    assert member_find(group=group, openid="wx-open-1") == [member]
    assert member_find(group=group, unionid="wx-union-1") == [member]
    assert member_find(group=group, code="POS-0001") == [member]
    # Several identifiers of the same person give that person once.
    assert member_find(group=group, openid="wx-open-1", unionid="wx-union-1", code="POS-0001") == [member]
    assert member_find(group=group, openid="wx-open-404") == []


def test_member_find_stays_inside_the_group(group):
    other = RetailGroupFactory(code="other", name="Other Group")
    MemberFactory(group=other, phone="+8613812345678", openid="wx-open-1")

    assert member_find(group=group, phone="13812345678", openid="wx-open-1") == []


def test_member_get_or_create_creates_once_then_returns_the_same_member(group, monkeypatch):
    now = dt.datetime(2025, 6, 30, 8, 15, tzinfo=dt.UTC)
    monkeypatch.setattr(timezone, "now", lambda: now)

    member, created = member_get_or_create(group=group, phone="138 1234 5678", name="李四")

    assert created is True
    member.refresh_from_db()
    assert (member.phone, member.openid, member.unionid, member.name, member.created_at) == (
        "+8613812345678", "", "", "李四", now)
    # Generated codes: M + the local date (Asia/Shanghai: 16:15 on 30 June) + 8 random hex digits.
    assert re.fullmatch(r"M250630[0-9A-F]{8}", member.code)

    again, created_again = member_get_or_create(group=group, phone="+86-138-1234-5678", name="别名")

    assert (again.pk, created_again) == (member.pk, False)
    assert Member.objects.count() == 1
    again.refresh_from_db()
    assert again.name == "李四"  # a name the member already has is not overwritten


def test_member_get_or_create_keeps_an_imported_code(group):
    member, created = member_get_or_create(group=group, code="POS-778899", phone="13900001111")

    assert created is True
    assert (member.code, member.phone) == ("POS-778899", "+8613900001111")


def test_openid_login_then_phone_binding_fills_the_phone_on_the_same_member(group):
    member, created = member_get_or_create(group=group, openid="wx-open-1")
    assert created is True
    assert member.phone == ""

    bound, created_again = member_get_or_create(group=group, openid="wx-open-1", phone="138 1234 5678",
                                                unionid="wx-union-1")

    assert (bound.pk, created_again) == (member.pk, False)
    assert Member.objects.count() == 1
    member.refresh_from_db()
    assert (member.openid, member.phone, member.unionid) == ("wx-open-1", "+8613812345678", "wx-union-1")
    # The phone now finds the member the WeChat login created.
    assert member_find(group=group, phone="13812345678") == [member]


def test_identifiers_of_two_members_are_a_conflict_with_sorted_codes(group):
    by_phone = MemberFactory(group=group, code="M-A", phone="+8613812345678", openid="")
    by_openid = MemberFactory(group=group, code="M-Z", phone="", openid="wx-open-z")

    with pytest.raises(ApplicationError) as exc:
        # member_find looks at the openid before the phone, so the codes arrive as [M-Z, M-A].
        member_get_or_create(group=group, phone="13812345678", openid="wx-open-z")

    assert (exc.value.code, exc.value.status, exc.value.fields) == ("identity_conflict", 409,
                                                                    {"member_codes": ["M-A", "M-Z"]})
    by_phone.refresh_from_db()
    by_openid.refresh_from_db()
    assert (by_phone.phone, by_phone.openid) == ("+8613812345678", "")
    assert (by_openid.phone, by_openid.openid) == ("", "wx-open-z")
    assert Member.objects.count() == 2


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("12345", "'12345' is not an 11-digit mainland mobile number"),
        ("138-abcd-5678", "'138-abcd-5678' contains characters that are not part of a phone number"),
        ("+86 128 1234 5678", "'+86 128 1234 5678' is not a valid mainland mobile number"),
    ],
)
def test_invalid_phone_is_refused_with_a_field_error(group, raw, message):
    with pytest.raises(ApplicationError) as exc:
        member_get_or_create(group=group, phone=raw, openid="wx-open-1")

    assert (exc.value.code, exc.value.status, exc.value.fields) == ("invalid_phone", 400, {"phone": [message]})
    assert Member.objects.count() == 0

    with pytest.raises(ApplicationError) as find_exc:
        member_find(group=group, phone=raw)
    assert find_exc.value.code == "invalid_phone"


@pytest.mark.parametrize("identifiers", [{}, {"phone": "", "openid": "", "unionid": "", "code": ""},
                                         {"phone": None, "name": "只有名字"}])
def test_no_identifier_is_refused(group, identifiers):
    with pytest.raises(ApplicationError) as exc:
        member_get_or_create(group=group, **identifiers)

    assert (exc.value.code, exc.value.status) == ("no_identifier", 400)
    assert Member.objects.count() == 0


def test_a_merged_members_old_code_resolves_to_the_survivor(group):
    survivor = MemberFactory(group=group, code="M-S")
    absorbed = MemberFactory(group=group, code="POS-OLD")
    member_merge(survivor=survivor, absorbed=absorbed, reason="same person")

    assert member_find(group=group, code="POS-OLD") == [survivor]
    found, created = member_get_or_create(group=group, code="POS-OLD")
    assert (found.pk, created) == (survivor.pk, False)
    assert Member.objects.count() == 2  # survivor and tombstone; nothing new was created


def test_a_chain_of_merges_resolves_to_the_last_survivor(group):
    first = MemberFactory(group=group, code="M-1")
    second = MemberFactory(group=group, code="M-2")
    third = MemberFactory(group=group, code="M-3")
    member_merge(survivor=second, absorbed=first, reason="dup")
    member_merge(survivor=third, absorbed=second, reason="dup")

    assert member_find(group=group, code="M-1") == [third]
    assert member_find(group=group, code="M-2") == [third]


def test_membership_join_keeps_the_first_join(group):
    member = MemberFactory(group=group)
    brand = BrandFactory(group=group)
    store = StoreFactory(region=RegionFactory(brand=brand))

    first, created = membership_join(member=member, brand=brand, channel=JoinChannel.GUIDE_QR, store=store,
                                     joined_at=days(0))
    second, created_again = membership_join(member=member, brand=brand, channel=JoinChannel.LIVESTREAM,
                                            joined_at=days(10))

    assert (created, created_again, second.pk) == (True, False, first.pk)
    second.refresh_from_db()
    assert (second.joined_at, second.join_channel, second.store_id) == (days(0), "guide_qr", store.pk)
    assert BrandMembership.objects.count() == 1


# ---------------------------------------------------------------------------- merge

@pytest.fixture
def merge_world(group):
    """Two records of one person.

    survivor S (no phone, own openid, created day 10) and absorbed X (phone, unionid, openid, created day 0).
    Orders: S 2, X 3.  Memberships: S in A (day 100) and B (day 5); X in A (day 20, earlier),
    B (day 50, later) and C (day 30, only X).  Bindings: S in A closed ga1 (2..40) + open ga2 (from 40);
    X in A open ga1 (from 25, older than S's) and in B closed gb2 (3..8) + open gb1 (from 8).
    Points: S +100 in A; X +50, -20 in A and +30 in B.
    """
    brand_a, brand_b, brand_c = (BrandFactory(group=group, code=c) for c in ("brand-a", "brand-b", "brand-c"))
    store_a = StoreFactory(region=RegionFactory(brand=brand_a), code="store-a")
    store_b = StoreFactory(region=RegionFactory(brand=brand_b), code="store-b")
    store_c = StoreFactory(region=RegionFactory(brand=brand_c), code="store-c")
    ga1, ga2 = GuideFactory(store=store_a, code="ga1"), GuideFactory(store=store_a, code="ga2")
    gb1, gb2 = GuideFactory(store=store_b, code="gb1"), GuideFactory(store=store_b, code="gb2")

    s = MemberFactory(group=group, code="M-S", phone="", openid="wx-open-s", unionid="", name="张三",
                      gender="", birthday=None, created_at=days(10))
    x = MemberFactory(group=group, code="M-X", phone="+8613900000001", openid="wx-open-x", unionid="wx-union-x",
                      name="张三(旧卡)", gender="F", birthday=dt.date(1990, 5, 1), created_at=days(0))

    s_orders = [OrderFactory(brand=brand_a, member=s) for _ in range(2)]
    x_orders = [OrderFactory(brand=brand_a, member=x), OrderFactory(brand=brand_b, member=x),
                OrderFactory(brand=brand_c, member=x)]

    BrandMembershipFactory(member=s, brand=brand_a, joined_at=days(100), join_channel=JoinChannel.PAY_AS_JOIN,
                           store=None)
    BrandMembershipFactory(member=s, brand=brand_b, joined_at=days(5), join_channel=JoinChannel.STORE_CARD,
                           store=store_b)
    BrandMembershipFactory(member=x, brand=brand_a, joined_at=days(20), join_channel=JoinChannel.GUIDE_QR,
                           store=store_a)
    BrandMembershipFactory(member=x, brand=brand_b, joined_at=days(50), join_channel=JoinChannel.LIVESTREAM,
                           store=None, tier="gold")
    BrandMembershipFactory(member=x, brand=brand_c, joined_at=days(30), join_channel=JoinChannel.PARCEL_CARD,
                           store=store_c)

    GuideBindingFactory(member=s, guide=ga1, started_at=days(2), ended_at=days(40))
    s_open_a = GuideBindingFactory(member=s, guide=ga2, started_at=days(40), reason="transfer")
    x_open_a = GuideBindingFactory(member=x, guide=ga1, started_at=days(25))
    GuideBindingFactory(member=x, guide=gb2, started_at=days(3), ended_at=days(8), reason="share_link")
    x_open_b = GuideBindingFactory(member=x, guide=gb1, started_at=days(8), reason="transfer")

    PointsEntry.objects.create(member=s, brand=brand_a, delta=100, reason="earn")
    PointsEntry.objects.create(member=x, brand=brand_a, delta=50, reason="earn")
    PointsEntry.objects.create(member=x, brand=brand_a, delta=-20, reason="spend")
    PointsEntry.objects.create(member=x, brand=brand_b, delta=30, reason="adjust")

    return SimpleNamespace(brand_a=brand_a, brand_b=brand_b, brand_c=brand_c, store_a=store_a, store_b=store_b,
                           store_c=store_c, s=s, x=x, s_orders=s_orders, x_orders=x_orders, s_open_a=s_open_a,
                           x_open_a=x_open_a, x_open_b=x_open_b)


def test_member_merge_moves_everything_and_loses_nothing(merge_world, monkeypatch):
    w = merge_world
    merged_at = dt.datetime(2025, 1, 15, 9, 30, tzinfo=dt.UTC)
    monkeypatch.setattr(timezone, "now", lambda: merged_at)
    operator = UserFactory(username="merger")
    bindings_before = GuideBinding.objects.count()

    result = member_merge(survivor=w.s, absorbed=w.x, reason="same phone at POS", merged_by=operator)

    survivor, absorbed = Member.objects.get(pk=w.s.pk), Member.objects.get(pk=w.x.pk)
    assert result.survivor.pk == survivor.pk

    # Orders: 2 + 3, all on the survivor.
    assert set(Order.objects.filter(member=survivor).values_list("pk", flat=True)) == {
        o.pk for o in w.s_orders + w.x_orders}
    assert Order.objects.filter(member=absorbed).count() == 0

    # Points: 100 + (50 - 20 + 30) = 160 in four entries, per brand A 130 and B 30.
    assert PointsEntry.objects.filter(member=survivor).count() == 4
    assert PointsEntry.objects.filter(member=absorbed).count() == 0
    assert points_balance(member=survivor, brand=w.brand_a) == 130
    assert points_balance(member=survivor, brand=w.brand_b) == 30

    # Memberships: one per brand, the earlier join kept (A from X, B from S, C moved from X).
    memberships = {m.brand.code: (m.joined_at, m.join_channel, m.store_id)
                   for m in BrandMembership.objects.filter(member=survivor)}
    assert memberships == {
        "brand-a": (days(20), "guide_qr", w.store_a.pk),
        "brand-b": (days(5), "store_card", w.store_b.pk),
        "brand-c": (days(30), "parcel_card", w.store_c.pk),
    }
    assert BrandMembership.objects.filter(member=absorbed).count() == 0
    assert BrandMembership.objects.count() == 3

    # Bindings: none lost, all on the survivor; in A the older open one (X's ga1, day 25) stays open.
    assert GuideBinding.objects.count() == bindings_before == 5
    assert GuideBinding.objects.filter(member=absorbed).count() == 0
    assert binding_rows(survivor, w.brand_a) == [
        ("ga1", "qr_scan", days(2), days(40)),
        ("ga1", "qr_scan", days(25), None),
        ("ga2", "transfer", days(40), merged_at),
    ]
    assert binding_rows(survivor, w.brand_b) == [
        ("gb2", "share_link", days(3), days(8)),
        ("gb1", "transfer", days(8), None),
    ]

    # The absorbed record is a tombstone: identifiers the survivor took are released, the openid
    # the survivor already had one of stays on the tombstone so a login with it still resolves.
    assert (absorbed.merged_into_id, absorbed.phone, absorbed.openid, absorbed.unionid, absorbed.code) == (
        survivor.pk, "", "wx-open-x", "", "M-X")
    assert member_find(group=survivor.group, openid="wx-open-x") == [survivor]
    # The survivor keeps its own openid and name and fills its gaps from the absorbed record.
    assert (survivor.phone, survivor.openid, survivor.unionid, survivor.name, survivor.gender, survivor.birthday,
            survivor.created_at, survivor.merged_into_id) == (
        "+8613900000001", "wx-open-s", "wx-union-x", "张三", "F", dt.date(1990, 5, 1), days(0), None)

    audit = MemberMerge.objects.get()
    assert (audit.pk, audit.survivor_id, audit.absorbed_id, audit.reason, audit.merged_by_id, audit.merged_at) == (
        result.audit.pk, survivor.pk, absorbed.pk, "same phone at POS", operator.pk, merged_at)
    assert audit.moved == {"orders": 3, "points_entries": 3, "memberships": 1, "bindings": 3} | NOTHING_ELSE_MOVED
    assert audit.absorbed_snapshot == {
        "id": w.x.pk, "code": "M-X", "phone": "+8613900000001", "unionid": "wx-union-x", "openid": "wx-open-x",
        "name": "张三(旧卡)", "gender": "F", "birthday": "1990-05-01", "created_at": days(0).isoformat(),
        "duplicate_memberships": [
            {"brand_id": w.brand_a.pk, "joined_at": days(20).isoformat(), "join_channel": "guide_qr",
             "store_id": w.store_a.pk, "tier": "standard"},
            {"brand_id": w.brand_b.pk, "joined_at": days(50).isoformat(), "join_channel": "livestream",
             "store_id": None, "tier": "gold"},
        ],
    }


def test_member_merge_keeps_the_survivors_own_phone_and_newer_open_binding_of_the_absorbed_is_closed(group):
    brand = BrandFactory(group=group)
    store = StoreFactory(region=RegionFactory(brand=brand))
    g1, g2 = GuideFactory(store=store, code="g1"), GuideFactory(store=store, code="g2")
    survivor = MemberFactory(group=group, phone="+8613800000001", created_at=days(0))
    absorbed = MemberFactory(group=group, phone="+8613800000002", created_at=days(5))
    GuideBindingFactory(member=survivor, guide=g1, started_at=days(1))
    GuideBindingFactory(member=absorbed, guide=g2, started_at=days(6))

    result = member_merge(survivor=survivor, absorbed=absorbed, reason="dup")

    survivor.refresh_from_db()
    assert (survivor.phone, survivor.created_at) == ("+8613800000001", days(0))
    rows = binding_rows(survivor, brand)
    assert [(code, started, ended is None) for code, _, started, ended in rows] == [
        ("g1", days(1), True), ("g2", days(6), False)]
    assert result.audit.moved == {"orders": 0, "points_entries": 0, "memberships": 0,
                                  "bindings": 1} | NOTHING_ELSE_MOVED
    assert "duplicate_memberships" not in result.audit.absorbed_snapshot


def test_merging_a_member_into_itself_is_refused(group):
    member = MemberFactory(group=group)

    with pytest.raises(ApplicationError) as exc:
        member_merge(survivor=member, absorbed=member, reason="oops")

    assert (exc.value.code, exc.value.status) == ("merge_invalid", 409)
    member.refresh_from_db()
    assert member.merged_into_id is None
    assert MemberMerge.objects.count() == 0


def test_merging_an_already_merged_member_is_refused_either_way(group):
    brand = BrandFactory(group=group)
    survivor = MemberFactory(group=group, code="M-S")
    absorbed = MemberFactory(group=group, code="M-X")
    third = MemberFactory(group=group, code="M-T", phone="+8613800000099")
    third_order = OrderFactory(brand=brand, member=third)
    member_merge(survivor=survivor, absorbed=absorbed, reason="dup")

    for kwargs in ({"survivor": third, "absorbed": absorbed}, {"survivor": absorbed, "absorbed": third}):
        with pytest.raises(ApplicationError) as exc:
            member_merge(reason="again", **kwargs)
        assert (exc.value.code, exc.value.status) == ("merge_invalid", 409)

    third.refresh_from_db()
    absorbed.refresh_from_db()
    assert (third.merged_into_id, third.phone) == (None, "+8613800000099")
    assert absorbed.merged_into_id == survivor.pk
    assert Order.objects.get(pk=third_order.pk).member_id == third.pk
    assert MemberMerge.objects.count() == 1


def test_merging_members_of_different_groups_is_refused(group):
    brand = BrandFactory(group=group)
    other_group = RetailGroupFactory(code="other", name="Other Group")
    mine = MemberFactory(group=group, phone="")
    theirs = MemberFactory(group=other_group, phone="+8613800000077")
    their_order = OrderFactory(brand=brand, member=theirs)

    with pytest.raises(ApplicationError) as exc:
        member_merge(survivor=mine, absorbed=theirs, reason="cross-group")

    assert (exc.value.code, exc.value.status) == ("merge_invalid", 409)
    theirs.refresh_from_db()
    mine.refresh_from_db()
    assert (theirs.merged_into_id, theirs.phone, mine.phone) == (None, "+8613800000077", "")
    assert Order.objects.get(pk=their_order.pk).member_id == theirs.pk
    assert MemberMerge.objects.count() == 0


# ---------------------------------------------------------------------------- binding policy

@pytest.fixture
def shop(group):
    brand = BrandFactory(group=group, code="brand-a")
    region = RegionFactory(brand=brand)
    store = StoreFactory(region=region, code="a-1")
    other_store = StoreFactory(region=region, code="a-2")
    return SimpleNamespace(
        brand=brand, store=store, other_store=other_store,
        g1=GuideFactory(store=store, code="g1"), g2=GuideFactory(store=store, code="g2"),
        g_other=GuideFactory(store=other_store, code="g-other"),
        member=MemberFactory(group=group),
    )


def test_first_binding_is_created(shop):
    outcome = binding_bind(member=shop.member, brand=shop.brand, guide=shop.g1, reason="qr_scan", at=days(0))

    assert (outcome.changed, outcome.rule) == (True, "new")
    b = GuideBinding.objects.get()
    assert outcome.binding.pk == b.pk
    assert (b.member_id, b.brand_id, b.guide_id, b.store_id, b.reason, b.started_at, b.ended_at,
            b.last_served_at) == (shop.member.pk, shop.brand.pk, shop.g1.pk, shop.store.pk, "qr_scan", days(0),
                                  None, None)


@pytest.mark.parametrize("reason", ["qr_scan", "share_link", "store_purchase"])
def test_another_guide_does_not_move_a_protected_member(shop, reason):
    first = binding_bind(member=shop.member, brand=shop.brand, guide=shop.g1, reason="qr_scan", at=days(0))

    outcome = binding_bind(member=shop.member, brand=shop.brand, guide=shop.g2, reason=reason, at=days(30))

    assert (outcome.changed, outcome.rule, outcome.binding.pk) == (False, "protected", first.binding.pk)
    assert binding_rows(shop.member) == [("g1", "qr_scan", days(0), None)]


def test_same_guide_again_changes_nothing(shop):
    first = binding_bind(member=shop.member, brand=shop.brand, guide=shop.g1, reason="qr_scan", at=days(0))

    outcome = binding_bind(member=shop.member, brand=shop.brand, guide=shop.g1, reason="share_link", at=days(200))

    assert (outcome.changed, outcome.rule, outcome.binding.pk) == (False, "same_guide", first.binding.pk)
    assert binding_rows(shop.member) == [("g1", "qr_scan", days(0), None)]


def test_bindings_are_per_brand(shop, group):
    brand_b = BrandFactory(group=group, code="brand-b")
    gb = GuideFactory(store=StoreFactory(region=RegionFactory(brand=brand_b)), code="gb")
    binding_bind(member=shop.member, brand=shop.brand, guide=shop.g1, reason="qr_scan", at=days(0))

    outcome = binding_bind(member=shop.member, brand=brand_b, guide=gb, reason="share_link", at=days(1))

    assert (outcome.changed, outcome.rule) == (True, "new")
    assert binding_rows(shop.member, shop.brand) == [("g1", "qr_scan", days(0), None)]
    assert binding_rows(shop.member, brand_b) == [("gb", "share_link", days(1), None)]


def test_after_a_service_lapse_another_guide_rebinds(shop):
    binding_bind(member=shop.member, brand=shop.brand, guide=shop.g1, reason="qr_scan", at=days(0))

    outcome = binding_bind(member=shop.member, brand=shop.brand, guide=shop.g2, reason="qr_scan", at=days(91))

    assert (outcome.changed, outcome.rule, outcome.binding.guide_id) == (True, "lapsed", shop.g2.pk)
    assert binding_rows(shop.member) == [
        ("g1", "qr_scan", days(0), days(91)),
        ("g2", "service_lapse", days(91), None),
    ]


def test_recorded_service_resets_the_lapse_clock(shop):
    binding_bind(member=shop.member, brand=shop.brand, guide=shop.g1, reason="qr_scan", at=days(0))

    assert binding_record_service(member=shop.member, brand=shop.brand, guide=shop.g1, at=days(60)) is True
    assert GuideBinding.objects.get().last_served_at == days(60)

    at_91 = binding_bind(member=shop.member, brand=shop.brand, guide=shop.g2, reason="qr_scan", at=days(91))
    assert (at_91.changed, at_91.rule) == (False, "protected")
    assert binding_rows(shop.member) == [("g1", "qr_scan", days(0), None)]

    # 91 days after the last service the member has lapsed.
    at_151 = binding_bind(member=shop.member, brand=shop.brand, guide=shop.g2, reason="qr_scan", at=days(151))
    assert (at_151.changed, at_151.rule) == (True, "lapsed")
    assert binding_rows(shop.member) == [
        ("g1", "qr_scan", days(0), days(151)),
        ("g2", "service_lapse", days(151), None),
    ]


def test_service_by_a_guide_who_is_not_bound_does_not_count(shop):
    binding_bind(member=shop.member, brand=shop.brand, guide=shop.g1, reason="qr_scan", at=days(0))

    assert binding_record_service(member=shop.member, brand=shop.brand, guide=shop.g2, at=days(60)) is False
    assert GuideBinding.objects.get().last_served_at is None


def test_unprotected_brand_rebinds_with_the_given_reason(shop):
    BindingPolicy.objects.create(brand=shop.brand, protect_first_binding=False)
    binding_bind(member=shop.member, brand=shop.brand, guide=shop.g1, reason="qr_scan", at=days(0))

    outcome = binding_bind(member=shop.member, brand=shop.brand, guide=shop.g2, reason="share_link", at=days(1))

    assert (outcome.changed, outcome.rule) == (True, "unprotected")
    assert binding_rows(shop.member) == [
        ("g1", "qr_scan", days(0), days(1)),
        ("g2", "share_link", days(1), None),
    ]


def test_without_a_lapse_period_the_binding_never_lapses(shop):
    BindingPolicy.objects.create(brand=shop.brand, service_lapse_days=None)
    binding_bind(member=shop.member, brand=shop.brand, guide=shop.g1, reason="qr_scan", at=days(0))

    outcome = binding_bind(member=shop.member, brand=shop.brand, guide=shop.g2, reason="qr_scan", at=days(3650))

    assert (outcome.changed, outcome.rule) == (False, "protected")
    assert binding_rows(shop.member) == [("g1", "qr_scan", days(0), None)]


def test_a_brand_specific_lapse_period_applies(shop):
    BindingPolicy.objects.create(brand=shop.brand, service_lapse_days=30)
    binding_bind(member=shop.member, brand=shop.brand, guide=shop.g1, reason="qr_scan", at=days(0))

    assert binding_bind(member=shop.member, brand=shop.brand, guide=shop.g2, reason="qr_scan",
                        at=days(29)).rule == "protected"
    outcome = binding_bind(member=shop.member, brand=shop.brand, guide=shop.g2, reason="qr_scan", at=days(31))

    assert (outcome.changed, outcome.rule) == (True, "lapsed")
    assert binding_rows(shop.member) == [
        ("g1", "qr_scan", days(0), days(31)),
        ("g2", "service_lapse", days(31), None),
    ]


def test_a_guide_who_has_left_cannot_bind(shop):
    shop.g2.left_at = dt.date(2024, 6, 30)
    shop.g2.save(update_fields=["left_at"])

    with pytest.raises(ApplicationError) as exc:
        binding_bind(member=shop.member, brand=shop.brand, guide=shop.g2, reason="qr_scan", at=days(0))

    assert (exc.value.code, exc.value.status) == ("guide_inactive", 409)
    assert GuideBinding.objects.count() == 0


def test_a_guide_of_another_brand_cannot_bind(shop, group):
    brand_b = BrandFactory(group=group, code="brand-b")
    gb = GuideFactory(store=StoreFactory(region=RegionFactory(brand=brand_b)), code="gb")
    binding_bind(member=shop.member, brand=shop.brand, guide=shop.g1, reason="qr_scan", at=days(0))

    with pytest.raises(ApplicationError) as exc:
        binding_bind(member=shop.member, brand=shop.brand, guide=gb, reason="qr_scan", at=days(200))

    assert (exc.value.code, exc.value.status) == ("guide_wrong_brand", 400)
    assert binding_rows(shop.member) == [("g1", "qr_scan", days(0), None)]


# ---------------------------------------------------------------------------- transfer

def test_store_manager_transfers_a_member_to_a_colleague(shop):
    binding_bind(member=shop.member, brand=shop.brand, guide=shop.g1, reason="qr_scan", at=days(0))
    actor = actor_for(staff_user("store_manager", store=shop.store))

    new = binding_transfer(member=shop.member, brand=shop.brand, to_guide=shop.g2, actor=actor, at=days(10))

    assert (new.guide_id, new.store_id, new.reason, new.started_at, new.ended_at) == (
        shop.g2.pk, shop.store.pk, "transfer", days(10), None)
    assert binding_rows(shop.member) == [
        ("g1", "qr_scan", days(0), days(10)),
        ("g2", "transfer", days(10), None),
    ]


def test_a_guide_may_not_transfer(shop):
    binding_bind(member=shop.member, brand=shop.brand, guide=shop.g1, reason="qr_scan", at=days(0))
    actor = actor_for(staff_user("guide", guide=shop.g1))

    with pytest.raises(ApplicationError) as exc:
        binding_transfer(member=shop.member, brand=shop.brand, to_guide=shop.g2, actor=actor, at=days(10))

    assert (exc.value.code, exc.value.status) == ("transfer_forbidden", 403)
    assert binding_rows(shop.member) == [("g1", "qr_scan", days(0), None)]


def test_a_store_manager_cannot_transfer_to_a_guide_of_another_store(shop):
    binding_bind(member=shop.member, brand=shop.brand, guide=shop.g1, reason="qr_scan", at=days(0))
    actor = actor_for(staff_user("store_manager", store=shop.store))

    with pytest.raises(ApplicationError) as exc:
        binding_transfer(member=shop.member, brand=shop.brand, to_guide=shop.g_other, actor=actor, at=days(10))

    assert (exc.value.code, exc.value.status) == ("not_found", 404)
    assert binding_rows(shop.member) == [("g1", "qr_scan", days(0), None)]


def test_a_store_manager_cannot_take_a_member_bound_in_another_store(shop):
    binding_bind(member=shop.member, brand=shop.brand, guide=shop.g_other, reason="qr_scan", at=days(0))
    actor = actor_for(staff_user("store_manager", store=shop.store))

    with pytest.raises(ApplicationError) as exc:
        binding_transfer(member=shop.member, brand=shop.brand, to_guide=shop.g2, actor=actor, at=days(10))

    assert (exc.value.code, exc.value.status) == ("not_found", 404)
    assert binding_rows(shop.member) == [("g-other", "qr_scan", days(0), None)]


def test_transfer_to_the_current_guide_is_a_no_op(shop):
    first = binding_bind(member=shop.member, brand=shop.brand, guide=shop.g1, reason="qr_scan", at=days(0))
    actor = actor_for(staff_user("store_manager", store=shop.store))

    same = binding_transfer(member=shop.member, brand=shop.brand, to_guide=shop.g1, actor=actor, at=days(10))

    assert same.pk == first.binding.pk
    assert binding_rows(shop.member) == [("g1", "qr_scan", days(0), None)]


# ---------------------------------------------------------------------------- guide leaving

@pytest.fixture
def leaving(group):
    """Store a-1: leaving guide g-leave with 5 members, active colleagues g-a and g-b, and g-0 who already left
    (g-0 sorts first, so dealing to it would show). g-far works in another store of the brand."""
    brand = BrandFactory(group=group, code="brand-a")
    region = RegionFactory(brand=brand)
    store = StoreFactory(region=region, code="a-1")
    guide = GuideFactory(store=store, code="g-leave", user=UserFactory(username="g-leave-login"))
    g_a = GuideFactory(store=store, code="g-a")
    g_b = GuideFactory(store=store, code="g-b")
    GuideFactory(store=store, code="g-0", left_at=dt.date(2024, 12, 31))
    GuideFactory(store=StoreFactory(region=region, code="a-2"), code="g-far")
    # Created in this order, bound on days 5, 1, 3, 2, 4: dealt in started_at order m2, m4, m3, m5, m1.
    members = {}
    for name, day in (("m1", 5), ("m2", 1), ("m3", 3), ("m4", 2), ("m5", 4)):
        members[name] = MemberFactory(group=group, code=name)
        GuideBindingFactory(member=members[name], guide=guide, started_at=days(day))
    # History: a member g-leave served before; already ended, not dealt again.
    old = MemberFactory(group=group, code="old")
    GuideBindingFactory(member=old, guide=guide, started_at=days(0), ended_at=days(1))
    # A colleague's own member is not touched.
    kept = MemberFactory(group=group, code="kept")
    GuideBindingFactory(member=kept, guide=g_b, started_at=days(0))
    return SimpleNamespace(brand=brand, store=store, guide=guide, g_a=g_a, g_b=g_b, members=members, old=old,
                           kept=kept)


def open_guide_of(member):
    return GuideBinding.objects.get(member=member, ended_at__isnull=True).guide.code


def test_guide_leave_deals_members_round_robin_to_active_colleagues(leaving):
    at = dt.datetime(2025, 4, 1, 1, 0, tzinfo=dt.UTC)

    result = guide_leave(guide=leaving.guide, left_at=dt.date(2025, 3, 31), at=at)

    assert result.reassigned == {leaving.g_a.pk: 3, leaving.g_b.pk: 2}
    assert {code: open_guide_of(m) for code, m in leaving.members.items()} == {
        "m2": "g-a", "m4": "g-b", "m3": "g-a", "m5": "g-b", "m1": "g-a"}
    for name, day in (("m1", 5), ("m2", 1), ("m3", 3), ("m4", 2), ("m5", 4)):
        assert binding_rows(leaving.members[name]) == [
            ("g-leave", "qr_scan", days(day), at),
            (open_guide_of(leaving.members[name]), "guide_left", at, None),
        ]
    assert set(GuideBinding.objects.filter(reason="guide_left").values_list("store_id", flat=True)) == {
        leaving.store.pk}
    assert GuideBinding.objects.filter(guide=leaving.guide, ended_at__isnull=True).count() == 0
    # History and other guides' members untouched.
    assert binding_rows(leaving.old) == [("g-leave", "qr_scan", days(0), days(1))]
    assert binding_rows(leaving.kept) == [("g-b", "qr_scan", days(0), None)]
    assert GuideBinding.objects.count() == 5 + 1 + 1 + 5

    leaving.guide.refresh_from_db()
    leaving.guide.user.refresh_from_db()
    assert (result.guide.pk, leaving.guide.left_at, leaving.guide.user.is_active) == (
        leaving.guide.pk, dt.date(2025, 3, 31), False)


def test_guide_leave_twice_creates_nothing_more(leaving):
    first_at = dt.datetime(2025, 4, 1, 1, 0, tzinfo=dt.UTC)
    guide_leave(guide=leaving.guide, left_at=dt.date(2025, 3, 31), at=first_at)
    rows_after_first = sorted(GuideBinding.objects.values_list("pk", "guide_id", "ended_at"))

    again = guide_leave(guide=leaving.guide, left_at=dt.date(2025, 4, 30), at=first_at + dt.timedelta(days=30))

    assert again.reassigned == {}
    assert sorted(GuideBinding.objects.values_list("pk", "guide_id", "ended_at")) == rows_after_first
    leaving.guide.refresh_from_db()
    assert leaving.guide.left_at == dt.date(2025, 3, 31)


def test_guide_leave_without_colleagues_leaves_members_unbound(group):
    brand = BrandFactory(group=group)
    region = RegionFactory(brand=brand)
    store = StoreFactory(region=region)
    guide = GuideFactory(store=store, code="solo")
    GuideFactory(store=store, code="gone", left_at=dt.date(2024, 12, 31))
    GuideFactory(store=StoreFactory(region=region), code="elsewhere")
    members = [MemberFactory(group=group) for _ in range(3)]
    for i, member in enumerate(members):
        GuideBindingFactory(member=member, guide=guide, started_at=days(i))
    at = dt.datetime(2025, 4, 1, 1, 0, tzinfo=dt.UTC)

    result = guide_leave(guide=guide, left_at=dt.date(2025, 3, 31), at=at)

    assert result.reassigned == {}
    assert GuideBinding.objects.count() == 3
    for i, member in enumerate(members):
        assert binding_rows(member) == [("solo", "qr_scan", days(i), at)]
    guide.refresh_from_db()
    assert guide.left_at == dt.date(2025, 3, 31)


# ---------------------------------------------------------------------------- points

@pytest.fixture
def wallet(group):
    brand = BrandFactory(group=group)
    member = MemberFactory(group=group)
    BrandMembershipFactory(member=member, brand=brand)
    return SimpleNamespace(brand=brand, member=member)


def test_points_earn_then_spend(wallet):
    earned = points_post(member=wallet.member, brand=wallet.brand, delta=100, reason="earn")
    spent = points_post(member=wallet.member, brand=wallet.brand, delta=-30, reason="spend", note="checkout")

    assert points_balance(member=wallet.member, brand=wallet.brand) == 70
    assert list(PointsEntry.objects.order_by("pk").values_list("pk", "delta", "reason", "note")) == [
        (earned.pk, 100, "earn", ""), (spent.pk, -30, "spend", "checkout")]


def test_points_balance_is_per_brand(wallet, group):
    other_brand = BrandFactory(group=group)
    points_post(member=wallet.member, brand=wallet.brand, delta=100, reason="earn")

    assert points_balance(member=wallet.member, brand=other_brand) == 0
    with pytest.raises(ApplicationError) as exc:
        points_post(member=wallet.member, brand=other_brand, delta=-1, reason="spend")
    assert exc.value.code == "insufficient_points"


def test_overdrawing_points_is_refused_and_writes_nothing(wallet):
    points_post(member=wallet.member, brand=wallet.brand, delta=100, reason="earn")
    points_post(member=wallet.member, brand=wallet.brand, delta=-30, reason="spend")

    with pytest.raises(ApplicationError) as exc:
        points_post(member=wallet.member, brand=wallet.brand, delta=-71, reason="spend")

    assert (exc.value.code, exc.value.status, exc.value.message) == (
        "insufficient_points", 409, "Not enough points: balance 70, needed 71.")
    assert PointsEntry.objects.count() == 2
    assert points_balance(member=wallet.member, brand=wallet.brand) == 70

    # Spending exactly the balance is allowed.
    points_post(member=wallet.member, brand=wallet.brand, delta=-70, reason="spend")
    assert points_balance(member=wallet.member, brand=wallet.brand) == 0


def test_points_for_one_order_and_reason_are_posted_once(wallet):
    order = OrderFactory(brand=wallet.brand, member=wallet.member)

    first = points_post(member=wallet.member, brand=wallet.brand, delta=100, reason="earn", order=order)
    second = points_post(member=wallet.member, brand=wallet.brand, delta=100, reason="earn", order=order)

    assert second.pk == first.pk
    assert PointsEntry.objects.count() == 1
    assert points_balance(member=wallet.member, brand=wallet.brand) == 100

    # The refund's reversal of the same order is a different entry, also posted once.
    reversal = points_post(member=wallet.member, brand=wallet.brand, delta=-100, reason="reverse", order=order)
    assert points_post(member=wallet.member, brand=wallet.brand, delta=-100, reason="reverse",
                       order=order).pk == reversal.pk
    assert PointsEntry.objects.count() == 2
    assert points_balance(member=wallet.member, brand=wallet.brand) == 0


def test_a_zero_points_entry_is_refused(wallet):
    with pytest.raises(ApplicationError) as exc:
        points_post(member=wallet.member, brand=wallet.brand, delta=0, reason="adjust")

    assert (exc.value.code, exc.value.status, exc.value.fields) == ("invalid", 400, {"delta": ["Must not be 0."]})
    assert PointsEntry.objects.count() == 0



def test_member_merge_moves_every_features_rows_to_the_survivor():
    from decimal import Decimal

    from attribution.models import SalesCredit
    from mall.coupons import coupon_issue
    from mall.models import CartItem, CouponTemplate, Product, Sku
    from members.auth import member_token_issue
    from members.models import BehaviourEvent, MemberDailyActivity, MemberTag, MemberToken, TagGroup, TagValue
    from members.wecom import wecom_friend_add
    from segments.models import CareItem, MemberRfm

    group = RetailGroupFactory()
    brand = BrandFactory(group=group)
    guide = GuideFactory(store=StoreFactory(brand=brand, region__brand=brand))
    survivor, absorbed = MemberFactory(group=group), MemberFactory(group=group)
    now = timezone.now()
    vip = TagValue.objects.create(tag_group=TagGroup.objects.create(group=group, code="vip", name="VIP"), code="y",
                                  name="y")
    MemberTag.objects.create(member=absorbed, tag_value=vip, source="manual", assigned_at=now)
    BehaviourEvent.objects.create(brand=brand, member=absorbed, kind="product_view", occurred_at=now)
    MemberDailyActivity.objects.create(member=absorbed, brand=brand, day=now.date(), product_views=1)
    wecom_friend_add(member=absorbed, guide=guide, at=now, source="api")
    template = CouponTemplate.objects.create(brand=brand, name="c", kind="threshold", discount_amount=Decimal("5"),
                                             valid_days=3)
    coupon_issue(template=template, member=absorbed)
    product = Product.objects.create(brand=brand, code="P", name="p", category="c")
    sku = Sku.objects.create(product=product, brand=brand, code="S", list_price=Decimal("1"),
                             member_price=Decimal("1"), cost_price=Decimal("1"))
    CartItem.objects.create(member=absorbed, sku=sku, quantity=2)
    member_token_issue(member=absorbed)
    order = OrderFactory(brand=brand, member=absorbed)
    SalesCredit.objects.create(order=order, kind="store", brand=brand, member=absorbed, amount=Decimal("100"),
                               order_day=now.date(), channel="store_pos", rule="offline_pos_store")
    MemberRfm.objects.create(member=absorbed, brand=brand, lifecycle_stage="new")
    from livestream.models import LiveSession, ViewerEvent

    session = LiveSession.objects.create(brand=brand, kind="hq_central", title="live", planned_start=now,
                                         planned_end=now + dt.timedelta(hours=1))
    ViewerEvent.objects.create(session=session, member=absorbed, viewer_id=absorbed.code, kind="join",
                               occurred_at=now)
    CareItem.objects.create(day=now.date(), guide=guide, member=absorbed, brand=brand, kind="care", reason="r",
                            suggested_action="a")

    audit = member_merge(survivor=survivor, absorbed=absorbed, reason="same person").audit

    assert audit.moved == {"orders": 1, "points_entries": 0, "memberships": 0, "bindings": 0, "tags": 1,
                           "events": 1, "wecom_friendships": 1, "coupons": 1, "tokens": 1, "cart_items": 1,
                           "rfm_changes": 0, "care_items": 1, "live_viewer_events": 1}
    for model in (MemberTag, BehaviourEvent, MemberDailyActivity, MemberToken, CartItem, CareItem):
        assert model.objects.filter(member=survivor).count() == 1, model.__name__
        assert not model.objects.filter(member=absorbed).exists(), model.__name__
    assert survivor.wecom_friendships.count() == 1 and survivor.coupons.count() == 1
    assert list(ViewerEvent.objects.values_list("member_id", "viewer_id")) == [(survivor.pk, survivor.code)]
    # Current RFML rows are rebuilt by the next run; credits are append-only history under the old buyer id.
    assert not MemberRfm.objects.exists()
    assert list(SalesCredit.objects.values_list("member_id", flat=True)) == [absorbed.pk]


def test_points_tied_to_a_refund_are_posted_once_and_a_reversal_may_overdraw():
    from decimal import Decimal

    from mall.models import Refund

    brand = BrandFactory()
    member = MemberFactory(group=brand.group)
    order = OrderFactory(brand=brand, member=member)
    refund = Refund.objects.create(order=order, refund_no="R1", kind="refund", amount=Decimal("10.00"),
                                   requested_at=timezone.now())
    points_post(member=member, brand=brand, delta=100, reason="earn", order=order)
    points_post(member=member, brand=brand, delta=-100, reason="spend")  # spent elsewhere: balance 0
    first = points_post(member=member, brand=brand, delta=-40, reason="reverse", order=order, refund=refund,
                        allow_overdraw=True)
    again = points_post(member=member, brand=brand, delta=-40, reason="reverse", order=order, refund=refund,
                        allow_overdraw=True)
    assert again == first
    assert points_balance(member=member, brand=brand) == -40
    with pytest.raises(ApplicationError) as refused:
        points_post(member=member, brand=brand, delta=-1, reason="spend")
    assert refused.value.code == "insufficient_points"
