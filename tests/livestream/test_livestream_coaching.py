"""livestream.coaching: HQ and brand operators coach sessions in their scope; the store reads the notes.

World: brand A with regions R1 (store SA, guides GA host and GA2) and R2 (store SC); brand B. Session S is SA's
store session hosted by GA; session C is SC's.
"""

from __future__ import annotations

import datetime as dt

import pytest

from livestream.coaching import coaching_note_add, coaching_notes_for_session
from livestream.models import CoachingNote, LiveSession
from retail_crm.errors import ApplicationError
from tests.factories import BrandFactory, GuideFactory, RegionFactory, RetailGroupFactory, StoreFactory, staff_user

pytestmark = pytest.mark.django_db

T = dt.datetime(2024, 3, 4, 11, 0, tzinfo=dt.UTC)


@pytest.fixture
def world():
    w = type("World", (), {})()
    w.group = RetailGroupFactory()
    w.brand = BrandFactory(group=w.group, code="A")
    w.brand_b = BrandFactory(group=w.group, code="B")
    w.r1, w.r2 = RegionFactory(brand=w.brand, code="R1"), RegionFactory(brand=w.brand, code="R2")
    w.sa, w.sc = StoreFactory(region=w.r1, code="SA"), StoreFactory(region=w.r2, code="SC")
    w.ga, w.ga2 = GuideFactory(store=w.sa, code="GA"), GuideFactory(store=w.sa, code="GA2")
    w.s = LiveSession.objects.create(brand=w.brand, kind="store", title="S", host_store=w.sa, host_guide=w.ga,
                                     status="ended", planned_start=T, planned_end=T + dt.timedelta(hours=2),
                                     actual_start=T, actual_end=T + dt.timedelta(hours=2))
    w.c = LiveSession.objects.create(brand=w.brand, kind="store", title="C", host_store=w.sc, planned_start=T,
                                     planned_end=T + dt.timedelta(hours=2))
    w.users = {
        "hq": staff_user("hq", group=w.group, username="hq"),
        "brand": staff_user("brand_operator", brand=w.brand, username="op-a"),
        "brand_b": staff_user("brand_operator", brand=w.brand_b, username="op-b"),
        "region": staff_user("region_manager", brand=w.brand, region=w.r1, username="rm-1"),
        "region_2": staff_user("region_manager", brand=w.brand, region=w.r2, username="rm-2"),
        "manager": staff_user("store_manager", brand=w.brand, region=w.r1, store=w.sa, username="sm-a"),
        "host": staff_user("guide", brand=w.brand, region=w.r1, store=w.sa, guide=w.ga, username="GA"),
        "colleague": staff_user("guide", brand=w.brand, region=w.r1, store=w.sa, guide=w.ga2, username="GA2"),
    }
    return w


def refused(call) -> tuple[int, str, str, dict]:
    before = CoachingNote.objects.count()
    with pytest.raises(ApplicationError) as raised:
        call()
    assert CoachingNote.objects.count() == before
    return raised.value.status, raised.value.code, raised.value.message, raised.value.fields


def test_hq_and_brand_operator_coach_and_the_store_reads_newest_first(world):
    first = coaching_note_add(session=world.s, aspect="script", text="  Open with the new arrivals.  ", rating=4,
                              actor=world.users["hq"])
    second = coaching_note_add(session=world.s, aspect="set", text="More light on the rail.",
                               actor=world.users["brand"])

    assert (first.aspect, first.text, first.rating, first.author_id) == (
        "script", "Open with the new arrivals.", 4, world.users["hq"].pk)
    assert (second.rating, second.author_id) == (None, world.users["brand"].pk)
    for reader in ("hq", "brand", "region", "manager", "host"):
        notes = coaching_notes_for_session(session=world.s, actor=world.users[reader])
        assert [n.pk for n in notes] == [second.pk, first.pk], reader


def test_hq_coaches_an_hq_central_session_too(world):
    central = LiveSession.objects.create(brand=world.brand, kind="hq_central", title="H", planned_start=T,
                                         planned_end=T + dt.timedelta(hours=1))

    note = coaching_note_add(session=central, aspect="delivery", text="Pace", rating=5, actor=world.users["hq"])

    assert note.session_id == central.pk


