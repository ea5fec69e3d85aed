"""Behaviour tags (members.behaviour_tags): rules over event windows written as tags with source behaviour.

Times are in the group time zone Asia/Shanghai (UTC+8, no daylight saving). The reference day is
20 May 2024: a 14-day window then covers the local days 7–20 May, i.e. [2024-05-06T16:00Z, 2024-05-20T16:00Z).
On 21 May it covers 8–21 May, so an event of 7 May drops out.

The sneaker rule: "Interested in sneakers" = at least 3 product views of products of the category 运动鞋
in 14 days. The brand's products: S1 and S2 are 运动鞋 (sneakers), T1 is 卫衣 (a sweatshirt).
"""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone, translation
from rest_framework.test import APIClient

from mall.models import Product
from members import tasks as member_tasks
from members.auth import member_token_issue
from members.behaviour_tags import brand_behaviour_tags_recompute, members_behaviour_tags_recompute
from members.models import BehaviourEvent, BehaviourTagRule, EventKind, MemberTag, TagSource
from members.tag_labels import TagReason
from members.tags import brand_tags_recompute, member_tag_assign, tag_group_get_or_create, tag_value_get_or_create
from retail_crm.schedule import BEAT_SCHEDULE
from tests.factories import BrandFactory, BrandMembershipFactory, MemberFactory, RetailGroupFactory, staff_user

pytestmark = pytest.mark.django_db

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
TODAY = dt.date(2024, 5, 20)


@pytest.fixture(autouse=True)
def shanghai(settings):
    settings.TIME_ZONE = "Asia/Shanghai"


