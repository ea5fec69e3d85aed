"""Staff member API: search by every filter, scope per role, detail body, binding transfer, auth.

The world is described in tests/factories_member_staff.py.
"""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from members.models import GuideBinding
from tests.factories import BrandMembershipFactory, GuideBindingFactory, GuideFactory, MemberFactory, UserFactory
from tests.factories_member_staff import LIVE_MEMBERS, T0, add_history, build_member_world, world_user

pytestmark = pytest.mark.django_db

LIST = "/api/v1/members/"


@pytest.fixture
def world():
    return build_member_world()


def codes(api_client, params=None):
    response = api_client.get(LIST, params or {})
    assert response.status_code == 200, response.json()
    return [row["code"] for row in response.json()["results"]]


def as_user(api_client, user):
    api_client.force_authenticate(user)
    return api_client


# ---------------------------------------------------------------------------- search filters

@pytest.mark.parametrize(("params", "expected"), [
    ({}, ["m6", "m5", "m4", "m3", "m2", "m1"]),
    ({"phone": "138 0000 0003"}, ["m3"]),
    ({"phone": "+86-138-0000-0003"}, ["m3"]),
    ({"phone": "13800000099"}, ["m6"]),  # the phone stayed on the tombstone; the live member is found
    ({"phone": "13900000000"}, []),
    ({"name": "王"}, ["m2", "m1"]),
    ({"name": "小明"}, ["m1"]),
    ({"tag": "shoe-size:38"}, ["m1"]),
    ({"tag": "shoe-size:39"}, []),
    ({"segment": "important_value"}, ["m3", "m1"]),  # m3 is important in brand B
    ({"segment": "important_value", "brand": "brand-a"}, ["m1"]),  # …and general_develop in brand A
    ({"segment": "important_value", "brand": "brand-b"}, ["m3"]),
    ({"segment": "general_develop"}, ["m3"]),
    ({"segment": "general_value"}, []),  # a known class no run has tagged yet
    ({"tag": "colour:black"}, ["m4", "m3"]),  # a group-wide tag
    ({"tag": "colour:black", "brand": "brand-a"}, ["m3"]),
    ({"tag": "rfml:important_value", "brand": "brand-b"}, ["m3"]),
    ({"guide": "g-e1-1"}, ["m5", "m1"]),  # m2's binding to g-e1-1 has ended
    ({"guide": "g-e1-2"}, ["m2"]),
    ({"store": "a-e1"}, ["m5", "m2", "m1"]),  # m5 joined elsewhere but is bound to an a-e1 guide
    ({"store": "b-1"}, ["m4", "m3"]),
    ({"brand": "brand-b"}, ["m4", "m3"]),
    ({"brand": "brand-a", "name": "王"}, ["m2", "m1"]),
    ({"store": "a-e1", "guide": "g-e1-2"}, ["m2"]),
])
def test_search_filters_as_hq(world, api_client, params, expected):
    as_user(api_client, world_user(world, "hq"))

    assert codes(api_client, params) == expected


def test_search_by_tag_value_id(world, api_client):
    as_user(api_client, world_user(world, "hq"))

    assert codes(api_client, {"tag": str(world.tags.shoe_38.pk)}) == ["m1"]
    assert codes(api_client, {"tag": str(world.tags.b_sporty.pk)}) == ["m3"]
    assert codes(api_client, {"tag": str(world.tags.black.pk)}) == ["m4", "m3"]


def test_search_by_the_id_of_another_brands_tag_is_400(world, api_client):
    as_user(api_client, world_user(world, "brand-b"))

    response = api_client.get(LIST, {"tag": str(world.tags.shoe_38.pk)})

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"tag": ["No such tag value."]}


@pytest.mark.parametrize(("key", "expected"), [
    ("brand-a", ["m1"]),  # m3's important_value tag belongs to brand B's RFML run
    ("brand-b", ["m3"]),
    ("g-e2-1", []),
])
def test_segment_search_reads_the_rfml_tags_of_the_callers_brands(world, api_client, key, expected):
    as_user(api_client, world_user(world, key))

    assert codes(api_client, {"segment": "important_value"}) == expected


