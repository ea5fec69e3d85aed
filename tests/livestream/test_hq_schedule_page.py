"""The HQ scheduling calendar at /hq/live-schedule/: a brand's week, plan, move and cancel, scoped.

The page writes through ``livestream.services`` like the API, so each refusal is checked for its status,
its message in the viewer's language and for changing nothing. Times are Shanghai local times.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from livestream.models import LiveSession
from livestream.services import session_move, session_schedule
from retail_crm.errors import ApplicationError
from tests.factories import BrandFactory, GuideFactory, RegionFactory, StoreFactory, staff_user

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
URL = "/hq/live-schedule/"


@pytest.fixture
def world():
    brand = BrandFactory(code="WA", name="雅致女装")
    other = BrandFactory(code="MB", name="型男", group=brand.group)
    east = RegionFactory(brand=brand, code="east")
    west = RegionFactory(brand=brand, code="west")
    store_a = StoreFactory(region=east, code="SA", name="上海一店")
    store_b = StoreFactory(region=west, code="SB", name="成都一店")
    guide = GuideFactory(store=store_a, code="ga")
    other_store = StoreFactory(region=RegionFactory(brand=other, code="east"), code="MA")
    hq = staff_user("hq", group=brand.group)
    return type("World", (), dict(brand=brand, other=other, store_a=store_a, store_b=store_b, guide=guide,
                                  other_store=other_store, hq=hq, east=east))


def local(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2030, 3, day, hour, minute, tzinfo=SH)  # 2030-03-04 is a Monday


def plan(world, start, end, *, store=None, kind="store", title="春装上新", guide=None, follows=None):
    return session_schedule(brand=world.brand, kind=kind, title=title, planned_start=start, planned_end=end,
                            host_store=(store or world.store_a) if kind == "store" else None, host_guide=guide,
                            follows=follows, actor=world.hq)


def post(client, **data):
    data.setdefault("brand", "WA")
    data.setdefault("week", "2030-03-04")
    return client.post(URL, data)


def test_week_shows_the_brands_sessions_by_day_with_the_stores_following_hq(client, world):
    central = plan(world, local(5, 20), local(5, 21), kind="hq_central", title="总部春季大场")
    plan(world, local(5, 20), local(5, 21), title="跟播上海", follows=central)
    plan(world, local(5, 20), local(5, 21), store=world.store_b, title="跟播成都", follows=central)
    plan(world, local(11, 19), local(11, 20), title="下周的场次")  # next week: not shown
    client.force_login(world.hq)

    response = client.get(URL, {"brand": "WA", "week": "2030-03-06"})  # any day of the week shows its Monday

    assert response.status_code == 200
    days = response.context["days"]
    assert [d["date"] for d in days][0] == dt.date(2030, 3, 4)
    assert [[i["session"].title for i in d["sessions"]] for d in days] == [
        [], ["总部春季大场", "跟播上海", "跟播成都"], [], [], [], [], []]
    assert days[1]["sessions"][0]["followers"] == 2
    html = response.content.decode()
    assert "2 家门店跟播" in html
    assert "2030-03-04 – 03-10" in html


def test_hq_plans_a_store_session_from_the_page(client, world):
    client.force_login(world.hq)

    response = post(client, action="create", kind="store", title="周末特卖", day="2030-03-08", start="19:30",
                    end="21:00", host_store="SA", host_guide="ga", platform="mini_program")

    assert response.status_code == 302
    assert response["Location"] == f"{URL}?brand=WA&week=2030-03-04"
    session = LiveSession.objects.get()
    assert (session.title, session.host_store, session.host_guide, session.status) == (
        "周末特卖", world.store_a, world.guide, "planned")
    assert session.planned_start == local(8, 19, 30)
    assert session.planned_end == local(8, 21)


def test_a_brand_operator_plans_an_hq_central_session_and_its_relay_from_the_page(client, world):
    """1+N: the HQ central session, then each store's relay following it, all through the page's form."""
    client.force_login(staff_user("brand_operator", brand=world.brand))

    central_post = post(client, action="create", kind="hq_central", title="总部春季大场", day="2030-03-05",
                        start="20:00", end="21:00", host_store="", platform="mini_program")
    central = LiveSession.objects.get()
    form = client.get(URL, {"brand": "WA", "week": "2030-03-04"}).context["create_form"]
    relays = [post(client, action="create", kind="store", title=title, day="2030-03-05", start="20:00",
                   end="21:00", host_store=store, follows=str(central.pk), platform="mini_program")
              for title, store in (("跟播上海", "SA"), ("跟播成都", "SB"))]

    assert central_post.status_code == 302 and [r.status_code for r in relays] == [302, 302]
    assert (central.kind, central.host_store, central.follows, central.status) == ("hq_central", None, None,
                                                                                 "planned")
    assert (central.planned_start, central.planned_end) == (local(5, 20), local(5, 21))
    assert [choice for choice, _label in form.fields["follows"].choices] == ["", central.pk]
    assert sorted(LiveSession.objects.filter(follows=central).values_list("title", "host_store__code",
                                                                          "kind")) == [
        ("跟播上海", "SA", "store"), ("跟播成都", "SB", "store")]
    week = client.get(URL, {"brand": "WA", "week": "2030-03-04"})
    assert week.context["days"][1]["sessions"][0]["followers"] == 2
    assert "2 家门店跟播" in week.content.decode()


def test_a_clashing_plan_is_refused_with_409_and_the_session_it_clashes_with(client, world):
    existing = plan(world, local(8, 19), local(8, 21), title="已排场次")
    client.force_login(world.hq)

    response = post(client, action="create", kind="store", title="冲突场次", day="2030-03-08", start="20:00",
                    end="22:00", host_store="SA", platform="mini_program")

    assert response.status_code == 409
    assert response.context["error"] == (
        f"门店 SA 在该时段已有直播“已排场次”（#{existing.pk}，03-08 19:00–21:00）。")
    assert LiveSession.objects.count() == 1


def test_guide_busy_and_bad_times_are_refused_without_saving(client, world):
    plan(world, local(8, 19), local(8, 21), guide=world.guide, title="导购主播")
    client.force_login(world.hq)

    busy = post(client, action="create", kind="store", title="另一场", day="2030-03-08", start="20:00", end="20:30",
                host_store="SB", host_guide="ga", platform="mini_program")
    backwards = post(client, action="create", kind="store", title="倒序", day="2030-03-09", start="21:00",
                     end="20:00", host_store="SA", platform="mini_program")
    no_title = post(client, action="create", kind="store", title="", day="2030-03-09", start="20:00", end="21:00",
                    host_store="SA", platform="mini_program")

    assert busy.status_code == 400  # the guide works in SA, not SB: a host rule, checked before conflicts
    assert "主播导购" in busy.context["error"]
    assert backwards.status_code == 400
    assert backwards.context["create_form"].errors["end"] == ["结束时间必须晚于开始时间。"]
    assert no_title.status_code == 400
    assert "title" in no_title.context["create_form"].errors
    assert LiveSession.objects.count() == 1


def test_moving_checks_conflicts_but_never_against_itself(client, world):
    first = plan(world, local(8, 19), local(8, 21), title="第一场")
    second = plan(world, local(8, 21), local(8, 22), title="第二场")
    client.force_login(world.hq)

    later = post(client, action="move", session=first.pk, day="2030-03-08", start="19:30", end="20:30")
    clash = post(client, action="move", session=second.pk, day="2030-03-08", start="20:00", end="21:30")
    next_week = post(client, action="move", session=second.pk, day="2030-03-12", start="10:00", end="11:00")

    assert later.status_code == 302  # overlaps its own old time only
    first.refresh_from_db()
    assert (first.planned_start, first.planned_end) == (local(8, 19, 30), local(8, 20, 30))
    assert clash.status_code == 409
    assert clash.context["error"].startswith("门店 SA 在该时段已有直播“第一场”")
    assert next_week.status_code == 302
    assert next_week["Location"] == f"{URL}?brand=WA&week=2030-03-11"  # the calendar follows the session
    second.refresh_from_db()
    assert (second.planned_start, second.planned_end) == (local(12, 10), local(12, 11))


def test_cancel_frees_the_slot_and_a_cancelled_session_cannot_move(client, world):
    session = plan(world, local(8, 19), local(8, 21))
    client.force_login(world.hq)

    cancelled = post(client, action="cancel", session=session.pk)
    again = post(client, action="move", session=session.pk, day="2030-03-09", start="19:00", end="20:00")
    replan = post(client, action="create", kind="store", title="改期", day="2030-03-08", start="19:00", end="21:00",
                  host_store="SA", platform="mini_program")

    assert cancelled.status_code == 302
    session.refresh_from_db()
    assert session.status == "cancelled"
    assert again.status_code == 409
    assert again.context["error"] == "只能修改计划中的场次；该场次已不在计划中。"
    assert replan.status_code == 302
    assert LiveSession.objects.filter(status="planned").count() == 1


def test_regional_manager_sees_the_week_read_only(client, world):
    plan(world, local(5, 19), local(5, 20), title="华东场")
    plan(world, local(5, 19), local(5, 20), store=world.store_b, title="华西场")
    manager = staff_user("region_manager", region=world.east)
    client.force_login(manager)

    page = client.get(URL, {"week": "2030-03-04"})
    refused = post(client, action="create", kind="store", title="越权", day="2030-03-08", start="19:00",
                   end="20:00", host_store="SA", platform="mini_program")

    assert page.status_code == 200
    assert [i["session"].title for i in page.context["days"][1]["sessions"]] == ["华东场"]
    assert page.context["can_plan"] is False
    assert "计划一场直播" not in page.content.decode()
    assert refused.status_code == 403
    assert LiveSession.objects.count() == 2


def test_another_brands_session_and_store_are_not_found(client, world):
    operator = staff_user("brand_operator", brand=world.other)
    foreign = plan(world, local(8, 19), local(8, 21))
    client.force_login(operator)

    move = post(client, brand="MB", action="move", session=foreign.pk, day="2030-03-09", start="19:00", end="20:00")
    create = post(client, brand="MB", action="create", kind="store", title="借店", day="2030-03-09", start="19:00",
                  end="20:00", host_store="SA", platform="mini_program")
    shown = client.get(URL, {"brand": "WA", "week": "2030-03-04"})  # not theirs: their own brand is shown

    assert move.status_code == 404
    assert create.status_code == 404
    assert shown.context["brand"] == world.other
    assert LiveSession.objects.count() == 1
    foreign.refresh_from_db()
    assert foreign.planned_start == local(8, 19)


def test_workbench_roles_go_to_their_own_schedule(client, world):
    client.force_login(staff_user("guide", guide=world.guide, store=world.store_a))
    assert client.get(URL)["Location"] == "/workbench/live/"


def test_session_move_service_refuses_outside_scope_and_for_non_schedulers(world):
    session = plan(world, local(8, 19), local(8, 21))
    manager = staff_user("region_manager", region=world.east)
    outsider = staff_user("brand_operator", brand=world.other)
    with pytest.raises(ApplicationError) as forbidden:
        session_move(session=session, planned_start=local(9, 19), planned_end=local(9, 20), actor=manager)
    with pytest.raises(ApplicationError) as missing:
        session_move(session=session, planned_start=local(9, 19), planned_end=local(9, 20), actor=outsider)
    assert (forbidden.value.status, forbidden.value.code) == (403, "schedule_forbidden")
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    session.refresh_from_db()
    assert timezone.localtime(session.planned_start).date() == dt.date(2030, 3, 8)
