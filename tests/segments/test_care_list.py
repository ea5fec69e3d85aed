"""segments.care: the care calendar, each guide's daily care list, marking items done, and the staff API.

The brand's calendar in these tests: cycle 45 days (per-brand override), care for 15 days after a purchase,
marketing from day 45 − 5 = 40, lapse at 2.00 × 45 = day 90. The list day is 2025-07-01.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import timezone, translation

from members.models import GuideBinding
from retail_crm.errors import ApplicationError
from segments.care import CareCalendar, care_calendar_for, care_decide, care_item_done, care_list_build
from segments.care_text import CareReason
from segments.models import CareItem, MemberRfm, RfmRun, SegmentationSettings
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

pytestmark = pytest.mark.django_db

DAY = dt.date(2025, 7, 1)


def rfm_row(member, brand, *, days_ago: int, segment: str = "general_value", stage: str = "growing"):
    """A member's current RFML row with the last purchase ``days_ago`` days before DAY."""
    return MemberRfm.objects.create(member=member, brand=brand, segment=segment, lifecycle_stage=stage,
                                    last_purchase_on=DAY - dt.timedelta(days=days_ago), frequency=1,
                                    monetary=Decimal("100.00"), purchases_total=1)


@pytest.fixture
def world():
    brand = BrandFactory(group=RetailGroupFactory(), code="womens")
    SegmentationSettings.objects.create(brand=brand, cycle_days=45, care_days=15, marketing_offset_days=5,
                                        lapse_factor=Decimal("2.00"))
    store = StoreFactory(region=RegionFactory(brand=brand))
    g1, g2 = GuideFactory(store=store, code="g1"), GuideFactory(store=store, code="g2")
    members = {}
    # code: (days since the last purchase, class, stage, bound guide)
    plan = {
        "m01": (1, "general_value", "new", g1),          # day 1 of care → care
        "m15": (15, "important_value", "growing", g1),   # last care day → care, important flagged
        "m16": (16, "general_value", "growing", g1),     # between care and marketing → nothing
        "m39": (39, "general_value", "growing", g1),     # day before marketing → nothing
        "m40": (40, "important_develop", "growing", g1),  # marketing day → market, important
        "m89": (89, "general_retain", "mature", g1),     # last day before the lapse point → market
        "m90": (90, "important_retain", "mature", g2),   # lapse point → winback, important (guide 2)
        "m00": (0, "general_value", "new", g1),          # bought today → nothing
        "lap": (400, "", "lapsed", g2),                  # lapsed class → winback, not important
        "unb": (1, "general_value", "new", None),        # no bound guide → not on any list
    }
    for code, (days_ago, segment, stage, guide) in plan.items():
        member = MemberFactory(group=brand.group, code=code)
        rfm_row(member, brand, days_ago=days_ago, segment=segment, stage=stage)
        if guide is not None:
            GuideBindingFactory(member=member, guide=guide)
        members[code] = member
    # An ended binding to g2 does not count: m01's list belongs to g1, its current guide.
    GuideBinding.objects.create(member=members["m01"], brand=brand, guide=g2, store=store,
                                started_at=timezone.now() - dt.timedelta(days=30),
                                ended_at=timezone.now() - dt.timedelta(days=20), reason="qr_scan")
    return SimpleNamespace(brand=brand, store=store, g1=g1, g2=g2, m=members)


def listed(brand, day=DAY) -> list[tuple]:
    return sorted((i.guide.code, i.member.code, i.kind, i.important) for i in
                  CareItem.objects.filter(brand=brand, day=day).select_related("guide", "member"))


def test_care_calendar_from_settings(world):
    assert care_calendar_for(world.brand) == CareCalendar(cycle_days=45, care_days=15, marketing_day=40,
                                                          lapse_day=90)


def test_care_calendar_from_the_latest_run_when_no_override():
    """Measured cycle 44.50 rounds half up to 45; lapse factor 1.50 → ⌈1.5 × 45⌉ = ⌈67.5⌉ = 68."""
    brand = BrandFactory(group=RetailGroupFactory())
    SegmentationSettings.objects.create(brand=brand, lapse_factor=Decimal("1.50"))
    RfmRun.objects.create(brand=brand, as_of=DAY, window_days=365, cycle_days=Decimal("44.50"),
                          started_at=timezone.now())
    assert care_calendar_for(brand) == CareCalendar(cycle_days=45, care_days=15, marketing_day=40, lapse_day=68)


