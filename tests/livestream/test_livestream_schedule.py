"""livestream scheduling (排班): validation, store and guide conflicts, transitions, scope, week plan.

Every refused call is checked for its exact status, code and message, and for leaving no new session.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from livestream.models import LiveSession
from livestream.selectors import store_schedule
from livestream.services import session_cancel, session_end, session_schedule, session_start
from retail_crm.errors import ApplicationError
from retail_crm.scoping import actor_for
from tests.factories import BrandFactory, GuideFactory, RegionFactory, StoreFactory, staff_user
from tests.factories_payments import ProductFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
MONDAY = dt.date(2024, 3, 4)


def at(hour: int, day: int = 0, minute: int = 0) -> dt.datetime:
    """Local (Shanghai) time on the test week's Monday + ``day``."""
    return dt.datetime(2024, 3, 4 + day, hour, minute, tzinfo=SH)


def make_org():
    """One brand, one region, stores SA and SB with a guide each, and an HQ actor."""
    brand = BrandFactory()
    region = RegionFactory(brand=brand)
    store_a = StoreFactory(region=region, code="SA")
    store_b = StoreFactory(region=region, code="SB")
    guide = GuideFactory(store=store_a, code="ga")
    guide_b = GuideFactory(store=store_b, code="gb")
    hq = actor_for(staff_user("hq", group=brand.group))
    return type("Org", (), dict(brand=brand, region=region, store_a=store_a, store_b=store_b, guide=guide,
                                guide_b=guide_b, hq=hq))


@pytest.fixture
def org():
    return make_org()


def plan(org, start, end, *, store=None, guide=None, kind="store", title="Spring dresses", actor=None, **kw):
    store = org.store_a if store is None and kind == "store" else store
    return session_schedule(brand=org.brand, kind=kind, title=title, planned_start=start, planned_end=end,
                            host_store=store, host_guide=guide, actor=actor or org.hq, **kw)


def refused(call) -> tuple[int, str, str, dict]:
    before = LiveSession.objects.count()
    with pytest.raises(ApplicationError) as exc_info:
        call()
    assert LiveSession.objects.count() == before
    exc = exc_info.value
    return exc.status, exc.code, exc.message, exc.fields


# ---------------------------------------------------------------------------- scheduling

def test_schedule_store_session_with_guide_and_products(org):
    p1, p2 = ProductFactory(brand=org.brand), ProductFactory(brand=org.brand)
    s = plan(org, at(19), at(21), guide=org.guide, product_ids=[p2.pk, p1.pk, p1.pk], platform="video_channel")
    s.refresh_from_db()
    assert (s.kind, s.status, s.host_store_id, s.host_guide_id, s.platform) == (
        "store", "planned", org.store_a.pk, org.guide.pk, "video_channel")
    assert (s.planned_start, s.planned_end, s.actual_start, s.actual_end) == (at(19), at(21), None, None)
    assert sorted(s.products.values_list("pk", flat=True)) == sorted([p1.pk, p2.pk])


def test_brand_operator_schedules_hq_central_and_store_session_follows_it(org):
    op = actor_for(staff_user("brand_operator", brand=org.brand))
    central = plan(org, at(20), at(22), kind="hq_central", title="HQ launch", actor=op)
    follower = plan(org, at(20), at(22), follows=central, actor=op)
    assert (central.kind, central.host_store_id, follower.follows_id) == ("hq_central", None, central.pk)
    assert list(central.followers.all()) == [follower]


@pytest.mark.parametrize("start,end", [(at(21), at(19)), (at(19), at(19))])
def test_end_must_be_after_start(org, start, end):
    msg = "The planned end must be after the planned start."
    assert refused(lambda: plan(org, start, end)) == (400, "invalid", msg, {"planned_end": [msg]})


def test_store_session_needs_host_store(org):
    msg = "A store session needs a host store."
    assert refused(lambda: session_schedule(brand=org.brand, kind="store", title="x", planned_start=at(19),
                                            planned_end=at(20), actor=org.hq)) == (
        400, "invalid", msg, {"host_store": [msg]})


