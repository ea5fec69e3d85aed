"""The mini-program's live API: ``GET /api/v1/mp/live/sessions/`` (member only) and
``POST /api/v1/mp/live/sessions/{id}/events/`` (member or anonymous viewer): 200, 400, 401, 404, 405, 409, 415."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from livestream.models import LiveSession, ViewerEvent
from mall.models import ProductImage
from members.auth import member_token_issue
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    GuideBindingFactory,
    GuideFactory,
    MemberFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
)
from tests.factories_payments import ProductFactory

pytestmark = pytest.mark.django_db

LIST = "/api/v1/mp/live/sessions/"
H = dt.timedelta(hours=1)


@pytest.fixture
def api_client():
    # DRF's own messages (batch envelope) follow the request language; the tests read them in English.
    return APIClient(HTTP_ACCEPT_LANGUAGE="en")


def events_url(session) -> str:
    return f"/api/v1/mp/live/sessions/{session.pk}/events/"


@pytest.fixture
def world():
    group = RetailGroupFactory()
    brand = BrandFactory(group=group, code="WOM")
    other_brand = BrandFactory(group=group, code="SPT")
    region = RegionFactory(brand=brand)
    store_a = StoreFactory(region=region, code="WOM-A", name="Store A")
    store_b = StoreFactory(region=region, code="WOM-B", name="Store B")
    member = MemberFactory(group=group, code="M-ANN")
    BrandMembershipFactory(member=member, brand=brand)
    return type("World", (), dict(group=group, brand=brand, other_brand=other_brand, store_a=store_a,
                                  store_b=store_b, member=member))


def live(brand, title, start, end, *, store=None, status=LiveSession.Status.PLANNED, **kw):
    kind = LiveSession.Kind.STORE if store else LiveSession.Kind.HQ_CENTRAL
    actual_start = start if status in (LiveSession.Status.LIVE, LiveSession.Status.ENDED) else None
    actual_end = end if status == LiveSession.Status.ENDED else None
    return LiveSession.objects.create(brand=brand, kind=kind, title=title, host_store=store, planned_start=start,
                                      planned_end=end, status=status, actual_start=actual_start,
                                      actual_end=actual_end, **kw)


def as_member(api_client, member):
    api_client.credentials(HTTP_AUTHORIZATION=f"Member {member_token_issue(member=member)}")


# ---------------------------------------------------------------------------- the live list

def test_list_shows_upcoming_and_live_sessions_of_the_members_brands(world, api_client):
    now = timezone.now()
    hq = live(world.brand, "HQ spring launch", now + 2 * H, now + 4 * H)
    live(world.brand, "B tonight", now + 1 * H, now + 2 * H, store=world.store_b, follows=hq)
    live(world.brand, "A tonight", now + 3 * H, now + 4 * H, store=world.store_a)
    on_air = live(world.brand, "On air", now - H, now + H, store=world.store_b, status=LiveSession.Status.LIVE)
    live(world.brand, "Overran", now - 3 * H, now - H, status=LiveSession.Status.LIVE)
    live(world.brand, "Running late, not started", now - 2 * H, now + H / 2)  # planned, end still ahead: shown
    live(world.brand, "Over", now - 3 * H, now - H, status=LiveSession.Status.ENDED)
    live(world.brand, "Never started", now - 3 * H, now - H)  # planned, past its end
    live(world.brand, "Called off", now + H, now + 2 * H, status=LiveSession.Status.CANCELLED)
    live(world.other_brand, "Not my brand", now + H, now + 2 * H)
    live(BrandFactory(group=RetailGroupFactory(code="g2")), "Another group", now + H, now + 2 * H)
    # The member's bound guide works in store A: its sessions come before other stores'.
    GuideBindingFactory(member=world.member, guide=GuideFactory(store=world.store_a), brand=world.brand)
    dress, coat, hidden = (ProductFactory(brand=world.brand, code=c, name=n, is_active=a) for c, n, a in
                           (("P-DRESS", "Dress", True), ("P-COAT", "Coat", True), ("P-OLD", "Old", False)))
    ProductImage.objects.create(product=dress, url="/media/dress-2.jpg", sort=2)
    ProductImage.objects.create(product=dress, url="/media/dress-1.jpg", sort=1)
    hq.products.set([dress, coat, hidden])
    as_member(api_client, world.member)

    response = api_client.get(LIST)

    assert response.status_code == 200
    body = response.json()
    titles = [s["title"] for s in body["results"]]
    # Live first (by planned start), then store A's, then the rest by planned start.
    assert titles == ["Overran", "On air", "A tonight", "Running late, not started", "B tonight",
                      "HQ spring launch"]
    assert body["count"] == 6
    by_title = {s["title"]: s for s in body["results"]}
    assert by_title["HQ spring launch"] == {
        "id": hq.pk, "brand": "WOM", "brand_name": world.brand.name, "kind": "hq_central",
        "title": "HQ spring launch", "status": "planned", "platform": "mini_program", "host_store": None,
        "host_store_name": None, "follows": None,
        "planned_start": timezone.localtime(hq.planned_start).isoformat(),
        "planned_end": timezone.localtime(hq.planned_end).isoformat(), "actual_start": None, "my_store": False,
        "products": [{"id": dress.pk, "code": "P-DRESS", "name": "Dress", "image": "/media/dress-1.jpg"},
                     {"id": coat.pk, "code": "P-COAT", "name": "Coat", "image": None}]}
    assert (by_title["B tonight"]["host_store"], by_title["B tonight"]["host_store_name"],
            by_title["B tonight"]["follows"], by_title["B tonight"]["my_store"]) == ("WOM-B", "Store B", hq.pk, False)
    assert by_title["A tonight"]["my_store"] is True
    assert (by_title["On air"]["status"], by_title["On air"]["id"]) == ("live", on_air.pk)


def test_list_queries_do_not_grow_with_sessions(world, api_client, django_assert_max_num_queries):
    now = timezone.now()
    for i in range(8):
        s = live(world.brand, f"S{i}", now + (i + 1) * H, now + (i + 2) * H, store=world.store_a)
        products = [ProductFactory(brand=world.brand) for _ in range(2)]
        for p in products:
            ProductImage.objects.create(product=p, url=f"/media/{p.code}.jpg")
        s.products.set(products)
    as_member(api_client, world.member)
    # token, bindings, count, sessions, products, images
    with django_assert_max_num_queries(6):
        response = api_client.get(LIST)
    assert len(response.json()["results"]) == 8


def test_a_member_without_memberships_sees_nothing(world, api_client):
    live(world.brand, "HQ", timezone.now() + H, timezone.now() + 2 * H)
    as_member(api_client, MemberFactory(group=world.group))
    assert api_client.get(LIST).json()["results"] == []


def test_list_needs_a_member_token(world, api_client):
    response = api_client.get(LIST)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    api_client.credentials(HTTP_AUTHORIZATION="Member not-a-token")
    assert api_client.get(LIST).status_code == 401


# ---------------------------------------------------------------------------- viewer events

@pytest.fixture
def on_air(world):
    now = timezone.now()
    session = live(world.brand, "On air", now - H, now + H, store=world.store_a, status=LiveSession.Status.LIVE)
    session.product = ProductFactory(brand=world.brand)
    session.products.set([session.product])
    return session


def item(kind="join", minutes_ago=5, **kw):
    data = {"kind": kind, "occurred_at": (timezone.now() - dt.timedelta(minutes=minutes_ago)).isoformat()}
    data.update(kw)
    return data


def test_member_events_are_stored_as_the_members(world, on_air, api_client):
    as_member(api_client, world.member)
    batch = [item(client_event_id="c1"), item("like", 4), item("product_click", 3, product_id=on_air.product.pk),
             item("leave", 2, client_event_id="c1")]
    response = api_client.post(events_url(on_air), {"events": batch}, format="json")
    assert response.status_code == 200
    assert response.json() == {"accepted": 3, "duplicates": 1, "rejected": []}
    assert list(ViewerEvent.objects.order_by("pk").values_list("viewer_id", "member_id", "kind", "product_id")) == [
        ("M-ANN", world.member.pk, "join", None), ("M-ANN", world.member.pk, "like", None),
        ("M-ANN", world.member.pk, "product_click", on_air.product.pk)]
    # Resending is safe: the keyed event is a duplicate, not an error.
    again = api_client.post(events_url(on_air), {"events": batch[:1]}, format="json")
    assert again.json() == {"accepted": 0, "duplicates": 1, "rejected": []}


def test_anonymous_viewers_send_a_viewer_id(on_air, api_client):
    response = api_client.post(events_url(on_air), {"events": [item(viewer_id="wx-1"), item("like")]},
                               format="json")
    assert response.json() == {"accepted": 1, "duplicates": 0,
                               "rejected": [{"index": 1, "errors": {"viewer_id": ["This field is required."]}}]}
    assert list(ViewerEvent.objects.values_list("viewer_id", "member_id")) == [("anon:wx-1", None)]


def test_a_member_of_another_group_gets_404(on_air, api_client):
    as_member(api_client, MemberFactory(group=RetailGroupFactory(code="g2")))
    response = api_client.post(events_url(on_air), {"events": [item()]}, format="json")
    assert response.status_code == 404
    assert response.json()["error"] == {"code": "not_found", "message": "No such session."}
    assert ViewerEvent.objects.count() == 0


def test_a_member_without_a_membership_of_the_brand_may_watch(world, on_air, api_client):
    """Watching is how people join a brand through a livestream."""
    as_member(api_client, MemberFactory(group=world.group, code="M-NEW"))
    assert api_client.post(events_url(on_air), {"events": [item()]}, format="json").json()["accepted"] == 1


def test_unknown_session_and_inactive_brand_are_404(world, on_air, api_client):
    response = api_client.post("/api/v1/mp/live/sessions/999999/events/", {"events": [item(viewer_id="v")]},
                               format="json")
    assert response.status_code == 404
    world.brand.is_active = False
    world.brand.save()
    assert api_client.post(events_url(on_air), {"events": [item(viewer_id="v")]}, format="json").status_code == 404


def test_cancelled_session_is_409(world, api_client):
    now = timezone.now()
    cancelled = live(world.brand, "Called off", now - H, now + H, status=LiveSession.Status.CANCELLED)
    response = api_client.post(events_url(cancelled), {"events": [item(viewer_id="v")]}, format="json")
    assert response.status_code == 409
    assert response.json()["error"] == {"code": "session_cancelled",
                                        "message": f"Session #{cancelled.pk} was cancelled; it takes no viewer events."}
    assert ViewerEvent.objects.count() == 0


def test_a_session_next_week_is_409_not_open(world, api_client):
    now = timezone.now()
    later = live(world.brand, "Next week", now + 7 * 24 * H, now + 7 * 24 * H + H)
    response = api_client.post(events_url(later), {"events": [item(viewer_id="v")]}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "session_not_open")


def test_a_session_ended_days_ago_is_409_closed(world, api_client):
    now = timezone.now()
    old = live(world.brand, "Last week", now - 7 * 24 * H, now - 7 * 24 * H + H, status=LiveSession.Status.ENDED)
    response = api_client.post(events_url(old), {"events": [item(viewer_id="v")]}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "session_closed")


@pytest.mark.parametrize(("body", "fields"), [
    ({"events": []}, {"events": ["This list may not be empty."]}),
    ({"events": "x"}, {"events": ['Expected a list of items but got type "str".']}),
    ({}, {"events": ["This field is required."]}),
    ({"events": [{}] * 501}, {"events": ["Ensure this field has no more than 500 elements."]}),
])
def test_a_body_that_is_not_a_batch_is_400(on_air, api_client, body, fields):
    response = api_client.post(events_url(on_air), body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == fields
    assert ViewerEvent.objects.count() == 0


def test_bad_token_is_401_form_post_415_get_405(on_air, api_client):
    assert api_client.post(events_url(on_air), {"events": "x"}).status_code == 415
    assert api_client.get(events_url(on_air)).status_code == 405
    api_client.credentials(HTTP_AUTHORIZATION="Member nope")
    response = api_client.post(events_url(on_air), {"events": [item(viewer_id="v")]}, format="json")
    assert response.status_code == 401
    assert ViewerEvent.objects.count() == 0