def test_care_list_kinds_guides_and_important_flag(world):
    written = care_list_build(brand=world.brand, day=DAY)

    assert written == 6
    assert listed(world.brand) == [
        ("g1", "m01", "care", False),
        ("g1", "m15", "care", True),
        ("g1", "m40", "market", True),
        ("g1", "m89", "market", False),
        ("g2", "lap", "winback", False),
        ("g2", "m90", "winback", True),
    ]
    # Stored as a code and parameters; the words are rendered in the viewer's language.
    item = CareItem.objects.get(member=world.m["m40"])
    assert (item.reason, item.reason_code, item.reason_params) == ("", "due", {"days": 40, "cycle": 45})
    with translation.override("zh-hans"):
        assert (item.reason_text, item.action_text) == ("上次购买于 40 天前；消费周期 45 天", "亲自致电推荐合适的新品")
    with translation.override("en"):
        assert (item.reason_text, item.action_text) == ("Last purchase 40 days ago; cycle 45 days",
                                                        "Call in person with matching new arrivals")
    item = CareItem.objects.get(member=world.m["m01"])
    assert (item.reason_code, item.reason_params) == ("care_period", {"days": 1, "care": 15})
    with translation.override("zh-hans"):
        assert (item.reason_text, item.action_text) == ("1 天前购买；处于 15 天关怀期，不做营销",
                                                        "致谢并询问穿着是否合身；不做推销")
        assert CareItem.objects.get(member=world.m["lap"]).reason_text == "上次购买于 400 天前；消费周期 45 天；已流失"


def test_rebuild_replaces_open_items_and_keeps_done_ones(world):
    care_list_build(brand=world.brand, day=DAY)
    done = CareItem.objects.get(member=world.m["m40"])
    done.done_at = timezone.now()
    done.save()
    # m16 buys again yesterday-ish: its row now says 1 day → a new care item appears on rebuild.
    MemberRfm.objects.filter(member=world.m["m16"]).update(last_purchase_on=DAY - dt.timedelta(days=1))

    written = care_list_build(brand=world.brand, day=DAY)

    assert written == 6  # m01, m15, m16, m89, m90, lap; m40 is done and kept, not listed again
    assert listed(world.brand) == [
        ("g1", "m01", "care", False),
        ("g1", "m15", "care", True),
        ("g1", "m16", "care", False),
        ("g1", "m40", "market", True),
        ("g1", "m89", "market", False),
        ("g2", "lap", "winback", False),
        ("g2", "m90", "winback", True),
    ]
    assert CareItem.objects.get(member=world.m["m40"]).pk == done.pk
    assert care_list_build(brand=world.brand, day=DAY) == 6
    assert CareItem.objects.filter(brand=world.brand, day=DAY).count() == 7


def test_care_decide_without_a_cycle_only_cares_and_wins_back_lapsed():
    calendar = CareCalendar(cycle_days=None, care_days=15, marketing_day=None, lapse_day=None)
    assert care_decide(days_since=3, lapsed=False, important=False, calendar=calendar).kind == "care"
    assert care_decide(days_since=200, lapsed=False, important=False, calendar=calendar) is None
    decision = care_decide(days_since=500, lapsed=True, important=False, calendar=calendar)
    assert (decision.kind, decision.reason) == ("winback", "上次购买于 500 天前；RFML 统计窗口内无购买")


def test_done_records_service_on_the_binding(world):
    care_list_build(brand=world.brand, day=DAY)
    item = CareItem.objects.get(member=world.m["m01"])
    user = staff_user("guide", guide=world.g1)

    done = care_item_done(item=item, user=user, outcome="Fits well")

    binding = GuideBinding.objects.get(member=world.m["m01"], ended_at__isnull=True)
    assert (done.done_by, done.outcome) == (user, "Fits well")
    assert done.done_at is not None
    assert binding.last_served_at == done.done_at
    # A second tap keeps the first contact.
    again = care_item_done(item=item, user=user, outcome="other")
    assert (again.done_at, again.outcome) == (done.done_at, "Fits well")


