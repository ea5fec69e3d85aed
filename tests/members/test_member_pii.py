"""Phone numbers are personal data: who sees them whole, across the staff API and the Django admin.

Whole only for the member's currently bound guide (any brand) and for staff holding
``members.view_full_phone`` (superusers included) when the member is in their scope;
masked (138****0001) for everyone else. The world is in tests/factories_member_staff.py.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

from members.selectors import PhoneVisibility, phone_for_viewer
from retail_crm.scoping import actor_for
from tests.factories import BrandMembershipFactory, GuideBindingFactory, MemberFactory
from tests.factories_member_staff import build_member_world, world_user

pytestmark = pytest.mark.django_db

LIST = "/api/v1/members/"
ADMIN = "/admin/members/member/"


@pytest.fixture
def world():
    return build_member_world()


def superuser():
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw")


def api_phones(api_client, user) -> dict[str, str]:
    api_client.force_authenticate(user)
    response = api_client.get(LIST)
    assert response.status_code == 200
    return {row["code"]: row["phone"] for row in response.json()["results"]}


def api_detail_phone(api_client, user, member):
    api_client.force_authenticate(user)
    response = api_client.get(f"{LIST}{member.pk}/")
    return response.status_code, response.json().get("phone")


def admin_rows(client, user, params=None) -> dict[str, str]:
    """code → phone cell of the admin changelist, read from the rendered page."""
    client.force_login(user)
    response = client.get(ADMIN, params or {})
    assert response.status_code == 200
    html = response.content.decode()
    rows = {}
    for row in re.findall(r"<tr>.*?</tr>", html, flags=re.S):
        code = re.search(r'<th class="field-code"><a [^>]*>([^<]+)</a>', row)
        phone = re.search(r'<td class="field-phone">([^<]*)</td>', row)
        if code and phone:
            rows[code.group(1)] = phone.group(1)
    assert len(rows) == len(response.context["cl"].result_list)
    return rows


# ---------------------------------------------------------------------------- the staff API

@pytest.mark.parametrize(("key", "full_phone", "expected"), [
    # the bound guide sees their members whole
    ("g-e1-1", False, {"m1": "13800000001", "m5": "13800000005"}),
    # another guide of the same store does not see m1 at all, only their own member
    ("g-e1-2", False, {"m2": "13800000002"}),
    # a guide of brand B bound to m3 (who is also bound in brand A) sees m3 whole
    ("g-b1-1", False, {"m3": "13800000003", "m4": "13800000004"}),
    # a store manager without the permission: masked
    ("store-a-e1", False, {"m1": "138****0001", "m2": "138****0002", "m5": "138****0005"}),
    # with the permission: whole, within the store's scope
    ("store-a-e1", True, {"m1": "13800000001", "m2": "13800000002", "m5": "13800000005"}),
    ("region-west", True, {"m5": "13800000005"}),
    # HQ without the permission: masked; with it: whole
    ("hq", False, {f"m{n}": f"138****000{n}" for n in range(1, 7)}),
    ("hq", True, {f"m{n}": f"1380000000{n}" for n in range(1, 7)}),
    ("brand-b", False, {"m3": "138****0003", "m4": "138****0004"}),
])
def test_api_list_phone_by_role(world, api_client, key, full_phone, expected):
    assert api_phones(api_client, world_user(world, key, full_phone=full_phone)) == expected


@pytest.mark.parametrize(("key", "full_phone", "member", "expected"), [
    ("g-e1-1", False, "m1", (200, "13800000001")),
    ("g-e1-2", False, "m1", (404, None)),
    ("g-e1-1", False, "m2", (404, None)),  # used to be m2's guide: no longer sees m2
    ("store-a-e1", False, "m1", (200, "138****0001")),
    ("store-a-e1", True, "m1", (200, "13800000001")),
    ("store-a-e2", True, "m1", (404, None)),  # the permission does not widen the scope
    ("hq", False, "m3", (200, "138****0003")),
    ("hq", True, "m3", (200, "13800000003")),
    ("brand-a", True, "m4", (404, None)),
])
def test_api_detail_phone_by_role(world, api_client, key, full_phone, member, expected):
    user = world_user(world, key, full_phone=full_phone)

    assert api_detail_phone(api_client, user, world.members[member]) == expected


def test_api_superuser_sees_whole_phones(world, api_client):
    phones = api_phones(api_client, superuser())

    assert phones["m1"] == "13800000001"
    assert phones["mc"] == "13800000001"  # the other group's member with the same number


def test_api_permission_through_a_role_group(world, api_client):
    user = world_user(world, "store-a-e1")
    role = Group.objects.create(name="Store managers who call members")
    role.permissions.add(Permission.objects.get(content_type__app_label="members", codename="view_full_phone"))
    user.groups.add(role)

    assert api_phones(api_client, user) == {"m1": "13800000001", "m2": "13800000002", "m5": "13800000005"}


def test_api_masked_phone_never_leaks_whole_anywhere_in_the_body(world, api_client):
    api_client.force_authenticate(world_user(world, "hq"))

    text = api_client.get(f"{LIST}{world.members['m1'].pk}/").content.decode()

    assert "13800000001" not in text
    assert "138****0001" in text


# ---------------------------------------------------------------------------- the one deciding function

def test_phone_for_viewer_masks_a_member_outside_scope_even_with_the_permission(world):
    user = world_user(world, "store-a-e2", full_phone=True)
    actor = actor_for(user)

    assert phone_for_viewer(actor=actor, user=user, member=world.members["m1"]) == "138****0001"
    assert phone_for_viewer(actor=actor, user=user, member=world.members["m3"]) == "13800000003"


def test_phone_for_viewer_ignores_a_permission_of_another_user(world):
    guide_user = world_user(world, "g-e1-2")
    holder = world_user(world, "hq", full_phone=True)

    assert phone_for_viewer(actor=actor_for(guide_user), user=holder, member=world.members["m2"]) == "13800000002"
    assert phone_for_viewer(actor=actor_for(guide_user), user=holder, member=world.members["m1"]) == "138****0001"


def test_phone_for_viewer_inactive_permission_holder_sees_masked(world):
    user = world_user(world, "hq", full_phone=True)
    user.is_active = False

    assert phone_for_viewer(actor=actor_for(user), user=user, member=world.members["m1"]) == "138****0001"


def test_phone_for_viewer_of_a_member_without_phone_is_empty(world):
    member = world.members["m1"]
    member.phone = ""

    assert phone_for_viewer(actor=actor_for(superuser()), user=None, member=member) == ""


def test_phone_visibility_refuses_a_member_outside_its_batch(world):
    user = world_user(world, "hq")
    visibility = PhoneVisibility(actor=actor_for(user), user=user, members=[world.members["m1"]])

    with pytest.raises(ValueError, match="was not in the batch"):
        visibility.phone(world.members["m2"])


# ---------------------------------------------------------------------------- the Django admin

@pytest.mark.parametrize(("key", "full_phone", "expected"), [
    ("g-e1-1", False, {"m1": "13800000001", "m5": "13800000005"}),
    ("g-e1-2", False, {"m2": "13800000002"}),
    ("store-a-e1", False, {"m1": "138****0001", "m2": "138****0002", "m5": "138****0005"}),
    ("store-a-e1", True, {"m1": "13800000001", "m2": "13800000002", "m5": "13800000005"}),
    ("hq", False, {**{f"m{n}": f"138****000{n}" for n in range(1, 7)}, "m9": "138****0099"}),
    ("hq", True, {**{f"m{n}": f"1380000000{n}" for n in range(1, 7)}, "m9": "13800000099"}),
])
def test_admin_changelist_phone_by_role(world, client, key, full_phone, expected):
    assert admin_rows(client, world_user(world, key, full_phone=full_phone)) == expected


def test_admin_changelist_page_has_no_whole_number_for_a_masked_viewer(world, client):
    client.force_login(world_user(world, "store-a-e1"))

    html = client.get(ADMIN).content.decode()

    assert re.findall(r"1380000000\d", html) == []


def test_admin_changelist_decides_phones_for_the_page_in_fixed_queries(world, client, django_assert_max_num_queries):
    for n in range(30):
        member = MemberFactory(group=world.grp, code=f"x{n:02d}", phone=f"+8613900000{n:03d}")
        BrandMembershipFactory(member=member, brand=world.brand_a, store=world.stores["a-e1"])
        GuideBindingFactory(member=member, guide=world.guides["g-e1-1"])
    user = world_user(world, "hq", full_phone=True)
    client.force_login(user)
    client.get(ADMIN)  # warm caches (content types, sessions)

    # session, user, staff profile, counts, page, brand filter, perms, scope check: 11 with 7 rows or 37
    with django_assert_max_num_queries(11):
        response = client.get(ADMIN)
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 37
    assert "13900000029" in response.content.decode()


@pytest.mark.parametrize(("key", "full_phone", "member", "shown", "hidden"), [
    ("store-a-e1", False, "m1", "138****0001", "13800000001"),
    ("g-e1-1", False, "m1", "13800000001", "138****0001"),
    ("hq", True, "m3", "13800000003", "138****0003"),
])
def test_admin_change_page_phone_by_role(world, client, key, full_phone, member, shown, hidden):
    client.force_login(world_user(world, key, full_phone=full_phone))

    response = client.get(f"{ADMIN}{world.members[member].pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    assert shown in html
    assert hidden not in html
    assert "phone" not in response.context["adminform"].form.fields


def test_admin_change_page_of_another_guides_member_is_not_shown(world, client):
    client.force_login(world_user(world, "g-e1-2"))

    response = client.get(f"{ADMIN}{world.members['m1'].pk}/change/")

    assert response.status_code == 302
    assert response.url == "/admin/"


@pytest.mark.parametrize(("term", "expected"), [
    ("138 0000 0001", {"m1"}),  # a phone in any written form is matched exactly
    ("+86 13800000003", {"m3"}),
    ("00000001", set()),  # part of a number never matches: no LIKE on the phone column
    ("1380000000", set()),
    ("王", {"m1", "m2"}),
    ("m5", {"m5"}),
])
def test_admin_search_matches_phones_exactly(world, client, term, expected):
    rows = admin_rows(client, world_user(world, "hq"), {"q": term})

    assert set(rows) == expected


def test_admin_phone_search_stays_in_scope(world, client):
    rows = admin_rows(client, world_user(world, "store-a-e2"), {"q": "13800000001"})

    assert rows == {}


@pytest.mark.parametrize(("params", "expected"), [
    ({"brand": "brand-b"}, {"m3", "m4"}),
    ({"join_channel": "store_card"}, {"m1", "m2", "m3", "m4", "m5", "m6"}),
    ({"gender": "M"}, set()),
])
def test_admin_filters(world, client, params, expected):
    user = world_user(world, "hq")
    if "brand" in params:
        params = {"brand": str({"brand-b": world.brand_b}[params["brand"]].pk)}

    assert set(admin_rows(client, user, params)) == expected


def test_admin_brand_filter_offers_only_scoped_brands(world, client):
    client.force_login(world_user(world, "brand-a"))

    response = client.get(ADMIN)

    brand_filter = next(spec for spec in response.context["cl"].filter_specs if spec.parameter_name == "brand")
    assert [choice["display"] for choice in brand_filter.choices(response.context["cl"])] == ["全部", "Brand A"]


def test_admin_change_form_saves_without_touching_the_phone(world, client):
    m1 = world.members["m1"]
    client.force_login(world_user(world, "hq"))

    response = client.post(f"{ADMIN}{m1.pk}/change/", {
        "group": world.grp.pk, "code": "m1", "name": "王小明改", "gender": "M", "birthday": "", "address": "",
        "clothing_size": "", "shoe_size": "", "preferred_colours": "[]", "preferred_styles": "[]",
        "preferred_materials": "[]", "created_at_0": "2025-01-02", "created_at_1": "10:00:00", "merged_into": "",
        "memberships-TOTAL_FORMS": "1", "memberships-INITIAL_FORMS": "1", "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000", "memberships-0-id": m1.memberships.get().pk, "memberships-0-member": m1.pk,
    })

    assert response.status_code == 302, response.context["adminform"].form.errors
    m1.refresh_from_db()
    assert (m1.name, m1.gender, m1.phone) == ("王小明改", "M", "+8613800000001")
