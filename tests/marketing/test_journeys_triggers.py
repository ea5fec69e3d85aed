"""The favourite and RFML-class-entered journey triggers: who enters, with which key, and never twice.

Favourites: hand-made members of brand WA, times Shanghai local driven by an explicit ``now`` (2030-03-04 is a
Monday); favourites are stored by the real behaviour ingestion, the trigger read as the ``behaviour_recorded``
handler reads it.

Classes entered: by the daily scan over hand-made class-change rows, and by a same-day payment that moves a
member into an important class (the run of tests/segments/test_same_day.py: its member X is general_develop
after the run of 2025-06-30 and important_value after paying 400.00 on 2025-07-01).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.test import Client

from mall.checkout import LineRequest, order_create
from mall.models import Stock
from marketing.channels import fake
from marketing.journeys import (
    journey_entering_today,
    journey_preview,
    journeys_advance,
    journeys_behaviour_recorded,
    journeys_daily,
)
from marketing.models import Journey, JourneyEnrolment, JourneyStep, ReachRules
from members.events import event_batch_ingest
from retail_crm import events
from retail_crm.models import OutboxEvent
from segments import handlers
from segments.handlers import member_segments_after_order
from segments.models import MemberRfm, RfmClassChange, RfmRun, SegmentationSettings
from segments.rfm import rfm_recompute
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    MemberFactory,
    OrderFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
    staff_user,
)
from tests.factories_payments import ProductFactory, SkuFactory
from tests.marketing.pages_world import build_world

pytestmark = pytest.mark.django_db
SH = zoneinfo.ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2030, 3, day, hour, minute, tzinfo=SH)


@pytest.fixture(autouse=True)
def _clean_fake():
    fake.reset()
    yield
    fake.reset()


@pytest.fixture
def world():
    brand = BrandFactory(code="WA")
    store = StoreFactory(region=RegionFactory(brand=brand, code="east"), code="SA")
    members = []
    for n in range(1, 6):
        member = MemberFactory(group=brand.group, phone=f"+861380000000{n}")
        BrandMembershipFactory(member=member, brand=brand, store=store)
        members.append(member)
    sku = SkuFactory(product=ProductFactory(brand=brand, code="SHOE-1"), member_price=Decimal("199.00"))
    other = SkuFactory(product=ProductFactory(brand=brand, code="BAG-1"), member_price=Decimal("99.00"))
    for row in (sku, other):
        Stock.objects.create(sku=row, quantity=50)
    return type("World", (), dict(brand=brand, store=store, members=members, sku=sku, other=other))


def journey_of(brand, trigger, steps=(("wait", {"minutes": 60}),), **fields) -> Journey:
    journey = Journey.objects.create(group=brand.group, brand=brand, name=fields.pop("name", trigger),
                                     trigger=trigger, status="active", **fields)
    for position, (kind, params) in enumerate(steps):
        JourneyStep.objects.create(journey=journey, position=position, kind=kind, params=params)
    return journey


def favourite(world, member, product_id: int, when: dt.datetime) -> None:
    event_batch_ingest(items=[{"kind": "favourite", "brand": "WA", "object_type": "product",
                               "object_id": str(product_id), "occurred_at": when.isoformat(),
                               "client_event_id": f"fav-{member.pk}-{product_id}-{when.isoformat()}"}],
                       member=member, now=when)


def order(world, member, sku, when: dt.datetime):
    return order_create(member=member, lines=[LineRequest(sku_id=sku.pk, quantity=1)], at=when)


def keys(journey) -> list[tuple[int, str]]:
    return list(JourneyEnrolment.objects.filter(journey=journey).order_by("pk")
                .values_list("member_id", "trigger_key"))


# ---------------------------------------------------------------------------- favourites

def test_a_favourite_without_an_order_since_enters_once_per_product_and_day(world):
    journey = journey_of(world.brand, "favourite", reentry="every_time")
    m1, m2, m3, m4, _m5 = world.members
    shoe = world.sku.product_id
    favourite(world, m1, shoe, at(4, 9))  # m1: favourited, never ordered → enters
    favourite(world, m2, shoe, at(4, 9))  # m2: ordered it half an hour after → not
    order(world, m2, world.sku, at(4, 9, 30))
    order(world, m3, world.sku, at(3, 9))  # m3: ordered it the day before favouriting it again → enters
    favourite(world, m3, shoe, at(4, 9))
    favourite(world, m4, shoe, at(2, 9))  # m4: two days ago, outside the default last 1 day → not
    order(world, m1, world.other, at(4, 9, 40))  # another product does not count
    payloads = list(OutboxEvent.objects.filter(name="behaviour_recorded").values_list("payload", flat=True))
    assert [p["member_ids"] for p in payloads] == [[m1.pk], [m2.pk], [m3.pk], [m4.pk]]
    batch = [m1.pk, m2.pk, m3.pk, m4.pk]

    assert journey_preview(journey=journey, now=at(4, 10)).count == 2
    first = journeys_behaviour_recorded(brand_id=world.brand.pk, member_ids=batch, now=at(4, 10))
    again = journeys_behaviour_recorded(brand_id=world.brand.pk, member_ids=batch, now=at(4, 18))
    assert (first, again) == (2, 0)  # the same day: the same key, entered once
    assert keys(journey) == [(m1.pk, f"favourite:{shoe}:2030-03-04"), (m3.pk, f"favourite:{shoe}:2030-03-04")]
    # The next morning the favourites of 03-04 09:00 are still within the last day: a new day's key.
    assert journeys_behaviour_recorded(brand_id=world.brand.pk, member_ids=[m1.pk], now=at(5, 8)) == 1
    assert keys(journey)[-1] == (m1.pk, f"favourite:{shoe}:2030-03-05")
    # Two days later nothing is within the last day.
    assert journeys_behaviour_recorded(brand_id=world.brand.pk, member_ids=batch, now=at(6, 10)) == 0


def test_a_favourite_restricted_to_products_and_the_check_reads_the_product_from_the_key(world):
    ReachRules.objects.create(group=world.brand.group, quiet_start="00:00", quiet_end="00:00")
    steps = (("wait", {"minutes": 60}), ("check", {"condition": "ordered_product_since_entry", "expect": False}),
             ("wait", {"minutes": 60}))
    bags = journey_of(world.brand, "favourite", name="bags", trigger_params={"product_ids": [world.other.product_id]})
    shoes = journey_of(world.brand, "favourite", name="shoes", steps=steps,
                       trigger_params={"days": 3, "product_ids": [world.sku.product_id]})
    m1, m2 = world.members[:2]
    favourite(world, m1, world.sku.product_id, at(2, 9))  # within 3 days of 03-04 10:00
    favourite(world, m2, world.sku.product_id, at(4, 9))

    assert journeys_behaviour_recorded(brand_id=world.brand.pk, member_ids=[m1.pk, m2.pk], now=at(4, 10)) == 2
    assert keys(bags) == []
    assert [member for member, _key in keys(shoes)] == [m1.pk, m2.pk]
    order(world, m1, world.sku, at(4, 10, 30))  # m1 orders the shoe after entering; m2 orders the bag
    order(world, m2, world.other, at(4, 10, 30))
    journeys_advance(now=at(4, 10))
    journeys_advance(now=at(4, 11))
    rows = dict(JourneyEnrolment.objects.filter(journey=shoes).values_list("member_id", "exit_reason"))
    assert rows == {m1.pk: "check_failed", m2.pk: ""}


# ---------------------------------------------------------------------------- classes entered: the daily scan

def test_the_daily_scan_enters_class_changes_into_the_chosen_classes_once(world):
    journey = journey_of(world.brand, "class_entered", reentry="every_time",
                         trigger_params={"classes": ["important_value", "important_winback"]})
    run = RfmRun.objects.create(brand=world.brand, as_of=dt.date(2030, 3, 3), window_days=365,
                                started_at=at(3, 2))
    m1, m2, m3, m4, m5 = world.members
    rows = [
        (m1, "general_value", "important_value", dt.date(2030, 3, 2), "important_value"),  # enters
        (m2, "general_value", "important_retain", dt.date(2030, 3, 3), "important_retain"),  # not a chosen class
        (m3, "general_value", "important_value", dt.date(2030, 2, 25), "important_value"),  # 7 days ago: too old
        (m4, "important_value", "important_winback", dt.date(2030, 3, 3), "general_winback"),  # left it again
        (m5, "important_value", "important_value", dt.date(2030, 3, 3), "important_value"),  # a stage change only
    ]
    for member, was, now_in, on, current in rows:
        RfmClassChange.objects.create(member=member, brand=world.brand, run=run, from_segment=was,
                                      to_segment=now_in, from_stage="active", to_stage="active", changed_on=on)
        MemberRfm.objects.create(member=member, brand=world.brand, segment=current, lifecycle_stage="active")

    assert journey_preview(journey=journey, now=at(4, 8)).count == 1
    first = journeys_daily(now=at(4, 8, 30))
    second = journeys_daily(now=at(5, 8, 30))
    assert (first.entered, second.entered) == (1, 0)
    assert keys(journey) == [(m1.pk, "class:important_value:2030-03-02")]


# ---------------------------------------------------------------------------- classes entered: same day

RUN_DAY, TODAY = dt.date(2025, 6, 30), dt.date(2025, 7, 1)


def local(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SH)


@pytest.fixture
def rfml(monkeypatch):
    """tests/segments/test_same_day.py's brand and run: A important_develop, B general_retain, C
    important_winback, D general_winback, X general_develop after the run of 2025-06-30."""
    monkeypatch.setattr(handlers, "local_today", lambda: TODAY)
    brand = BrandFactory(group=RetailGroupFactory(), code="womens")
    SegmentationSettings.objects.create(brand=brand, cycle_days=30, care_days=15, marketing_offset_days=5)
    members = {code: MemberFactory(group=brand.group, code=code) for code in "ABCDX"}
    for code, day, paid in (("A", "2025-06-20", "300.00"), ("B", "2025-05-11", "100.00"),
                            ("B", "2025-06-10", "100.00"), ("C", "2025-05-31", "500.00"),
                            ("D", "2025-04-01", "50.00"), ("X", "2025-06-25", "80.00")):
        OrderFactory(brand=brand, member=members[code], ordered_at=local(f"{day} 12:00"),
                     total_amount=Decimal(paid), paid_amount=Decimal(paid))
    rfm_recompute(brand=brand, as_of=RUN_DAY)
    return brand, members


def test_a_same_day_payment_into_an_important_class_enters_within_the_event_and_the_scan_adds_nobody(rfml):
    brand, members = rfml
    x = members["X"]
    journey = journey_of(brand, "class_entered", reentry="every_time",
                         trigger_params={"classes": ["important_value"]})
    assert dict(MemberRfm.objects.filter(brand=brand).values_list("member__code", "segment")) == {
        "A": "important_develop", "B": "general_retain", "C": "important_winback", "D": "general_winback",
        "X": "general_develop"}
    assert not OutboxEvent.objects.filter(name="rfml_class_changed").exists()  # the nightly run records none

    OrderFactory(brand=brand, member=x, ordered_at=local("2025-07-01 10:00"), total_amount=Decimal("400.00"),
                 paid_amount=Decimal("400.00"))
    member_segments_after_order(member_id=x.pk, brand_id=brand.pk)
    member_segments_after_order(member_id=x.pk, brand_id=brand.pk)  # delivered twice: no second change

    [row] = OutboxEvent.objects.filter(name="rfml_class_changed")
    assert row.payload == {"member_id": x.pk, "brand_id": brand.pk, "from_segment": "general_develop",
                           "to_segment": "important_value", "on": "2025-07-01"}
    assert events.deliver(event_id=row.pk, handler="marketing.handlers.journeys_rfml_class_changed") is True
    assert keys(journey) == [(x.pk, "class:important_value:2025-07-01")]

    # The next morning's scan finds the same change (dated 07-01): the same key, nobody enters twice.
    assert journey_entering_today(journey=journey, now=local("2025-07-02 08:30")) == [x.pk]
    assert journeys_daily(now=local("2025-07-02 08:30")).entered == 0
    assert keys(journey) == [(x.pk, "class:important_value:2025-07-01")]


def test_a_class_change_into_a_class_the_journey_did_not_choose_enters_nobody(rfml):
    brand, members = rfml
    journey = journey_of(brand, "class_entered", trigger_params={"classes": ["general_winback"]})
    OrderFactory(brand=brand, member=members["X"], ordered_at=local("2025-07-01 10:00"),
                 total_amount=Decimal("400.00"), paid_amount=Decimal("400.00"))
    member_segments_after_order(member_id=members["X"].pk, brand_id=brand.pk)
    [row] = OutboxEvent.objects.filter(name="rfml_class_changed")
    events.deliver(event_id=row.pk, handler="marketing.handlers.journeys_rfml_class_changed")
    assert keys(journey) == []


# ---------------------------------------------------------------------------- the editor

NEW = "/hq/marketing/journeys/new/"


@pytest.fixture
def w():
    world = build_world()
    world.operator = staff_user("brand_operator", brand=world.wa, username="op-wa")
    return world


@pytest.fixture
def zh(w) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(w.operator)
    return client


def editor(w, **changes) -> dict:
    data = {"name": "旅程", "brand": str(w.wa.pk), "trigger": "order_unpaid", "views": "", "days": "",
            "product_codes": "", "days_before": "", "favourite_days": "", "reentry": "once", "reentry_days": "",
            "holdout_percent": "10", "exit_on_conversion": "on", "conversion_days": "7", "action": "save",
            "steps": "1", "s0-kind": "wait", "s0-wait_amount": "2", "s0-wait_unit": "hours"}
    data.update(changes)
    return data


def test_the_editor_saves_a_favourite_trigger_and_shows_its_errors_in_chinese(w, zh):
    shoe = ProductFactory(brand=w.wa, code="SHOE-1")
    bad = zh.post(NEW, editor(w, name="收藏", trigger="favourite", favourite_days="31", days="7"))
    assert bad.status_code == 400
    assert {k: list(v) for k, v in bad.context["form"].errors.items()} == {
        "favourite_days": ["请填写 1 到 30 之间的整数。"]}
    page = bad.content.decode()
    assert page.count('name="product_codes"') == 1  # shown once for both triggers that use it
    assert 'data-for-trigger="product_views favourite"' in page

    response = zh.post(NEW, editor(w, name="收藏", trigger="favourite", favourite_days="2", product_codes="SHOE-1",
                                   steps="2", **{"s1-kind": "check", "s1-condition": "ordered_product_since_entry",
                                                 "s1-expect": "false"}))
    assert response.status_code == 302
    journey = Journey.objects.get()
    assert (journey.trigger, journey.trigger_params) == ("favourite", {"days": 2, "product_ids": [shoe.pk]})
    assert [step.params for step in journey.steps.order_by("position")] == [
        {"minutes": 120}, {"condition": "ordered_product_since_entry", "expect": False}]
    assert "检查：进入后已下单触发的商品？" in zh.get(f"/hq/marketing/journeys/{journey.pk}/").content.decode()
    rows = zh.get("/hq/marketing/journeys/").context["rows"]
    assert [r["trigger"] for r in rows] == ["收藏商品后未下单该商品：2 天内（1 个商品）"]
    edit = zh.get(f"/hq/marketing/journeys/{journey.pk}/edit/")
    assert (edit.context["form"].initial["favourite_days"], edit.context["form"].initial["product_codes"]) == (
        2, "SHOE-1")


def test_the_editor_saves_a_class_entered_trigger_and_asks_for_a_class_in_chinese(w, zh):
    bad = zh.post(NEW, editor(w, name="升级", trigger="class_entered"))
    assert bad.status_code == 400
    assert {k: list(v) for k, v in bad.context["form"].errors.items()} == {"classes": ["请选择一个或多个 RFML 分类。"]}
    assert not Journey.objects.exists()

    response = zh.post(NEW, editor(w, name="升级", trigger="class_entered",
                                   classes=["general_winback", "important_value"]))
    assert response.status_code == 302
    journey = Journey.objects.get()
    assert journey.trigger_params == {"classes": ["important_value", "general_winback"]}
    page = zh.get(f"/hq/marketing/journeys/{journey.pk}/")
    assert page.context["trigger"] == "进入 RFML 分类（重要客户或挽留客户）：重要价值、一般挽留"
    assert (page.context["preview"].basis, page.context["preview"].count) == ("today", 0)
    edit = zh.get(f"/hq/marketing/journeys/{journey.pk}/edit/")
    assert edit.context["form"].initial["classes"] == ["important_value", "general_winback"]