@pytest.mark.parametrize(("params", "field"), [
    ({"phone": "12345"}, "phone"),
    ({"phone": "138abc00000"}, "phone"),
    ({"segment": "vip"}, "segment"),
    ({"tag": "no-colon"}, "tag"),
    ({"tag": "shoe-size:99"}, "tag"),
    ({"tag": "999999"}, "tag"),
    ({"guide": "g-nobody"}, "guide"),
    ({"guide": "bad code!"}, "guide"),
    ({"store": "s-nowhere"}, "store"),
    ({"brand": "brand-z"}, "brand"),
    ({"brand": "brand-c"}, "brand"),  # another group's brand
])
def test_search_bad_values_are_400_with_the_field(world, api_client, params, field):
    as_user(api_client, world_user(world, "hq"))

    response = api_client.get(LIST, params)

    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "invalid"
    assert list(body["fields"]) == [field]


@pytest.mark.parametrize(("key", "params"), [
    ("region-east", {"guide": "g-w1-1"}),  # exists, but in the west
    ("brand-a", {"store": "b-1"}),
    ("brand-a", {"brand": "brand-b"}),
    ("brand-a", {"tag": "style:sporty"}),  # brand B's tag group
    ("g-e1-1", {"guide": "g-e1-2"}),
])
def test_search_codes_outside_scope_are_refused_like_unknown_ones(world, api_client, key, params):
    as_user(api_client, world_user(world, key))

    response = api_client.get(LIST, params)

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == list(params)


def test_list_row_shape(world, api_client):
    as_user(api_client, world_user(world, "hq"))

    response = api_client.get(LIST, {"phone": "13800000003"})

    assert response.json() == {"count": 1, "next": None, "previous": None, "results": [{
        "id": world.members["m3"].pk, "code": "m3", "name": "李雷", "phone": "138****0003", "gender": "",
        "created_at": "2025-01-04T10:00:00+08:00", "brands": ["brand-a", "brand-b"], "guides": ["g-b1-1", "g-e2-1"],
    }]}


def test_list_row_brands_and_guides_are_limited_to_the_callers_brands(world, api_client):
    as_user(api_client, world_user(world, "brand-a"))

    row = api_client.get(LIST, {"phone": "13800000003"}).json()["results"][0]

    assert (row["brands"], row["guides"]) == (["brand-a"], ["g-e2-1"])


def test_list_is_paginated(world, api_client):
    as_user(api_client, world_user(world, "hq"))

    first = api_client.get(LIST, {"page_size": 4}).json()
    second = api_client.get(LIST, {"page_size": 4, "page": 2}).json()

    assert first["count"] == 6
    assert [r["code"] for r in first["results"]] == ["m6", "m5", "m4", "m3"]
    assert [r["code"] for r in second["results"]] == ["m2", "m1"]


def test_list_query_count_does_not_grow_with_rows(world, api_client, django_assert_max_num_queries):
    user = world_user(world, "store-a-e1", full_phone=True)
    for n in range(40):
        member = MemberFactory(group=world.grp, code=f"x{n:02d}", phone=f"+8613900000{n:03d}",
                               created_at=T0 + dt.timedelta(days=100 + n))
        BrandMembershipFactory(member=member, brand=world.brand_a, store=world.stores["a-e1"], joined_at=T0)
        GuideBindingFactory(member=member, guide=world.guides["g-e1-2"], started_at=T0)
    as_user(api_client, user)

    # staff profile, count, page, memberships, bindings, user perms, group perms, scope check for whole phones
    with django_assert_max_num_queries(8):
        response = api_client.get(LIST, {"page_size": 50})

    body = response.json()
    assert body["count"] == 43
    assert len(body["results"]) == 43
    assert {r["phone"] for r in body["results"] if r["code"] == "x07"} == {"13900000007"}


# ---------------------------------------------------------------------------- scope