def test_done_outside_scope_is_not_found_and_changes_nothing(world):
    care_list_build(brand=world.brand, day=DAY)
    item = CareItem.objects.get(member=world.m["m01"])
    other = staff_user("guide", guide=world.g2)

    with pytest.raises(ApplicationError) as caught:
        care_item_done(item=item, user=other)

    assert (caught.value.status, caught.value.code) == (404, "not_found")
    item.refresh_from_db()
    assert (item.done_at, item.done_by) == (None, None)
    assert GuideBinding.objects.get(member=world.m["m01"], ended_at__isnull=True).last_served_at is None


def test_care_lists_task(world, monkeypatch):
    from segments import tasks as rfm_tasks

    monkeypatch.setattr(rfm_tasks, "local_today", lambda: DAY)
    assert rfm_tasks.care_lists_build_today.delay().get() == {"womens": 6}


# ---------------------------------------------------------------------------- staff API

def test_care_items_api_guide_sees_own_list(api_client, world):
    care_list_build(brand=world.brand, day=DAY)
    api_client.force_authenticate(staff_user("guide", guide=world.g2))

    response = api_client.get("/api/v1/analytics/care-items/", {"day": "2025-07-01"})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [(r["member_code"], r["kind"], r["important"], r["guide"]) for r in body["results"]] == [
        ("m90", "winback", True, "g2"), ("lap", "winback", False, "g2")]
    assert body["results"][0]["reason"] == "上次购买于 90 天前；消费周期 45 天；已流失"


def test_care_items_api_manager_filters_and_errors(api_client, world):
    care_list_build(brand=world.brand, day=DAY)
    url = "/api/v1/analytics/care-items/"
    assert api_client.get(url, {"day": "2025-07-01"}).status_code == 401
    api_client.force_authenticate(staff_user("store_manager", store=world.store))
    body = api_client.get(url, {"day": "2025-07-01", "kind": "market", "brand": "womens"}).json()
    assert [r["member_code"] for r in body["results"]] == ["m40", "m89"]
    response = api_client.get(url, {"day": "01/07/2025"})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["day"]
    assert api_client.get(url, {"kind": "spam"}).status_code == 400
    assert api_client.get(url, {"brand": "nope"}).status_code == 400
    far = BrandFactory(group=world.brand.group, code="far")
    api_client.force_authenticate(staff_user("brand_operator", brand=far))
    assert api_client.get(url, {"brand": "womens"}).status_code == 404


def test_care_item_done_api(api_client, world):
    care_list_build(brand=world.brand, day=DAY)
    item = CareItem.objects.get(member=world.m["m01"])
    url = f"/api/v1/analytics/care-items/{item.pk}/done/"
    assert api_client.post(url, {}, format="json").status_code == 401

    api_client.force_authenticate(staff_user("guide", guide=world.g2))
    assert api_client.post(url, {"outcome": "x"}, format="json").status_code == 404
    assert api_client.post("/api/v1/analytics/care-items/999999/done/", {}, format="json").status_code == 404
    assert api_client.post(f"/api/v1/analytics/care-items/{2**70}/done/", {}, format="json").status_code == 404

    api_client.force_authenticate(staff_user("guide", guide=world.g1))
    response = api_client.post(url, {"outcome": "x" * 201}, format="json")
    assert (response.status_code, list(response.json()["error"]["fields"])) == (400, ["outcome"])
    response = api_client.post(url, {"outcome": "Called, coming Saturday"}, format="json")
    assert response.status_code == 200
    assert (response.json()["outcome"], response.json()["done_at"] is not None) == ("Called, coming Saturday", True)
    item.refresh_from_db()
    assert GuideBinding.objects.get(member=world.m["m01"], ended_at__isnull=True).last_served_at == item.done_at


def test_rebuild_keeps_the_items_a_campaign_handed_to_the_guide(world):
    # A campaign routed m16 (nothing due today) to g1 as a personal call; a rebuild later that day keeps it.
    handed = CareItem.objects.create(day=DAY, guide=world.g1, member=world.m["m16"], brand=world.brand,
                                     kind=CareItem.Kind.MARKET, reason_code=CareReason.CAMPAIGN, important=True)

    assert care_list_build(brand=world.brand, day=DAY) == 6
    assert care_list_build(brand=world.brand, day=DAY) == 6

    assert CareItem.objects.filter(brand=world.brand, day=DAY).count() == 7
    assert CareItem.objects.get(member=world.m["m16"]).pk == handed.pk
