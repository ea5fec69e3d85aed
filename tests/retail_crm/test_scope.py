"""Who sees what: ``retail_crm.scoping.scoped`` per role, and the same rule through the staff API,
the Django admin and the HQ dashboard.

The world (group ``grp``):

    brand-a ── east ── a-e1 (g-e1-1, g-e1-2)   a-e2 (g-e2-1, g-e2-2)
            └─ west ── a-w1 (g-w1-1, g-w1-2)   a-w2 (g-w2-1, g-w2-2)  [franchise]
    brand-b ── b-main ── b-1 (g-b1-1, g-b1-2)                          [outlet]

plus a second group ``other`` with brand-c / c-main / c-1 / g-c1-1, member m-c and order o-c, which
nobody of ``grp`` may see.

Members of ``grp``:
    m1  joined A at a-e1, currently bound to g-e1-1
    m2  joined A at a-e1, was bound to g-e1-1 (ended), now bound to g-e1-2
    m4  joined B at b-1,  currently bound to g-b1-1
    m5  joined A at a-w2 and B at b-1, bound to g-w2-1 (A) and g-b1-2 (B)
    m6  joined A online (no store), never bound

Orders: o-e1 (a-e1, g-e1-1), o-e1b (a-e1, g-e1-2), o-w1 (a-w1, g-w1-1), o-a-online (brand A, no store),
o-b1 (b-1, g-b1-1), o-c (brand-c).
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.utils import timezone
from rest_framework.authtoken.models import Token

from mall.models import Channel, Order
from members.models import Member
from retail_crm.models import Brand, Guide, Region, Store
from retail_crm.scoping import scoped
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

ALL_BRANDS = {"brand-a", "brand-b"}
ALL_REGIONS = {"east", "west", "b-main"}
EAST_STORES = {"a-e1", "a-e2"}
A_STORES = {"a-e1", "a-e2", "a-w1", "a-w2"}
ALL_STORES = A_STORES | {"b-1"}
EAST_GUIDES = {"g-e1-1", "g-e1-2", "g-e2-1", "g-e2-2"}
A_GUIDES = EAST_GUIDES | {"g-w1-1", "g-w1-2", "g-w2-1", "g-w2-2"}
ALL_GUIDES = A_GUIDES | {"g-b1-1", "g-b1-2"}
ALL_ORDERS = {"o-e1", "o-e1b", "o-w1", "o-a-online", "o-b1"}


@pytest.fixture
def world():
    grp = RetailGroupFactory(code="grp", name="Group")
    brand_a = BrandFactory(group=grp, code="brand-a", name="Brand A")
    brand_b = BrandFactory(group=grp, code="brand-b", name="Brand B")
    regions = {
        "east": RegionFactory(brand=brand_a, code="east", name="East"),
        "west": RegionFactory(brand=brand_a, code="west", name="West"),
        "b-main": RegionFactory(brand=brand_b, code="b-main", name="B Main"),
    }
    stores = {
        "a-e1": StoreFactory(region=regions["east"], code="a-e1", name="A East 1", city="上海"),
        "a-e2": StoreFactory(region=regions["east"], code="a-e2", name="A East 2", city="杭州"),
        "a-w1": StoreFactory(region=regions["west"], code="a-w1", name="A West 1", city="成都"),
        "a-w2": StoreFactory(region=regions["west"], code="a-w2", name="A West 2", city="成都",
                             kind=Store.Kind.FRANCHISE),
        "b-1": StoreFactory(region=regions["b-main"], code="b-1", name="B One", city="上海",
                            kind=Store.Kind.OUTLET),
    }
    guides = {}
    for store_code, prefix in [("a-e1", "g-e1"), ("a-e2", "g-e2"), ("a-w1", "g-w1"), ("a-w2", "g-w2"),
                               ("b-1", "g-b1")]:
        for n in (1, 2):
            code = f"{prefix}-{n}"
            guides[code] = GuideFactory(store=stores[store_code], code=code, name=f"Guide {code}")

    other_grp = RetailGroupFactory(code="other", name="Other Group")
    brand_c = BrandFactory(group=other_grp, code="brand-c", name="Brand C")
    store_c = StoreFactory(region=RegionFactory(brand=brand_c, code="c-main"), code="c-1")
    guide_c = GuideFactory(store=store_c, code="g-c1-1")

    now = timezone.now()
    members = {code: MemberFactory(group=grp, code=code) for code in ("m1", "m2", "m4", "m5", "m6")}
    members["m-c"] = MemberFactory(group=other_grp, code="m-c")

    BrandMembershipFactory(member=members["m1"], brand=brand_a, store=stores["a-e1"])
    GuideBindingFactory(member=members["m1"], guide=guides["g-e1-1"])

    BrandMembershipFactory(member=members["m2"], brand=brand_a, store=stores["a-e1"])
    GuideBindingFactory(member=members["m2"], guide=guides["g-e1-1"], started_at=now - dt.timedelta(days=30),
                        ended_at=now - dt.timedelta(days=1))
    GuideBindingFactory(member=members["m2"], guide=guides["g-e1-2"], started_at=now - dt.timedelta(days=1))

    BrandMembershipFactory(member=members["m4"], brand=brand_b, store=stores["b-1"])
    GuideBindingFactory(member=members["m4"], guide=guides["g-b1-1"])

    BrandMembershipFactory(member=members["m5"], brand=brand_a, store=stores["a-w2"])
    BrandMembershipFactory(member=members["m5"], brand=brand_b, store=stores["b-1"])
    GuideBindingFactory(member=members["m5"], guide=guides["g-w2-1"])
    GuideBindingFactory(member=members["m5"], guide=guides["g-b1-2"])

    BrandMembershipFactory(member=members["m6"], brand=brand_a, store=None)

    BrandMembershipFactory(member=members["m-c"], brand=brand_c, store=store_c)
    GuideBindingFactory(member=members["m-c"], guide=guide_c)

    OrderFactory(order_no="o-e1", brand=brand_a, store=stores["a-e1"], guide=guides["g-e1-1"], member=members["m1"])
    OrderFactory(order_no="o-e1b", brand=brand_a, store=stores["a-e1"], guide=guides["g-e1-2"])
    OrderFactory(order_no="o-w1", brand=brand_a, store=stores["a-w1"], guide=guides["g-w1-1"])
    OrderFactory(order_no="o-a-online", brand=brand_a, channel=Channel.MINI_PROGRAM, store=None, guide=None)
    OrderFactory(order_no="o-b1", brand=brand_b, store=stores["b-1"], guide=guides["g-b1-1"])
    OrderFactory(order_no="o-c", brand=brand_c, store=store_c, guide=guide_c)

    return SimpleNamespace(grp=grp, other_grp=other_grp, brand_a=brand_a, brand_b=brand_b, brand_c=brand_c,
                           regions=regions, stores=stores, guides=guides, store_c=store_c, members=members)


def make_user(world, role_key):
    """A staff login for one of the roles the tests compare."""
    if role_key == "hq":
        return staff_user("hq", group=world.grp)
    if role_key == "brand_a":
        return staff_user("brand_operator", brand=world.brand_a)
    if role_key == "brand_b":
        return staff_user("brand_operator", brand=world.brand_b)
    if role_key == "region_east":
        return staff_user("region_manager", region=world.regions["east"])
    if role_key == "store_a_e1":
        return staff_user("store_manager", store=world.stores["a-e1"])
    if role_key == "guide_e1_1":
        return staff_user("guide", guide=world.guides["g-e1-1"])
    if role_key == "guide_e1_2":
        return staff_user("guide", guide=world.guides["g-e1-2"])
    raise AssertionError(role_key)


# role -> model -> exactly the codes visible
EXPECTED = {
    "hq": {
        "brand": ALL_BRANDS, "region": ALL_REGIONS, "store": ALL_STORES, "guide": ALL_GUIDES,
        "member": ["m1", "m2", "m4", "m5", "m6"], "order": ALL_ORDERS,
    },
    "brand_a": {
        "brand": {"brand-a"}, "region": {"east", "west"}, "store": A_STORES, "guide": A_GUIDES,
        "member": ["m1", "m2", "m5", "m6"], "order": {"o-e1", "o-e1b", "o-w1", "o-a-online"},
    },
    "brand_b": {
        "brand": {"brand-b"}, "region": {"b-main"}, "store": {"b-1"}, "guide": {"g-b1-1", "g-b1-2"},
        "member": ["m4", "m5"], "order": {"o-b1"},
    },
    "region_east": {
        "brand": {"brand-a"}, "region": {"east"}, "store": EAST_STORES, "guide": EAST_GUIDES,
        "member": ["m1", "m2"], "order": {"o-e1", "o-e1b"},
    },
    "store_a_e1": {
        "brand": {"brand-a"}, "region": {"east"}, "store": {"a-e1"}, "guide": {"g-e1-1", "g-e1-2"},
        # m2 joined at a-e1 *and* has two bindings there (one ended): still listed once.
        "member": ["m1", "m2"], "order": {"o-e1", "o-e1b"},
    },
    "guide_e1_1": {
        "brand": {"brand-a"}, "region": {"east"}, "store": {"a-e1"}, "guide": {"g-e1-1"},
        # m2's binding to g-e1-1 has ended: not visible any more.
        "member": ["m1"], "order": {"o-e1"},
    },
    "guide_e1_2": {
        "brand": {"brand-a"}, "region": {"east"}, "store": {"a-e1"}, "guide": {"g-e1-2"},
        "member": ["m2"], "order": {"o-e1b"},
    },
}


def brand_codes(user):
    return set(scoped(Brand.objects.all(), user).values_list("code", flat=True))


def region_codes(user):
    return set(scoped(Region.objects.all(), user).values_list("code", flat=True))


def store_codes(user):
    return set(scoped(Store.objects.all(), user).values_list("code", flat=True))


def guide_codes(user):
    return set(scoped(Guide.objects.all(), user).values_list("code", flat=True))


def member_codes(user):
    """A sorted list, not a set, so a member returned twice would show."""
    return sorted(scoped(Member.objects.all(), user).values_list("code", flat=True))


def order_codes(user):
    return set(scoped(Order.objects.all(), user).values_list("order_no", flat=True))


READERS = {"brand": brand_codes, "region": region_codes, "store": store_codes, "guide": guide_codes,
           "member": member_codes, "order": order_codes}


# --- scoped() ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["brand", "region", "store", "guide", "member", "order"])
@pytest.mark.parametrize("role_key", list(EXPECTED))
def test_scoped_returns_exactly_the_rows_of_the_role(world, role_key, model):
    user = make_user(world, role_key)

    assert READERS[model](user) == EXPECTED[role_key][model]


def test_scoped_member_queryset_has_no_duplicates_for_store_manager(world):
    user = make_user(world, "store_a_e1")

    visible = scoped(Member.objects.all(), user)

    # m1 matches by membership and binding; m2 by membership and two bindings at a-e1.
    assert visible.count() == 2
    assert sorted(m.code for m in visible) == ["m1", "m2"]


def test_guide_whose_binding_ended_loses_the_member(world):
    user = make_user(world, "guide_e1_1")
    world.members["m1"].bindings.update(ended_at=timezone.now())

    assert member_codes(user) == []


def test_region_manager_sees_members_bound_to_guides_in_its_stores(world):
    """A region sees at least what each of its stores sees.

    m3 joined brand A at a-w1 (West) but is now bound to g-e1-1 in a-e1 (East): the store manager of
    a-e1 sees m3, so the East region manager must too.
    """
    m3 = MemberFactory(group=world.grp, code="m3")
    BrandMembershipFactory(member=m3, brand=world.brand_a, store=world.stores["a-w1"])
    GuideBindingFactory(member=m3, guide=world.guides["g-e1-1"])
    store_manager = make_user(world, "store_a_e1")
    region_manager = make_user(world, "region_east")

    assert member_codes(store_manager) == ["m1", "m2", "m3"]
    assert member_codes(region_manager) == ["m1", "m2", "m3"]


def test_user_without_staff_profile_sees_nothing(world):
    user = UserFactory(username="nobody")

    assert {model: reader(user) for model, reader in READERS.items()} == {
        "brand": set(), "region": set(), "store": set(), "guide": set(), "member": [], "order": set(),
    }


def test_anonymous_user_sees_nothing(world):
    from django.contrib.auth.models import AnonymousUser

    assert store_codes(AnonymousUser()) == set()
    assert member_codes(AnonymousUser()) == []


def test_superuser_sees_everything_across_groups(world):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")

    assert {model: reader(user) for model, reader in READERS.items()} == {
        "brand": ALL_BRANDS | {"brand-c"},
        "region": ALL_REGIONS | {"c-main"},
        "store": ALL_STORES | {"c-1"},
        "guide": ALL_GUIDES | {"g-c1-1"},
        "member": ["m-c", "m1", "m2", "m4", "m5", "m6"],
        "order": ALL_ORDERS | {"o-c"},
    }


def test_hq_of_other_group_sees_only_its_group(world):
    user = staff_user("hq", group=world.other_grp)

    assert brand_codes(user) == {"brand-c"}
    assert store_codes(user) == {"c-1"}
    assert member_codes(user) == ["m-c"]
    assert order_codes(user) == {"o-c"}


# --- staff API --------------------------------------------------------------------------------------------


def api_codes(api_client, url):
    response = api_client.get(url)
    assert response.status_code == 200, response.content
    return {row["code"] for row in response.json()["results"]}


@pytest.mark.parametrize("role_key", list(EXPECTED))
def test_api_lists_return_exactly_the_scoped_codes(world, api_client, role_key):
    api_client.force_authenticate(make_user(world, role_key))
    expected = EXPECTED[role_key]

    assert {
        "brand": api_codes(api_client, "/api/v1/org/brands/"),
        "region": api_codes(api_client, "/api/v1/org/regions/"),
        "store": api_codes(api_client, "/api/v1/org/stores/"),
        "guide": api_codes(api_client, "/api/v1/org/guides/"),
    } == {"brand": expected["brand"], "region": expected["region"], "store": expected["store"],
          "guide": expected["guide"]}


def test_api_store_list_body_for_region_manager(world, api_client):
    api_client.force_authenticate(make_user(world, "region_east"))

    response = api_client.get("/api/v1/org/stores/")

    assert response.status_code == 200
    assert response.json() == {
        "count": 2, "next": None, "previous": None,
        "results": [
            {"id": world.stores["a-e1"].pk, "code": "a-e1", "name": "A East 1", "kind": "direct", "city": "上海",
             "brand": "brand-a", "region": "east", "is_active": True},
            {"id": world.stores["a-e2"].pk, "code": "a-e2", "name": "A East 2", "kind": "direct", "city": "杭州",
             "brand": "brand-a", "region": "east", "is_active": True},
        ],
    }


@pytest.mark.parametrize(("role_key", "url_name", "code"), [
    ("brand_a", "brands", "brand-b"),
    ("brand_a", "regions", "b-main"),
    ("brand_a", "stores", "b-1"),
    ("brand_a", "guides", "g-b1-1"),
    ("region_east", "regions", "west"),
    ("region_east", "stores", "a-w1"),
    ("region_east", "guides", "g-w1-1"),
    ("store_a_e1", "stores", "a-e2"),
    ("guide_e1_1", "guides", "g-e1-2"),
    ("hq", "brands", "brand-c"),
    ("hq", "stores", "c-1"),
])
def test_api_detail_outside_scope_is_404(world, api_client, role_key, url_name, code):
    objects = {
        "brands": {"brand-b": world.brand_b, "brand-c": world.brand_c},
        "regions": world.regions,
        "stores": {**world.stores, "c-1": world.store_c},
        "guides": world.guides,
    }
    api_client.force_authenticate(make_user(world, role_key))

    response = api_client.get(f"/api/v1/org/{url_name}/{objects[url_name][code].pk}/")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "未找到。"}}


def test_api_detail_inside_scope_returns_the_object(world, api_client):
    api_client.force_authenticate(make_user(world, "store_a_e1"))
    guide = world.guides["g-e1-2"]

    response = api_client.get(f"/api/v1/org/guides/{guide.pk}/")

    assert response.status_code == 200
    assert response.json() == {"id": guide.pk, "code": "g-e1-2", "name": "Guide g-e1-2", "role": "guide",
                               "store": "a-e1", "brand": "brand-a", "hired_at": "2024-01-01", "left_at": None}


def test_api_unauthenticated_is_401(world, api_client):
    response = api_client.get("/api/v1/org/stores/")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_api_unauthenticated_error_code(world, api_client):
    """Whatever the status, the error body names the cause."""
    response = api_client.get("/api/v1/org/stores/")

    assert response.json() == {"error": {"code": "not_authenticated", "message": "身份认证信息未提供。"}}


def test_api_user_without_staff_profile_is_403(world, api_client):
    api_client.force_authenticate(UserFactory(username="customer"))

    response = api_client.get("/api/v1/org/stores/")

    assert response.status_code == 403
    assert response.json() == {"error": {"code": "permission_denied",
                                         "message": "This endpoint is for staff accounts."}}


def test_api_superuser_without_profile_lists_every_store(world, api_client):
    api_client.force_authenticate(get_user_model().objects.create_superuser("root", "r@example.com", "pw"))

    assert api_codes(api_client, "/api/v1/org/stores/") == ALL_STORES | {"c-1"}


@pytest.mark.parametrize(("role_key", "url", "expected"), [
    ("hq", "/api/v1/org/stores/?brand=brand-a", A_STORES),
    ("hq", "/api/v1/org/stores/?region=west", {"a-w1", "a-w2"}),
    ("hq", "/api/v1/org/stores/?kind=franchise", {"a-w2"}),
    ("hq", "/api/v1/org/stores/?kind=outlet", {"b-1"}),
    ("hq", "/api/v1/org/stores/?brand=brand-a&kind=direct", {"a-e1", "a-e2", "a-w1"}),
    ("hq", "/api/v1/org/stores/?city=成都", {"a-w1", "a-w2"}),
    ("hq", "/api/v1/org/regions/?brand=brand-b", {"b-main"}),
    ("hq", "/api/v1/org/guides/?brand=brand-b", {"g-b1-1", "g-b1-2"}),
    ("hq", "/api/v1/org/guides/?store=a-w2", {"g-w2-1", "g-w2-2"}),
    # a filter narrows the scope, it never widens it
    ("brand_a", "/api/v1/org/stores/?brand=brand-b", set()),
    ("brand_a", "/api/v1/org/regions/?brand=brand-b", set()),
    ("region_east", "/api/v1/org/stores/?region=west", set()),
    ("region_east", "/api/v1/org/stores/?kind=franchise", set()),
    ("brand_a", "/api/v1/org/stores/?kind=franchise", {"a-w2"}),
])
def test_api_filters(world, api_client, role_key, url, expected):
    api_client.force_authenticate(make_user(world, role_key))

    assert api_codes(api_client, url) == expected


def test_api_guides_active_filter(world, api_client):
    world.guides["g-e1-2"].left_at = dt.date(2024, 6, 1)
    world.guides["g-e1-2"].save()
    api_client.force_authenticate(make_user(world, "store_a_e1"))

    assert api_codes(api_client, "/api/v1/org/guides/?active=true") == {"g-e1-1"}
    assert api_codes(api_client, "/api/v1/org/guides/?active=false") == {"g-e1-2"}


def test_api_invalid_kind_filter_is_400(world, api_client):
    api_client.force_authenticate(make_user(world, "hq"))

    response = api_client.get("/api/v1/org/stores/?kind=popup")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert list(response.json()["error"]["fields"]) == ["kind"]


def test_api_token_auth(world, api_client):
    user = make_user(world, "brand_a")

    response = api_client.post("/api/v1/auth/token/", {"username": user.username, "password": "pw-123456"},
                               format="json")

    assert response.status_code == 200
    key = response.json()["token"]
    assert key == Token.objects.get(user=user).key

    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    me = api_client.get("/api/v1/me/")
    assert me.status_code == 200
    assert me.json() == {"username": user.username, "role": "brand_operator", "level": "brand",
                         "scope_id": world.brand_a.pk, "is_superuser": False}
    assert api_codes(api_client, "/api/v1/org/stores/") == A_STORES


def test_api_token_wrong_password_issues_no_token(world, api_client):
    user = make_user(world, "brand_a")

    response = api_client.post("/api/v1/auth/token/", {"username": user.username, "password": "wrong"},
                               format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert Token.objects.filter(user=user).exists() is False


def test_api_bad_token_is_401(world, api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")

    response = api_client.get("/api/v1/org/stores/")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


# --- Django admin -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("role_key", "expected"), [
    ("hq", ALL_STORES),
    ("brand_a", A_STORES),
    ("region_east", EAST_STORES),
    ("store_a_e1", {"a-e1"}),
])
def test_admin_store_changelist_shows_only_scoped_stores(world, client, role_key, expected):
    client.force_login(make_user(world, role_key))

    response = client.get("/admin/retail_crm/store/")

    assert response.status_code == 200
    changelist = response.context["cl"]
    assert {store.code for store in changelist.result_list} == expected
    assert set(changelist.queryset.values_list("code", flat=True)) == expected


@pytest.mark.parametrize(("role_key", "store_code"), [
    ("brand_a", "b-1"),
    ("region_east", "a-w1"),
    ("store_a_e1", "a-e2"),
    ("hq", "c-1"),
])
def test_admin_store_change_page_outside_scope_redirects_to_index(world, client, role_key, store_code):
    store = world.store_c if store_code == "c-1" else world.stores[store_code]
    client.force_login(make_user(world, role_key))

    response = client.get(f"/admin/retail_crm/store/{store.pk}/change/")

    assert response.status_code == 302
    assert response.url == "/admin/"
    messages = [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]
    assert messages == [("warning", f"ID 为“{store.pk}”的 门店 不存在。可能已经被删除了？")]


def test_admin_store_change_page_inside_scope_opens(world, client):
    client.force_login(make_user(world, "region_east"))
    store = world.stores["a-e2"]

    response = client.get(f"/admin/retail_crm/store/{store.pk}/change/")

    assert response.status_code == 200
    assert response.context["original"] == store


def test_admin_brand_operator_store_add_form_offers_only_own_choices(world, client):
    client.force_login(make_user(world, "brand_a"))

    response = client.get("/admin/retail_crm/store/add/")

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert {r.code for r in form.fields["region"].queryset} == {"east", "west"}
    assert {b.code for b in form.fields["brand"].queryset} == {"brand-a"}


def test_admin_brand_operator_cannot_post_store_into_other_brand_region(world, client):
    client.force_login(make_user(world, "brand_a"))

    response = client.post("/admin/retail_crm/store/add/", {
        "brand": world.brand_b.pk, "region": world.regions["b-main"].pk, "code": "sneaky", "name": "Sneaky",
        "kind": "direct", "city": "", "is_active": "on",
    })

    assert response.status_code == 200  # form redisplayed with errors
    assert set(response.context["adminform"].form.errors) == {"brand", "region"}
    assert Store.objects.filter(code="sneaky").exists() is False


def test_admin_guide_login_without_is_staff_cannot_open_admin(world, client):
    user = make_user(world, "guide_e1_1")
    user.is_staff = False
    user.save(update_fields=["is_staff"])
    client.force_login(user)

    index = client.get("/admin/")
    changelist = client.get("/admin/retail_crm/store/")

    assert index.status_code == 302
    assert index.url == "/admin/login/?next=/admin/"
    assert changelist.status_code == 302
    assert changelist.url == "/admin/login/?next=/admin/retail_crm/store/"


def test_admin_staff_user_without_profile_sees_no_store_module(world, client):
    client.force_login(UserFactory(username="staff-no-profile"))

    response = client.get("/admin/retail_crm/store/")

    assert response.status_code == 403


# --- HQ dashboard -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("role_key", "counts"), [
    ("hq", {"store_count": 5, "guide_count": 10}),
    ("brand_a", {"store_count": 4, "guide_count": 8}),
    ("region_east", {"store_count": 2, "guide_count": 4}),
])
def test_hq_overview_counts_are_scoped(world, client, role_key, counts):
    client.force_login(make_user(world, role_key))

    response = client.get("/hq/")

    assert response.status_code == 200
    assert {key: response.context[key] for key in counts} == counts


def test_hq_overview_refuses_user_without_profile(world, client):
    client.force_login(UserFactory(username="customer"))

    response = client.get("/hq/")

    assert response.status_code == 403
