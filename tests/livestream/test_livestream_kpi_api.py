"""The staff livestream KPI API: phase targets, store phases, progress, coaching notes, sharing HQ resources.

Figures come from the world of tests/livestream/test_livestream_phases.py (worked out in its docstring); here every
endpoint is checked for its exact payload and for 400 (with field messages), 401, 403 and 404.
"""

from __future__ import annotations

import datetime as dt

import pytest

from guides.models import Material
from livestream.models import CoachingNote, LivePhaseTarget, LiveSession, StoreLivePhase
from tests.factories import staff_user
from tests.factories_payments import ProductFactory
from tests.livestream.test_livestream_phases import build_world, local, role_user

pytestmark = pytest.mark.django_db

API = "/api/v1/livestream"


@pytest.fixture
def world():
    return build_world()


@pytest.fixture
def api_client(api_client):
    """The project's client, asking for English messages."""
    api_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return api_client


def as_user(api_client, world, role):
    api_client.force_authenticate(world.hq if role == "hq" else role_user(world, role))
    return api_client


# ---------------------------------------------------------------------------- phase targets

def test_targets_read_and_written_by_a_brand_operator(world, api_client):
    client = as_user(api_client, world, "brand_operator")

    read = client.get(f"{API}/brands/A/phase-targets/")
    written = client.put(f"{API}/brands/A/phase-targets/", {"targets": [
        {"phase": 3, "sessions_per_month": 8, "hours_per_month": "16.0", "sales_per_month": "20000.00",
         "conversion": "0.06"}]}, format="json")

    assert read.status_code == 200
    assert read.json() == [
        {"phase": 1, "sessions_per_month": 4, "hours_per_month": "6.0", "sales_per_month": "0.00",
         "conversion": "0.0000"},
        {"phase": 2, "sessions_per_month": 4, "hours_per_month": "6.0", "sales_per_month": "5000.00",
         "conversion": "0.0500"},
        {"phase": 3, "sessions_per_month": 0, "hours_per_month": "0.0", "sales_per_month": "0.00",
         "conversion": "0.0000"},
    ]
    assert written.status_code == 200
    assert written.json()[2] == {"phase": 3, "sessions_per_month": 8, "hours_per_month": "16.0",
                                 "sales_per_month": "20000.00", "conversion": "0.0600"}
    assert written.json()[:2] == read.json()[:2]


@pytest.mark.parametrize(("body", "fields"), [
    ({}, {"targets": ["This field is required."]}),
    ({"targets": []}, {"targets": ["This list may not be empty."]}),
    ({"targets": [{"phase": 4}]}, {"targets.0.phase": ['"4" is not a valid choice.']}),
    ({"targets": [{"phase": 1, "conversion": "1.5"}]},
     {"targets.0.conversion": ["Ensure this value is less than or equal to 1."]}),
    ({"targets": [{"phase": 1, "sessions_per_month": -1}]},
     {"targets.0.sessions_per_month": ["Ensure this value is greater than or equal to 0."]}),
    ({"targets": [{"phase": 1}, {"phase": 1}]}, {"targets.1.phase": ["Phase 1 is given twice."]}),
])
def test_bad_targets_are_400_with_field_messages(world, api_client, body, fields):
    response = as_user(api_client, world, "hq").put(f"{API}/brands/A/phase-targets/", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == fields
    assert LivePhaseTarget.objects.count() == 2


def test_targets_403_for_a_region_manager_404_outside_and_401_anonymous(world, api_client):
    body = {"targets": [{"phase": 1, "sessions_per_month": 1}]}

    denied = as_user(api_client, world, "region_manager").put(f"{API}/brands/A/phase-targets/", body, format="json")
    readable = api_client.get(f"{API}/brands/A/phase-targets/")
    hidden = api_client.get(f"{API}/brands/B/phase-targets/")
    api_client.force_authenticate(None)
    anonymous = api_client.get(f"{API}/brands/A/phase-targets/")

    assert (denied.status_code, denied.json()["error"]["code"]) == (403, "permission_denied")
    assert readable.status_code == 200
    assert (hidden.status_code, hidden.json()["error"]["message"]) == (404, "No such brand.")
    assert anonymous.status_code == 401
    assert LivePhaseTarget.objects.get(phase=1).sessions_per_month == 4


# ---------------------------------------------------------------------------- store phase

def test_store_phase_read_and_moved_by_hq(world, api_client):
    client = as_user(api_client, world, "hq")

    before = client.get(f"{API}/stores/SB/phase/")
    moved = client.put(f"{API}/stores/SB/phase/", {"phase": 2, "since": "2024-03-10"}, format="json")

    assert before.json() == {"store": "SB", "phase": 1, "since": None, "updated_by": None}
    assert moved.status_code == 200
    assert moved.json() == {"store": "SB", "phase": 2, "since": "2024-03-10", "updated_by": "hq"}
    assert StoreLivePhase.objects.get(store=world.sb).phase == 2


def test_store_phase_errors(world, api_client):
    manager = as_user(api_client, world, "store_manager")
    denied = manager.put(f"{API}/stores/SA/phase/", {"phase": 3}, format="json")
    other_store = manager.get(f"{API}/stores/SB/phase/")
    as_user(api_client, world, "hq")
    bad = api_client.put(f"{API}/stores/SA/phase/", {"phase": 9, "since": "someday"}, format="json")
    unknown = api_client.get(f"{API}/stores/NOPE/phase/")
    api_client.force_authenticate(None)

    assert (denied.status_code, denied.json()["error"]["code"]) == (403, "permission_denied")
    assert other_store.status_code == 404
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"phase", "since"}
    assert (unknown.status_code, unknown.json()["error"]["message"]) == (404, "No such store.")
    assert api_client.put(f"{API}/stores/SA/phase/", {"phase": 3}, format="json").status_code == 401
    assert StoreLivePhase.objects.get(store=world.sa).phase == 2