def test_store_of_another_brand_is_refused(org):
    other_store = StoreFactory(region=RegionFactory(brand=BrandFactory(group=org.brand.group)))
    msg = "The host store belongs to another brand."
    assert refused(lambda: plan(org, at(19), at(20), store=other_store)) == (
        400, "invalid", msg, {"host_store": [msg]})


def test_guide_must_work_in_the_host_store(org):
    msg = "The host guide does not work in the host store."
    assert refused(lambda: plan(org, at(19), at(20), guide=org.guide_b)) == (
        400, "invalid", msg, {"host_guide": [msg]})


def test_guide_who_left_cannot_host(org):
    org.guide.left_at = dt.date(2024, 3, 1)
    org.guide.save()
    msg = "The host guide has left."
    assert refused(lambda: plan(org, at(19), at(20), guide=org.guide)) == (400, "invalid", msg, {"host_guide": [msg]})


def test_hq_central_has_no_host_store(org):
    msg = "An HQ central session has no host store."
    assert refused(lambda: plan(org, at(19), at(20), kind="hq_central", store=org.store_a)) == (
        400, "invalid", msg, {"host_store": [msg]})


def test_follows_must_be_hq_central_of_same_brand(org):
    store_session = plan(org, at(10), at(11), store=org.store_b)
    msg = "A store session can only follow an HQ central session."
    assert refused(lambda: plan(org, at(19), at(20), follows=store_session)) == (
        400, "invalid", msg, {"follows": [msg]})

    other_brand = BrandFactory(group=org.brand.group)
    foreign = session_schedule(brand=other_brand, kind="hq_central", title="other", planned_start=at(19),
                               planned_end=at(20), actor=org.hq)
    msg = "The followed session belongs to another brand."
    assert refused(lambda: plan(org, at(19), at(20), follows=foreign)) == (400, "invalid", msg, {"follows": [msg]})

    central = plan(org, at(19), at(20), kind="hq_central")
    msg = "Only a store session can follow an HQ central session."
    assert refused(lambda: plan(org, at(19), at(20), kind="hq_central", follows=central)) == (
        400, "invalid", msg, {"follows": [msg]})


def test_unknown_kind_platform_title_and_foreign_products_are_400(org):
    foreign_product = ProductFactory(brand=BrandFactory(group=org.brand.group))
    assert refused(lambda: plan(org, at(19), at(20), kind="tv"))[3] == {"kind": ["Unknown kind 'tv'."]}
    assert refused(lambda: plan(org, at(19), at(20), platform="tv"))[3] == {"platform": ["Unknown platform 'tv'."]}
    assert refused(lambda: plan(org, at(19), at(20), title="  "))[3] == {"title": ["A title is required."]}
    assert refused(lambda: plan(org, at(19), at(20), product_ids=[foreign_product.pk]))[3] == {
        "product_ids": [f"Unknown products for this brand: [{foreign_product.pk}]."]}


# ---------------------------------------------------------------------------- conflicts

def test_store_overlap_is_409_naming_the_session(org):
    first = plan(org, at(19), at(21), title="Evening")
    status, code, message, fields = refused(lambda: plan(org, at(20, minute=30), at(22)))
    assert (status, code, fields) == (409, "store_busy", {})
    assert message == (f'Store SA already has session "Evening" (#{first.pk}, 2024-03-04T11:00:00+00:00 – '
                       f"2024-03-04T13:00:00+00:00) at that time.")


@pytest.mark.parametrize("start,end", [(at(18), at(19, minute=1)), (at(20, minute=59), at(23)), (at(19), at(21)),
                                       (at(19, minute=30), at(20)), (at(18), at(22))])
def test_every_kind_of_store_overlap_is_refused(org, start, end):
    plan(org, at(19), at(21))
    assert refused(lambda: plan(org, start, end))[:2] == (409, "store_busy")


