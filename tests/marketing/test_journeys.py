"""marketing.journeys: triggers enrol once, the executor waits, checks and acts through the reach rules.

Hand-made members; times are Shanghai local, driven by explicit ``now`` (2030-03-04 is a Monday). Events are
recorded by the real services (order creation, the cart, joining, behaviour ingestion) and handed to the
journey handlers with ``retail_crm.events.deliver``, as the relay would.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from mall.checkout import LineRequest, cart_set, order_create
from mall.models import Coupon, CouponTemplate, OrderStatus, Stock
from marketing.channels import fake
from marketing.journeys import (
    is_held_out,
    journey_enrol,
    journey_results,
    journeys_advance,
    journeys_daily,
)
from marketing.models import Delivery, Journey, JourneyEnrolment, JourneyStep, JourneyStepLog
from marketing.selectors import member_journeys
from marketing.services import deliveries_dispatch, message_send
from members.events import event_batch_ingest
from members.services import membership_join
from retail_crm import events
from retail_crm.models import Guide, OutboxEvent
from segments.models import CareItem, MemberRfm
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    GuideBindingFactory,
    GuideFactory,
    MemberFactory,
    RegionFactory,
    StoreFactory,
)
from tests.factories_payments import ProductFactory, SkuFactory

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
SMS = {"sms": {"template": "SMS_PAY", "params": {"name": "{name}"}}}


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
    member = MemberFactory(group=brand.group, phone="+8613800000001", name="王丽")
    BrandMembershipFactory(member=member, brand=brand, store=store)
    sku = SkuFactory(product=ProductFactory(brand=brand), member_price=Decimal("199.00"))
    Stock.objects.create(sku=sku, quantity=50)
    return type("World", (), dict(brand=brand, store=store, member=member, sku=sku))


def journey_of(world, trigger="order_unpaid", steps=(), **fields) -> Journey:
    journey = Journey.objects.create(group=world.brand.group, brand=world.brand, name=fields.pop("name", trigger),
                                     trigger=trigger, status="active", **fields)
    for position, (kind, params) in enumerate(steps):
        JourneyStep.objects.create(journey=journey, position=position, kind=kind, params=params)
    return journey


UNPAID_STEPS = (("wait", {"minutes": 30}),
                ("check", {"condition": "paid_since_entry", "expect": False}),
                ("send", {"channels": ["sms"], "content": SMS}))


def deliver_all(name: str, handler: str) -> list[bool]:
    return [events.deliver(event_id=row.pk, handler=handler) for row in OutboxEvent.objects.filter(name=name)]


def create_order(world, when, member=None):
    order = order_create(member=member or world.member, lines=[LineRequest(sku_id=world.sku.pk, quantity=1)], at=when)
    deliver_all("order_created", "marketing.handlers.journeys_order_created")
    return order


def pay(order, when):
    order.status, order.paid_at, order.paid_amount = OrderStatus.PAID, when, order.total_amount
    order.save(update_fields=["status", "paid_at", "paid_amount"])
    row = events.record("order_paid", order_id=order.pk, member_id=order.member_id, brand_id=order.brand_id)
    events.deliver(event_id=row.pk, handler="marketing.handlers.journeys_order_paid")


def journey_deliveries():
    return list(Delivery.objects.filter(source__startswith="journey:").order_by("pk"))


# ---------------------------------------------------------------------------- the unpaid order

def test_unpaid_for_30_minutes_queues_exactly_one_reminder_at_minute_30(world):
    journey = journey_of(world, steps=UNPAID_STEPS)
    order = create_order(world, at(4, 10))

    enrolment = JourneyEnrolment.objects.get()
    assert (enrolment.trigger_key, enrolment.entered_at, enrolment.next_run_at) == (
        f"order:{order.pk}", at(4, 10), at(4, 10))
    journeys_advance(now=at(4, 10, 0))
    journeys_advance(now=at(4, 10, 29))
    assert journey_deliveries() == []
    journeys_advance(now=at(4, 10, 30))
    journeys_advance(now=at(4, 10, 31))

    [reminder] = journey_deliveries()
    enrolment.refresh_from_db()
    assert (reminder.channel, reminder.status, reminder.planned_at, reminder.content) == (
        "sms", "queued", at(4, 10, 30), {"template": "SMS_PAY", "params": {"name": "王丽"}})
    assert reminder.source == f"journey:{journey.pk}/step:{journey.steps.get(position=2).pk}/enrolment:{enrolment.pk}"
    assert (enrolment.status, enrolment.position, enrolment.next_run_at) == ("completed", 3, None)
    assert list(enrolment.logs.order_by("step__position").values_list("outcome", "at")) == [
        ("waited", at(4, 10, 30)), ("passed", at(4, 10, 30)), ("sent", at(4, 10, 30))]


def test_paid_at_minute_20_sends_nothing_and_the_member_exits_converted(world):
    journey_of(world, steps=UNPAID_STEPS)
    order = create_order(world, at(4, 10))
    journeys_advance(now=at(4, 10, 1))
    pay(order, at(4, 10, 20))
    result = journeys_advance(now=at(4, 10, 30))

    enrolment = JourneyEnrolment.objects.get()
    assert journey_deliveries() == []
    assert result.advanced == 0  # nothing due any more
    assert (enrolment.status, enrolment.exit_reason, enrolment.converted_at) == (
        "converted", "converted", at(4, 10, 20))


def test_the_check_exits_a_member_who_paid_when_the_journey_does_not_exit_on_conversion(world):
    journey_of(world, steps=UNPAID_STEPS, exit_on_conversion=False)
    order = create_order(world, at(4, 10))
    pay(order, at(4, 10, 20))
    journeys_advance(now=at(4, 10, 30))

    enrolment = JourneyEnrolment.objects.get()
    assert journey_deliveries() == []
    assert (enrolment.status, enrolment.exit_reason, enrolment.converted_at) == (
        "exited", "check_failed", at(4, 10, 20))


def test_a_journey_send_at_22_00_waits_for_09_00(world):
    journey_of(world, steps=UNPAID_STEPS)
    create_order(world, at(4, 21, 30))
    journeys_advance(now=at(4, 22, 0))

    [reminder] = journey_deliveries()
    assert (reminder.status, reminder.send_after) == ("waiting", at(5, 9))
    assert deliveries_dispatch(now=at(4, 22, 1)).sent == 0
    assert deliveries_dispatch(now=at(5, 9)).sent == 1


def test_a_member_at_the_cap_is_held_with_the_reason(world):
    journey_of(world, steps=UNPAID_STEPS)
    for day in (2, 3):  # two marketing messages in the 7 days before: the default cap is 2
        message_send(member=world.member, brand=world.brand, kind="marketing", channels=["sms"],
                     source=f"campaign:{day}/run:1", content=SMS, at=at(day, 10))
    create_order(world, at(4, 10))
    journeys_advance(now=at(4, 10, 30))

    [reminder] = journey_deliveries()
    log = JourneyStepLog.objects.get(outcome="held")
    assert (reminder.status, reminder.hold_reason) == ("held", "frequency_cap")
    assert (log.delivery_id, log.detail) == (reminder.pk, "frequency_cap")
    [figures] = [s for s in journey_results(journey=Journey.objects.get()).steps if s.kind == "send"]
    assert (figures.entered, figures.acted, figures.held) == (1, 0, {"frequency_cap": 1})


# ---------------------------------------------------------------------------- entering

def test_the_same_event_delivered_twice_enrols_once(world):
    journey = journey_of(world, steps=UNPAID_STEPS, reentry="every_time")
    order = create_order(world, at(4, 10))
    again = deliver_all("order_created", "marketing.handlers.journeys_order_created")
    from marketing.journeys import journeys_order_created

    journeys_order_created(order_id=order.pk)  # a handler run twice (a redelivery racing the first)
    assert again == [False]
    assert JourneyEnrolment.objects.filter(journey=journey).count() == 1


def test_cart_additions_record_an_event_and_re_entry_is_once_ever_or_once_per_7_days(world):
    once = journey_of(world, "cart_abandoned", name="once", reentry="once", steps=(("wait", {"minutes": 120}),))
    weekly = journey_of(world, "cart_abandoned", name="weekly", reentry="per_period", reentry_days=7,
                        steps=(("wait", {"minutes": 120}),))
    every = journey_of(world, "cart_abandoned", name="every", reentry="every_time",
                       steps=(("wait", {"minutes": 120}),))
    cart_set(member=world.member, sku=world.sku, quantity=1)
    [row] = OutboxEvent.objects.filter(name="cart_item_added")
    assert set(row.payload) == {"member_id", "brand_id", "sku_id", "at"}
    assert (row.payload["member_id"], row.payload["brand_id"]) == (world.member.pk, world.brand.pk)

    from marketing.handlers import journeys_cart_item_added

    for moment in (at(1, 10), at(3, 10), at(8, 10, 1), at(8, 10, 1)):  # the last one delivered twice
        journeys_cart_item_added(member_id=world.member.pk, brand_id=world.brand.pk, sku_id=world.sku.pk,
                                 at=moment.isoformat())

    def entries(journey):
        return list(JourneyEnrolment.objects.filter(journey=journey).order_by("entered_at")
                    .values_list("entered_at", flat=True))

    assert entries(once) == [at(1, 10)]
    assert entries(weekly) == [at(1, 10), at(8, 10, 1)]  # the 3rd is within 7 days of the 1st
    assert entries(every) == [at(1, 10), at(3, 10), at(8, 10, 1)]


def test_a_new_membership_records_member_joined_and_the_member_enters_once(world):
    journey = journey_of(world, "member_joined", steps=(("send", {"channels": ["sms"], "content": SMS}),))
    newcomer = MemberFactory(group=world.brand.group, phone="+8613800000009")
    membership_join(member=newcomer, brand=world.brand, channel="store_qr", joined_at=at(4, 11))
    membership_join(member=newcomer, brand=world.brand, channel="store_qr", joined_at=at(4, 12))  # no new event
    assert deliver_all("member_joined", "marketing.handlers.journeys_member_joined") == [True]
    journeys_advance(now=at(4, 11))

    enrolment = JourneyEnrolment.objects.get(journey=journey)
    assert (enrolment.member_id, enrolment.entered_at, enrolment.status) == (newcomer.pk, at(4, 11), "completed")
    assert [d.member_id for d in journey_deliveries()] == [newcomer.pk]


def test_product_viewed_3_times_in_7_days_without_an_order_enters(world):
    journey = journey_of(world, "product_views", trigger_params={"views": 3, "days": 7},
                         steps=(("send", {"channels": ["sms"], "content": SMS}),))
    buyer = MemberFactory(group=world.brand.group, phone="+8613800000002")
    BrandMembershipFactory(member=buyer, brand=world.brand, store=world.store)
    product = str(world.sku.product_id)
    now = at(4, 12)

    def views(member, times, day):
        return [{"kind": "product_view", "brand": "WA", "object_type": "product", "object_id": product,
                 "occurred_at": at(day, 10, n).isoformat(), "client_event_id": f"{member.pk}-{day}-{n}"}
                for n in range(times)]

    event_batch_ingest(items=views(world.member, 2, 4), member=world.member, now=now)
    event_batch_ingest(items=views(world.member, 1, 2) + views(world.member, 1, 3), member=world.member, now=now)
    event_batch_ingest(items=views(buyer, 3, 4), member=buyer, now=now)
    create_order(world, at(3, 9), member=buyer)  # the buyer ordered the product within the window
    rows = list(OutboxEvent.objects.filter(name="behaviour_recorded").values_list("payload", flat=True))
    assert rows == [{"brand_id": world.brand.pk, "member_ids": [world.member.pk]}] * 2 + [
        {"brand_id": world.brand.pk, "member_ids": [buyer.pk]}]

    from marketing.journeys import journeys_behaviour_recorded

    first = journeys_behaviour_recorded(brand_id=world.brand.pk, member_ids=[world.member.pk, buyer.pk], now=now)
    again = journeys_behaviour_recorded(brand_id=world.brand.pk, member_ids=[world.member.pk], now=now)
    assert (first, again) == (1, 0)
    enrolment = JourneyEnrolment.objects.get(journey=journey)
    assert (enrolment.member_id, enrolment.trigger_key) == (world.member.pk, f"views:{product}:2030-03-04")


def test_a_journey_on_chosen_products_reads_events_that_name_them_by_code(world):
    """The mini-program names a product by its code (as audiences and behaviour tags read it); a journey limited
    to chosen products (stored as ids) picks those events up, and an order of the product keeps a member out."""
    product = world.sku.product
    journey = journey_of(world, "product_views", trigger_params={"views": 3, "days": 7, "product_ids": [product.pk]},
                         steps=(("send", {"channels": ["sms"], "content": SMS}),))
    buyer = MemberFactory(group=world.brand.group, phone="+8613800000002")
    BrandMembershipFactory(member=buyer, brand=world.brand, store=world.store)
    now = at(4, 12)

    def views(member, code, times):
        return [{"kind": "product_view", "brand": "WA", "object_type": "product", "object_id": code,
                 "occurred_at": at(4, 10, n).isoformat(), "client_event_id": f"{member.pk}-{code}-{n}"}
                for n in range(times)]

    event_batch_ingest(items=views(world.member, product.code, 3) + views(world.member, "OTHER-1", 3),
                       member=world.member, now=now)
    event_batch_ingest(items=views(buyer, product.code, 3), member=buyer, now=now)
    create_order(world, at(3, 9), member=buyer)  # the buyer ordered the product within the window

    from marketing.journeys import journeys_behaviour_recorded

    assert journeys_behaviour_recorded(brand_id=world.brand.pk, member_ids=[world.member.pk, buyer.pk], now=now) == 1
    assert list(JourneyEnrolment.objects.filter(journey=journey).values_list("member_id", "trigger_key")) == [
        (world.member.pk, f"views:{product.code}:2030-03-04")]


def test_the_daily_scan_enters_birthdays_and_the_lapse_point_once(world):
    birthday = journey_of(world, "birthday", name="birthday", trigger_params={"days_before": 3},
                          steps=(("wait", {"minutes": 60}),))
    lapse = journey_of(world, "lapse_point", name="lapse", steps=(("wait", {"minutes": 60}),))
    world.member.birthday = dt.date(1990, 3, 7)
    world.member.save(update_fields=["birthday"])
    from segments.models import SegmentationSettings

    SegmentationSettings.objects.create(brand=world.brand, cycle_days=60, lapse_factor=Decimal("1.50"))  # lapse: day 90
    lapsed = MemberFactory(group=world.brand.group)
    BrandMembershipFactory(member=lapsed, brand=world.brand, store=world.store)
    MemberRfm.objects.create(member=lapsed, brand=world.brand, lifecycle_stage="active",
                             last_purchase_on=dt.date(2030, 3, 4) - dt.timedelta(days=90))
    MemberRfm.objects.create(member=world.member, brand=world.brand, lifecycle_stage="active",
                             last_purchase_on=dt.date(2030, 3, 4) - dt.timedelta(days=89))

    first = journeys_daily(now=at(4, 8, 30))
    second = journeys_daily(now=at(4, 8, 31))
    assert (first.entered, second.entered) == (2, 0)
    assert list(JourneyEnrolment.objects.filter(journey=birthday).values_list("member_id", "trigger_key")) == [
        (world.member.pk, "birthday:2030")]
    assert list(JourneyEnrolment.objects.filter(journey=lapse).values_list("member_id", "trigger_key")) == [
        (lapsed.pk, "lapse_point:2029-12-04")]


# ---------------------------------------------------------------------------- acting

def test_a_guide_task_goes_once_with_the_reason_flagged_for_a_call_and_to_the_manager_without_a_guide(world):
    task = {"reason": "新会员：欢迎电话", "action": "介绍会员权益"}
    journey_of(world, "member_joined", steps=(("guide_task", task),))
    guide = GuideFactory(store=world.store)
    manager = GuideFactory(store=world.store, role=Guide.Role.STORE_MANAGER)
    GuideFactory(store=world.store, role=Guide.Role.STORE_MANAGER, left_at=dt.date(2030, 1, 1))
    GuideBindingFactory(member=world.member, brand=world.brand, guide=guide, store=world.store)
    MemberRfm.objects.create(member=world.member, brand=world.brand, lifecycle_stage="active",
                             segment="important_value")
    unbound = MemberFactory(group=world.brand.group)
    BrandMembershipFactory(member=unbound, brand=world.brand, store=world.store)
    journey = Journey.objects.get()
    journey_enrol(journey=journey, candidates=[(world.member.pk, "joined"), (unbound.pk, "joined")], at=at(4, 10))
    journeys_advance(now=at(4, 10))
    journeys_advance(now=at(4, 10, 5))
    JourneyEnrolment.objects.update(status="active", position=0, next_run_at=at(4, 10))  # a step retried
    journeys_advance(now=at(4, 10, 6))

    items = list(CareItem.objects.order_by("member_id").values_list(
        "member_id", "guide_id", "day", "reason_code", "reason", "suggested_action", "important"))
    assert items == [
        (world.member.pk, guide.pk, dt.date(2030, 3, 4), "journey", "新会员：欢迎电话", "介绍会员权益", True),
        (unbound.pk, manager.pk, dt.date(2030, 3, 4), "journey", "新会员：欢迎电话", "介绍会员权益", False)]
    assert JourneyStepLog.objects.filter(outcome="task").count() == 2


def test_the_coupon_of_a_send_is_issued_only_when_the_message_actually_goes(world):
    template = CouponTemplate.objects.create(brand=world.brand, name="5元券", kind=CouponTemplate.Kind.THRESHOLD,
                                             threshold_amount=Decimal("50.00"), discount_amount=Decimal("5.00"),
                                             valid_days=7)
    content = {"sms": {"template": "SMS_CPN", "params": {"coupon": "{coupon}"}}}
    journey = journey_of(world, "member_joined",
                         steps=(("send", {"channels": ["sms"], "content": content, "coupon_template": template.pk}),))
    capped = MemberFactory(group=world.brand.group, phone="+8613800000003")
    BrandMembershipFactory(member=capped, brand=world.brand, store=world.store)
    for day in (2, 3):
        message_send(member=capped, brand=world.brand, kind="marketing", channels=["sms"],
                     source=f"campaign:{day}/run:1", content=SMS, at=at(day, 10))
    journey_enrol(journey=journey, candidates=[(world.member.pk, "joined"), (capped.pk, "joined")], at=at(4, 10))
    journeys_advance(now=at(4, 10))
    assert Coupon.objects.count() == 0  # queued, not sent yet

    deliveries_dispatch(now=at(4, 10, 1))
    deliveries_dispatch(now=at(4, 10, 2))
    sent = Delivery.objects.get(member=world.member, source__startswith="journey:")
    assert (sent.status, sent.content["params"]) == ("sent", {"coupon": "5元券"})
    assert list(Coupon.objects.values_list("member_id", "template_id")) == [(world.member.pk, template.pk)]


def test_the_holdout_gets_nothing(world):
    journey = journey_of(world, "member_joined", holdout_percent=Decimal("50"),
                         steps=(("send", {"channels": ["sms"], "content": SMS}),))
    members = [MemberFactory(group=world.brand.group, phone=f"+86138000001{n:02d}") for n in range(10)]
    held = {m.pk for m in members if is_held_out(m.pk, journey)}
    assert 0 < len(held) < 10
    journey_enrol(journey=journey, candidates=[(m.pk, "joined") for m in members], at=at(4, 10))
    journeys_advance(now=at(4, 10))

    assert set(JourneyEnrolment.objects.filter(status="held_out").values_list("member_id", flat=True)) == held
    assert {d.member_id for d in journey_deliveries()} == {m.pk for m in members} - held
    assert JourneyStepLog.objects.filter(enrolment__member_id__in=held).count() == 0
    figures = journey_results(journey=journey)
    assert (figures.entered, figures.held_out, figures.completed) == (10, len(held), 10 - len(held))


def test_exit_on_conversion_stops_the_later_steps_and_the_lift_counts_it(world):
    journey = journey_of(world, "member_joined", steps=(
        ("send", {"channels": ["sms"], "content": SMS}),
        ("wait", {"minutes": 24 * 60}),
        ("send", {"channels": ["sms"], "content": SMS})))
    journey_enrol(journey=journey, candidates=[(world.member.pk, "joined")], at=at(4, 10))
    journeys_advance(now=at(4, 10))
    order = create_order(world, at(4, 15))
    pay(order, at(4, 15, 5))
    journeys_advance(now=at(5, 10))

    enrolment = JourneyEnrolment.objects.get()
    assert len(journey_deliveries()) == 1
    assert (enrolment.status, enrolment.position, enrolment.converted_at) == ("converted", 1, at(4, 15, 5))
    figures = journey_results(journey=journey)
    assert [(s.entered, s.acted, s.converted) for s in figures.steps] == [(1, 1, 1), (1, 0, 1), (0, 0, 0)]
    assert (figures.converted, figures.lift) == (1, None)  # no holdout: no lift
    [state] = member_journeys(member=world.member, brand=world.brand)
    assert (state.journey_name, state.status, state.next_step, state.last_outcome) == (
        "member_joined", "converted", "", "waiting")
