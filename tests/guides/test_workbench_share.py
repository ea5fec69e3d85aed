"""Sharing from the workbench (guides.sharing, /workbench/share…): share codes, their funnels, and the
mini-program accepting a share code wherever it accepts a guide token.

The hand-made funnel (all amounts CNY), guide 李娜 (G) of store WOM-E001:

    share S1: product DRESS            share S2: material "Spring looks" (no product)
    events with S1's code                                     PV  UV  cart
      m1: product_view ×3, add_to_cart ×1                      3   1   1
      m2: product_view ×1                                      1   1
      visitor v-1: product_view ×2                             2   1
      visitor v-2: product_view ×1, favourite ×1 (no view)     1   1
                                                    S1 total   7   4   1
    events with S2's code
      m1: material_view ×2; visitor v-3: material_view ×1      3   2   0
    orders with S1's code
      O1 m1 paid 150.00: DRESS 100.00 + SCARF 50.00                  → paid, associated 50.00
      O2 m2 paid 280.00, refunded 80.00: DRESS 200.00 + SCARF 80.00 (refunded 80.00) → paid 200.00, assoc. 0
      O3 m1 pending payment 120.00                                   → an order, not paid
      O4 m2 paid 60.00, refunded 60.00 (net 0: not a purchase)       → an order, not paid
      S1: orders 4, paid 2, sales 150.00 + 200.00 = 350.00, associated 50.00 + 0.00 = 50.00
    orders with S2's code
      O5 m3 paid 90.00: SCARF 90.00 → orders 1, paid 1, sales 90.00, associated 0 (no shared product)
    noise that must not count: an event and an order carrying G's plain token, an event of a colleague's share

    G's total over S1 + S2: shares 2, PV 10, UV 5 (m1 counted once), cart 1, orders 5, paid 3,
    sales 440.00, associated 50.00

    A viewer's repeated views of one share lie an hour apart (1, 2, 3 hours ago), each in a 30-minute window
    of its own, so each is a view; repeats inside one window count once (tests/members/test_share_dedup.py).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core import signing
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation
from django.utils.html import escape
from rest_framework.test import APIClient

from guides.models import Material, Share
from guides.services import guide_token_current, guide_token_resolve, guide_token_revoke
from guides.sharing import (
    ShareFunnel,
    Sharer,
    share_create,
    share_funnel_total,
    share_funnels,
    share_funnels_by_guide,
    share_link,
    share_text,
)
from livestream.models import LiveSession
from mall.checkout import LineRequest, cart_set, order_create
from mall.models import CartItem, Channel, OrderLine, OrderStatus, Product, Sku, Stock
from members.auth import member_token_issue
from members.models import BehaviourEvent, BrandMembership, EventKind, GuideBinding
from retail_crm.errors import ApplicationError
from retail_crm.models import Brand
from tests.factories import (
    BrandFactory,
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
JOIN = "https://mp.test/join"


@pytest.fixture(autouse=True)
def _join_url(settings):
    settings.MINIPROGRAM_JOIN_URL = JOIN


class World:
    pass


@pytest.fixture
def w():
    w = World()
    w.group = RetailGroupFactory(code="grp")
    w.brand = BrandFactory(group=w.group, code="WOM", name="雅致女装")
    w.other_brand = BrandFactory(group=w.group, code="MEN", name="型男")
    w.store = StoreFactory(region=RegionFactory(brand=w.brand, code="EAST"), code="WOM-E001", name="上海1号店")
    w.guide = GuideFactory(store=w.store, code="G-LI", name="李娜")
    w.colleague = GuideFactory(store=w.store, code="G-WANG", name="王芳")
    w.guide_user = staff_user("guide", guide=w.guide)
    w.colleague_user = staff_user("guide", guide=w.colleague)
    w.manager_user = staff_user("store_manager", store=w.store)
    w.dress = Product.objects.create(brand=w.brand, code="DRESS", name="真丝连衣裙", category="连衣裙")
    w.scarf = Product.objects.create(brand=w.brand, code="SCARF", name="丝巾", category="配饰")
    w.shirt = Product.objects.create(brand=w.other_brand, code="SHIRT", name="衬衫", category="衬衫")
    w.sku_dress = Sku.objects.create(product=w.dress, brand=w.brand, code="DRESS-M", list_price=D("599.00"),
                                     member_price=D("509.00"), cost_price=D("200.00"))
    w.sku_scarf = Sku.objects.create(product=w.scarf, brand=w.brand, code="SCARF-1", list_price=D("99.00"),
                                     member_price=D("89.00"), cost_price=D("30.00"))
    for sku in (w.sku_dress, w.sku_scarf):
        Stock.objects.create(sku=sku, quantity=10)
    w.material = Material.objects.create(group=w.group, brand=w.brand, kind="copy", title="Spring looks",
                                         body="春季新品上市")
    w.m1, w.m2, w.m3 = (MemberFactory(group=w.group) for _ in range(3))
    return w


def sharer(w, guide=None) -> Sharer:
    return Sharer(group_id=w.group.pk, guide=guide or w.guide)


def event(code: str, kind: str, *, member=None, visitor: str = "", brand=None, hours_ago: int = 1) -> BehaviourEvent:
    return BehaviourEvent.objects.create(brand=brand or Brand.objects.get(code="WOM"),
                                         member=member, visitor_id=visitor, kind=kind,
                                         occurred_at=timezone.now() - dt.timedelta(hours=hours_ago),
                                         share_token=code)


def order(w, code: str, member, status: str, lines: list[tuple], *, paid: str = "0.00", refunded: str = "0.00"):
    """An order with lines ``(sku, amount, refunded)`` carrying ``code``."""
    total = sum(D(amount) for _sku, amount, _r in lines)
    placed = OrderFactory(brand=w.brand, member=member, channel=Channel.MINI_PROGRAM, status=status,
                          share_token=code, total_amount=total, paid_amount=D(paid), refunded_amount=D(refunded),
                          paid_at=None if status == OrderStatus.PENDING_PAYMENT else timezone.now())
    for sku, amount, line_refunded in lines:
        OrderLine.objects.create(order=placed, brand=w.brand, sku=sku, quantity=1, list_price=D(amount),
                                 unit_price=D(amount), amount=D(amount), refunded_amount=D(line_refunded))
    return placed


@pytest.fixture
def funnel_world(w):
    w.s1 = share_create(sharer=sharer(w), target="product", product=w.dress)
    w.s2 = share_create(sharer=sharer(w), target="material", material=w.material)
    w.sc = share_create(sharer=sharer(w, w.colleague), target="product", product=w.dress)
    s1, s2 = w.s1.code, w.s2.code
    for hours_ago in (1, 2, 3):
        event(s1, EventKind.PRODUCT_VIEW, member=w.m1, hours_ago=hours_ago)
    event(s1, EventKind.ADD_TO_CART, member=w.m1)
    event(s1, EventKind.PRODUCT_VIEW, member=w.m2)
    event(s1, EventKind.PRODUCT_VIEW, visitor="v-1")
    event(s1, EventKind.PRODUCT_VIEW, visitor="v-1", hours_ago=2)
    event(s1, EventKind.PRODUCT_VIEW, visitor="v-2")
    event(s1, EventKind.FAVOURITE, visitor="v-2")
    event(s2, EventKind.MATERIAL_VIEW, member=w.m1)
    event(s2, EventKind.MATERIAL_VIEW, member=w.m1, hours_ago=2)
    event(s2, EventKind.MATERIAL_VIEW, visitor="v-3")
    order(w, s1, w.m1, OrderStatus.PAID, [(w.sku_dress, "100.00", "0"), (w.sku_scarf, "50.00", "0")],
          paid="150.00")
    order(w, s1, w.m2, OrderStatus.COMPLETED, [(w.sku_dress, "200.00", "0"), (w.sku_scarf, "80.00", "80.00")],
          paid="280.00", refunded="80.00")
    order(w, s1, w.m1, OrderStatus.PENDING_PAYMENT, [(w.sku_dress, "120.00", "0")])
    order(w, s1, w.m2, OrderStatus.PAID, [(w.sku_scarf, "60.00", "60.00")], paid="60.00", refunded="60.00")
    order(w, s2, w.m3, OrderStatus.SHIPPED, [(w.sku_scarf, "90.00", "0")], paid="90.00")
    # Noise: the plain token, and the colleague's share.
    plain = guide_token_current(guide=w.guide).token
    event(plain, EventKind.PRODUCT_VIEW, member=w.m3)
    order(w, plain, w.m3, OrderStatus.PAID, [(w.sku_dress, "500.00", "0")], paid="500.00")
    event(w.sc.code, EventKind.PRODUCT_VIEW, member=w.m1)
    return w


# ---------------------------------------------------------------------------- funnels

def test_the_funnel_of_each_share_counts_views_visitors_cart_orders_paid_and_associated_sales(funnel_world):
    w = funnel_world

    funnels = share_funnels([w.s1, w.s2])

    assert funnels == {
        w.s1.pk: ShareFunnel(shares=1, views=7, visitors=4, add_to_cart=1, orders=4, paid_orders=2,
                             paid_amount=D("350.00"), associated_amount=D("50.00")),
        w.s2.pk: ShareFunnel(shares=1, views=3, visitors=2, add_to_cart=0, orders=1, paid_orders=1,
                             paid_amount=D("90.00"), associated_amount=D("0.00")),
    }
    assert funnels[w.s1.pk].conversion == D("0.5000")  # 2 paid orders / 4 visitors


def test_a_guides_total_counts_a_visitor_of_two_shares_once(funnel_world):
    w = funnel_world

    total = share_funnel_total(Share.objects.filter(guide=w.guide))

    assert total == ShareFunnel(shares=2, views=10, visitors=5, add_to_cart=1, orders=5, paid_orders=3,
                                paid_amount=D("440.00"), associated_amount=D("50.00"))


def test_funnels_per_guide_over_a_store(funnel_world):
    w = funnel_world

    by_guide = share_funnels_by_guide(Share.objects.filter(guide__store=w.store))

    assert by_guide == {
        w.guide.pk: ShareFunnel(shares=2, views=10, visitors=5, add_to_cart=1, orders=5, paid_orders=3,
                                paid_amount=D("440.00"), associated_amount=D("50.00")),
        w.colleague.pk: ShareFunnel(shares=1, views=1, visitors=1),
    }


def test_a_share_nobody_opened_has_an_empty_funnel(w):
    share = share_create(sharer=sharer(w), target="mall")

    assert share_funnels([share]) == {share.pk: ShareFunnel(shares=1)}
    assert share_funnels([]) == {}
    assert share_funnel_total(Share.objects.none()) == ShareFunnel()


def test_funnels_cost_the_same_five_queries_for_one_share_or_many(funnel_world):
    w = funnel_world
    many = [w.s1, w.s2, w.sc] + [share_create(sharer=sharer(w), target="mall") for _ in range(5)]

    with CaptureQueriesContext(connection) as one:
        share_funnels([w.s1])
    with CaptureQueriesContext(connection) as eight:
        share_funnels(many)

    assert len(one) == len(eight) == 5


# ---------------------------------------------------------------------------- creating shares

def test_a_share_gets_its_own_signed_code_under_the_current_token(w):
    token = guide_token_current(guide=w.guide)

    share = share_create(sharer=sharer(w), target="product", product=w.dress)

    assert (share.guide, share.staff_user, share.guide_token, share.brand, share.group) == (
        w.guide, None, token, w.brand, w.group)
    assert share.code != token.token
    raw = signing.Signer(salt="guides.token").unsign(share.code)
    assert len(raw) == 12
    assert share_link(share) == f"{JOIN}?token={share.code.replace(':', '%3A')}&page=product&id={w.dress.pk}"
    with translation.override("en"):
        assert share_text(share) == f"真丝连衣裙 — have a look:\n{share_link(share)}"


def test_a_material_or_task_share_remembers_the_product_it_shows(w):
    w.material.product = w.scarf
    w.material.save()

    share = share_create(sharer=sharer(w), target="material", material=w.material)

    assert (share.material, share.product, share.brand) == (w.material, w.scarf, w.brand)
    assert share_text(share) == f"春季新品上市\n{share_link(share)}"


def test_a_cross_brand_product_can_be_shared_and_keeps_its_brand(w):
    share = share_create(sharer=sharer(w), target="product", product=w.shirt)

    assert share.brand == w.other_brand


@pytest.mark.parametrize(("target", "fields"), [
    ("poster", {"target": ["Not one of product, material, live, task, mall."]}),
    ("product", {"id": ["This field is required."]}),
])
def test_a_share_without_a_valid_target_is_refused(w, target, fields):
    with pytest.raises(ApplicationError) as refused:
        share_create(sharer=sharer(w), target=target)

    assert (refused.value.status, refused.value.fields) == (400, fields)
    assert Share.objects.count() == 0


def test_another_groups_product_cannot_be_shared(w):
    foreign = Product.objects.create(brand=BrandFactory(group=RetailGroupFactory(code="other")), code="X",
                                     name="X", category="x")

    with pytest.raises(ApplicationError) as refused:
        share_create(sharer=sharer(w), target="product", product=foreign)

    assert refused.value.fields == {"id": ["Not part of your group."]}


# ---------------------------------------------------------------------------- share codes in the mini-program

def member_api(member) -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.credentials(HTTP_AUTHORIZATION=f"Member {member_token_issue(member=member)}")
    return client


def test_a_share_code_resolves_to_the_sharer_and_its_token(w):
    share = share_create(sharer=sharer(w), target="product", product=w.dress)

    resolved = guide_token_resolve(share.code)

    assert (resolved.guide, resolved.token, resolved.share_code) == (w.guide, share.guide_token, share.code)
    assert guide_token_resolve(share.guide_token.token).share_code == ""


def test_events_with_a_share_code_are_accepted_and_credited_to_the_sharer(w):
    share = share_create(sharer=sharer(w), target="product", product=w.dress)
    when = (timezone.now() - dt.timedelta(minutes=5)).isoformat()
    body = {"events": [
        {"kind": "product_view", "occurred_at": when, "brand": "WOM", "object_type": "product",
         "object_id": "DRESS", "visitor_id": "v-9", "share_token": share.code},
        {"kind": "product_view", "occurred_at": when, "brand": "WOM", "visitor_id": "v-9",
         "share_token": share.code[:-3] + "abc"},
    ]}

    response = APIClient(HTTP_ACCEPT_LANGUAGE="en").post("/api/v1/mp/events/", body, format="json")

    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": [
        {"index": 1, "errors": {"share_token": ["Not a valid share token."]}}]}
    assert list(BehaviourEvent.objects.values_list("share_token", "guide_id")) == [(share.code, w.guide.pk)]
    assert share_funnels([share])[share.pk].views == 1


def test_a_cart_and_an_order_through_a_share_code_carry_it_and_credit_the_sharer(w):
    share = share_create(sharer=sharer(w), target="product", product=w.dress)
    client = member_api(w.m1)

    client.put("/api/v1/mp/cart/items/", {"sku_id": w.sku_dress.pk, "quantity": 1, "share_token": share.code},
               format="json")
    created = client.post("/api/v1/mp/orders/create/", {"from_cart_brand": "WOM"}, format="json")

    assert created.status_code == 201, created.content
    assert CartItem.objects.count() == 0
    placed = w.m1.orders.get()
    assert (placed.share_token, placed.guide, placed.store) == (share.code, w.guide, w.store)
    assert share_funnels([share])[share.pk].orders == 1


def test_a_share_made_under_a_revoked_token_still_credits_orders_but_binds_nobody(w):
    share = share_create(sharer=sharer(w), target="product", product=w.dress)
    guide_token_revoke(token=share.guide_token)
    BrandMembership.objects.create(member=w.m1, brand=w.brand, joined_at=timezone.now(), join_channel="store_card")

    placed = order_create(member=w.m1, lines=[LineRequest(w.sku_dress.pk, 1)], share_token=share.code)
    scan = member_api(w.m2).post("/api/v1/mp/guide-scan/", {"token": share.code}, format="json")

    assert placed.guide == w.guide
    assert scan.status_code == 400
    assert scan.json()["error"] == {
        "code": "revoked_token", "message": "This QR code has been replaced; ask the guide for the new one.",
        "fields": {"token": ["This token was revoked."]}}
    assert GuideBinding.objects.filter(member=w.m2).count() == 0


def test_scanning_a_live_share_code_joins_and_binds_to_the_sharer(w):
    share = share_create(sharer=sharer(w), target="mall")

    response = member_api(w.m2).post("/api/v1/mp/guide-scan/", {"token": share.code}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["bound_guide"]["code"] == "G-LI"
    assert GuideBinding.objects.get(member=w.m2).guide == w.guide


@pytest.mark.parametrize("case", ["forged", "never_issued", "wrong_salt"])
def test_stale_or_forged_share_codes_are_refused_with_a_readable_message(w, case):
    share = share_create(sharer=sharer(w), target="mall")
    value = {"forged": share.code[:-4] + "AAAA",
             "never_issued": signing.Signer(salt="guides.token").sign("never-issued"),
             "wrong_salt": signing.Signer(salt="other").sign(share.code.split(":")[0])}[case]
    client = member_api(w.m2)

    scan = client.post("/api/v1/mp/guide-scan/", {"token": value}, format="json")
    cart = client.put("/api/v1/mp/cart/items/", {"sku_id": w.sku_dress.pk, "quantity": 1, "share_token": value},
                      format="json")
    placed = client.post("/api/v1/mp/orders/create/", {"from_cart_brand": "WOM"}, format="json")

    assert scan.status_code == 400
    assert (scan.json()["error"]["code"], scan.json()["error"]["message"]) == (
        "invalid_token", "This QR code or link is not valid.")
    # The cart keeps the value as given; the order refuses it, naming the field.
    assert cart.status_code == 200
    assert placed.status_code == 400
    assert placed.json()["error"]["code"] == "invalid_token"
    assert list(placed.json()["error"]["fields"]) == ["share_token"]
    assert w.m2.orders.count() == 0


def test_cart_set_remembers_the_share_code(w):
    share = share_create(sharer=sharer(w), target="product", product=w.dress)

    item = cart_set(member=w.m1, sku=w.sku_dress, quantity=2, share_token=share.code)

    assert item.share_token == share.code


# ---------------------------------------------------------------------------- the pages

def test_one_tap_shares_a_product_and_opens_the_share_with_text_link_and_qr(client, w):
    client.force_login(w.guide_user)

    response = client.post("/workbench/share/", {"target": "product", "id": w.dress.pk})

    share = Share.objects.get()
    assert (response.status_code, response["Location"]) == (302, f"/workbench/shares/{share.pk}/")
    assert (share.guide, share.product, share.target) == (w.guide, w.dress, "product")
    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert f'value="{escape(share_link(share))}"' in html
    assert escape(share_link(share)) in html.split('data-testid="share-text">')[1].split("</textarea>")[0]
    assert f'src="/workbench/shares/{share.pk}/qr.svg"' in html
    image = client.get(f"/workbench/shares/{share.pk}/qr.svg")
    assert (image.status_code, image["Content-Type"]) == (200, "image/svg+xml")
    assert image.content.startswith(b"<?xml")


def test_sharing_the_mall_a_material_and_a_livestream(client, w):
    client.force_login(w.guide_user)
    live = LiveSession.objects.create(brand=w.brand, kind="store", title="春装直播", host_store=w.store,
                                      planned_start=timezone.now() + dt.timedelta(hours=2),
                                      planned_end=timezone.now() + dt.timedelta(hours=4))

    listing = client.get("/workbench/share/").content.decode()
    for body in ({"target": "mall"}, {"target": "material", "id": w.material.pk},
                 {"target": "live", "id": live.pk}):
        assert client.post("/workbench/share/", body).status_code == 302

    assert "春装直播" in listing and "真丝连衣裙" in listing and "衬衫" in listing  # every brand of the mall
    assert sorted(Share.objects.values_list("target", flat=True)) == ["live", "mall", "material"]


@pytest.mark.parametrize(("body", "field"), [
    ({"target": "product"}, "id"), ({"target": "poster", "id": 1}, "target"), ({"target": "product", "id": "x"}, "id"),
    ({}, "target"),
])
def test_a_bad_share_form_is_400_with_the_field_error(client, w, body, field):
    client.force_login(w.guide_user)

    response = client.post("/workbench/share/", body, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    assert 'class="errorlist' in response.content.decode()
    assert response.context["form"].errors[field]
    assert Share.objects.count() == 0


def test_sharing_what_one_may_not_see_is_404(client, w):
    client.force_login(w.guide_user)
    other_brand_material = Material.objects.create(group=w.group, brand=w.other_brand, kind="copy", title="MEN",
                                                   body="x")
    foreign = Product.objects.create(brand=BrandFactory(group=RetailGroupFactory(code="other")), code="X",
                                     name="X", category="x")

    for body in ({"target": "material", "id": other_brand_material.pk}, {"target": "product", "id": foreign.pk},
                 {"target": "task", "id": 999}, {"target": "live", "id": 999}):
        assert client.post("/workbench/share/", body).status_code == 404
    assert Share.objects.count() == 0


def test_another_guides_share_is_404(client, w):
    theirs = share_create(sharer=sharer(w, w.colleague), target="mall")
    client.force_login(w.guide_user)

    assert client.get(f"/workbench/shares/{theirs.pk}/").status_code == 404
    assert client.get(f"/workbench/shares/{theirs.pk}/qr.png").status_code == 404


def test_my_shares_page_shows_each_funnel_and_the_total(client, funnel_world):
    w = funnel_world
    client.force_login(w.guide_user)

    html = client.get("/workbench/shares/").content.decode()

    total = html.split('data-testid="share-total"')[1].split("</section>")[0]
    assert 'data-funnel="views">10<' in total and 'data-funnel="visitors">5<' in total
    assert 'data-funnel="paid_amount">¥440.00<' in total and 'data-funnel="associated_amount">¥50.00<' in total
    row = html.split(f'data-share="{w.s1.pk}"')[1].split("</li>")[0]
    assert 'data-funnel="views">7<' in row and 'data-funnel="orders">4<' in row
    assert f'data-share="{w.sc.pk}"' not in html  # the colleague's share is theirs
    assert 'data-testid="team-shares"' not in html  # a guide has no team table


def test_a_store_manager_sees_the_teams_shares_per_guide(client, funnel_world):
    w = funnel_world
    client.force_login(w.manager_user)

    html = client.get("/workbench/shares/").content.decode()

    team = html.split('data-testid="team-shares"')[1]
    assert team.index('data-guide="G-LI"') < team.index('data-guide="G-WANG"')  # ¥440.00 before ¥0.00
    assert "¥440.00" in team.split('data-guide="G-LI"')[1].split("</tr>")[0]


def test_office_staff_share_for_all_staff_distribution(client, w):
    hq = staff_user("hq", group=w.group)
    client.force_login(hq)

    client.post("/workbench/share/", {"target": "product", "id": w.shirt.pk})

    share = Share.objects.get()
    assert (share.guide, share.staff_user, share.guide_token.staff_user) == (None, hq, hq)
    assert guide_token_resolve(share.code).guide is None


def test_share_pages_need_a_staff_login(client, w):
    share = share_create(sharer=sharer(w), target="mall")
    for url in ("/workbench/share/", "/workbench/shares/", f"/workbench/shares/{share.pk}/"):
        assert client.get(url).status_code == 302