@pytest.mark.parametrize(("key", "expected"), [
    ("hq", LIVE_MEMBERS),
    ("brand-a", {"m1", "m2", "m3", "m5", "m6"}),
    ("brand-b", {"m3", "m4"}),
    ("region-east", {"m1", "m2", "m3", "m5"}),  # m5 joined in the west but is bound to an east guide
    ("region-west", {"m5"}),
    ("store-a-e1", {"m1", "m2", "m5"}),
    ("store-a-e2", {"m3"}),
    ("g-e1-1", {"m1", "m5"}),
    ("g-e1-2", {"m2"}),
    ("g-b1-1", {"m3", "m4"}),
])
def test_list_returns_exactly_the_callers_members(world, api_client, key, expected):
    as_user(api_client, world_user(world, key))

    assert set(codes(api_client)) == expected


@pytest.mark.parametrize(("key", "member"), [
    ("g-e1-2", "m1"),  # a guide cannot open another guide's member
    ("g-e1-1", "m2"),  # nor a member who used to be theirs
    ("brand-a", "m4"),  # brand A staff cannot read brand B members
    ("brand-b", "m1"),
    ("region-west", "m1"),
    ("store-a-e2", "m1"),
    ("hq", "mc"),  # another group
])
def test_detail_outside_scope_is_404(world, api_client, key, member):
    as_user(api_client, world_user(world, key))

    response = api_client.get(f"{LIST}{world.members[member].pk}/")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "No such member."}}


def test_detail_of_unknown_id_is_404(world, api_client):
    as_user(api_client, world_user(world, "hq"))

    assert api_client.get(f"{LIST}999999/").status_code == 404


# ---------------------------------------------------------------------------- detail

def test_detail_body_for_hq_with_the_phone_permission(world, api_client):
    add_history(world)
    m1 = world.members["m1"]
    m1.birthday, m1.gender, m1.address = dt.date(1990, 5, 1), "M", "上海市静安区南京西路 1 号"
    m1.clothing_size, m1.shoe_size = "L", "38"
    m1.preferred_colours, m1.preferred_styles, m1.preferred_materials = ["黑"], ["通勤"], ["棉"]
    m1.save()
    since = timezone.localdate() - dt.timedelta(days=29)
    as_user(api_client, world_user(world, "hq", full_phone=True))

    response = api_client.get(f"{LIST}{m1.pk}/")

    assert response.status_code == 200
    assert response.json() == {
        "id": m1.pk, "code": "m1", "name": "王小明", "phone": "13800000001", "gender": "M",
        "birthday": "1990-05-01", "address": "上海市静安区南京西路 1 号", "clothing_size": "L", "shoe_size": "38",
        "preferred_colours": ["黑"], "preferred_styles": ["通勤"], "preferred_materials": ["棉"],
        "created_at": "2025-01-02T10:00:00+08:00", "merged_into": None,
        "memberships": [{"brand": "brand-a", "brand_name": "Brand A", "joined_at": "2025-01-02T10:00:00+08:00",
                         "join_channel": "store_card", "store": "a-e1", "tier": "standard", "points": 70}],
        "bindings": [{"brand": "brand-a", "guide": "g-e1-1", "guide_name": "Guide g-e1-1", "store": "a-e1",
                      "started_at": "2025-01-02T10:00:00+08:00", "ended_at": None, "reason": "qr_scan"}],
        "wecom_friendships": [
            {"guide": "g-e1-2", "added_at": "2025-01-03T10:00:00+08:00", "removed_at": "2025-01-04T10:00:00+08:00",
             "source": "api"},
            {"guide": "g-e1-1", "added_at": "2025-01-05T10:00:00+08:00", "removed_at": None, "source": "callback"},
        ],
        "tags": [
            {"tag_value_id": world.tags.important_value.pk, "brand": "brand-a", "group": "rfml",
             # Standard groups and RFML classes are named in the request's language (zh-hans), not as stored.
             "group_name": "RFML 分类", "value": "important_value", "value_name": "重要价值", "source": "rfml",
             "reason": "R 12 d, F 5, M 3,400.00", "assigned_at": "2025-02-01T10:00:00+08:00"},
            {"tag_value_id": world.tags.shoe_38.pk, "brand": "brand-a", "group": "shoe-size",
             "group_name": "鞋码", "value": "38", "value_name": "38", "source": "rule",
             "reason": "3 of 4 pairs bought", "assigned_at": "2025-01-31T10:00:00+08:00"},
        ],
        "activity_30d": {"since": since.isoformat(), "days": 30, "product_views": 7, "favourites": 2, "shares": 1,
                         "add_to_carts": 0, "orders_unpaid": 0, "live_watches": 0, "material_views": 0},
    }


