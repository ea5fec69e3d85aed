"""Staff API for member tags: tag groups visible to the caller, assigning and removing hand tags, scope."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from members.models import MemberTag, TagSource
from members.tags import member_tag_assign, tag_group_get_or_create, tag_value_get_or_create
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    GuideBindingFactory,
    GuideFactory,
    MemberFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
    staff_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    """Brands A and B; in A two guides of one store, each with one bound member; in B one member.

    Tag groups: group-wide "vip" (multi-valued), A's "colour" (single-valued), B's "style".
    """
    grp = RetailGroupFactory()
    brand_a, brand_b = BrandFactory(group=grp, code="A"), BrandFactory(group=grp, code="B")
    store_a = StoreFactory(region=RegionFactory(brand=brand_a), brand=brand_a)
    StoreFactory(region=RegionFactory(brand=brand_b), brand=brand_b)
    guide_1, guide_2 = GuideFactory(store=store_a), GuideFactory(store=store_a)
    member_1, member_2, member_b = MemberFactory(group=grp), MemberFactory(group=grp), MemberFactory(group=grp)
    for member, brand in ((member_1, brand_a), (member_2, brand_a), (member_b, brand_b)):
        BrandMembershipFactory(member=member, brand=brand)
    GuideBindingFactory(member=member_1, guide=guide_1)
    GuideBindingFactory(member=member_2, guide=guide_2)
    vip = tag_group_get_or_create(group=grp, code="vip", name="VIP", multi_valued=True)
    colour = tag_group_get_or_create(group=grp, brand=brand_a, code="colour", name="Colour")
    style = tag_group_get_or_create(group=grp, brand=brand_b, code="style", name="Style")
    values = SimpleNamespace(
        gold=tag_value_get_or_create(tag_group=vip, code="gold", name="Gold", sort=1),
        silver=tag_value_get_or_create(tag_group=vip, code="silver", name="Silver", sort=2),
        red=tag_value_get_or_create(tag_group=colour, code="red", name="Red"),
        blue=tag_value_get_or_create(tag_group=colour, code="blue", name="Blue"),
        sporty=tag_value_get_or_create(tag_group=style, code="sporty", name="Sporty"),
    )
    return SimpleNamespace(grp=grp, brand_a=brand_a, brand_b=brand_b, store_a=store_a, guide_1=guide_1,
                           guide_2=guide_2, member_1=member_1, member_2=member_2, member_b=member_b, v=values)


def url(member, tag_value=None):
    base = f"/api/v1/members/{member.pk if hasattr(member, 'pk') else member}/tags/"
    return base if tag_value is None else f"{base}{tag_value.pk if hasattr(tag_value, 'pk') else tag_value}/"


def held(member):
    return sorted((row.tag_value.code, row.source, row.reason) for row in
                  MemberTag.objects.filter(member=member).select_related("tag_value"))


def test_tag_groups_listed_by_scope(api_client, org):
    api_client.force_authenticate(staff_user("brand_operator", brand=org.brand_a))
    body = api_client.get("/api/v1/members/tag-groups/").json()
    assert [(g["code"], g["brand"], g["multi_valued"], [v["code"] for v in g["values"]])
            for g in body["results"]] == [("vip", None, True, ["gold", "silver"]), ("colour", "A", False,
                                                                                   ["blue", "red"])]
    assert body["results"][0]["values"][0] == {"id": org.v.gold.pk, "code": "gold", "name": "Gold"}

    api_client.force_authenticate(staff_user("hq", group=org.grp))
    everything = api_client.get("/api/v1/members/tag-groups/").json()["results"]
    assert [g["code"] for g in everything] == ["vip", "colour", "style"]
    only_b = api_client.get("/api/v1/members/tag-groups/?brand=B").json()["results"]
    assert [g["code"] for g in only_b] == ["vip", "style"]

    api_client.force_authenticate(staff_user("guide", guide=org.guide_1))
    assert [g["code"] for g in api_client.get("/api/v1/members/tag-groups/").json()["results"]] == ["vip", "colour"]


def test_assign_and_remove_a_manual_tag(api_client, org):
    user = staff_user("store_manager", store=org.store_a)
    api_client.force_authenticate(user)

    response = api_client.post(url(org.member_1), {"tag_value": org.v.red.pk, "reason": "Loves red"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in ("member", "tag_value", "tag_value_code", "tag_value_name", "tag_group", "source",
                                 "reason")} == {
        "member": org.member_1.pk, "tag_value": org.v.red.pk, "tag_value_code": "red", "tag_value_name": "Red",
        "tag_group": "colour", "source": "manual", "reason": "Loves red"}
    assert MemberTag.objects.get(member=org.member_1).assigned_by == user
    # Single-valued: blue replaces red.
    assert api_client.post(url(org.member_1), {"tag_value": org.v.blue.pk, "reason": "Now blue"},
                           format="json").status_code == 201
    assert held(org.member_1) == [("blue", "manual", "Now blue")]

    response = api_client.delete(url(org.member_1, org.v.blue))

    assert response.status_code == 204
    assert held(org.member_1) == []
    assert api_client.delete(url(org.member_1, org.v.blue)).json()["error"]["code"] == "tag_not_held"


@pytest.mark.parametrize(("payload", "fields"), [
    ({}, ["reason", "tag_value"]),
    ({"tag_value": "abc", "reason": "x"}, ["tag_value"]),
    ({"tag_value": 0, "reason": "x"}, ["tag_value"]),
    ({"tag_value": 1, "reason": ""}, ["reason"]),
    ({"tag_value": 1, "reason": "x" * 201}, ["reason"]),
])
def test_assign_bad_input_is_400_with_fields(api_client, org, payload, fields):
    api_client.force_authenticate(staff_user("hq", group=org.grp))
    response = api_client.post(url(org.member_1), payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert sorted(response.json()["error"]["fields"]) == fields
    assert held(org.member_1) == []


def test_assign_a_brand_tag_the_member_has_not_joined_is_400(api_client, org):
    api_client.force_authenticate(staff_user("hq", group=org.grp))
    response = api_client.post(url(org.member_1), {"tag_value": org.v.sporty.pk, "reason": "x"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "tag_brand_not_joined", "message": "This tag belongs to a brand the member has not joined.",
        "fields": {"tag_value": ["This tag belongs to a brand the member has not joined."]}}


def test_missing_auth_is_401(api_client, org):
    assert api_client.get("/api/v1/members/tag-groups/").status_code == 401
    assert api_client.post(url(org.member_1), {"tag_value": org.v.red.pk, "reason": "x"},
                           format="json").status_code == 401
    assert api_client.delete(url(org.member_1, org.v.red)).status_code == 401
    assert held(org.member_1) == []


def test_guide_tags_own_member_but_not_another_guides(api_client, org):
    api_client.force_authenticate(staff_user("guide", guide=org.guide_1))

    own = api_client.post(url(org.member_1), {"tag_value": org.v.gold.pk, "reason": "Big spender"}, format="json")
    other = api_client.post(url(org.member_2), {"tag_value": org.v.gold.pk, "reason": "x"}, format="json")
    other_delete = api_client.delete(url(org.member_2, org.v.gold))

    assert own.status_code == 201
    assert (other.status_code, other.json()["error"]["code"]) == (404, "not_found")
    assert other_delete.status_code == 404
    assert held(org.member_1) == [("gold", "manual", "Big spender")]
    assert held(org.member_2) == []


def test_brand_a_staff_cannot_tag_brand_b_members_nor_use_brand_b_tags(api_client, org):
    member_tag_assign(member=org.member_b, tag_value=org.v.sporty, reason="from B")
    api_client.force_authenticate(staff_user("brand_operator", brand=org.brand_a))

    responses = [
        api_client.post(url(org.member_b), {"tag_value": org.v.gold.pk, "reason": "x"}, format="json"),
        api_client.delete(url(org.member_b, org.v.sporty)),
        # A's member, B's tag value: the tag is outside the caller's scope.
        api_client.post(url(org.member_1), {"tag_value": org.v.sporty.pk, "reason": "x"}, format="json"),
        api_client.post(url(999_999), {"tag_value": org.v.gold.pk, "reason": "x"}, format="json"),
        api_client.post(url(org.member_1), {"tag_value": 999_999, "reason": "x"}, format="json"),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404, 404, 404]
    assert held(org.member_b) == [("sporty", "manual", "from B")]
    assert held(org.member_1) == []


def test_computed_tags_cannot_be_removed_by_hand(api_client, org):
    MemberTag.objects.create(member=org.member_1, tag_value=org.v.red, source=TagSource.RULE,
                             assigned_at="2026-01-01T00:00:00Z", reason="rule")
    api_client.force_authenticate(staff_user("hq", group=org.grp))
    response = api_client.delete(url(org.member_1, org.v.red))
    assert (response.status_code, response.json()["error"]["code"]) == (409, "tag_computed")
    assert held(org.member_1) == [("red", "rule", "rule")]


def test_tag_endpoints_are_in_the_openapi_schema(api_client, org):
    api_client.force_authenticate(staff_user("hq", group=org.grp))
    schema = api_client.get("/api/schema/?format=json").json()
    assert {"/api/v1/members/tag-groups/", "/api/v1/members/{member_id}/tags/",
            "/api/v1/members/{member_id}/tags/{tag_value_id}/"} <= set(schema["paths"])


def test_ids_beyond_the_database_range_are_404_not_500(api_client, org):
    api_client.force_authenticate(staff_user("hq", group=org.grp))
    huge = 10**30
    responses = [
        api_client.post(url(huge), {"tag_value": org.v.gold.pk, "reason": "x"}, format="json"),
        api_client.post(url(org.member_1), {"tag_value": huge, "reason": "x"}, format="json"),
        api_client.delete(url(huge, huge)),
        api_client.delete(url(org.member_1, huge)),
    ]
    assert [r.status_code for r in responses] == [404, 404, 404, 404]