# ---------------------------------------------------------------------------- progress

SA_MARCH = {
    "store": "SA", "store_name": "Store A", "month": "2024-03-01", "phase": 2, "phase_since": "2024-02-01",
    "sessions_planned": 5, "sessions_held": 5, "hours_live": "6.50", "live_sales": "3850.00", "viewers": 500,
    "buyers": 20, "conversion": "0.0400", "coaching_notes": 3, "average_rating": "3.50",
    "targets": [
        {"measure": "sessions", "target": "4", "actual": "5", "ratio": "1.2500", "met": True},
        {"measure": "hours", "target": "6.0", "actual": "6.50", "ratio": "1.0833", "met": True},
        {"measure": "sales", "target": "5000.00", "actual": "3850.00", "ratio": "0.7700", "met": False},
        {"measure": "conversion", "target": "0.0500", "actual": "0.0400", "ratio": "0.8000", "met": False},
    ],
    "all_met": False,
}


def test_store_progress_for_a_month(world, api_client):
    response = as_user(api_client, world, "store_manager").get(f"{API}/stores/SA/progress/", {"month": "2024-03"})

    assert response.status_code == 200
    assert response.json() == SA_MARCH


def test_store_progress_defaults_to_the_current_month(world, api_client, monkeypatch):
    monkeypatch.setattr("livestream.api.kpis.timezone.localdate", lambda: dt.date(2024, 3, 31))

    response = as_user(api_client, world, "hq").get(f"{API}/stores/SA/progress/")

    assert response.json() == SA_MARCH


def test_brand_store_progress_lists_the_stores_in_scope(world, api_client):
    everyone = as_user(api_client, world, "brand_operator").get(f"{API}/brands/A/store-progress/",
                                                                 {"month": "2024-03"})
    region = as_user(api_client, world, "region_manager").get(f"{API}/brands/A/store-progress/",
                                                               {"month": "2024-03"})

    assert everyone.status_code == 200
    assert [(r["store"], r["phase"], r["sessions_held"], r["live_sales"], r["all_met"]) for r in everyone.json()] == [
        ("SA", 2, 5, "3850.00", False), ("SB", 1, 2, "800.00", False), ("SC", 3, 1, "100.00", None),
        ("SD", 1, 0, "0.00", False)]
    assert everyone.json()[0] == SA_MARCH
    assert [r["store"] for r in region.json()] == ["SA", "SB", "SD"]