def local(day: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    """A local time in May 2024."""
    return dt.datetime(2024, 5, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
def shop():
    return make_shop()


def make_shop():
    grp = RetailGroupFactory(code="grp")
    brand = BrandFactory(code="RUN", group=grp)
    other = BrandFactory(code="TEA", group=grp)
    for code, category in (("S1", "运动鞋"), ("S2", "运动鞋"), ("T1", "卫衣")):
        Product.objects.create(brand=brand, code=code, name=code, category=category)
    # The other brand also has a product S1, a sneaker: its views are that brand's, not ours.
    Product.objects.create(brand=other, code="S1", name="S1", category="运动鞋")
    interests = tag_group_get_or_create(group=grp, brand=brand, code="interests", name="Interests",
                                        multi_valued=True)
    sneakers = tag_value_get_or_create(tag_group=interests, code="sneakers", name="Sneakers")
    rule = BehaviourTagRule.objects.create(brand=brand, tag_value=sneakers, name="Interested in sneakers",
                                           kind=EventKind.PRODUCT_VIEW, categories="运动鞋", min_count=3,
                                           window_days=14)
    people = {}
    for name in ("ann", "bob", "cat"):
        people[name] = MemberFactory(group=grp, code=name.upper())
        BrandMembershipFactory(member=people[name], brand=brand)
    return SimpleNamespace(grp=grp, brand=brand, other=other, interests=interests, sneakers=sneakers, rule=rule,
                           m=SimpleNamespace(**people))


def event(shop, member, at: dt.datetime, product: str = "S1", kind: str = EventKind.PRODUCT_VIEW, brand=None):
    return BehaviourEvent.objects.create(brand=brand or shop.brand, member=member, kind=kind, occurred_at=at,
                                         object_type="product", object_id=product)


def behaviour_tags() -> list[tuple[str, str, str, str, dict, dict]]:
    """(member code, value code, source, reason code, reason params, evidence) of every member tag, sorted."""
    rows = MemberTag.objects.select_related("member", "tag_value").order_by("member__code", "tag_value__code")
    return [(r.member.code, r.tag_value.code, r.source, r.reason_code, r.reason_params, r.evidence)
            for r in rows]


def sneaker_tag(shop, member_code: str, count: int) -> tuple:
    return (member_code, "sneakers", "behaviour", TagReason.BEHAVIOUR_WINDOW,
            {"rule": "Interested in sneakers", "kind": "product_view", "count": count, "days": 14},
            {"rule": shop.rule.pk, "count": count})


def counts(result) -> tuple[int, int, int, int, int]:
    return result.created, result.updated, result.deleted, result.members, result.rules


# ---------------------------------------------------------------------------- the rule

def test_three_sneaker_views_in_14_days_give_the_tag_two_do_not(shop):
    # Ann: S1 on 7 May 00:30 (the window's first day), S2 on 12 May, S1 on 20 May 23:50 (its last minute): 3.
    for at, product in ((local(7, 0, 30), "S1"), (local(12), "S2"), (local(20, 23, 50), "S1")):
        event(shop, shop.m.ann, at, product)
    # Bob: two sneaker views in the window, one on 6 May (the day before it) and one on 21 May (after): 2.
    for at in (local(6, 23, 59), local(8), local(15), local(21, 0, 0)):
        event(shop, shop.m.bob, at)

    result = brand_behaviour_tags_recompute(shop.brand, today=TODAY)

    assert behaviour_tags() == [sneaker_tag(shop, "ANN", 3)]
    assert counts(result) == (1, 0, 0, 1, 1)
    row = MemberTag.objects.get(member=shop.m.ann)
    assert row.source == TagSource.BEHAVIOUR and row.reason == ""
    with translation.override("en"):
        assert row.reason_text == "Interested in sneakers: product view 3 times in the last 14 days"
    with translation.override("zh-hans"):
        assert row.reason_text == "Interested in sneakers：近 14 天浏览商品 3 次"


def test_views_of_other_products_other_kinds_and_other_brands_do_not_count(shop):
    # Cat: two sneaker views, plus a sweatshirt view, a sneaker favourite, a view without a product and a
    # view of the other brand's S1 (a sneaker there): still 2 that count.
    event(shop, shop.m.cat, local(10), "S1")
    event(shop, shop.m.cat, local(11), "S2")
    event(shop, shop.m.cat, local(12), "T1")
    event(shop, shop.m.cat, local(13), "S1", kind=EventKind.FAVOURITE)
    BehaviourEvent.objects.create(brand=shop.brand, member=shop.m.cat, kind=EventKind.PRODUCT_VIEW,
                                  occurred_at=local(14), object_type="page", object_id="S1")
    event(shop, shop.m.cat, local(15), "S1", brand=shop.other)

    result = brand_behaviour_tags_recompute(shop.brand, today=TODAY)

    assert behaviour_tags() == []
    assert counts(result) == (0, 0, 0, 0, 1)
    # One more sneaker view makes 3.
    event(shop, shop.m.cat, local(16), "S2")
    brand_behaviour_tags_recompute(shop.brand, today=TODAY)
    assert behaviour_tags() == [sneaker_tag(shop, "CAT", 3)]


def test_product_codes_and_an_upper_bound(shop):
    """A rule on product codes counts only those products; with ``max_count`` 2, exactly 1 or 2 views tag."""
    rule = shop.rule
    rule.categories, rule.product_codes, rule.min_count, rule.max_count = "", "T1", 1, 2
    rule.save()
    event(shop, shop.m.ann, local(10), "T1")  # Ann: 1 view of T1 → tagged
    for day in (10, 11, 12):  # Bob: 3 views of T1 → above the bound, not tagged
        event(shop, shop.m.bob, local(day), "T1")
    for day in (10, 11, 12):  # Cat: sneakers only → 0 views of T1
        event(shop, shop.m.cat, local(day), "S1")

    brand_behaviour_tags_recompute(shop.brand, today=TODAY)

    assert [(r[0], r[1], r[5]["count"]) for r in behaviour_tags()] == [("ANN", "sneakers", 1)]


# ---------------------------------------------------------------------------- windows passing

def test_the_nightly_run_removes_the_tag_once_the_window_has_passed(shop):
    for at in (local(7, 0, 30), local(12), local(20, 23, 50)):
        event(shop, shop.m.ann, at)
    brand_behaviour_tags_recompute(shop.brand, today=TODAY)
    assert behaviour_tags() == [sneaker_tag(shop, "ANN", 3)]

    # 21 May: the window is 8–21 May, the view of 7 May is out: 2 views, the tag goes.
    result = member_tasks.behaviour_tags_recompute_all_brands.delay("2024-05-21").get()

    assert result == {"brands": 2}
    assert behaviour_tags() == []
    # A new view on 21 May makes 3 again (12, 20, 21 May); it lasts until the 12 May view leaves on 26 May.
    event(shop, shop.m.ann, local(21, 9))
    member_tasks.behaviour_tags_recompute_brand.delay(shop.brand.pk, "2024-05-21").get()
    assert behaviour_tags() == [sneaker_tag(shop, "ANN", 3)]
    member_tasks.behaviour_tags_recompute_brand.delay(shop.brand.pk, "2024-05-25").get()
    assert behaviour_tags() == [sneaker_tag(shop, "ANN", 3)]
    member_tasks.behaviour_tags_recompute_brand.delay(shop.brand.pk, "2024-05-26").get()
    assert behaviour_tags() == []


def test_a_fourth_view_updates_the_reason_and_a_rerun_writes_nothing(shop):
    for day in (10, 11, 12):
        event(shop, shop.m.ann, local(day))
    first = brand_behaviour_tags_recompute(shop.brand, today=TODAY)
    assigned_at = MemberTag.objects.get(member=shop.m.ann).assigned_at
    again = brand_behaviour_tags_recompute(shop.brand, today=TODAY)

    assert counts(first) == (1, 0, 0, 1, 1)
    assert counts(again) == (0, 0, 0, 1, 1)

    event(shop, shop.m.ann, local(13))
    fourth = brand_behaviour_tags_recompute(shop.brand, today=TODAY)

    assert counts(fourth) == (0, 1, 0, 1, 1)
    assert behaviour_tags() == [sneaker_tag(shop, "ANN", 4)]
    assert MemberTag.objects.get(member=shop.m.ann).assigned_at == assigned_at  # held since the third view


def test_a_switched_off_rule_loses_its_tags(shop):
    for day in (10, 11, 12):
        event(shop, shop.m.ann, local(day))
    brand_behaviour_tags_recompute(shop.brand, today=TODAY)
    BehaviourTagRule.objects.filter(pk=shop.rule.pk).update(is_active=False)

    result = brand_behaviour_tags_recompute(shop.brand, today=TODAY)

    assert counts(result) == (0, 0, 1, 0, 0)
    assert behaviour_tags() == []


# ---------------------------------------------------------------------------- other sources

def test_a_manual_tag_of_the_same_value_survives_and_no_behaviour_row_is_added(shop):
    manual = member_tag_assign(member=shop.m.ann, tag_value=shop.sneakers, reason="runs marathons")
    for day in (10, 11, 12):
        event(shop, shop.m.ann, local(day))

    result = brand_behaviour_tags_recompute(shop.brand, today=TODAY)
    assert counts(result) == (0, 0, 0, 1, 1)
    assert behaviour_tags() == [("ANN", "sneakers", "manual", "", {}, {})]

    # The window passes: the manual tag is the operator's and stays.
    brand_behaviour_tags_recompute(shop.brand, today=dt.date(2024, 6, 30))
    assert behaviour_tags() == [("ANN", "sneakers", "manual", "", {}, {})]
    manual.refresh_from_db()
    assert manual.reason == "runs marathons"


def test_an_operator_confirming_a_behaviour_tag_takes_it_out_of_the_windows_hands(shop):
    for day in (10, 11, 12):
        event(shop, shop.m.ann, local(day))
    brand_behaviour_tags_recompute(shop.brand, today=TODAY)
    member_tag_assign(member=shop.m.ann, tag_value=shop.sneakers, reason="confirmed on the phone")

    brand_behaviour_tags_recompute(shop.brand, today=dt.date(2024, 6, 30))

    assert behaviour_tags() == [("ANN", "sneakers", "manual", "", {}, {})]


def test_rule_tag_recomputes_leave_behaviour_tags_alone(shop):
    for day in (10, 11, 12):
        event(shop, shop.m.ann, local(day))
    brand_behaviour_tags_recompute(shop.brand, today=TODAY)

    brand_tags_recompute(shop.brand)

    assert behaviour_tags() == [sneaker_tag(shop, "ANN", 3)]


# ---------------------------------------------------------------------------- scope

def test_scope_is_per_brand_and_per_member(shop):
    # The other brand's own rule on the same kind of views, on its own tag group.
    tea = tag_group_get_or_create(group=shop.grp, brand=shop.other, code="interests", name="Interests",
                                  multi_valued=True)
    tea_sneakers = tag_value_get_or_create(tag_group=tea, code="sneakers", name="Sneakers")
    BehaviourTagRule.objects.create(brand=shop.other, tag_value=tea_sneakers, name="Tea sneakers",
                                    kind=EventKind.PRODUCT_VIEW, categories="运动鞋", min_count=3, window_days=14)
    BrandMembershipFactory(member=shop.m.bob, brand=shop.other)
    for day in (10, 11, 12):
        event(shop, shop.m.ann, local(day))  # ours
        event(shop, shop.m.bob, local(day), brand=shop.other)  # theirs
    # Dan views sneakers three times but has not joined the brand: not tagged.
    dan = MemberFactory(group=shop.grp, code="DAN")
    for day in (10, 11, 12):
        event(shop, dan, local(day))

    ours = brand_behaviour_tags_recompute(shop.brand, today=TODAY)
    assert counts(ours) == (1, 0, 0, 1, 1)
    theirs = brand_behaviour_tags_recompute(shop.other, today=TODAY)
    assert counts(theirs) == (1, 0, 0, 1, 1)
    tagged = sorted(MemberTag.objects.values_list("member__code", "tag_value__tag_group__brand__code"))
    assert tagged == [("ANN", "RUN"), ("BOB", "TEA")]

    # A run for some members only touches those members: Ann's window passes, but only Bob is recomputed.
    result = members_behaviour_tags_recompute(brand=shop.brand, member_ids=[shop.m.bob.pk],
                                              today=dt.date(2024, 6, 30))
    assert counts(result) == (0, 0, 0, 0, 1)
    assert sorted(MemberTag.objects.values_list("member__code", flat=True)) == ["ANN", "BOB"]
    # The other brand's nightly run never removes ours.
    brand_behaviour_tags_recompute(shop.other, today=dt.date(2024, 6, 30))
    assert sorted(MemberTag.objects.values_list("member__code", flat=True)) == ["ANN"]


# ---------------------------------------------------------------------------- kept current from events

def recent(minutes: int) -> str:
    return (timezone.now() - dt.timedelta(minutes=minutes)).isoformat()


def view(product: str, minutes: int) -> dict:
    return {"kind": "product_view", "occurred_at": recent(minutes), "brand": "RUN", "object_type": "product",
            "object_id": product}


def test_events_through_the_api_update_the_senders_tags_after_commit(shop, django_capture_on_commit_callbacks):
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.credentials(HTTP_AUTHORIZATION=f"Member {member_token_issue(member=shop.m.ann)}")
    # Bob already holds the tag: a batch of Ann's leaves him alone even though it is recomputed per member.
    for minutes in (30, 40, 50):
        BehaviourEvent.objects.create(brand=shop.brand, member=shop.m.bob, kind=EventKind.PRODUCT_VIEW,
                                      occurred_at=timezone.now() - dt.timedelta(minutes=minutes),
                                      object_type="product", object_id="S1")
    brand_behaviour_tags_recompute(shop.brand)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post("/api/v1/mp/events/", {"events": [view("S1", 20), view("S2", 10), view("T1", 5)]},
                               format="json")
    assert response.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
    assert len(callbacks) == 1
    # Ann: 2 sneaker views (S1, S2; T1 is a sweatshirt): not yet.
    assert [(r[0], r[5]["count"]) for r in behaviour_tags()] == [("BOB", 3)]

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/api/v1/mp/events/", {"events": [view("S2", 1)]}, format="json")

    assert [(r[0], r[2], r[5]["count"]) for r in behaviour_tags()] == [("ANN", "behaviour", 3),
                                                                        ("BOB", "behaviour", 3)]


def test_anonymous_batches_record_nothing_and_brands_without_rules_tag_nothing(shop,
                                                                             django_capture_on_commit_callbacks):
    from retail_crm.models import OutboxEvent

    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    with django_capture_on_commit_callbacks(execute=True) as anonymous:
        client.post("/api/v1/mp/events/", {"events": [{**view("S1", 5), "visitor_id": "v-1"}]}, format="json")
    assert (len(anonymous), OutboxEvent.objects.count()) == (0, 0)

    client.credentials(HTTP_AUTHORIZATION=f"Member {member_token_issue(member=shop.m.ann)}")
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/api/v1/mp/events/", {"events": [{**view("S1", 5), "brand": "TEA"}]}, format="json")

    # The member's batch is recorded for its subscribers (journeys react to it); TEA has no behaviour rule.
    tea = shop.brand.group.brands.get(code="TEA")
    assert list(OutboxEvent.objects.values_list("name", "payload")) == [
        ("behaviour_recorded", {"brand_id": tea.pk, "member_ids": [shop.m.ann.pk]})]
    assert BehaviourEvent.objects.count() == 2
    assert behaviour_tags() == []


def test_the_event_subscriber_follows_merges(shop):
    from members.handlers import behaviour_tags_after_events
    from members.models import Member

    for minutes in (10, 20, 30):
        BehaviourEvent.objects.create(brand=shop.brand, member=shop.m.cat, kind=EventKind.PRODUCT_VIEW,
                                      occurred_at=timezone.now() - dt.timedelta(minutes=minutes),
                                      object_type="product", object_id="S1")
    Member.objects.filter(pk=shop.m.ann.pk).update(merged_into=shop.m.cat)

    behaviour_tags_after_events(brand_id=shop.brand.pk, member_ids=[shop.m.ann.pk])

    assert [(r[0], r[2], r[5]["count"]) for r in behaviour_tags()] == [("CAT", "behaviour", 3)]


def test_the_nightly_task_is_on_the_beat_schedule():
    entry = BEAT_SCHEDULE["members-behaviour-tags-nightly"]
    assert entry["task"] == member_tasks.behaviour_tags_recompute_all_brands.name
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({0}, {5})


# ---------------------------------------------------------------------------- admin

def rule_form(shop, **overrides) -> dict:
    data = {"brand": shop.brand.pk, "tag_value": shop.sneakers.pk, "name": "Loves sneakers", "is_active": "on",
            "kind": "product_view", "product_codes": "", "categories": "运动鞋", "min_count": "3", "max_count": "",
            "window_days": "14"}
    return {**data, **overrides}


def test_brand_operator_adds_a_behaviour_rule_in_the_admin(shop, client):
    client.force_login(staff_user("brand_operator", brand=shop.brand))

    response = client.post("/admin/members/behaviourtagrule/add/", rule_form(shop))

    assert response.status_code == 302
    rule = BehaviourTagRule.objects.get(name="Loves sneakers")
    assert (rule.brand, rule.tag_value, rule.kind, rule.categories, rule.min_count, rule.max_count,
            rule.window_days) == (shop.brand, shop.sneakers, "product_view", "运动鞋", 3, None, 14)

    # Refused with the field named: a single-valued group's value, max below min, a 31-day window, both filters.
    single = tag_value_get_or_create(
        tag_group=tag_group_get_or_create(group=shop.grp, brand=shop.brand, code="mood", name="Mood"), code="x")
    for overrides, fields in (({"tag_value": single.pk}, {"tag_value"}),
                              ({"max_count": "2"}, {"max_count"}),
                              ({"window_days": "31"}, {"window_days"}),
                              ({"product_codes": "S1"}, {"categories"})):
        response = client.post("/admin/members/behaviourtagrule/add/", rule_form(shop, name="Bad", **overrides))
        assert response.status_code == 200
        assert set(response.context["adminform"].form.errors) == fields, overrides
    assert not BehaviourTagRule.objects.filter(name="Bad").exists()


def test_the_admin_is_scoped_to_the_brand_and_reads_in_chinese(shop, client):
    tea = tag_group_get_or_create(group=shop.grp, brand=shop.other, code="interests", name="Interests",
                                  multi_valued=True)
    BehaviourTagRule.objects.create(brand=shop.other, tag_value=tag_value_get_or_create(tag_group=tea, code="tea"),
                                    name="Tea lover", min_count=1, window_days=7)
    client.force_login(staff_user("brand_operator", brand=shop.brand))

    changelist = client.get("/admin/members/behaviourtagrule/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    form = client.get("/admin/members/behaviourtagrule/add/", HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert [rule.name for rule in changelist.context["cl"].result_list] == ["Interested in sneakers"]
    body = changelist.content.decode()
    assert "行为标签规则" in body and "统计窗口（天）" in body and "至少（次）" in body
    assert list(form.context["adminform"].form.fields["tag_value"].queryset) == [shop.sneakers]


def test_guide_cannot_change_behaviour_rules(shop, client):
    from tests.factories import GuideFactory, RegionFactory, StoreFactory

    guide = GuideFactory(store=StoreFactory(region=RegionFactory(brand=shop.brand)))
    client.force_login(staff_user("guide", guide=guide))
    response = client.post(f"/admin/members/behaviourtagrule/{shop.rule.pk}/change/", rule_form(shop, name="X"))
    assert response.status_code == 403
    shop.rule.refresh_from_db()
    assert shop.rule.name == "Interested in sneakers"


# ---------------------------------------------------------------------------- concurrency (PostgreSQL)

@pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                    reason="concurrency tests need PostgreSQL (set DATABASE_URL)")
@pytest.mark.django_db(transaction=True)
def test_concurrent_member_runs_and_a_nightly_run_write_one_row():
    """Two batches of one member recomputed at once (shared lock) plus the brand's nightly run (exclusive):
    each reads, diffs and writes; the member ends with one behaviour row and nothing fails."""
    shop = make_shop()
    for day in (10, 11, 12):
        event(shop, shop.m.ann, local(day))
    barrier = threading.Barrier(3)

    def member_run():
        try:
            barrier.wait(timeout=10)
            return counts(members_behaviour_tags_recompute(brand=shop.brand, member_ids=[shop.m.ann.pk],
                                                           today=TODAY))
        finally:
            connection.close()

    def brand_run():
        try:
            barrier.wait(timeout=10)
            return counts(brand_behaviour_tags_recompute(shop.brand, today=TODAY))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(member_run), pool.submit(member_run), pool.submit(brand_run)]
        results = [f.result(timeout=60) for f in futures]
    # Whoever ran first created the row; the runs that waited for the lock found it (the brand run waits
    # for the member runs or they for it; two member runs may both insert, one insert being ignored).
    assert sum(r[0] for r in results) in (1, 2)
    assert behaviour_tags() == [sneaker_tag(shop, "ANN", 3)]
