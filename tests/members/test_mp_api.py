"""The mini-program API (/api/v1/mp/): login, phone binding and merge, profile, memberships, points, coupons,
guide QR scan; member tokens and staff credentials never cross over."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.conf import settings as settings_module
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from guides.services import guide_token_current, guide_token_issue, guide_token_revoke
from mall.coupons import coupon_issue, coupons_for_member, coupons_move
from mall.models import Coupon, CouponTemplate, Order
from members import mp_services
from members.models import (
    BindingPolicy,
    BrandMembership,
    GuideBinding,
    JoinChannel,
    Member,
    MemberMerge,
    MemberToken,
    PointsEntry,
)
from members.services import points_post
from members.wechat import FakeWeChatClient, WeChatError
from retail_crm.errors import ApplicationError
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

MP = "/api/v1/mp/"
MEMBER_ENDPOINTS = [
    ("post", "auth/logout/"), ("get", "me/"), ("patch", "me/"), ("post", "me/phone/"),
    ("get", "me/memberships/"), ("get", "me/points/?brand=brand-a"), ("get", "me/coupons/"),
    ("post", "guide-scan/"),
]


@pytest.fixture(autouse=True)
def _fake_wechat(settings):
    settings.WECHAT_PROVIDER = "fake"
    settings.WECHAT_GROUP = "grp"


@pytest.fixture
def org():
    grp = RetailGroupFactory(code="grp", name="Group")
    brand = BrandFactory(group=grp, code="brand-a", name="Brand A")
    other_brand = BrandFactory(group=grp, code="brand-b", name="Brand B")
    store = StoreFactory(region=RegionFactory(brand=brand), code="a-e1", name="A East 1")
    store_b = StoreFactory(region=RegionFactory(brand=other_brand), code="b-n1", name="B North 1")
    guide = GuideFactory(store=store, code="g-li", name="Li Na")
    colleague = GuideFactory(store=store, code="g-wang", name="Wang Fang")
    guide_b = GuideFactory(store=store_b, code="g-zhao", name="Zhao Lei")
    return SimpleNamespace(grp=grp, brand=brand, other_brand=other_brand, store=store, store_b=store_b,
                           guide=guide, colleague=colleague, guide_b=guide_b)


@pytest.fixture
def mp():
    return APIClient(HTTP_ACCEPT_LANGUAGE="en")


def call(client, method, path, token=None, data=None, **extra):
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = f"Member {token}"
    return getattr(client, method)(MP + path, data, format="json", **extra)


def login(client, code="alice"):
    response = call(client, "post", "auth/login/", data={"code": code})
    assert response.status_code == 200, response.content
    return response.json()


def member_by(code="alice") -> Member:
    return Member.objects.get(openid=FakeWeChatClient().code_to_session(code).openid)


# ---------------------------------------------------------------------------- login / logout

def test_first_login_creates_the_member_and_a_session(mp, org):
    body = login(mp, "alice")

    member = Member.objects.get()
    session = FakeWeChatClient().code_to_session("alice")
    assert body == {"token": body["token"], "member_code": member.code, "is_new": True, "has_phone": False}
    assert re.fullmatch(r"M\d{6}[0-9A-F]{8}", member.code)
    assert (member.group, member.openid, member.unionid, member.phone) == (org.grp, session.openid,
                                                                          session.unionid, "")
    token = MemberToken.objects.get()
    assert (token.member, token.openid, token.revoked_at) == (member, session.openid, None)
    assert token.key_hash != body["token"]  # stored hashed
    assert call(mp, "get", "me/", body["token"]).json()["code"] == member.code


def test_logging_in_again_finds_the_same_member_with_a_new_session(mp, org):
    first = login(mp, "alice")
    second = login(mp, "alice")

    assert (second["member_code"], second["is_new"]) == (first["member_code"], False)
    assert second["token"] != first["token"]
    assert (Member.objects.count(), MemberToken.objects.count()) == (1, 2)


def test_login_finds_a_member_known_by_unionid_and_adds_the_openid(mp, org):
    session = FakeWeChatClient().code_to_session("carol")
    known = MemberFactory(group=org.grp, unionid=session.unionid, phone="+8613900000001")

    body = login(mp, "carol")

    known.refresh_from_db()
    assert (body["member_code"], body["is_new"], body["has_phone"]) == (known.code, False, True)
    assert known.openid == session.openid
    assert Member.objects.count() == 1


def test_a_refused_code_is_a_field_error_and_creates_nothing(mp, org):
    response = call(mp, "post", "auth/login/", data={"code": "bad-code"})

    assert response.status_code == 400
    assert response.json() == {"error": {
        "code": "wechat_code_invalid", "message": "WeChat did not accept this code; ask WeChat for a new one.",
        "fields": {"code": ["Refused by WeChat: invalid code"]}}}
    assert (Member.objects.count(), MemberToken.objects.count()) == (0, 0)


@pytest.mark.parametrize(("payload", "fields"), [
    ({}, {"code": ["This field is required."]}),
    ({"code": ""}, {"code": ["This field may not be blank."]}),
    ({"code": "x" * 129}, {"code": ["Ensure this field has no more than 128 characters."]}),
])
def test_login_input_errors(mp, org, payload, fields):
    response = call(mp, "post", "auth/login/", data=payload)

    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid", "message": "Invalid input.", "fields": fields}}


def test_wechat_being_down_is_a_503_not_a_500(mp, org, monkeypatch):
    class DownClient(FakeWeChatClient):
        def code_to_session(self, code):
            raise WeChatError("WeChat jscode2session is unreachable")
    monkeypatch.setattr(mp_services, "get_wechat_client", DownClient)

    response = call(mp, "post", "auth/login/", data={"code": "alice"})

    assert response.status_code == 503
    assert response.json() == {"error": {"code": "wechat_unavailable",
                                         "message": "WeChat could not be reached; please try again."}}


def test_login_ignores_stale_credentials_it_is_sent(mp, org):
    response = call(mp, "post", "auth/login/", "not-a-token", data={"code": "alice"})
    assert response.status_code == 200


def test_logout_revokes_only_this_session(mp, org):
    phone_token = login(mp, "alice")["token"]
    tablet_token = login(mp, "alice")["token"]

    response = call(mp, "post", "auth/logout/", phone_token)

    assert (response.status_code, response.content) == (204, b"")
    assert call(mp, "get", "me/", phone_token).status_code == 401
    assert call(mp, "get", "me/", tablet_token).status_code == 200
    assert MemberToken.objects.filter(revoked_at__isnull=False).count() == 1


# ---------------------------------------------------------------------------- authentication

@pytest.mark.parametrize(("method", "path"), MEMBER_ENDPOINTS)
def test_member_endpoints_need_a_member_token(mp, org, method, path):
    response = call(mp, method, path)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Member"
    assert response.json() == {"error": {"code": "not_authenticated",
                                         "message": "Authentication credentials were not provided."}}


@pytest.mark.parametrize(("method", "path"), MEMBER_ENDPOINTS)
def test_unknown_expired_and_revoked_tokens_are_refused(mp, org, method, path):
    expired = login(mp, "alice")["token"]
    MemberToken.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    revoked = login(mp, "bob")["token"]
    call(mp, "post", "auth/logout/", revoked)

    for token in ("made-up-token", expired, revoked):
        response = call(mp, method, path, token)
        assert response.status_code == 401, token
        assert response.json() == {"error": {"code": "not_authenticated",
                                             "message": "Member token is invalid or expired; log in again."}}


def test_a_malformed_member_header_is_refused(mp, org):
    response = mp.get(MP + "me/", HTTP_AUTHORIZATION="Member two words")
    assert (response.status_code, response.json()["error"]["message"]) == (401, "Invalid member token header.")


@pytest.mark.parametrize(("method", "path"), MEMBER_ENDPOINTS)
def test_staff_sessions_and_staff_tokens_cannot_call_member_endpoints(mp, org, method, path):
    user = staff_user("hq", group=org.grp)
    staff_token = Token.objects.create(user=user)
    session_client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    session_client.force_login(user)

    assert call(session_client, method, path).status_code == 401
    assert call(mp, method, path, HTTP_AUTHORIZATION=f"Token {staff_token.key}").status_code == 401


def test_a_member_token_cannot_call_staff_endpoints(mp, org):
    token = login(mp, "alice")["token"]

    response = mp.get("/api/v1/org/brands/", HTTP_AUTHORIZATION=f"Member {token}")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert mp.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Member {token}").status_code == 401


# ---------------------------------------------------------------------------- profile

def test_the_member_reads_their_own_profile_with_the_whole_phone(mp, org):
    token = login(mp, "alice")["token"]
    Member.objects.update(name="王丽", gender="F", birthday=dt.date(1990, 5, 17), phone="+8613812345678",
                          address="上海市静安区南京西路 1 号", clothing_size="M", shoe_size="37",
                          preferred_colours=["black", "camel"], preferred_styles=["minimal"],
                          preferred_materials=["wool"])

    response = call(mp, "get", "me/", token)

    assert response.status_code == 200
    assert response.json() == {
        "code": member_by("alice").code, "name": "王丽", "gender": "F", "birthday": "1990-05-17",
        "phone": "13812345678", "address": "上海市静安区南京西路 1 号", "clothing_size": "M", "shoe_size": "37",
        "preferred_colours": ["black", "camel"], "preferred_styles": ["minimal"], "preferred_materials": ["wool"],
    }


def test_the_member_updates_their_profile(mp, org):
    token = login(mp, "alice")["token"]

    response = call(mp, "patch", "me/", token, data={
        "name": "王丽", "gender": "F", "birthday": "1990-05-17", "clothing_size": "L", "shoe_size": "38",
        "preferred_colours": ["red", "black", "red"], "preferred_materials": [],
    })

    assert response.status_code == 200
    member = member_by("alice")
    assert response.json() == {
        "code": member.code, "name": "王丽", "gender": "F", "birthday": "1990-05-17", "phone": "",
        "address": "", "clothing_size": "L", "shoe_size": "38", "preferred_colours": ["red", "black"],
        "preferred_styles": [], "preferred_materials": [],
    }
    assert (member.name, member.gender, member.birthday, member.preferred_colours) == (
        "王丽", "F", dt.date(1990, 5, 17), ["red", "black"])


def test_a_partial_update_leaves_the_other_fields_alone(mp, org):
    token = login(mp, "alice")["token"]
    Member.objects.update(name="王丽", shoe_size="37")

    call(mp, "patch", "me/", token, data={"shoe_size": "38"})

    member = member_by("alice")
    assert (member.name, member.shoe_size) == ("王丽", "38")


@pytest.mark.parametrize(("payload", "fields"), [
    ({"gender": "X"}, {"gender": ['"X" is not a valid choice.']}),
    ({"birthday": "2999-01-01"}, {"birthday": ["Birthday cannot be in the future."]}),
    ({"birthday": "1899-12-31"}, {"birthday": ["Birthday must be after 1900-01-01."]}),
    ({"birthday": "17/05/1990"}, {"birthday": ["Date has wrong format. Use one of these formats instead: "
                                               "YYYY-MM-DD."]}),
    ({"name": "n" * 51}, {"name": ["Ensure this field has no more than 50 characters."]}),
    ({"address": "a" * 201}, {"address": ["Ensure this field has no more than 200 characters."]}),
    ({"clothing_size": "EXTRA-LARGE"}, {"clothing_size": ["Ensure this field has no more than 10 characters."]}),
    ({"shoe_size": "s" * 11}, {"shoe_size": ["Ensure this field has no more than 10 characters."]}),
    ({"preferred_colours": [f"c{i}" for i in range(11)]},
     {"preferred_colours": ["Ensure this field has no more than 10 elements."]}),
    ({"preferred_styles": "minimal"}, {"preferred_styles": ['Expected a list of items but got type "str".']}),
    ({"preferred_materials": ["wool", "w" * 21, ""]},
     {"preferred_materials": ["Item 2: Ensure this field has no more than 20 characters.",
                              "Item 3: This field may not be blank."]}),
    ({"preferred_colours": ["red", 7, None]}, {"preferred_colours": ["Item 3: This field may not be null."]}),
    ({"phone": "13900000000"}, {"phone": ["This field cannot be changed here."]}),
    ({"code": "M1", "openid": "x"}, {"code": ["This field cannot be changed here."],
                                      "openid": ["This field cannot be changed here."]}),
])
def test_profile_input_errors_name_the_field_and_change_nothing(mp, org, payload, fields):
    token = login(mp, "alice")["token"]
    before = Member.objects.values().get()

    response = call(mp, "patch", "me/", token, data=payload)

    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid", "message": "Invalid input.", "fields": fields}}
    assert Member.objects.values().get() == before


def test_a_profile_body_that_is_not_an_object_is_a_400(mp, org):
    token = login(mp, "alice")["token"]
    response = call(mp, "patch", "me/", token, data=["name"])
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}


# ---------------------------------------------------------------------------- phone binding

def test_a_phone_nobody_holds_is_set_on_the_member(mp, org):
    body = login(mp, "alice")

    response = call(mp, "post", "me/phone/", body["token"], data={"phone_code": "phone:13812345678"})

    assert response.status_code == 200
    assert response.json() == {"member_code": body["member_code"], "phone": "13812345678", "merged": False}
    assert member_by("alice").phone == "+8613812345678"
    assert login(mp, "alice")["has_phone"] is True


def test_binding_the_same_phone_again_changes_nothing(mp, org):
    token = login(mp, "alice")["token"]
    call(mp, "post", "me/phone/", token, data={"phone_code": "phone:13812345678"})

    response = call(mp, "post", "me/phone/", token, data={"phone_code": "phone:13812345678"})

    assert response.json()["merged"] is False
    assert (Member.objects.count(), MemberMerge.objects.count()) == (1, 0)


def test_a_phone_held_by_a_store_member_merges_the_wechat_member_into_it(mp, org):
    two_years_ago = timezone.now() - dt.timedelta(days=730)
    store_member = MemberFactory(group=org.grp, code="POS000123", phone="+8613800000001", name="李梅",
                                 created_at=two_years_ago)
    BrandMembershipFactory(member=store_member, brand=org.brand, store=org.store, joined_at=two_years_ago)
    pos_orders = [OrderFactory(brand=org.brand, member=store_member, store=org.store) for _ in range(2)]
    points_post(member=store_member, brand=org.brand, delta=200, reason="earn", order=pos_orders[0])
    # The same person, new in the mini-program: joins brand B through a guide and earns points there.
    token = login(mp, "alice")["token"]
    wechat_member = member_by("alice")
    call(mp, "post", "guide-scan/", token, data={"token": guide_token_current(guide=org.guide_b).token})
    points_post(member=wechat_member, brand=org.other_brand, delta=30, reason="adjust", note="welcome")

    response = call(mp, "post", "me/phone/", token, data={"phone_code": "phone:13800000001"})

    assert response.status_code == 200
    assert response.json() == {"member_code": "POS000123", "phone": "13800000001", "merged": True}
    store_member.refresh_from_db()
    wechat_member.refresh_from_db()
    assert wechat_member.merged_into == store_member
    assert (store_member.openid, store_member.unionid, store_member.created_at) == (
        FakeWeChatClient().code_to_session("alice").openid, FakeWeChatClient().code_to_session("alice").unionid,
        two_years_ago)
    # The store history stays with the survivor; what the WeChat member had moved over.
    assert sorted(Order.objects.filter(member=store_member).values_list("pk", flat=True)) == sorted(
        o.pk for o in pos_orders)
    assert sorted(PointsEntry.objects.filter(member=store_member).values_list("brand__code", "delta")) == [
        ("brand-a", 200), ("brand-b", 30)]
    assert PointsEntry.objects.filter(member=wechat_member).count() == 0
    assert sorted(BrandMembership.objects.filter(member=store_member).values_list("brand__code", "join_channel")
                  ) == [("brand-a", "store_card"), ("brand-b", "guide_qr")]
    assert list(GuideBinding.objects.filter(member=store_member).values_list("guide__code", flat=True)) == [
        "g-zhao"]
    audit = MemberMerge.objects.get()
    assert (audit.survivor, audit.absorbed, audit.reason) == (store_member, wechat_member,
                                                              "phone bound in mini-program")
    assert audit.moved == {"orders": 0, "points_entries": 1, "memberships": 1,
                           "bindings": 1} | NOTHING_ELSE_MOVED | {"tokens": 1}
    # The session keeps working and now reaches the survivor with everything.
    me = call(mp, "get", "me/", token).json()
    assert (me["code"], me["name"], me["phone"]) == ("POS000123", "李梅", "13800000001")
    memberships = call(mp, "get", "me/memberships/", token).json()
    assert [(m["brand"]["code"], m["points"]) for m in memberships] == [("brand-a", 200), ("brand-b", 30)]
    # Logging in again lands on the survivor, no new member.
    again = login(mp, "alice")
    assert (again["member_code"], again["is_new"], again["has_phone"]) == ("POS000123", False, True)
    assert Member.objects.filter(merged_into__isnull=True).count() == 1


def test_a_phone_whose_member_has_another_wechat_identity_is_refused(mp, org):
    other = MemberFactory(group=org.grp, phone="+8613800000002", openid="someone-elses-openid")
    token = login(mp, "alice")["token"]

    response = call(mp, "post", "me/phone/", token, data={"phone_code": "phone:13800000002"})

    assert response.status_code == 409
    assert response.json() == {"error": {
        "code": "identity_conflict",
        "message": "This phone number belongs to a membership linked to another WeChat account."}}
    me = member_by("alice")
    other.refresh_from_db()
    assert (me.phone, me.merged_into_id, other.openid, MemberMerge.objects.count()) == (
        "", None, "someone-elses-openid", 0)


def test_a_member_with_a_phone_cannot_swap_it_here(mp, org):
    token = login(mp, "alice")["token"]
    call(mp, "post", "me/phone/", token, data={"phone_code": "phone:13812345678"})

    response = call(mp, "post", "me/phone/", token, data={"phone_code": "phone:13912345678"})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "phone_already_bound"
    assert member_by("alice").phone == "+8613812345678"


@pytest.mark.parametrize(("payload", "code", "fields"), [
    ({}, "invalid", {"phone_code": ["This field is required."]}),
    ({"phone_code": ""}, "invalid", {"phone_code": ["This field may not be blank."]}),
    ({"phone_code": "bad-code"}, "wechat_code_invalid", {"phone_code": ["Refused by WeChat: invalid code"]}),
    ({"phone_code": "phone:123"}, "invalid_phone", {"phone_code": ["'+123' is not a valid international number"]}),
])
def test_phone_binding_input_errors(mp, org, payload, code, fields):
    token = login(mp, "alice")["token"]

    response = call(mp, "post", "me/phone/", token, data=payload)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["fields"] == fields
    assert member_by("alice").phone == ""


# ---------------------------------------------------------------------------- memberships and points

def test_memberships_show_points_and_the_bound_guide_without_a_phone(mp, org):
    token = login(mp, "alice")["token"]
    member = member_by("alice")
    joined_a = timezone.now() - dt.timedelta(days=100)
    BrandMembershipFactory(member=member, brand=org.brand, store=org.store, joined_at=joined_a)
    call(mp, "post", "guide-scan/", token, data={"token": guide_token_current(guide=org.guide_b).token})
    for delta, reason in ((100, "earn"), (-30, "spend"), (20, "adjust")):
        points_post(member=member, brand=org.brand, delta=delta, reason=reason)
    joined_b = BrandMembership.objects.get(member=member, brand=org.other_brand).joined_at

    response = call(mp, "get", "me/memberships/", token)

    assert response.status_code == 200
    assert response.json() == [
        {"brand": {"code": "brand-a", "name": "Brand A"}, "joined_at": joined_a.astimezone().isoformat(),
         "join_channel": "store_card", "tier": "standard", "points": 90, "guide": None},
        {"brand": {"code": "brand-b", "name": "Brand B"}, "joined_at": joined_b.astimezone().isoformat(),
         "join_channel": "guide_qr", "tier": "standard", "points": 0,
         "guide": {"code": "g-zhao", "name": "Zhao Lei", "store": "B North 1"}},
    ]


def test_memberships_cost_the_same_queries_for_one_brand_or_many(mp, org):
    token = login(mp, "alice")["token"]
    member = member_by("alice")
    BrandMembershipFactory(member=member, brand=org.brand)
    GuideBindingFactory(member=member, guide=org.guide)
    with CaptureQueriesContext(connection) as one_brand:
        assert len(call(mp, "get", "me/memberships/", token).json()) == 1
    for _ in range(4):
        extra = BrandFactory(group=org.grp)
        BrandMembershipFactory(member=member, brand=extra)
        GuideBindingFactory(member=member, guide=GuideFactory(store=StoreFactory(region=RegionFactory(brand=extra))))
        points_post(member=member, brand=extra, delta=5, reason="adjust")
    with CaptureQueriesContext(connection) as five_brands:
        assert len(call(mp, "get", "me/memberships/", token).json()) == 5

    # Token look-up, memberships, one points aggregate, open bindings.
    assert len(one_brand.captured_queries) == len(five_brands.captured_queries) == 4


def test_the_points_ledger_is_newest_first_with_running_balances(mp, org):
    token = login(mp, "alice")["token"]
    member = member_by("alice")
    entries = [points_post(member=member, brand=org.brand, delta=d, reason=r, note=n)
               for d, r, n in ((100, "earn", ""), (-30, "spend", "order O1"), (20, "adjust", "birthday"))]
    points_post(member=member, brand=org.other_brand, delta=999, reason="adjust")
    points_post(member=MemberFactory(group=org.grp), brand=org.brand, delta=7, reason="adjust")

    response = call(mp, "get", "me/points/?brand=brand-a", token)

    assert response.status_code == 200

    def row(entry, balance):
        return {"id": entry.pk, "created_at": entry.created_at.astimezone().isoformat(), "delta": entry.delta,
                "reason": entry.reason, "note": entry.note, "balance_after": balance}
    assert response.json() == {"count": 3, "next": None, "previous": None, "balance": 90,
                               "results": [row(entries[2], 90), row(entries[1], 70), row(entries[0], 100)]}


def test_the_points_ledger_pages_keep_true_balances(mp, org):
    token = login(mp, "alice")["token"]
    member = member_by("alice")
    for delta in (100, -30, 20):
        points_post(member=member, brand=org.brand, delta=delta, reason="adjust")

    first = call(mp, "get", "me/points/?brand=brand-a&page_size=2", token).json()
    second = call(mp, "get", "me/points/?brand=brand-a&page_size=2&page=2", token).json()

    assert ([r["balance_after"] for r in first["results"]], first["balance"]) == ([90, 70], 90)
    assert ([r["balance_after"] for r in second["results"]], second["balance"]) == ([100], 90)
    assert first["next"] == "http://testserver/api/v1/mp/me/points/?brand=brand-a&page=2&page_size=2"


def test_a_brand_without_points_has_an_empty_ledger(mp, org):
    token = login(mp, "alice")["token"]
    assert call(mp, "get", "me/points/?brand=brand-b", token).json() == {
        "count": 0, "next": None, "previous": None, "balance": 0, "results": []}


def test_points_need_a_known_brand_of_the_members_group(mp, org):
    token = login(mp, "alice")["token"]
    BrandFactory(group=RetailGroupFactory(code="other-grp"), code="foreign")

    missing = call(mp, "get", "me/points/", token)
    unknown = call(mp, "get", "me/points/?brand=nope", token)
    foreign = call(mp, "get", "me/points/?brand=foreign", token)
    bad_page = call(mp, "get", "me/points/?brand=brand-a&page=9", token)

    assert (missing.status_code, missing.json()) == (400, {"error": {
        "code": "invalid", "message": "Invalid input.", "fields": {"brand": ["This field is required."]}}})
    assert (unknown.status_code, unknown.json()) == (404, {"error": {
        "code": "not_found", "message": "No brand 'nope'.", "fields": {"brand": ["Unknown brand."]}}})
    assert (foreign.status_code, foreign.json()["error"]["message"]) == (404, "No brand 'foreign'.")
    assert (bad_page.status_code, bad_page.json()["error"]["code"]) == (404, "not_found")


# ---------------------------------------------------------------------------- coupons

@pytest.fixture
def coupon_templates(org):
    window_start = timezone.now() - dt.timedelta(days=1)
    return SimpleNamespace(
        spend_200_save_30=CouponTemplate.objects.create(
            brand=org.brand, name="满200减30", kind="threshold", threshold_amount=Decimal("200.00"),
            discount_amount=Decimal("30.00"), valid_days=30),
        fifteen_off=CouponTemplate.objects.create(
            brand=org.other_brand, name="会员85折", kind="discount", discount_rate=Decimal("0.850"),
            valid_from=window_start, valid_to=window_start + dt.timedelta(days=10)),
    )


def test_my_coupons_with_effective_status(mp, org, coupon_templates):
    token = login(mp, "alice")["token"]
    member = member_by("alice")
    now = timezone.now()
    threshold = coupon_issue(template=coupon_templates.spend_200_save_30, member=member,
                             at=now - dt.timedelta(days=2))
    discount = coupon_issue(template=coupon_templates.fifteen_off, member=member)
    lapsed = coupon_issue(template=coupon_templates.spend_200_save_30, member=member,
                          at=now - dt.timedelta(days=40))
    used = coupon_issue(template=coupon_templates.spend_200_save_30, member=member,
                        at=now - dt.timedelta(days=3))
    order = OrderFactory(brand=org.brand, member=member)
    Coupon.objects.filter(pk=used.pk).update(status="used", used_order=order, used_at=now)
    coupon_issue(template=coupon_templates.spend_200_save_30, member=MemberFactory(group=org.grp))

    available = call(mp, "get", "me/coupons/?status=available", token)
    everything = call(mp, "get", "me/coupons/", token)
    expired = call(mp, "get", "me/coupons/?status=expired", token)

    assert available.status_code == 200
    assert available.json() == {"count": 2, "next": None, "previous": None, "results": [
        {"code": discount.code, "name": "会员85折", "brand": {"code": "brand-b", "name": "Brand B"},
         "kind": "discount", "threshold_amount": "0.00", "discount_amount": None, "discount_rate": "0.850",
         "valid_from": discount.valid_from.astimezone().isoformat(),
         "valid_to": discount.valid_to.astimezone().isoformat(), "status": "available", "used_at": None},
        {"code": threshold.code, "name": "满200减30", "brand": {"code": "brand-a", "name": "Brand A"},
         "kind": "threshold", "threshold_amount": "200.00", "discount_amount": "30.00", "discount_rate": None,
         "valid_from": (now - dt.timedelta(days=2)).astimezone().isoformat(),
         "valid_to": (now + dt.timedelta(days=28)).astimezone().isoformat(), "status": "available",
         "used_at": None},
    ]}
    assert [(c["code"], c["status"]) for c in everything.json()["results"]] == [
        (discount.code, "available"), (threshold.code, "available"), (used.code, "used"),
        (lapsed.code, "expired")]
    assert [c["code"] for c in expired.json()["results"]] == [lapsed.code]


def test_an_unknown_coupon_status_is_a_400(mp, org):
    token = login(mp, "alice")["token"]
    response = call(mp, "get", "me/coupons/?status=spent", token)
    assert (response.status_code, response.json()["error"]["fields"]) == (
        400, {"status": ['"spent" is not a valid choice.']})


def test_coupon_issue_refuses_inactive_ended_and_foreign_templates(org, coupon_templates):
    member = MemberFactory(group=org.grp)
    coupon_templates.spend_200_save_30.is_active = False
    ended = coupon_templates.fifteen_off
    foreigner = MemberFactory(group=RetailGroupFactory(code="other-grp"))

    with pytest.raises(ApplicationError) as inactive:
        coupon_issue(template=coupon_templates.spend_200_save_30, member=member)
    with pytest.raises(ApplicationError) as over:
        coupon_issue(template=ended, member=member, at=ended.valid_to)
    with pytest.raises(ApplicationError) as foreign:
        coupon_issue(template=ended, member=foreigner)

    assert [(e.value.code, e.value.status) for e in (inactive, over, foreign)] == [
        ("coupon_template_inactive", 409), ("coupon_template_expired", 409), ("not_found", 404)]
    assert Coupon.objects.count() == 0


def test_a_coupon_is_locked_by_one_checkout_only_and_the_row_stays_consistent(org, coupon_templates):
    member = MemberFactory(group=org.grp)
    coupon = coupon_issue(template=coupon_templates.spend_200_save_30, member=member)
    first, second = (OrderFactory(brand=org.brand, member=member) for _ in range(2))
    now = timezone.now()

    def lock(order):
        # What checkout does: a conditional update, so only one order can take an available coupon.
        return Coupon.objects.filter(pk=coupon.pk, status="available").update(status="locked", used_order=order,
                                                                             locked_at=now)

    assert (lock(first), lock(second)) == (1, 0)
    coupon.refresh_from_db()
    assert (coupon.status, coupon.used_order) == ("locked", first)
    assert list(coupons_for_member(member=member, status="available")) == []


@pytest.mark.parametrize("changes", [
    {"status": "used"},  # no order, no time
    {"status": "used", "used_at": "now"},  # no order
    {"status": "locked", "used_order": "order"},  # no lock time
    {"status": "available", "used_order": "order"},  # an order on a free coupon
    {"status": "available", "used_at": "now"},
])
def test_coupon_checks_refuse_inconsistent_rows(org, coupon_templates, changes):
    member = MemberFactory(group=org.grp)
    coupon = coupon_issue(template=coupon_templates.spend_200_save_30, member=member)
    values = {"now": timezone.now(), "order": OrderFactory(brand=org.brand, member=member)}
    resolved = {k: values.get(v, v) for k, v in changes.items()}

    with pytest.raises(IntegrityError), transaction.atomic():
        Coupon.objects.filter(pk=coupon.pk).update(**resolved)


@pytest.mark.parametrize("fields", [
    {"kind": "threshold", "discount_amount": None, "valid_days": 7},
    {"kind": "threshold", "discount_amount": Decimal("10"), "discount_rate": Decimal("0.9"), "valid_days": 7},
    {"kind": "discount", "discount_rate": Decimal("1.000"), "valid_days": 7},
    {"kind": "discount", "discount_rate": Decimal("0.8"), "valid_days": 7, "valid_from": "now", "valid_to": "later"},
    {"kind": "discount", "discount_rate": Decimal("0.8")},  # no validity at all
    {"kind": "discount", "discount_rate": Decimal("0.8"), "valid_from": "later", "valid_to": "now"},
    {"kind": "threshold", "discount_amount": Decimal("10"), "threshold_amount": Decimal("-1"), "valid_days": 7},
])
def test_coupon_template_checks(org, fields):
    now = timezone.now()
    moments = {"now": now, "later": now + dt.timedelta(days=1)}
    with pytest.raises(IntegrityError), transaction.atomic():
        CouponTemplate.objects.create(brand=org.brand, name="x", **{k: moments.get(v, v) if isinstance(v, str)
                                                                    else v for k, v in fields.items()})


def test_coupons_follow_a_merge_when_moved(org, coupon_templates):
    survivor, absorbed = MemberFactory(group=org.grp), MemberFactory(group=org.grp)
    coupon = coupon_issue(template=coupon_templates.spend_200_save_30, member=absorbed)

    assert coupons_move(survivor=survivor, absorbed=absorbed) == 1
    assert list(coupons_for_member(member=survivor)) == [coupon]


# ---------------------------------------------------------------------------- guide QR scan

def scan(mp, token, guide):
    return call(mp, "post", "guide-scan/", token, data={"token": guide_token_current(guide=guide).token})


def test_scanning_a_guide_joins_the_brand_and_binds_the_member(mp, org):
    token = login(mp, "alice")["token"]

    response = scan(mp, token, org.guide)

    assert response.status_code == 200
    assert response.json() == {"brand": {"code": "brand-a", "name": "Brand A"}, "joined": True,
                               "bound_guide": {"code": "g-li", "name": "Li Na", "store": "A East 1"},
                               "binding_rule": "new"}
    member = member_by("alice")
    membership = BrandMembership.objects.get(member=member)
    assert (membership.brand, membership.join_channel, membership.store) == (org.brand, "guide_qr", org.store)
    binding = GuideBinding.objects.get(member=member)
    assert (binding.guide, binding.store, binding.reason, binding.ended_at) == (org.guide, org.store, "qr_scan",
                                                                                None)


def test_scanning_the_same_guide_again_changes_nothing(mp, org):
    token = login(mp, "alice")["token"]
    scan(mp, token, org.guide)

    response = scan(mp, token, org.guide)

    assert (response.json()["joined"], response.json()["binding_rule"]) == (False, "same_guide")
    assert (BrandMembership.objects.count(), GuideBinding.objects.count()) == (1, 1)


def test_a_second_guides_code_does_not_move_a_protected_member(mp, org):
    token = login(mp, "alice")["token"]
    scan(mp, token, org.guide)

    response = scan(mp, token, org.colleague)

    assert response.status_code == 200
    assert response.json() == {"brand": {"code": "brand-a", "name": "Brand A"}, "joined": False,
                               "bound_guide": {"code": "g-li", "name": "Li Na", "store": "A East 1"},
                               "binding_rule": "protected"}
    assert list(GuideBinding.objects.values_list("guide__code", "ended_at")) == [("g-li", None)]


def test_without_protection_the_second_guide_takes_over(mp, org):
    BindingPolicy.objects.create(brand=org.brand, protect_first_binding=False)
    token = login(mp, "alice")["token"]
    scan(mp, token, org.guide)

    response = scan(mp, token, org.colleague)

    assert (response.json()["bound_guide"]["code"], response.json()["binding_rule"]) == ("g-wang", "unprotected")
    assert [(b.guide.code, b.ended_at is None) for b in GuideBinding.objects.order_by("pk")] == [
        ("g-li", False), ("g-wang", True)]


def test_an_existing_member_scanning_keeps_how_they_joined(mp, org):
    token = login(mp, "alice")["token"]
    BrandMembershipFactory(member=member_by("alice"), brand=org.brand, join_channel=JoinChannel.STORE_CARD)

    response = scan(mp, token, org.guide)

    assert (response.json()["joined"], response.json()["binding_rule"]) == (False, "new")
    assert BrandMembership.objects.get().join_channel == "store_card"


def test_a_guide_who_has_left_cannot_take_members(mp, org):
    token = login(mp, "alice")["token"]
    qr = guide_token_current(guide=org.guide).token
    org.guide.left_at = dt.date(2025, 6, 30)
    org.guide.save()

    response = call(mp, "post", "guide-scan/", token, data={"token": qr})

    assert response.status_code == 409
    assert response.json() == {"error": {
        "code": "guide_left", "message": "This guide no longer works here; ask the store for another guide's code."}}
    assert (BrandMembership.objects.count(), GuideBinding.objects.count()) == (0, 0)


@pytest.mark.parametrize(("token_of", "code", "fields"), [
    ("missing", "invalid", {"token": ["This field is required."]}),
    ("forged", "invalid_token", {"token": ["Not a valid guide token."]}),
    ("revoked", "revoked_token", {"token": ["This token was revoked."]}),
    ("other_group", "invalid_token", {"token": ["Not a guide's QR code."]}),
    ("office_staff", "invalid_token", {"token": ["Not a guide's QR code."]}),
])
def test_bad_guide_codes_are_refused_with_a_reason(mp, org, token_of, code, fields):
    token = login(mp, "alice")["token"]
    foreign_guide = GuideFactory(store=StoreFactory(region=RegionFactory(
        brand=BrandFactory(group=RetailGroupFactory(code="other-grp")))))
    revoked = guide_token_current(guide=org.colleague)
    guide_token_revoke(token=revoked)
    payload = {
        "missing": {}, "forged": {"token": "abc:def"}, "revoked": {"token": revoked.token},
        "other_group": {"token": guide_token_current(guide=foreign_guide).token},
        "office_staff": {"token": guide_token_issue(staff_user=UserFactory()).token},
    }[token_of]

    response = call(mp, "post", "guide-scan/", token, data=payload)

    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["fields"]) == (code, fields)
    assert (BrandMembership.objects.count(), GuideBinding.objects.count()) == (0, 0)


# ---------------------------------------------------------------------------- schema

def test_the_member_api_is_in_the_openapi_schema_with_the_member_token(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()

    mine = {"/api/v1/mp/auth/login/", "/api/v1/mp/auth/logout/", "/api/v1/mp/guide-scan/",
            "/api/v1/mp/me/", "/api/v1/mp/me/coupons/", "/api/v1/mp/me/memberships/",
            "/api/v1/mp/me/phone/", "/api/v1/mp/me/points/"}
    assert mine <= set(schema["paths"])  # other apps add their own mini-program routes
    assert schema["components"]["securitySchemes"]["memberToken"] == {
        "type": "apiKey", "in": "header", "name": "Authorization",
        "description": "`Member <token>`, the token returned by `POST /api/v1/mp/auth/login/`."}
    assert schema["paths"]["/api/v1/mp/me/"]["get"]["security"] == [{"memberToken": []}]
    assert schema["paths"]["/api/v1/mp/me/points/"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"]["$ref"] == "#/components/schemas/PaginatedMpPointsEntryList"
    assert "balance" in schema["components"]["schemas"]["PaginatedMpPointsEntryList"]["required"]


# ---------------------------------------------------------------------------- concurrency (PostgreSQL)

from tests.members.test_member_concurrency import run_at_once  # noqa: E402  (the one barrier-released thread runner)

# SQLite serialises writers on a file lock and proves nothing here.
pg_only = pytest.mark.skipif(settings_module.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                             reason="concurrency tests need PostgreSQL (set DATABASE_URL)")


@pg_only
@pytest.mark.django_db(transaction=True)
def test_the_same_person_logging_in_five_times_at_once_is_one_member(org):
    results = run_at_once([lambda: mp_services.mp_login(code="alice") for _ in range(5)])

    assert [kind for kind, _ in results] == ["ok"] * 5
    assert len({result.member.pk for _kind, result in results}) == 1
    assert sorted(result.is_new for _kind, result in results) == [False] * 4 + [True]
    assert (Member.objects.count(), MemberToken.objects.count()) == (1, 5)


@pg_only
@pytest.mark.django_db(transaction=True)
def test_two_members_binding_the_same_free_phone_at_once_one_gets_it(org):
    first = mp_services.mp_login(code="alice").member
    second = mp_services.mp_login(code="bob").member

    results = run_at_once([
        (lambda m=m: mp_services.mp_phone_bind(member=m, phone_code="phone:13812345678")) for m in (first, second)])

    assert sorted(kind for kind, _ in results) == ["error", "ok"]
    error = next(value for kind, value in results if kind == "error")
    assert (error.code, error.status) in {("conflict", 409), ("identity_conflict", 409)}
    assert Member.objects.filter(phone="+8613812345678").count() == 1
    assert MemberMerge.objects.count() == 0


@pg_only
@pytest.mark.django_db(transaction=True)
def test_scanning_two_guides_at_once_joins_once_and_binds_one(org):
    member = mp_services.mp_login(code="alice").member
    tokens = [guide_token_current(guide=g).token for g in (org.guide, org.colleague)]

    results = run_at_once([(lambda t=t: mp_services.mp_guide_scan(member=member, token=t)) for t in tokens])

    assert [kind for kind, _ in results] == ["ok", "ok"]
    assert sorted(r.rule for _, r in results) == ["new", "protected"]
    assert sorted(r.joined for _, r in results) == [False, True]
    assert BrandMembership.objects.filter(member=member).count() == 1
    assert GuideBinding.objects.filter(member=member).count() == 1