def test_touching_ends_are_allowed(org):
    plan(org, at(19), at(21))
    before = plan(org, at(17), at(19))
    after = plan(org, at(21), at(23))
    assert LiveSession.objects.filter(host_store=org.store_a).count() == 3
    assert (before.planned_end, after.planned_start) == (at(19), at(21))


def test_other_store_same_time_is_fine(org):
    plan(org, at(19), at(21))
    plan(org, at(19), at(21), store=org.store_b)
    assert LiveSession.objects.count() == 2


def test_guide_overlap_across_two_stores_is_409(org):
    # The guide moved from store A to store B after hosting a session there; B cannot book them at that time.
    first = plan(org, at(19), at(21), guide=org.guide, title="A night")
    org.guide.store = org.store_b
    org.guide.save()
    status, code, message, _ = refused(lambda: plan(org, at(20), at(22), store=org.store_b, guide=org.guide))
    assert (status, code) == (409, "guide_busy")
    assert message == (f'Guide ga already hosts session "A night" (#{first.pk}, 2024-03-04T11:00:00+00:00 – '
                       f"2024-03-04T13:00:00+00:00) at that time.")


def test_guide_hosting_hq_session_cannot_host_overlapping_store_session(org):
    plan(org, at(19), at(21), kind="hq_central", guide=org.guide)
    assert refused(lambda: plan(org, at(20), at(22), guide=org.guide))[:2] == (409, "guide_busy")
    # Without the guide the store itself is free.
    assert plan(org, at(20), at(22)).host_guide_id is None


def test_cancelled_sessions_are_ignored(org):
    first = plan(org, at(19), at(21), guide=org.guide)
    session_cancel(first)
    second = plan(org, at(19), at(21), guide=org.guide)
    assert list(LiveSession.objects.order_by("pk").values_list("status", flat=True)) == ["cancelled", "planned"]
    assert second.host_guide_id == org.guide.pk


def test_ended_sessions_still_block_their_planned_time(org):
    first = plan(org, at(19), at(21))
    session_start(first, at(19))
    session_end(first, at(20))
    assert refused(lambda: plan(org, at(20, minute=30), at(22)))[:2] == (409, "store_busy")


# ---------------------------------------------------------------------------- scope

@pytest.mark.parametrize("role", ["region_manager", "store_manager", "guide"])
def test_only_hq_and_brand_operators_schedule(org, role):
    scope = {"region_manager": {"region": org.region}, "store_manager": {"store": org.store_a},
             "guide": {"guide": org.guide}}[role]
    actor = actor_for(staff_user(role, **scope))
    assert refused(lambda: plan(org, at(19), at(20), actor=actor)) == (
        403, "schedule_forbidden", "Only HQ or brand operators can schedule live sessions.", {})


def test_brand_operator_of_another_brand_gets_404(org):
    other_op = actor_for(staff_user("brand_operator", brand=BrandFactory(group=org.brand.group)))
    assert refused(lambda: plan(org, at(19), at(20), actor=other_op))[:3] == (404, "not_found", "No such brand.")


def test_store_outside_scope_is_404(org):
    foreign_brand = BrandFactory(group=org.brand.group)
    op = actor_for(staff_user("brand_operator", brand=foreign_brand))
    assert refused(lambda: session_schedule(brand=foreign_brand, kind="store", title="x", planned_start=at(19),
                                            planned_end=at(20), host_store=org.store_a, actor=op))[:3] == (
        404, "not_found", "No such store.")


def test_hq_of_another_group_gets_404(org):
    from tests.factories import RetailGroupFactory

    other_hq = actor_for(staff_user("hq", group=RetailGroupFactory(code="other")))
    assert refused(lambda: plan(org, at(19), at(20), actor=other_hq))[:3] == (404, "not_found", "No such brand.")


# ---------------------------------------------------------------------------- transitions

