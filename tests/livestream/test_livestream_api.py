"""The staff livestream API: scheduling (201, 400, 403, 404, 409, 401) and a store's week plan, scoped.

The livestream routes are not yet mounted by the project URLs, so this module mounts them itself under
``/api/v1/`` in front of the project's routes (``pytest.mark.urls`` points here).
"""

from __future__ import annotations

import pytest
from django.urls import include, path

from livestream.models import LiveSession, SessionStats
from retail_crm.urls import urlpatterns as project_urlpatterns
from tests.factories import BrandFactory, GuideFactory, RegionFactory, RetailGroupFactory, StoreFactory, staff_user
from tests.factories_payments import ProductFactory

urlpatterns = [path("api/v1/", include("livestream.api.urls")), *project_urlpatterns]

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.livestream.test_livestream_api")]

URL = "/api/v1/livestream/sessions/"


@pytest.fixture
def world():
    group = RetailGroupFactory()
    brand = BrandFactory(group=group, code="WOM")
    region = RegionFactory(brand=brand)
    store = StoreFactory(region=region, code="WOM-1")
    other_store = StoreFactory(region=region, code="WOM-2")
    guide = GuideFactory(store=store, code="g-1")
    return type("World", (), dict(group=group, brand=brand, store=store, other_store=other_store, guide=guide))


def body(**kw):
    data = {"brand": "WOM", "kind": "store", "title": "Spring", "planned_start": "2024-03-04T19:00:00+08:00",
            "planned_end": "2024-03-04T21:00:00+08:00", "host_store": "WOM-1", "host_guide": "g-1"}
    data.update(kw)
    return data


def test_schedule_creates_session(world, api_client):
    product = ProductFactory(brand=world.brand)
    api_client.force_authenticate(staff_user("brand_operator", brand=world.brand))
    r = api_client.post(URL, body(product_ids=[product.pk], platform="video_channel"), format="json")
    assert r.status_code == 201
    s = LiveSession.objects.get()
    assert r.json() == {"id": s.pk, "brand": "WOM", "kind": "store", "title": "Spring", "status": "planned",
                        "platform": "video_channel", "host_store": "WOM-1", "host_guide": "g-1", "follows": None,
                        "planned_start": "2024-03-04T19:00:00+08:00", "planned_end": "2024-03-04T21:00:00+08:00",
                        "actual_start": None, "actual_end": None}
    assert list(s.products.values_list("pk", flat=True)) == [product.pk]


def test_schedule_conflict_is_409_with_message(world, api_client):
    api_client.force_authenticate(staff_user("hq", group=world.group))
    first = api_client.post(URL, body(title="Evening"), format="json").json()
    r = api_client.post(URL, body(host_guide=None, planned_start="2024-03-04T20:00:00+08:00",
                                  planned_end="2024-03-04T22:00:00+08:00"), format="json")
    assert r.status_code == 409
    assert r.json()["error"] == {
        "code": "store_busy",
        "message": f'Store WOM-1 already has session "Evening" (#{first["id"]}, 2024-03-04T11:00:00+00:00 – '
                   f"2024-03-04T13:00:00+00:00) at that time."}
    assert LiveSession.objects.count() == 1


@pytest.mark.parametrize("change,field", [
    ({"kind": "tv"}, "kind"),
    ({"planned_start": "not a time"}, "planned_start"),
    ({"title": ""}, "title"),
    ({"product_ids": ["x"]}, "product_ids.0"),
    ({"follows": 0}, "follows"),
    ({"planned_end": "2024-03-04T18:00:00+08:00"}, "planned_end"),
    ({"brand": None}, "brand"),
])
def test_bad_input_is_400_with_field_messages(world, api_client, change, field):
    api_client.force_authenticate(staff_user("hq", group=world.group))
    r = api_client.post(URL, body(**change), format="json")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid"
    assert list(r.json()["error"]["fields"]) == [field]
    assert LiveSession.objects.count() == 0


def test_schedule_scope_and_roles(world, api_client):
    api_client.force_authenticate(staff_user("store_manager", store=world.store))
    r = api_client.post(URL, body(), format="json")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "schedule_forbidden")
    api_client.force_authenticate(staff_user("brand_operator", brand=BrandFactory(group=world.group)))
    r = api_client.post(URL, body(), format="json")
    assert (r.status_code, r.json()["error"]["message"]) == (404, "No such brand.")
    api_client.force_authenticate(staff_user("hq", group=world.group))
    r = api_client.post(URL, body(host_store="NOPE"), format="json")
    assert (r.status_code, r.json()["error"]["message"]) == (404, "No such store.")
    assert LiveSession.objects.count() == 0


def test_livestream_api_needs_a_staff_login(world, api_client):
    assert api_client.post(URL, body(), format="json").status_code == 401
    assert api_client.get("/api/v1/livestream/stores/WOM-1/schedule/?week_start=2024-03-04").status_code == 401