def test_detail_binding_history_keeps_every_row(world, api_client):
    as_user(api_client, world_user(world, "store-a-e1"))

    body = api_client.get(f"{LIST}{world.members['m2'].pk}/").json()

    assert [(b["guide"], b["started_at"], b["ended_at"]) for b in body["bindings"]] == [
        ("g-e1-1", "2025-01-03T10:00:00+08:00", "2025-01-21T10:00:00+08:00"),
        ("g-e1-2", "2025-01-21T10:00:00+08:00", None),
    ]


@pytest.mark.parametrize(("key", "brands", "points", "guides", "friends", "tags", "activity"), [
    ("hq", ["brand-a", "brand-b"], [50, 20], ["g-e2-1", "g-b1-1"], ["g-b1-1"],
     ["-:colour:black", "brand-a:rfml:general_develop", "brand-b:rfml:important_value", "brand-b:style:sporty"],
     (1, 5)),
    ("brand-a", ["brand-a"], [50], ["g-e2-1"], [], ["-:colour:black", "brand-a:rfml:general_develop"], (1, 0)),
    ("brand-b", ["brand-b"], [20], ["g-b1-1"], ["g-b1-1"],
     ["-:colour:black", "brand-b:rfml:important_value", "brand-b:style:sporty"], (0, 5)),
    ("g-b1-1", ["brand-b"], [20], ["g-b1-1"], ["g-b1-1"],
     ["-:colour:black", "brand-b:rfml:important_value", "brand-b:style:sporty"], (0, 5)),
])
def test_detail_shows_only_the_brands_of_the_callers_scope(world, api_client, key, brands, points, guides, friends,
                                                           tags, activity):
    add_history(world)
    as_user(api_client, world_user(world, key))

    body = api_client.get(f"{LIST}{world.members['m3'].pk}/").json()

    assert [m["brand"] for m in body["memberships"]] == brands
    assert [m["points"] for m in body["memberships"]] == points
    assert [b["guide"] for b in body["bindings"]] == guides
    assert [f["guide"] for f in body["wecom_friendships"]] == friends
    assert [f"{t['brand'] or '-'}:{t['group']}:{t['value']}" for t in body["tags"]] == tags
    assert (body["activity_30d"]["add_to_carts"], body["activity_30d"]["live_watches"]) == activity


def test_detail_of_a_tombstone_names_the_survivor(world, api_client):
    as_user(api_client, world_user(world, "hq"))

    body = api_client.get(f"{LIST}{world.members['m9'].pk}/").json()

    assert (body["code"], body["merged_into"], body["memberships"]) == ("m9", "m6", [])


def test_detail_query_count_is_fixed(world, api_client, django_assert_max_num_queries):
    add_history(world)
    as_user(api_client, world_user(world, "hq"))

    # staff profile, member, memberships, points, bindings, friendships, tags, activity, user and group perms
    with django_assert_max_num_queries(10):
        assert api_client.get(f"{LIST}{world.members['m3'].pk}/").status_code == 200


# ---------------------------------------------------------------------------- binding transfer

def transfer_url(member) -> str:
    return f"{LIST}{member.pk}/binding-transfer/"


def open_bindings(member):
    return sorted((b.brand.code, b.guide.code, b.reason)
                  for b in GuideBinding.objects.filter(member=member, ended_at__isnull=True))