@pytest.mark.parametrize("who", ["region", "manager", "host"])
def test_staff_who_see_the_session_but_are_not_hq_or_brand_get_403(world, who):
    assert refused(lambda: coaching_note_add(session=world.s, aspect="script", text="x",
                                             actor=world.users[who])) == (
        403, "permission_denied", "Only HQ or brand operators can write coaching notes.", {})


@pytest.mark.parametrize("who", ["region_2", "brand_b", "colleague"])
def test_staff_who_do_not_see_the_session_get_404_to_write_and_read(world, who):
    assert refused(lambda: coaching_note_add(session=world.s, aspect="script", text="x",
                                             actor=world.users[who])) == (404, "not_found", "No such session.", {})
    with pytest.raises(ApplicationError) as raised:
        coaching_notes_for_session(session=world.s, actor=world.users[who])
    assert raised.value.status == 404


def test_the_other_regions_store_does_not_see_this_sessions_notes(world):
    coaching_note_add(session=world.s, aspect="script", text="For SA", actor=world.users["hq"])
    other = coaching_note_add(session=world.c, aspect="script", text="For SC", actor=world.users["hq"])

    assert [n.pk for n in coaching_notes_for_session(session=world.c, actor=world.users["region_2"])] == [other.pk]


@pytest.mark.parametrize(("kw", "field", "message"), [
    ({"aspect": "lighting"}, "aspect", "Unknown aspect 'lighting'."),
    ({"text": "   "}, "text", "Write the note."),
    ({"text": "x" * 2001}, "text", "At most 2000 characters."),
    ({"rating": 0}, "rating", "A rating is from 1 to 5."),
    ({"rating": 6}, "rating", "A rating is from 1 to 5."),
])
def test_bad_input_is_400_with_the_field(world, kw, field, message):
    args = {"aspect": "script", "text": "ok", "rating": None} | kw
    assert refused(lambda: coaching_note_add(session=world.s, actor=world.users["hq"], **args)) == (
        400, "invalid", message, {field: [message]})


def test_a_cancelled_session_cannot_be_coached(world):
    LiveSession.objects.filter(pk=world.c.pk).update(status="cancelled")
    world.c.refresh_from_db()

    assert refused(lambda: coaching_note_add(session=world.c, aspect="script", text="x",
                                             actor=world.users["hq"])) == (
        409, "conflict", f"Session #{world.c.pk} was cancelled; there is nothing to coach.", {})


# ---------------------------------------------------------------------------- the admin

def test_brand_operator_adds_a_note_in_the_admin_and_the_store_manager_sees_it_on_the_session(world):
    from django.test import Client

    world.users["manager"].is_staff = world.users["brand"].is_staff = True
    world.users["manager"].save()
    world.users["brand"].save()
    operator, manager = Client(), Client()
    operator.force_login(world.users["brand"])
    manager.force_login(world.users["manager"])

    added = operator.post("/admin/livestream/coachingnote/add/", {"session": world.s.pk, "aspect": "set",
                                                                   "rating": "2", "text": " Too dark "})
    refused = operator.post("/admin/livestream/coachingnote/add/", {"session": world.s.pk, "aspect": "set",
                                                                     "rating": "", "text": "x" * 2001})
    note = CoachingNote.objects.get()
    page = manager.get(f"/admin/livestream/livesession/{world.s.pk}/change/")

    assert added.status_code == 302
    assert (note.session_id, note.aspect, note.rating, note.text, note.author_id) == (
        world.s.pk, "set", 2, "Too dark", world.users["brand"].pk)
    assert refused.status_code == 200 and CoachingNote.objects.count() == 1
    assert page.status_code == 200 and "Too dark" in page.content.decode()
    assert manager.get("/admin/livestream/coachingnote/add/").status_code == 403
    assert operator.post(f"/admin/livestream/coachingnote/{note.pk}/change/", {"text": "rewritten"}).status_code == 403
    assert CoachingNote.objects.get().text == "Too dark"


def test_the_admin_refuses_a_note_on_a_session_outside_the_scope(world):
    from django.test import Client

    user = world.users["brand_b"]
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)

    response = client.post("/admin/livestream/coachingnote/add/", {"session": world.s.pk, "aspect": "set",
                                                                    "text": "x"})

    assert response.status_code == 200  # the form again, with the error
    assert CoachingNote.objects.count() == 0