@pytest.mark.parametrize("month", ["2024-13", "2024-3", "march", "0000-01", "2024-03-01"])
def test_bad_month_is_400(world, api_client, month):
    response = as_user(api_client, world, "hq").get(f"{API}/stores/SA/progress/", {"month": month})

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"month": ["Give the month as YYYY-MM."]}


def test_progress_404_outside_the_scope_and_401_anonymous(world, api_client):
    client = as_user(api_client, world, "region_manager")
    assert client.get(f"{API}/stores/SC/progress/").status_code == 404
    assert client.get(f"{API}/brands/B/store-progress/").status_code == 404
    api_client.force_authenticate(None)
    assert api_client.get(f"{API}/stores/SA/progress/").status_code == 401
    assert api_client.get(f"{API}/brands/A/store-progress/").status_code == 401


# ---------------------------------------------------------------------------- coaching notes

def test_hq_posts_a_note_and_the_store_reads_it(world, api_client):
    url = f"{API}/sessions/{world.s1.pk}/coaching-notes/"

    posted = as_user(api_client, world, "hq").post(url, {"aspect": "delivery", "text": "Smile at the camera",
                                                         "rating": 5}, format="json")
    read = as_user(api_client, world, "store_manager").get(url)

    note = CoachingNote.objects.get(text="Smile at the camera")
    assert posted.status_code == 201
    assert posted.json() == {"id": note.pk, "session": world.s1.pk, "aspect": "delivery",
                             "text": "Smile at the camera", "rating": 5, "author": "hq",
                             "created_at": posted.json()["created_at"]}
    assert [(n["aspect"], n["text"], n["rating"]) for n in read.json()] == [
        ("delivery", "Smile at the camera", 5), ("script", "Open with the new arrivals", 4)]


def test_coaching_errors(world, api_client):
    url = f"{API}/sessions/{world.s1.pk}/coaching-notes/"
    body = {"aspect": "script", "text": "x"}

    host_guide = as_user(api_client, world, "guide").post(url, body, format="json")  # GA hosted s1: sees it
    other_guide_url = f"{API}/sessions/{world.s2.pk}/coaching-notes/"  # hosted by GA2
    not_hosted = api_client.post(other_guide_url, body, format="json")
    other_region = as_user(api_client, world, "region_manager").get(  # SC's session, region R2
        f"{API}/sessions/{LiveSession.objects.get(host_store=world.sc).pk}/coaching-notes/")
    bad = as_user(api_client, world, "hq").post(url, {"aspect": "lights", "text": "", "rating": 7}, format="json")
    missing = api_client.get(f"{API}/sessions/999999/coaching-notes/")
    api_client.force_authenticate(None)
    anonymous = api_client.post(url, body, format="json")

    assert (host_guide.status_code, host_guide.json()["error"]["code"]) == (403, "permission_denied")
    assert (not_hosted.status_code, not_hosted.json()["error"]["message"]) == (404, "No such session.")
    assert (other_region.status_code, other_region.json()["error"]["message"]) == (404, "No such session.")
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"aspect", "text", "rating"}
    assert missing.status_code == 404
    assert anonymous.status_code == 401
    assert CoachingNote.objects.count() == 4


# ---------------------------------------------------------------------------- sharing HQ resources

@pytest.fixture
def shared_world(world):
    w = world
    w.products = [ProductFactory(brand=w.brand, code=f"P{i}") for i in range(3)]
    w.materials = [Material.objects.create(group=w.group, brand=w.brand, kind="copy", title=f"M{i}")
                   for i in range(2)]
    w.central = LiveSession.objects.create(brand=w.brand, kind="hq_central", title="Spring launch",
                                           planned_start=local(4, 5, 19), planned_end=local(4, 5, 21),
                                           script="19:00 welcome; 19:10 dresses; 20:30 lucky draw")
    w.central.products.set(w.products[:2])
    w.central.materials.set(w.materials)
    w.store_session = LiveSession.objects.create(brand=w.brand, kind="store", title="SA spring",
                                                 host_store=w.sa, host_guide=w.ga, planned_start=local(4, 5, 19),
                                                 planned_end=local(4, 5, 21))
    w.store_session.products.set([w.products[2]])
    return w