def test_store_manager_transfers_a_member(world, api_client):
    m1 = world.members["m1"]
    as_user(api_client, world_user(world, "store-a-e1"))

    response = api_client.post(transfer_url(m1), {"brand": "brand-a", "to_guide": "g-e1-2"}, format="json")

    assert response.status_code == 200
    body = response.json()
    started = GuideBinding.objects.get(member=m1, ended_at__isnull=True).started_at
    assert body == {"member": "m1", "brand": "brand-a", "guide": "g-e1-2", "store": "a-e1",
                    "started_at": timezone.localtime(started).isoformat(), "reason": "transfer"}
    assert [(b.guide.code, b.reason, b.ended_at == started) for b in
            GuideBinding.objects.filter(member=m1).order_by("pk")] == [
        ("g-e1-1", "qr_scan", True), ("g-e1-2", "transfer", False)]


def test_hq_transfers_across_stores(world, api_client):
    m5 = world.members["m5"]
    as_user(api_client, world_user(world, "hq"))

    response = api_client.post(transfer_url(m5), {"brand": "brand-a", "to_guide": "g-w1-1"}, format="json")

    assert response.status_code == 200
    assert open_bindings(m5) == [("brand-a", "g-w1-1", "transfer")]


def test_store_manager_may_move_a_member_bound_in_the_store_who_joined_elsewhere(world, api_client):
    m5 = world.members["m5"]  # joined at a-w1, bound to g-e1-1 of a-e1
    as_user(api_client, world_user(world, "store-a-e1"))

    response = api_client.post(transfer_url(m5), {"brand": "brand-a", "to_guide": "g-e1-2"}, format="json")

    assert response.status_code == 200
    assert open_bindings(m5) == [("brand-a", "g-e1-2", "transfer")]