def test_store_week_plan(world, api_client):
    api_client.force_authenticate(staff_user("hq", group=world.group))
    ids = [api_client.post(URL, body(title=title, planned_start=start, planned_end=end), format="json").json()["id"]
           for title, start, end in [("Wed", "2024-03-06T19:00:00+08:00", "2024-03-06T21:00:00+08:00"),
                                     ("Mon", "2024-03-04T10:00:00+08:00", "2024-03-04T11:00:00+08:00"),
                                     ("Next", "2024-03-11T10:00:00+08:00", "2024-03-11T11:00:00+08:00")]]
    api_client.force_authenticate(staff_user("store_manager", store=world.store))
    r = api_client.get("/api/v1/livestream/stores/WOM-1/schedule/?week_start=2024-03-04")
    assert r.status_code == 200
    assert [(row["id"], row["title"]) for row in r.json()] == [(ids[1], "Mon"), (ids[0], "Wed")]
    r = api_client.get("/api/v1/livestream/stores/WOM-2/schedule/?week_start=2024-03-04")
    assert r.status_code == 404
    r = api_client.get("/api/v1/livestream/stores/WOM-1/schedule/?week_start=monday")
    assert (r.status_code, list(r.json()["error"]["fields"])) == (400, ["week_start"])


def test_start_end_cancel_endpoints(world, api_client, django_capture_on_commit_callbacks):
    api_client.force_authenticate(staff_user("hq", group=world.group))
    first = api_client.post(URL, body(), format="json").json()["id"]
    second = api_client.post(URL, body(planned_start="2024-03-05T19:00:00+08:00",
                                       planned_end="2024-03-05T21:00:00+08:00"), format="json").json()["id"]
    api_client.force_authenticate(staff_user("store_manager", store=world.store))
    r = api_client.post(f"{URL}{first}/start/", {"at": "2024-03-04T19:03:00+08:00"}, format="json")
    assert (r.status_code, r.json()["status"], r.json()["actual_start"]) == (200, "live", "2024-03-04T19:03:00+08:00")
    r = api_client.post(f"{URL}{first}/start/", {}, format="json")
    assert (r.status_code, r.json()["error"]["message"]) == (409, f"Cannot start session #{first}: it is live.")
    r = api_client.post(f"{URL}{first}/end/", {"at": "2024-03-04T18:00:00+08:00"}, format="json")
    assert (r.status_code, r.json()["error"]["fields"]) == (400, {"at": ["A session cannot end before it started."]})
    r = api_client.post(f"{URL}{first}/end/", {"at": "yesterday"}, format="json")
    assert (r.status_code, list(r.json()["error"]["fields"])) == (400, ["at"])
    with django_capture_on_commit_callbacks(execute=True):
        r = api_client.post(f"{URL}{first}/end/", {"at": "2024-03-04T21:10:00+08:00"}, format="json")
    assert (r.status_code, r.json()["status"], r.json()["actual_end"]) == (200, "ended", "2024-03-04T21:10:00+08:00")
    # Ending computes the session's final figures at once (nobody watched: zeros, but the row exists).
    stats = SessionStats.objects.get(session_id=first)
    assert (stats.viewers, stats.orders, stats.gmv) == (0, 0, 0)
    r = api_client.post(f"{URL}{second}/cancel/", {}, format="json")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "schedule_forbidden")
    api_client.force_authenticate(staff_user("store_manager", store=world.other_store))
    assert api_client.post(f"{URL}{second}/start/", {}, format="json").status_code == 404
    api_client.force_authenticate(staff_user("brand_operator", brand=world.brand))
    r = api_client.post(f"{URL}{second}/cancel/", {}, format="json")
    assert (r.status_code, r.json()["status"]) == (200, "cancelled")
    assert dict(LiveSession.objects.values_list("pk", "status")) == {first: "ended", second: "cancelled"}
    api_client.force_authenticate(None)
    assert api_client.post(f"{URL}{second}/cancel/", {}, format="json").status_code == 401


def test_brand_week_summary_endpoint(world, api_client):
    api_client.force_authenticate(staff_user("hq", group=world.group))
    held = api_client.post(URL, body(), format="json").json()["id"]
    api_client.post(URL, body(host_store="WOM-2", host_guide=None, planned_end="2024-03-04T19:30:00+08:00"),
                    format="json")
    api_client.post(f"{URL}{held}/start/", {"at": "2024-03-04T19:00:00+08:00"}, format="json")
    api_client.post(f"{URL}{held}/end/", {"at": "2024-03-04T20:45:00+08:00"}, format="json")
    url = "/api/v1/livestream/brands/WOM/week-summary/?week_start=2024-03-04"
    r = api_client.get(url)
    assert r.status_code == 200
    assert r.json() == [
        {"store": "WOM-1", "planned": 1, "held": 1, "cancelled": 0, "planned_hours": "2.00", "live_hours": "1.75"},
        {"store": "WOM-2", "planned": 1, "held": 0, "cancelled": 0, "planned_hours": "0.50", "live_hours": "0.00"},
    ]
    assert api_client.get("/api/v1/livestream/brands/WOM/week-summary/?week_start=x").status_code == 400
    api_client.force_authenticate(staff_user("store_manager", store=world.other_store))
    assert [row["store"] for row in api_client.get(url).json()] == ["WOM-2"]
    api_client.force_authenticate(staff_user("brand_operator", brand=BrandFactory(group=world.group)))
    assert api_client.get(url).status_code == 404
    api_client.force_authenticate(None)
    assert api_client.get(url).status_code == 401