def test_hq_shares_products_script_and_materials_once(shared_world, api_client):
    w = shared_world
    url = f"{API}/sessions/{w.store_session.pk}/share-resources/"
    client = as_user(api_client, w, "hq")

    first = client.post(url, {"central": w.central.pk}, format="json")
    again = client.post(url, {}, format="json")

    all_products = sorted(p.pk for p in w.products)
    materials = sorted(m.pk for m in w.materials)
    assert first.status_code == 200
    assert first.json() == {"session": w.store_session.pk, "follows": w.central.pk, "products_added": 2,
                            "materials_added": 2, "script_copied": True, "products": all_products,
                            "materials": materials}
    assert again.json() == {**first.json(), "products_added": 0, "materials_added": 0, "script_copied": False}
    w.store_session.refresh_from_db()
    assert (w.store_session.follows_id, w.store_session.script) == (
        w.central.pk, "19:00 welcome; 19:10 dresses; 20:30 lucky draw")


def test_a_stores_own_script_is_kept_unless_replaced(shared_world, api_client):
    w = shared_world
    LiveSession.objects.filter(pk=w.store_session.pk).update(script="Our own run sheet")
    url = f"{API}/sessions/{w.store_session.pk}/share-resources/"
    client = as_user(api_client, w, "brand_operator")

    kept = client.post(url, {"central": w.central.pk}, format="json")
    script_kept = LiveSession.objects.get(pk=w.store_session.pk).script
    replaced = client.post(url, {"replace_script": True}, format="json")

    assert (kept.json()["script_copied"], script_kept) == (False, "Our own run sheet")
    assert replaced.json()["script_copied"] is True
    assert LiveSession.objects.get(pk=w.store_session.pk).script == w.central.script


def test_sharing_errors(shared_world, api_client):
    w = shared_world
    url = f"{API}/sessions/{w.store_session.pk}/share-resources/"
    other_central = LiveSession.objects.create(brand=w.brand, kind="hq_central", title="Other",
                                               planned_start=local(4, 6, 19), planned_end=local(4, 6, 21))
    other_brand_central = LiveSession.objects.create(brand=w.other_brand, kind="hq_central", title="B",
                                                     planned_start=local(4, 6, 19), planned_end=local(4, 6, 21))
    client = as_user(api_client, w, "hq")

    no_central = client.post(url, {}, format="json")
    not_central = client.post(url, {"central": w.s1.pk}, format="json")
    other_brand = client.post(url, {"central": other_brand_central.pk}, format="json")
    unknown = client.post(url, {"central": 999999}, format="json")
    to_central = client.post(f"{API}/sessions/{w.central.pk}/share-resources/", {"central": w.central.pk},
                             format="json")
    ended = client.post(f"{API}/sessions/{w.s1.pk}/share-resources/", {"central": w.central.pk}, format="json")
    client.post(url, {"central": w.central.pk}, format="json")
    already = client.post(url, {"central": other_central.pk}, format="json")
    guide = as_user(api_client, w, "guide").post(url, {"central": w.central.pk}, format="json")
    api_client.force_authenticate(None)
    anonymous = api_client.post(url, {}, format="json")

    def error(r):
        return r.status_code, r.json()["error"]["message"]

    assert error(no_central) == (400, "This session follows no HQ central session; name one.")
    assert error(not_central) == (400, f"Session #{w.s1.pk} is not an HQ central session.")
    assert error(other_brand) == (400, "The central session belongs to another brand.")
    assert error(unknown) == (400, "No such HQ central session.")
    assert error(to_central) == (409, f"Session #{w.central.pk} is not a store session.")
    assert error(ended) == (409, f"Session #{w.s1.pk} is ended.")
    assert error(already) == (409, f"Session #{w.store_session.pk} already follows HQ session #{w.central.pk}.")
    assert error(guide) == (403, "Only HQ or brand operators can share HQ resources.")
    assert anonymous.status_code == 401


def test_sharing_outside_the_scope_is_404(shared_world, api_client):
    w = shared_world
    api_client.force_authenticate(staff_user("brand_operator", brand=w.other_brand))
    response = api_client.post(f"{API}/sessions/{w.store_session.pk}/share-resources/", {"central": w.central.pk},
                               format="json")

    assert (response.status_code, response.json()["error"]["message"]) == (404, "No such session.")
    assert LiveSession.objects.get(pk=w.store_session.pk).follows_id is None