def test_guide_may_not_transfer(world, api_client):
    m1 = world.members["m1"]
    as_user(api_client, world_user(world, "g-e1-1"))

    response = api_client.post(transfer_url(m1), {"brand": "brand-a", "to_guide": "g-e1-2"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "transfer_forbidden"
    assert open_bindings(m1) == [("brand-a", "g-e1-1", "qr_scan")]


@pytest.mark.parametrize(("key", "member", "to_guide"), [
    ("store-a-e2", "m1", "g-e2-1"),  # member outside the store
    ("store-a-e1", "m1", "g-e2-1"),  # guide outside the store
    ("brand-b", "m1", "g-b1-1"),
    ("hq", "mc", "g-c1-1"),
])
def test_transfer_outside_scope_is_404(world, api_client, key, member, to_guide):
    target = world.members[member]
    before = open_bindings(target)
    as_user(api_client, world_user(world, key))

    response = api_client.post(transfer_url(target), {"brand": "brand-a", "to_guide": to_guide}, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert open_bindings(target) == before


@pytest.mark.parametrize(("body", "fields"), [
    ({}, {"brand", "to_guide"}),
    ({"brand": "brand-z", "to_guide": "g-e1-2"}, {"brand"}),
    ({"brand": "brand-b", "to_guide": "g-e1-2"}, {"brand"}),  # m1 never joined brand B
    ({"brand": "brand-a", "to_guide": "g-nobody"}, {"to_guide"}),
    ({"brand": "brand-a", "to_guide": "bad code!"}, {"to_guide"}),
    ({"brand": ["brand-a"], "to_guide": "g-e1-2"}, {"brand"}),
])
def test_transfer_bad_input_is_400(world, api_client, body, fields):
    m1 = world.members["m1"]
    as_user(api_client, world_user(world, "store-a-e1"))

    response = api_client.post(transfer_url(m1), body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert set(response.json()["error"]["fields"]) == fields
    assert open_bindings(m1) == [("brand-a", "g-e1-1", "qr_scan")]


def test_transfer_to_a_guide_of_another_brand_is_400(world, api_client):
    m3 = world.members["m3"]
    as_user(api_client, world_user(world, "hq"))

    response = api_client.post(transfer_url(m3), {"brand": "brand-a", "to_guide": "g-b1-1"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "guide_wrong_brand"
    assert open_bindings(m3) == [("brand-a", "g-e2-1", "qr_scan"), ("brand-b", "g-b1-1", "qr_scan")]


def test_transfer_to_a_guide_who_left_is_409(world, api_client):
    m1 = world.members["m1"]
    as_user(api_client, world_user(world, "store-a-e1"))

    response = api_client.post(transfer_url(m1), {"brand": "brand-a", "to_guide": "g-e1-left"}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "guide_inactive"
    assert open_bindings(m1) == [("brand-a", "g-e1-1", "qr_scan")]


def test_transfer_of_a_merged_member_is_409(world, api_client):
    m9 = world.members["m9"]
    as_user(api_client, world_user(world, "hq"))

    response = api_client.post(transfer_url(m9), {"brand": "brand-a", "to_guide": "g-e1-2"}, format="json")

    assert response.status_code == 409
    assert GuideBinding.objects.filter(member=m9).count() == 0


@pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                    reason="concurrency tests need PostgreSQL (set DATABASE_URL)")
@pytest.mark.django_db(transaction=True)
def test_two_transfers_of_one_member_at_once_leave_one_open_binding_and_a_clean_history(world):
    m1 = world.members["m1"]
    GuideFactory(store=world.stores["a-e1"], code="g-e1-3")
    users = [world_user(world, "store-a-e1"), world_user(world, "store-a-e1")]
    barrier = threading.Barrier(2)

    def transfer(user, to_guide):
        client = APIClient()
        client.force_authenticate(user)
        try:
            barrier.wait(timeout=10)
            return client.post(transfer_url(m1), {"brand": "brand-a", "to_guide": to_guide}, format="json").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = list(pool.map(transfer, users, ["g-e1-2", "g-e1-3"]))

    assert statuses == [200, 200]  # serialised on the member row: one after the other
    # Insertion order is lock order. (The service stamps ``at`` before taking the lock, so two overlapping
    # transfers may carry timestamps in the other order; the chain of rows is what must hold.)
    rows = list(GuideBinding.objects.filter(member=m1).order_by("pk"))
    assert [r.reason for r in rows] == ["qr_scan", "transfer", "transfer"]
    assert {r.guide.code for r in rows[1:]} == {"g-e1-2", "g-e1-3"}
    assert [r.ended_at for r in rows] == [rows[1].started_at, rows[2].started_at, None]


# ---------------------------------------------------------------------------- authentication

@pytest.mark.parametrize(("method", "path"), [
    ("get", "members/"), ("get", "members/{pk}/"), ("post", "members/{pk}/binding-transfer/"),
])
def test_anonymous_is_401(world, api_client, method, path):
    url = "/api/v1/" + path.format(pk=world.members["m1"].pk)

    response = getattr(api_client, method)(url, {"brand": "brand-a", "to_guide": "g-e1-2"}, format="json") \
        if method == "post" else api_client.get(url)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert open_bindings(world.members["m1"]) == [("brand-a", "g-e1-1", "qr_scan")]


@pytest.mark.parametrize(("method", "path"), [
    ("get", "members/"), ("get", "members/{pk}/"), ("post", "members/{pk}/binding-transfer/"),
])
def test_authenticated_non_staff_is_403(world, api_client, method, path):
    url = "/api/v1/" + path.format(pk=world.members["m1"].pk)
    api_client.force_authenticate(UserFactory(username="shopper", is_staff=False))

    response = api_client.post(url, {"brand": "brand-a", "to_guide": "g-e1-2"}, format="json") \
        if method == "post" else api_client.get(url)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert open_bindings(world.members["m1"]) == [("brand-a", "g-e1-1", "qr_scan")]


def test_superuser_without_staff_profile_sees_every_group(world, api_client):
    api_client.force_authenticate(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))

    assert set(codes(api_client)) == LIVE_MEMBERS | {"mc"}
