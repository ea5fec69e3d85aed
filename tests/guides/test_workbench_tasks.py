"""Guide tasks (guides.library, /workbench/tasks/…, /api/v1/guides/task-execution/): publishing to assignees with
their audience sizes, one-tap execution, execution rates per guide / store / region, scope.

The organisation (group grp):

    WOM ── EAST ── e1 (g1, g2, gL [left])   e2 (g3)
        └─ WEST ── w1 (g4)
    MEN ── NORTH ── b1 (g5)

Members bound (open bindings, brand WOM unless said) with tags (shoe size group, colour group) and RFML class:

    g1: m1 size 38, important_value    m2 size 37, general_develop    m3 (no tags), important_value
        m9 size 38, important_value — but the binding ended: not g1's any more
    g2: m4 size 38, colour yellow (no RFML row)
    g3: m5 size 38, colour yellow, important_value
    g4: m6 size 37, colour yellow
    g5: m7 (MEN) size 38, colour yellow, important_value (for MEN)

Task T1 (WOM): audience size 38 or 37 AND RFML important_value; assigned to region EAST →
    g1, g2, g3 (gL has left; g4 is WEST; g5 is MEN). Audience: g1 = m1 (m2 is general_develop, m3 has no size,
    m9's binding ended) = 1; g2 = 0 (no RFML class); g3 = m5 = 1.
Task T2 (HQ, no brand): audience size 38 AND colour yellow; assigned to store w1 and brand MEN → g4, g5.
    Audience: g4 = 0 (size 37); g5 = m7 = 1 (an HQ task counts every brand's bindings).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from guides.library import (
    ExecutionRate,
    assignment_state,
    audience_sizes,
    execution_rates,
    materials_visible,
    task_close,
    task_create,
    task_execute,
    task_publish,
)
from guides.models import GuideTask, Material, Share, TaskAssignment
from guides.sharing import share_funnels
from members.models import BehaviourEvent, EventKind, GuideBinding, MemberTag, TagSource
from retail_crm.errors import ApplicationError
from retail_crm.scoping import actor_for
from segments.models import MemberRfm
from tests.factories import (
    BrandFactory,
    GuideBindingFactory,
    GuideFactory,
    MemberFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
    staff_user,
)
from tests.factories_member_staff import TagGroupFactory, TagValueFactory

pytestmark = pytest.mark.django_db
D = Decimal
NOW = timezone.now()


class World:
    pass


def tag(member, value):
    MemberTag.objects.create(member=member, tag_value=value, source=TagSource.MANUAL, assigned_at=NOW)


def rfm(member, brand, segment):
    MemberRfm.objects.create(member=member, brand=brand, segment=segment, lifecycle_stage="growing")


@pytest.fixture
def w():
    w = World()
    w.group = RetailGroupFactory(code="grp")
    w.wom = BrandFactory(group=w.group, code="WOM", name="雅致女装")
    w.men = BrandFactory(group=w.group, code="MEN", name="型男")
    w.east = RegionFactory(brand=w.wom, code="EAST", name="华东")
    w.west = RegionFactory(brand=w.wom, code="WEST", name="华西")
    w.north = RegionFactory(brand=w.men, code="NORTH", name="华北")
    w.e1 = StoreFactory(region=w.east, code="e1", name="东一店")
    w.e2 = StoreFactory(region=w.east, code="e2", name="东二店")
    w.w1 = StoreFactory(region=w.west, code="w1", name="西一店")
    w.b1 = StoreFactory(region=w.north, code="b1", name="北一店")
    w.g1 = GuideFactory(store=w.e1, code="g1", name="一号")
    w.g2 = GuideFactory(store=w.e1, code="g2", name="二号")
    w.gL = GuideFactory(store=w.e1, code="gL", name="离职", left_at=dt.date(2025, 1, 1))
    w.g3 = GuideFactory(store=w.e2, code="g3", name="三号")
    w.g4 = GuideFactory(store=w.w1, code="g4", name="四号")
    w.g5 = GuideFactory(store=w.b1, code="g5", name="五号")
    sizes = TagGroupFactory(group=w.group, code="shoe", name="鞋码")
    colours = TagGroupFactory(group=w.group, code="colour", name="颜色")
    w.s38 = TagValueFactory(tag_group=sizes, code="38")
    w.s37 = TagValueFactory(tag_group=sizes, code="37")
    w.yellow = TagValueFactory(tag_group=colours, code="yellow")
    members = {}
    for name, guide, tags, segment in (
            ("m1", w.g1, [w.s38], "important_value"), ("m2", w.g1, [w.s37], "general_develop"),
            ("m3", w.g1, [], "important_value"), ("m4", w.g2, [w.s38, w.yellow], None),
            ("m5", w.g3, [w.s38, w.yellow], "important_value"), ("m6", w.g4, [w.s37, w.yellow], None),
            ("m7", w.g5, [w.s38, w.yellow], "important_value"), ("m9", w.g1, [w.s38], "important_value")):
        member = MemberFactory(group=w.group, code=name)
        binding = GuideBindingFactory(member=member, guide=guide)
        if name == "m9":
            binding.ended_at = NOW
            binding.save()
        for value in tags:
            tag(member, value)
        if segment:
            rfm(member, guide.store.brand, segment)
        members[name] = member
    w.m = members
    return w


def make_t1(w, **overrides):
    values = {"group": w.group, "brand": w.wom, "title": "周末上新", "copy_text": "新款到店，38码有货",
              "starts_at": NOW - dt.timedelta(days=1), "deadline": NOW + dt.timedelta(days=2),
              "audience_tags": [w.s38, w.s37], "audience_segments": ["important_value"], "assign_regions": [w.east]}
    values.update(overrides)
    return task_create(**values)


def make_t2(w):
    return task_create(group=w.group, title="集团会员日", copy_text="会员日全场88折",
                       starts_at=NOW - dt.timedelta(days=1), deadline=NOW + dt.timedelta(days=3),
                       audience_tags=[w.s38, w.yellow], assign_stores=[w.w1], assign_brands=[w.men])


def assignment(task, guide) -> TaskAssignment:
    return TaskAssignment.objects.get(task=task, guide=guide)


# ---------------------------------------------------------------------------- publish and audience

def test_publishing_assigns_the_guides_in_scope_with_their_audience_sizes(w):
    t1, t2 = make_t1(w), make_t2(w)

    added = task_publish(task=t1), task_publish(task=t2)

    assert added == (3, 2)
    assert sorted(TaskAssignment.objects.filter(task=t1).values_list("guide__code", "audience_size")) == [
        ("g1", 1), ("g2", 0), ("g3", 1)]
    assert sorted(TaskAssignment.objects.filter(task=t2).values_list("guide__code", "audience_size")) == [
        ("g4", 0), ("g5", 1)]
    t1.refresh_from_db()
    assert t1.status == GuideTask.Status.PUBLISHED


def test_without_audience_or_assignees_every_bound_member_and_every_guide_of_the_brand(w):
    task = make_t1(w, audience_tags=[], audience_segments=[], assign_regions=[])

    task_publish(task=task)

    assert sorted(TaskAssignment.objects.filter(task=task).values_list("guide__code", "audience_size")) == [
        ("g1", 3), ("g2", 1), ("g3", 1), ("g4", 1)]


def test_audience_sizes_take_one_query_for_all_guides(w, django_assert_num_queries):
    task = make_t1(w)
    ids = [w.g1.pk, w.g2.pk, w.g3.pk, w.g4.pk]

    with django_assert_num_queries(2):  # the task's tag values, then the grouped count
        sizes = audience_sizes(task=task, guide_ids=ids)

    assert sizes == {w.g1.pk: 1, w.g3.pk: 1}


def test_publishing_again_only_adds_new_guides(w):
    task = make_t1(w)
    task_publish(task=task)
    newcomer = GuideFactory(store=w.e2, code="g-new")

    assert task_publish(task=task) == 1
    assert assignment(task, newcomer).audience_size == 0
    assert TaskAssignment.objects.filter(task=task).count() == 4


def test_a_task_past_its_deadline_or_closed_cannot_be_published(w):
    late = make_t1(w, starts_at=NOW - dt.timedelta(days=3), deadline=NOW - dt.timedelta(days=1))
    closed = task_close(task=make_t1(w))

    for task, code in ((late, "deadline_passed"), (closed, "task_not_open")):
        with pytest.raises(ApplicationError) as refused:
            task_publish(task=task)
        assert (refused.value.code, refused.value.status) == (code, 409)
    assert TaskAssignment.objects.count() == 0


@pytest.mark.parametrize(("overrides", "fields"), [
    ({"deadline": NOW - dt.timedelta(days=2)}, ["deadline"]),
    ({"title": " ", "copy_text": ""}, ["copy_text", "title"]),
    ({"audience_segments": ["vip"]}, ["audience_segments"]),
])
def test_an_incomplete_task_is_refused_per_field(w, overrides, fields):
    with pytest.raises(ApplicationError) as refused:
        make_t1(w, **overrides)

    assert (refused.value.status, sorted(refused.value.fields)) == (400, fields)
    assert GuideTask.objects.count() == 0


def test_a_brand_task_stays_inside_its_brand(w):
    men_material = Material.objects.create(group=w.group, brand=w.men, kind="copy", title="MEN", body="x")

    with pytest.raises(ApplicationError) as refused:
        make_t1(w, assign_regions=[w.north], assign_stores=[w.b1], materials=[men_material])

    assert sorted(refused.value.fields) == ["assign_regions", "assign_stores", "materials"]


# ---------------------------------------------------------------------------- execution

def test_executing_records_the_time_shares_the_task_and_the_audience_reached(w):
    task = make_t1(w)
    task_publish(task=task)
    late_joiner = MemberFactory(group=w.group)  # matches the audience after publishing
    GuideBindingFactory(member=late_joiner, guide=w.g1)
    tag(late_joiner, w.s37)
    rfm(late_joiner, w.wom, "important_value")
    at = NOW + dt.timedelta(minutes=1)

    done = task_execute(assignment=assignment(task, w.g1), at=at)

    assert (done.executed_at, done.audience_size, done.reached) == (at, 1, 2)
    share = Share.objects.get()
    assert (done.share, share.target, share.task, share.guide, share.created_at) == (share, "task", task, w.g1, at)


def test_a_second_tap_changes_nothing(w):
    task = make_t1(w)
    task_publish(task=task)
    first = task_execute(assignment=assignment(task, w.g1))

    again = task_execute(assignment=assignment(task, w.g1), at=NOW + dt.timedelta(hours=1))

    assert (again.executed_at, again.share_id) == (first.executed_at, first.share_id)
    assert Share.objects.count() == 1


def test_a_task_cannot_be_executed_after_its_deadline_or_once_closed(w):
    task = make_t1(w)
    task_publish(task=task)

    with pytest.raises(ApplicationError) as late:
        task_execute(assignment=assignment(task, w.g1), at=task.deadline + dt.timedelta(seconds=1))
    task_close(task=task)
    with pytest.raises(ApplicationError) as closed:
        task_execute(assignment=assignment(task, w.g2))

    assert (late.value.code, late.value.status, closed.value.code) == ("task_overdue", 409, "task_not_open")
    assert TaskAssignment.objects.filter(executed_at__isnull=False).count() == 0
    assert assignment_state(assignment(task, w.g1)) == "overdue"


# ---------------------------------------------------------------------------- execution rates

@pytest.fixture
def executed(w):
    """T1 and T2 published; g1, g2 (T1) and g4 (T2) executed; g3 (T1) and g5 (T2) did not."""
    w.t1, w.t2 = make_t1(w), make_t2(w)
    task_publish(task=w.t1)
    task_publish(task=w.t2)
    for task, guide in ((w.t1, w.g1), (w.t1, w.g2), (w.t2, w.g4)):
        task_execute(assignment=assignment(task, guide))
    return w


def rows(actor_user, group_by, task=None):
    return [(r.code, r.assigned, r.executed, r.rate, r.audience, r.reached)
            for r in execution_rates(actor=actor_for(actor_user), group_by=group_by, task=task)]


def test_execution_rates_per_guide_store_and_region_for_hq(executed):
    w = executed
    hq = staff_user("hq", group=w.group)

    assert rows(hq, "guide") == [("g1", 1, 1, D("1.0000"), 1, 1), ("g2", 1, 1, D("1.0000"), 0, 0),
                                 ("g3", 1, 0, D("0.0000"), 1, 0), ("g4", 1, 1, D("1.0000"), 0, 0),
                                 ("g5", 1, 0, D("0.0000"), 1, 0)]
    assert rows(hq, "store") == [("b1", 1, 0, D("0.0000"), 1, 0), ("e1", 2, 2, D("1.0000"), 1, 1),
                                 ("e2", 1, 0, D("0.0000"), 1, 0), ("w1", 1, 1, D("1.0000"), 0, 0)]
    # EAST: 2 of 3 = 0.66666… → 0.6667 (half up)
    assert rows(hq, "region") == [("EAST", 3, 2, D("0.6667"), 2, 1), ("NORTH", 1, 0, D("0.0000"), 1, 0),
                                  ("WEST", 1, 1, D("1.0000"), 0, 0)]
    assert rows(hq, "region", task=w.t1) == [("EAST", 3, 2, D("0.6667"), 2, 1)]


def test_execution_rates_follow_the_viewers_scope(executed):
    w = executed

    assert rows(staff_user("region_manager", region=w.east, brand=w.wom), "guide") == [
        ("g1", 1, 1, D("1.0000"), 1, 1), ("g2", 1, 1, D("1.0000"), 0, 0), ("g3", 1, 0, D("0.0000"), 1, 0)]
    assert rows(staff_user("store_manager", store=w.e1), "store") == [("e1", 2, 2, D("1.0000"), 1, 1)]
    assert rows(staff_user("guide", guide=w.g3), "guide") == [("g3", 1, 0, D("0.0000"), 1, 0)]
    assert rows(staff_user("brand_operator", brand=w.men), "region") == [("NORTH", 1, 0, D("0.0000"), 1, 0)]


def test_draft_tasks_do_not_count(executed):
    w = executed
    draft = make_t1(w)
    TaskAssignment.objects.create(task=draft, guide=w.g1)  # only publishing makes real ones

    assert ExecutionRate(id=0, code="", name="", brand="", assigned=0, executed=0, audience=0,
                         reached=0).rate == D("0.0000")
    assert rows(staff_user("guide", guide=w.g1), "guide") == [("g1", 1, 1, D("1.0000"), 1, 1)]


# ---------------------------------------------------------------------------- the API

API = "/api/v1/guides/task-execution/"


def api_as(user) -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.force_authenticate(user)
    return client


def test_the_api_gives_rates_per_region(executed):
    w = executed

    response = api_as(staff_user("hq", group=w.group)).get(API, {"group_by": "region"})

    assert response.status_code == 200
    assert response.json() == {"count": 3, "next": None, "previous": None, "results": [
        {"id": w.east.pk, "code": "EAST", "name": "华东", "brand": "WOM", "assigned": 3, "executed": 2,
         "rate": "0.6667", "audience": 2, "reached": 1},
        {"id": w.north.pk, "code": "NORTH", "name": "华北", "brand": "MEN", "assigned": 1, "executed": 0,
         "rate": "0.0000", "audience": 1, "reached": 0},
        {"id": w.west.pk, "code": "WEST", "name": "华西", "brand": "WOM", "assigned": 1, "executed": 1,
         "rate": "1.0000", "audience": 0, "reached": 0}]}


def test_the_api_filters_by_task_and_defaults_to_guides(executed):
    w = executed

    response = api_as(staff_user("store_manager", store=w.e1)).get(API, {"task": w.t1.pk})

    assert [(r["code"], r["executed"], r["rate"]) for r in response.json()["results"]] == [
        ("g1", 1, "1.0000"), ("g2", 1, "1.0000")]


@pytest.mark.parametrize(("params", "field"), [({"group_by": "city"}, "group_by"), ({"task": "x"}, "task"),
                                               ({"task": "0"}, "task")])
def test_bad_api_queries_are_400_per_field(executed, params, field):
    response = api_as(staff_user("hq", group=executed.group)).get(API, params)

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]


def test_a_task_outside_the_callers_scope_is_404_and_anonymous_is_401(executed):
    w = executed
    men_task = make_t1(w, brand=w.men, assign_regions=[w.north], audience_tags=[], audience_segments=[])
    task_publish(task=men_task)

    assert api_as(staff_user("brand_operator", brand=w.wom)).get(API, {"task": men_task.pk}).status_code == 404
    assert api_as(staff_user("brand_operator", brand=w.wom)).get(API, {"task": 10**12}).status_code == 404
    assert APIClient().get(API).status_code == 401
    assert api_as(get_user_model().objects.create_user("plain")).get(API).status_code == 403


# ---------------------------------------------------------------------------- the pages

def page(client, user, url, **kwargs):
    client.force_login(user)
    return client.get(url, **kwargs)


def test_a_guide_sees_open_overdue_and_done_tasks(client, executed):
    w = executed
    overdue = make_t1(w, title="上周任务")
    task_publish(task=overdue)
    GuideTask.objects.filter(pk=overdue.pk).update(deadline=NOW - dt.timedelta(hours=1),
                                                   starts_at=NOW - dt.timedelta(days=7))
    g3 = staff_user("guide", guide=w.g3)

    html = page(client, g3, "/workbench/tasks/").content.decode()

    open_, late = html.split('data-testid="tasks-open"')[1], html.split('data-testid="tasks-overdue"')[1]
    assert f'data-task="{w.t1.pk}"' in open_.split("</section>")[0]
    assert f'data-task="{overdue.pk}"' in late.split("</section>")[0]


def test_task_detail_shows_copy_text_audience_and_executes_in_one_tap(client, executed):
    w = executed
    g3_user = staff_user("guide", guide=w.g3)
    mine = assignment(w.t1, w.g3)

    detail = page(client, g3_user, f"/workbench/tasks/{mine.pk}/")
    executed_now = client.post(f"/workbench/tasks/{mine.pk}/execute/")

    html = detail.content.decode()
    assert detail.status_code == 200
    assert "新款到店，38码有货" in html.split('data-testid="task-text">')[1].split("</textarea>")[0]
    assert 'data-testid="execute"' in html
    assert executed_now.status_code == 302
    mine.refresh_from_db()
    assert (mine.executed_at is not None, mine.reached, mine.share.task) == (True, 1, w.t1)
    after = client.get(f"/workbench/tasks/{mine.pk}/").content.decode()
    assert 'data-testid="execute"' not in after and f'/workbench/shares/{mine.share_id}/qr.svg' in after
    assert share_funnels([mine.share])[mine.share_id].shares == 1


def test_another_guides_assignment_or_a_task_outside_scope_is_404(client, executed):
    w = executed
    g3_user = staff_user("guide", guide=w.g3)
    client.force_login(g3_user)
    theirs = assignment(w.t1, w.g1)

    assert client.get(f"/workbench/tasks/{theirs.pk}/").status_code == 404
    assert client.post(f"/workbench/tasks/{theirs.pk}/execute/").status_code == 404
    assert client.get(f"/workbench/tasks/{assignment(w.t2, w.g5).pk}/").status_code == 404
    assert client.get("/workbench/tasks/999999/").status_code == 404
    assert client.post("/workbench/share/", {"target": "task", "id": w.t2.pk}).status_code == 404


def test_a_store_manager_may_look_at_a_guides_assignment_but_not_execute_it(client, executed):
    w = executed
    manager = staff_user("store_manager", store=w.e2)
    target = assignment(w.t1, w.g3)

    assert page(client, manager, f"/workbench/tasks/{target.pk}/").status_code == 200
    assert client.post(f"/workbench/tasks/{target.pk}/execute/").status_code == 404
    target.refresh_from_db()
    assert target.executed_at is None


def test_executing_an_overdue_task_from_the_page_says_why(client, executed):
    w = executed
    GuideTask.objects.filter(pk=w.t1.pk).update(deadline=NOW - dt.timedelta(minutes=1))
    mine = assignment(w.t1, w.g3)
    client.force_login(staff_user("guide", guide=w.g3))

    response = client.post(f"/workbench/tasks/{mine.pk}/execute/", follow=True, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert "The deadline of this task has passed." in response.content.decode()
    mine.refresh_from_db()
    assert mine.executed_at is None


def test_managers_see_execution_rates_on_the_execution_page(client, executed):
    w = executed
    region = staff_user("region_manager", region=w.east, brand=w.wom)

    html = page(client, region, "/workbench/tasks/execution/", data={"group_by": "store"}).content.decode()

    table = html.split('data-testid="execution"')[1]
    assert 'data-key="e1"' in table and 'data-rate="1.0000"' in table.split('data-key="e1"')[1].split("</tr>")[0]
    assert 'data-rate="0.0000"' in table.split('data-key="e2"')[1].split("</tr>")[0]
    assert 'data-key="w1"' not in table
    assert ">67%<" in html  # 2 of 3 in the region


def test_the_execution_page_opens_one_level_below_the_viewer(client, executed):
    w = executed

    hq_html = page(client, staff_user("hq", group=w.group), "/workbench/tasks/execution/").content.decode()
    store_html = page(client, staff_user("store_manager", store=w.e1), "/workbench/tasks/execution/").content.decode()

    assert [key.split('"')[0] for key in hq_html.split('data-key="')[1:]] == ["EAST", "NORTH", "WEST"]
    assert [key.split('"')[0] for key in store_html.split('data-key="')[1:]] == ["g1", "g2"]


def test_the_execution_page_refuses_bad_filters(client, executed):
    w = executed
    hq = staff_user("hq", group=w.group)
    client.force_login(hq)
    men_task = make_t1(w, brand=w.men, assign_regions=[w.north], audience_tags=[], audience_segments=[])
    task_publish(task=men_task)

    assert client.get("/workbench/tasks/execution/", {"group_by": "city"}).status_code == 400
    assert client.get("/workbench/tasks/execution/", {"task": "x"}).status_code == 400
    client.force_login(staff_user("brand_operator", brand=w.wom))
    assert client.get("/workbench/tasks/execution/", {"task": men_task.pk}).status_code == 404


# ---------------------------------------------------------------------------- materials

def test_the_material_library_shows_group_wide_and_own_brand_materials(client, w):
    hq_one = Material.objects.create(group=w.group, kind="copy", title="集团文案", body="会员日")
    wom_one = Material.objects.create(group=w.group, brand=w.wom, kind="video", title="WOM视频",
                                      video_url="https://video.example.com/1")
    men_one = Material.objects.create(group=w.group, brand=w.men, kind="copy", title="MEN文案", body="x")
    Material.objects.create(group=w.group, kind="copy", title="下架", body="x", is_active=False)
    g1 = staff_user("guide", guide=w.g1)

    assert list(materials_visible(actor=actor_for(g1))) == [wom_one, hq_one]
    html = page(client, g1, "/workbench/materials/").content.decode()
    assert f'data-material="{hq_one.pk}"' in html and f'data-material="{wom_one.pk}"' in html
    assert f'data-material="{men_one.pk}"' not in html
    videos = client.get("/workbench/materials/", {"kind": "video"}).content.decode()
    assert f'data-material="{wom_one.pk}"' in videos and f'data-material="{hq_one.pk}"' not in videos
    assert client.get("/workbench/materials/", {"kind": "poster"}).status_code == 400
    shared = client.post("/workbench/share/", {"target": "material", "id": hq_one.pk})
    assert shared.status_code == 302 and Share.objects.get().material == hq_one


# ---------------------------------------------------------------------------- admin

def test_hq_publishes_a_task_from_the_admin(client, w):
    task = make_t1(w)
    hq = staff_user("hq", group=w.group)
    client.force_login(hq)

    response = client.post("/admin/guides/guidetask/", {"action": "publish", "_selected_action": [task.pk]},
                           follow=True)

    assert response.status_code == 200
    assert TaskAssignment.objects.filter(task=task).count() == 3


def test_a_brand_operator_cannot_publish_or_edit_an_hq_task(client, w):
    hq_task = task_create(group=w.group, title="HQ", copy_text="x", starts_at=NOW - dt.timedelta(days=1),
                          deadline=NOW + dt.timedelta(days=1))
    client.force_login(staff_user("brand_operator", brand=w.wom))

    client.post("/admin/guides/guidetask/", {"action": "publish", "_selected_action": [hq_task.pk]})
    change = client.get(f"/admin/guides/guidetask/{hq_task.pk}/change/")

    assert TaskAssignment.objects.count() == 0
    assert change.status_code == 200 and b'name="title"' not in change.content  # view only


def test_a_brand_operator_adds_a_material_for_their_brand_with_field_errors_first(client, w):
    client.force_login(staff_user("brand_operator", brand=w.wom))

    incomplete = client.post("/admin/guides/material/add/", {"brand": w.wom.pk, "kind": "video", "title": "视频",
                                                             "is_active": "on"})
    complete = client.post("/admin/guides/material/add/", {"brand": w.wom.pk, "kind": "video", "title": "视频",
                                                           "video_url": "https://video.example.com/2",
                                                           "is_active": "on"})

    assert incomplete.status_code == 200 and "video_url" in incomplete.context["adminform"].form.errors
    assert complete.status_code == 302
    material = Material.objects.get()
    assert (material.group, material.brand, material.kind) == (w.group, w.wom, "video")


def test_a_manager_revokes_a_guides_lost_code_in_the_admin(client, w):
    from guides.models import GuideToken
    from guides.services import guide_token_current

    lost = guide_token_current(guide=w.g1)
    elsewhere = guide_token_current(guide=w.g4)
    client.force_login(staff_user("store_manager", store=w.e1))

    client.post("/admin/guides/guidetoken/", {"action": "revoke", "_selected_action": [lost.pk, elsewhere.pk]})
    client.post("/admin/guides/guidetoken/", {"action": "rotate", "_selected_action": [lost.pk]})

    lost.refresh_from_db()
    elsewhere.refresh_from_db()
    assert lost.revoked_at is not None and elsewhere.revoked_at is None  # another store's code is out of reach
    assert GuideToken.objects.filter(guide=w.g1, revoked_at__isnull=True).count() == 1


def test_ended_bindings_do_not_count_in_the_audience(w):
    assert GuideBinding.objects.filter(member=w.m["m9"], ended_at__isnull=False).exists()
    task = make_t1(w)
    assert audience_sizes(task=task, guide_ids=[w.g1.pk]) == {w.g1.pk: 1}


# ---------------------------------------------------------------------------- concurrency (PostgreSQL)

postgres_only = pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                                   reason="concurrency tests need PostgreSQL (set DATABASE_URL)")


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_eight_taps_at_once_execute_once_with_one_share(w):
    from tests.members.test_member_concurrency import run_at_once

    task = make_t1(w)
    task_publish(task=task)
    mine = assignment(task, w.g1)

    results = run_at_once([lambda: task_execute(assignment=mine) for _ in range(8)])

    assert [status for status, _value in results] == ["ok"] * 8
    assert len({value.share_id for _status, value in results}) == 1
    assert Share.objects.count() == 1
    assert TaskAssignment.objects.filter(executed_at__isnull=False).count() == 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_publishing_one_task_five_times_at_once_assigns_each_guide_once(w):
    from tests.members.test_member_concurrency import run_at_once

    task = make_t1(w)

    results = run_at_once([lambda: task_publish(task=task) for _ in range(5)])

    assert sorted(value for _status, value in results) == [0, 0, 0, 0, 3]
    assert TaskAssignment.objects.filter(task=task).count() == 3


# ---------------------------------------------------------------------------- who the audience is (issue 23 #8)

def test_the_task_page_lists_who_the_audience_is(client, w):
    """T1's audience for g1 (size 38 or 37, and important value): m1 (38) and a new m8 (37), both bound two days
    ago; g1 executes an hour ago; then m10 (38, important value) is bound: in the audience, not sent yet.
    m8 opened the shared link. m2 (general develop), m3 (no size) and m9 (binding ended) are not listed."""
    Member = type(w.m["m1"])
    two_days_ago = NOW - dt.timedelta(days=2)
    Member.objects.filter(pk=w.m["m1"].pk).update(name="一号会员", phone="+8613900000001")
    GuideBinding.objects.filter(member=w.m["m1"]).update(started_at=two_days_ago)
    m8 = MemberFactory(group=w.group, code="m8", name="八号会员", phone="+8613900000008")
    GuideBindingFactory(member=m8, guide=w.g1, started_at=two_days_ago)
    tag(m8, w.s37)
    rfm(m8, w.wom, "important_value")
    t1 = make_t1(w)
    task_publish(task=t1)
    mine = task_execute(assignment=assignment(t1, w.g1), at=NOW - dt.timedelta(hours=1))
    m10 = MemberFactory(group=w.group, code="m10", name="十号会员", phone="+8613900000010")
    GuideBindingFactory(member=m10, guide=w.g1, started_at=NOW)
    tag(m10, w.s38)
    rfm(m10, w.wom, "important_value")
    BehaviourEvent.objects.create(brand=w.wom, member=m8, kind=EventKind.MATERIAL_VIEW, occurred_at=NOW,
                                  share_token=mine.share.code, guide=w.g1)

    def listed(html):
        """(member id, sent, name, phone, [reasons], state, opened) of each listed member."""
        rows = re.findall(r'data-testid="audience-member" data-member-id="(\d+)" data-sent="(\d)">(.*?)</li>',
                          html, re.S)
        return [(int(pk), sent, re.search(r"<strong>([^<]*)</strong>", body).group(1),
                 re.search(r'data-testid="audience-phone">([^<]*)<', body).group(1),
                 re.findall(r'data-testid="audience-reason">([^<]*)<', body),
                 re.search(r'data-testid="audience-state">([^<]*)<', body).group(1),
                 'data-testid="audience-opened"' in body) for pk, sent, body in rows]

    client.force_login(staff_user("guide", guide=w.g1))
    guide_html = client.get(f"/workbench/tasks/{mine.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    client.force_login(staff_user("store_manager", store=w.e1))
    manager_html = client.get(f"/workbench/tasks/{mine.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()

    s38, s37 = f"鞋码: {w.s38.name}", f"鞋码: {w.s37.name}"
    # the bound guide sees whole numbers
    assert listed(guide_html) == [
        (w.m["m1"].pk, "1", "一号会员", "13900000001", [s38, "重要价值"], "已发送", False),
        (m8.pk, "1", "八号会员", "13900000008", [s37, "重要价值"], "已发送", True),
        (m10.pk, "0", "十号会员", "13900000010", [s38, "重要价值"], "未发送", False),
    ]
    assert "当前 3 位会员" in guide_html
    # a store manager without the phone permission sees them masked
    assert [row[3] for row in listed(manager_html)] == ["139****0001", "139****0008", "139****0010"]


def test_the_audience_list_stays_in_scope(client, w):
    t1 = make_t1(w, audience_tags=[], audience_segments=[])
    task_publish(task=t1)
    g1_assignment = assignment(t1, w.g1)

    client.force_login(staff_user("guide", guide=w.g2))
    assert client.get(f"/workbench/tasks/{g1_assignment.pk}/").status_code == 404
    client.force_login(staff_user("region_manager", region=w.west))
    assert client.get(f"/workbench/tasks/{g1_assignment.pk}/").status_code == 404
    client.force_login(staff_user("guide", guide=w.g1))
    html = client.get(f"/workbench/tasks/{g1_assignment.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    # no audience named: every member bound to g1 now (m9's binding ended), each as a bound member
    ids = re.findall(r'data-testid="audience-member" data-member-id="(\d+)"', html)
    assert sorted(int(pk) for pk in ids) == sorted(w.m[code].pk for code in ("m1", "m2", "m3"))
    assert html.count('<span class="chip">绑定会员</span>') == 3