def test_planned_live_ended(org):
    s = plan(org, at(19), at(21))
    s = session_start(s, at(19, minute=2))
    assert (s.status, s.actual_start, s.actual_end) == ("live", at(19, minute=2), None)
    s = session_end(s, at(21, minute=15))
    s.refresh_from_db()
    assert (s.status, s.actual_start, s.actual_end) == ("ended", at(19, minute=2), at(21, minute=15))


def test_invalid_transitions_are_409(org):
    s = plan(org, at(19), at(21))
    with pytest.raises(ApplicationError) as e:
        session_end(s, at(20))
    assert (e.value.status, e.value.code, e.value.message) == (
        409, "invalid_transition", f"Cannot end session #{s.pk}: it is planned.")
    session_start(s, at(19))
    for call, action in ((lambda: session_start(s, at(19)), "start"), (lambda: session_cancel(s), "cancel")):
        with pytest.raises(ApplicationError) as e:
            call()
        assert (e.value.status, e.value.message) == (409, f"Cannot {action} session #{s.pk}: it is live.")
    with pytest.raises(ApplicationError) as e:
        session_end(s, at(18))
    assert (e.value.status, e.value.fields) == (400, {"at": ["A session cannot end before it started."]})
    session_end(s, at(21))
    with pytest.raises(ApplicationError) as e:
        session_start(s, at(22))
    assert e.value.message == f"Cannot start session #{s.pk}: it is ended."
    s.refresh_from_db()
    assert (s.status, s.actual_start, s.actual_end) == ("ended", at(19), at(21))


def test_cancelled_session_cannot_start(org):
    s = session_cancel(plan(org, at(19), at(21)))
    with pytest.raises(ApplicationError) as e:
        session_start(s, at(19))
    assert (e.value.status, e.value.message) == (409, f"Cannot start session #{s.pk}: it is cancelled.")


# ---------------------------------------------------------------------------- week plan

def test_store_schedule_returns_the_local_week(org):
    sunday_before = plan(org, at(23, day=-1), at(23, day=-1, minute=59))
    monday_early = plan(org, at(0, minute=30), at(1, minute=30), title="Monday early")
    wednesday = plan(org, at(19, day=2), at(21, day=2), title="Wednesday")
    cancelled = session_cancel(plan(org, at(10, day=3), at(11, day=3), title="Thursday"))
    sunday_late = plan(org, at(22, day=6), at(23, day=6), title="Sunday")
    next_monday = plan(org, at(0, day=7), at(1, day=7))
    plan(org, at(19, day=2), at(21, day=2), store=org.store_b)  # another store
    got = list(store_schedule(actor=org.hq, store=org.store_a, week_start=MONDAY))
    assert got == [monday_early, wednesday, cancelled, sunday_late]
    assert sunday_before not in got and next_monday not in got


def test_store_schedule_scope(org):
    plan(org, at(19), at(21))
    manager = actor_for(staff_user("store_manager", store=org.store_a))
    assert [s.title for s in store_schedule(actor=manager, store=org.store_a, week_start=MONDAY)] == [
        "Spring dresses"]
    other_manager = actor_for(staff_user("store_manager", store=org.store_b))
    with pytest.raises(ApplicationError) as e:
        store_schedule(actor=other_manager, store=org.store_a, week_start=MONDAY)
    assert (e.value.status, e.value.message) == (404, "No such store.")


def test_follower_inherits_hq_products_unless_given_its_own(org):
    p1, p2, p3 = (ProductFactory(brand=org.brand) for _ in range(3))
    central = plan(org, at(20), at(22), kind="hq_central", product_ids=[p1.pk, p2.pk])
    inherited = plan(org, at(20), at(22), follows=central)
    own = plan(org, at(20), at(22), store=org.store_b, follows=central, product_ids=[p3.pk])
    assert sorted(inherited.products.values_list("pk", flat=True)) == sorted([p1.pk, p2.pk])
    assert list(own.products.values_list("pk", flat=True)) == [p3.pk]
