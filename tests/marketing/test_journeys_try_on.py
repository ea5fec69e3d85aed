"""The try-on journey: "tried shoes on in the store and didn't buy: push the product link half an hour later".

A guide records the try-on through the workbench's service (guides.services.try_on_record, which writes the
behaviour event and records ``try_on_recorded``); the event is handed to the journey handler with
``retail_crm.events.deliver`` as the relay would; the executor runs with explicit ``now`` values. Times are
Shanghai local on 2030-03-04 (a Monday).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from guides.services import try_on_record
from mall.checkout import LineRequest, order_create
from mall.models import OrderStatus, Stock
from marketing.channels import fake
from marketing.journeys import journeys_advance
from marketing.models import Delivery, Journey, JourneyEnrolment, JourneyStep
from retail_crm import events
from retail_crm.models import OutboxEvent
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    GuideFactory,
    MemberFactory,
    RegionFactory,
    StoreFactory,
)
from tests.factories_payments import ProductFactory, SkuFactory

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
LINK = "https://m.example.cn/p/SH-01"
CONTENT = {"sms": {"template": "SMS_TRYON", "params": {"name": "{name}", "link": "{link}"}}}


def at(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2030, 3, 4, hour, minute, tzinfo=SH)


@pytest.fixture(autouse=True)
def _clean_fake():
    fake.reset()
    yield
    fake.reset()


@pytest.fixture
def world():
    brand = BrandFactory(code="WA")
    store = StoreFactory(region=RegionFactory(brand=brand, code="east"), code="SA")
    guide = GuideFactory(store=store, code="g1")
    member = MemberFactory(group=brand.group, phone="+8613800000001", name="王丽")
    BrandMembershipFactory(member=member, brand=brand, store=store)
    shoe = SkuFactory(product=ProductFactory(brand=brand, code="SH-01"), member_price=Decimal("399.00"))
    boot = SkuFactory(product=ProductFactory(brand=brand, code="BT-02"), member_price=Decimal("599.00"))
    for sku in (shoe, boot):
        Stock.objects.create(sku=sku, quantity=20)
    return type("World", (), dict(brand=brand, store=store, guide=guide, member=member, shoe=shoe, boot=boot))


def try_on_journey(world, *, exit_on_conversion: bool = True) -> Journey:
    journey = Journey.objects.create(group=world.brand.group, brand=world.brand, name="试穿未购", trigger="try_on",
                                     status="active", reentry="every_time", exit_on_conversion=exit_on_conversion)
    steps = [("wait", {"minutes": 30}),
             ("check", {"condition": "ordered_product_since_entry", "expect": False}),
             ("send", {"channels": ["sms"], "content": CONTENT, "link": LINK})]
    for position, (kind, params) in enumerate(steps):
        JourneyStep.objects.create(journey=journey, position=position, kind=kind, params=params)
    return journey


def tried_on(world, when, code="SH-01"):
    event = try_on_record(member=world.member, brand_id=world.brand.pk, product_code=code, guide=world.guide,
                          store=world.store, at=when)
    for row in OutboxEvent.objects.filter(name="try_on_recorded", payload__event_id=event.pk):
        events.deliver(event_id=row.pk, handler="marketing.handlers.journeys_try_on_recorded")
    return event


def buy(world, sku, when, *, pay: bool = True):
    order = order_create(member=world.member, lines=[LineRequest(sku_id=sku.pk, quantity=1)], at=when)
    if pay:
        order.status, order.paid_at, order.paid_amount = OrderStatus.PAID, when, order.total_amount
        order.save(update_fields=["status", "paid_at", "paid_amount"])
        row = events.record("order_paid", order_id=order.pk, member_id=order.member_id, brand_id=order.brand_id)
        events.deliver(event_id=row.pk, handler="marketing.handlers.journeys_order_paid")
    return order


def run_until(end: dt.datetime, start: dt.datetime) -> None:
    moment = start
    while moment <= end:
        journeys_advance(now=moment)
        moment += dt.timedelta(minutes=5)


def journey_messages():
    return list(Delivery.objects.filter(source__startswith="journey:").order_by("pk"))


def test_a_try_on_at_14_00_without_a_purchase_queues_the_product_link_at_14_30(world):
    journey = try_on_journey(world)
    event = tried_on(world, at(14, 0))

    enrolment = JourneyEnrolment.objects.get()
    assert (enrolment.journey_id, enrolment.trigger_key, enrolment.entered_at) == (
        journey.pk, f"try_on:{event.pk}:SH-01", at(14, 0))
    run_until(at(14, 25), at(14, 0))
    assert journey_messages() == []
    run_until(at(15, 0), at(14, 30))

    [message] = journey_messages()
    enrolment.refresh_from_db()
    assert (message.channel, message.status, message.planned_at, message.content) == (
        "sms", "queued", at(14, 30), {"template": "SMS_TRYON", "params": {"name": "王丽", "link": LINK}})
    assert message.source == (f"journey:{journey.pk}/step:{journey.steps.get(position=2).pk}"
                              f"/enrolment:{enrolment.pk}")
    assert (enrolment.status, enrolment.exit_reason) == ("completed", "")
    assert list(enrolment.logs.order_by("step__position").values_list("outcome", "at", "detail")) == [
        ("waited", at(14, 30), "until 2030-03-04T06:30:00+00:00"),
        ("passed", at(14, 30), "ordered_product_since_entry=False"),
        ("sent", at(14, 30), "sms")]


def test_bought_at_14_10_nothing_is_sent_and_the_member_converted(world):
    try_on_journey(world)
    tried_on(world, at(14, 0))
    journeys_advance(now=at(14, 0))
    buy(world, world.shoe, at(14, 10))
    run_until(at(15, 0), at(14, 5))

    enrolment = JourneyEnrolment.objects.get()
    assert journey_messages() == []
    assert (enrolment.status, enrolment.exit_reason, enrolment.converted_at) == (
        "converted", "converted", at(14, 10))


def test_the_check_stops_a_member_who_ordered_the_tried_product_even_unpaid(world):
    try_on_journey(world, exit_on_conversion=False)
    tried_on(world, at(14, 0))
    buy(world, world.shoe, at(14, 10), pay=False)
    run_until(at(15, 0), at(14, 0))

    enrolment = JourneyEnrolment.objects.get()
    assert journey_messages() == []
    assert (enrolment.status, enrolment.exit_reason) == ("exited", "check_failed")
    assert enrolment.logs.get(step__position=1).detail == "ordered_product_since_entry=True"


def test_an_order_of_another_product_does_not_stop_the_product_link(world):
    try_on_journey(world, exit_on_conversion=False)
    tried_on(world, at(14, 0))
    buy(world, world.boot, at(14, 10))
    run_until(at(15, 0), at(14, 0))

    [message] = journey_messages()
    assert message.planned_at == at(14, 30)


def test_the_same_try_on_delivered_twice_enrols_once_and_each_try_on_enters(world):
    try_on_journey(world)
    event = tried_on(world, at(14, 0))
    row = OutboxEvent.objects.get(name="try_on_recorded", payload__event_id=event.pk)
    from marketing.journeys import journeys_try_on_recorded

    again = journeys_try_on_recorded(**{k: row.payload[k] for k in
                                        ("event_id", "member_id", "brand_id", "product_code", "at")})
    tried_on(world, at(16, 0), code="BT-02")

    assert again == 0
    assert list(JourneyEnrolment.objects.order_by("entered_at").values_list("trigger_key", flat=True)) == [
        f"try_on:{event.pk}:SH-01", f"try_on:{event.pk + 1}:BT-02"]
