"""The demo's journeys: the seeds' examples, replayed through the real engine over the demo's last days.

Drawn from its own random stream, so what the seed has always produced stays the same.

Seven journeys are created and activated ``REPLAY_DAYS`` before the demo ends:

* WOM 未支付订单30分钟提醒 — an order still unpaid after 30 minutes gets one SMS reminder;
* WOM 加购未下单4小时送券 — a cart item with no order after 4 hours gets a coupon message;
* WOM 浏览3次未下单送券 — a product viewed 3 times in 7 days, not ordered: a coupon message;
* WOM 试穿未购30分钟推送商品链接 — a try-on the guide recorded, no order of it after 30 minutes: the link;
* MEN 重要会员流失：导购致电 — an important-class member reaching the lapse point: a task for the bound guide
  (flagged for a call);
* MEN 普通会员流失：短信送券 — any other member reaching it: an SMS with a coupon;
* WOM 新会员欢迎 — every new member: a welcome message (at small scales, where the last days may have no
  new member, from the fifth latest member who joined on).

What happened in those days is then handed to the engine in time order, as the event handlers would: orders
created and paid (``journeys_order_created``, ``journeys_order_paid``), cart additions and product views from
the seed's behaviour events, members joining, try-ons (recorded now, through the members app's service, by a
guide of the member's store, half of them by members who bought the product minutes later at the till), and
the daily scan at 10:00. Between events the executor (``journeys_advance``) and the dispatcher
(``deliveries_dispatch``) run each minute something falls due, with that minute as ``now``, so waits, checks,
the cap, quiet hours, the care window and the holdout apply as they would live. Nothing here writes an
enrolment, a step log or a delivery itself.
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from decimal import Decimal

from django.db.models import Min, Q
from django.utils import timezone

from mall.models import Channel as OrderChannel
from mall.models import CouponTemplate, Order, OrderLine, Sku
from marketing.journeys import (
    journeys_advance,
    journeys_behaviour_recorded,
    journeys_cart_item_added,
    journeys_daily,
    journeys_member_joined,
    journeys_order_created,
    journeys_order_paid,
    journeys_try_on_recorded,
)
from marketing.models import Audience, Channel, Delivery, Journey, JourneyEnrolment, JourneyStep
from marketing.services import deliveries_dispatch
from members.events import try_on_record
from members.models import BehaviourEvent, BrandMembership, EventKind, Member

REPLAY_DAYS = 3
TRY_ONS_PER_STORE_DAY = 0.6  # try-ons the guides of a store record a day (half of them bought minutes later)
DAILY_SCAN = dt.time(10, 0)
LINK = "https://mall.example.com/mp/product?code={code}"
IMPORTANT = ["important_value", "important_develop", "important_retain", "important_winback"]


def _sms(text: str) -> dict:
    return {"template": "1896012", "params": ["{name}", text, "{link}"]}


def _subscribe(text: str) -> dict:
    return {"template": "TPL_NEW_ARRIVAL", "params": {"thing1": text, "thing2": "{guide}", "page": "{link}"}}


def _send(text: str, *, channels=(Channel.SMS,), link: str = "", coupon: int | None = None) -> dict:
    entries = {Channel.SMS: _sms(text), Channel.SUBSCRIBE: _subscribe(text)}
    params = {"channels": list(channels), "content": {channel: entries[channel] for channel in channels}}
    if link:
        params["link"] = link
    if coupon:
        params["coupon_template"] = coupon
    return params


class _JourneyLife:
    def __init__(self, seeder):
        self.seeder = seeder
        self.rng = random.Random(seeder.seed * 104729 + 31)
        self.tz = timezone.get_default_timezone()
        self.end = seeder.end
        self.start = self.end - dt.timedelta(days=REPLAY_DAYS)
        self.counts: Counter[str] = Counter()
        self.events: list[tuple[dt.datetime, int, Callable[[dt.datetime], object]]] = []
        self.sequence = 0
        self.entered: set[int] = set()  # members a trigger looked at so far (only their payments can convert)

    # ------------------------------------------------------------------ the journeys
    def journey(self, brand_code: str, name: str, trigger: str, steps, **fields) -> Journey:
        brand = self.seeder.brands[brand_code]
        journey = Journey.objects.create(group=self.seeder.group, brand=brand, name=name, trigger=trigger,
                                         status=Journey.Status.ACTIVE, **fields)
        JourneyStep.objects.bulk_create([JourneyStep(journey=journey, position=position, kind=kind, params=params)
                                         for position, (kind, params) in enumerate(steps)])
        Journey.objects.filter(pk=journey.pk).update(created_at=self.start - dt.timedelta(days=1),
                                                     updated_at=self.start)
        self.counts["journeys"] += 1
        return journey

    def create_journeys(self) -> None:
        def coupon(brand: str, name: str) -> int:
            return CouponTemplate.objects.get(brand=self.seeder.brands[brand], name=name).pk

        Kind, Trigger, Reentry = JourneyStep.Kind, Journey.Trigger, Journey.Reentry
        self.journey("WOM", "未支付订单30分钟提醒", Trigger.ORDER_UNPAID, [
            (Kind.WAIT, {"minutes": 30}),
            (Kind.CHECK, {"condition": "paid_since_entry", "expect": False}),
            (Kind.SEND, _send("您的订单还未支付，商品已为您保留", link=LINK.format(code="order")))],
            reentry=Reentry.EVERY_TIME, holdout_percent=Decimal("10"), conversion_days=1)
        self.journey("WOM", "加购未下单4小时送券", Trigger.CART_ABANDONED, [
            (Kind.WAIT, {"minutes": 240}),
            (Kind.CHECK, {"condition": "ordered_since_entry", "expect": False}),
            (Kind.SEND, _send("购物车里的宝贝还在等您，送您一张{coupon}", channels=(Channel.SUBSCRIBE, Channel.SMS),
                              link=LINK.format(code="cart"), coupon=coupon("WOM", "会员88折")))],
            reentry=Reentry.PER_PERIOD, reentry_days=7, holdout_percent=Decimal("10"))
        self.journey("WOM", "浏览3次未下单送券", Trigger.PRODUCT_VIEWS, [
            (Kind.CHECK, {"condition": "ordered_product_since_entry", "expect": False}),
            (Kind.SEND, _send("您关注的商品有专属优惠，送您一张{coupon}", link=LINK.format(code="viewed"),
                              coupon=coupon("WOM", "满500减50")))],
            trigger_params={"views": 3, "days": 7}, reentry=Reentry.PER_PERIOD, reentry_days=7,
            holdout_percent=Decimal("10"))
        self.journey("WOM", "试穿未购30分钟推送商品链接", Trigger.TRY_ON, [
            (Kind.WAIT, {"minutes": 30}),
            (Kind.CHECK, {"condition": "ordered_product_since_entry", "expect": False}),
            (Kind.SEND, _send("您今天在店里试穿的商品，点击查看详情", channels=(Channel.SUBSCRIBE, Channel.SMS),
                              link=LINK.format(code="try-on")))],
            reentry=Reentry.EVERY_TIME, holdout_percent=Decimal("10"), conversion_days=3)
        men = self.seeder.brands["MEN"]
        important, _ = Audience.objects.get_or_create(brand=men, name="重要价值类会员", defaults={
            "group": self.seeder.group, "definition": {"rfml_classes": IMPORTANT}})
        self.journey("MEN", "重要会员流失：导购致电", Trigger.LAPSE_POINT, [
            (Kind.CHECK, {"condition": "in_audience", "audience": important.pk, "expect": True}),
            (Kind.GUIDE_TASK, {"reason": "重要会员已超过购买周期未回购",
                               "action": "导购亲自致电问候，邀约到店并赠送礼品"})],
            reentry=Reentry.PER_PERIOD, reentry_days=90, holdout_percent=Decimal("10"), conversion_days=30)
        self.journey("MEN", "普通会员流失：短信送券", Trigger.LAPSE_POINT, [
            (Kind.CHECK, {"condition": "in_audience", "audience": important.pk, "expect": False}),
            (Kind.SEND, _send("好久不见，送您一张{coupon}", link=LINK.format(code="men"),
                              coupon=coupon("MEN", "满500减50")))],
            reentry=Reentry.PER_PERIOD, reentry_days=90, holdout_percent=Decimal("10"), conversion_days=30)
        self.journey("WOM", "新会员欢迎", Trigger.MEMBER_JOINED, [
            (Kind.SEND, _send("欢迎加入会员，新人礼已放入您的账户", channels=(Channel.SUBSCRIBE, Channel.SMS),
                              link=LINK.format(code="welcome")))],
            holdout_percent=Decimal("10"))

    # ------------------------------------------------------------------ what happened, in time order
    def at(self, when: dt.datetime, action: Callable[[dt.datetime], object], *, start=None,
           member: int | None = None) -> None:
        if member is not None:
            action = self._entering(member, action)
        if (start or self.start) <= when < self.end:
            self.sequence += 1
            heapq.heappush(self.events, (when, self.sequence, action))

    def _entering(self, member_id: int, action: Callable[[dt.datetime], object]) -> Callable[[dt.datetime], object]:
        def run(now: dt.datetime) -> object:
            self.entered.add(member_id)
            return action(now)
        return run

    def pay(self, order_id: int, member_id: int) -> int:
        """An order paid: ``journeys_order_paid`` for a member who may be on a journey (the others have nothing
        to convert, and the handler would find nothing)."""
        if member_id in self.entered:
            journeys_order_paid(order_id=order_id)
        return 0  # nobody enters

    def scan(self, now: dt.datetime) -> int:
        entered = journeys_daily(now=now).entered
        self.entered.update(JourneyEnrolment.objects.filter(journey__group=self.seeder.group, entered_at=now)
                            .values_list("member_id", flat=True))
        return entered

    def collect(self) -> None:
        brands = self.seeder.brands
        wom, spt = brands["WOM"], brands["SPT"]
        window = Q(ordered_at__gte=self.start, ordered_at__lt=self.end)
        for pk, member_id, ordered_at in Order.objects.filter(
                window, brand=wom, member__isnull=False, channel=OrderChannel.MINI_PROGRAM).values_list(
                "pk", "member_id", "ordered_at"):
            self.at(ordered_at, lambda now, pk=pk: journeys_order_created(order_id=pk), member=member_id)
        joins = BrandMembership.objects.filter(brand=wom, joined_at__lt=self.end)
        fifth = next(iter(joins.order_by("-joined_at", "-pk").values_list("joined_at", flat=True)[4:5]), None)
        since = min(self.start, fifth or self.start)
        for member_id, joined_at in joins.filter(joined_at__gte=since).values_list("member_id", "joined_at"):
            self.at(joined_at, lambda now, m=member_id: journeys_member_joined(member_id=m, brand_id=wom.pk),
                    start=since, member=member_id)
        journey_brands = [wom.pk, brands["MEN"].pk, spt.pk]
        for pk, member_id, paid_at in Order.objects.filter(
                brand_id__in=journey_brands, member__isnull=False, paid_at__gte=since, paid_at__lt=self.end) \
                .values_list("pk", "member_id", "paid_at"):
            self.at(paid_at, lambda now, pk=pk, m=member_id: self.pay(pk, m), start=since)

        sku_of = dict(Sku.objects.filter(brand=wom).order_by("product__code", "pk")
                      .values_list("product__code", "pk").distinct())
        events = BehaviourEvent.objects.filter(brand=wom, member__isnull=False, occurred_at__gte=self.start,
                                               occurred_at__lt=self.end)
        for member_id, code, when in events.filter(kind=EventKind.ADD_TO_CART).values_list(
                "member_id", "object_id", "occurred_at"):
            if code in sku_of:
                self.at(when, lambda now, m=member_id, s=sku_of[code]: journeys_cart_item_added(
                    member_id=m, brand_id=wom.pk, sku_id=s, at=now.isoformat()), member=member_id)
        # Product views: the batch that brought a member to 3 views of one product in 7 days (counted from the
        # views before the window too) is when the trigger looks.
        views = defaultdict(list)
        for member_id, code, when in BehaviourEvent.objects.filter(
                brand=wom, member__isnull=False, kind=EventKind.PRODUCT_VIEW,
                occurred_at__gte=self.start - dt.timedelta(days=7), occurred_at__lt=self.end) \
                .order_by("occurred_at", "pk").values_list("member_id", "object_id", "occurred_at"):
            views[(member_id, code)].append(when)
        for (member_id, _code), times in views.items():
            for index in range(2, len(times)):
                if times[index] >= self.start and times[index] - times[index - 2] <= dt.timedelta(days=7):
                    self.at(times[index], lambda now, m=member_id: journeys_behaviour_recorded(
                        brand_id=wom.pk, member_ids=[m], now=now), member=member_id)
                    break
        day = self.start.astimezone(self.tz).date()
        while day <= self.end.astimezone(self.tz).date():
            self.at(dt.datetime.combine(day, DAILY_SCAN, tzinfo=self.tz), self.scan)
            day += dt.timedelta(days=1)
        self.try_ons(wom)

    def try_ons(self, brand) -> None:
        """Guides record try-ons in store hours: half by members who bought the product at the till minutes
        later (their POS order in these days), half by members of the store who did not buy."""
        rng = self.rng
        stores = [store for store in self.seeder.stores_by_brand[brand.code]]
        guides = {store.pk: [g for g in self.seeder.guides_by_store[store.pk]] for store in stores}
        wanted = max(2, round(len(stores) * REPLAY_DAYS * TRY_ONS_PER_STORE_DAY / 2))
        bought = list(OrderLine.objects.filter(
            order__brand=brand, order__channel=OrderChannel.STORE_POS, order__member__isnull=False,
            order__store__isnull=False, order__ordered_at__gte=self.start + dt.timedelta(minutes=30),
            order__ordered_at__lt=self.end).order_by("order__ordered_at", "pk")
            .values_list("order__member_id", "order__store_id", "sku__product__code", "order__ordered_at"))
        picked = rng.sample(bought, min(wanted, len(bought)))
        members_of = defaultdict(list)
        for member_id, store_id in BrandMembership.objects.filter(brand=brand, store__in=stores).order_by(
                "member_id").values_list("member_id", "store_id")[:5000]:
            members_of[store_id].append(member_id)
        codes = sorted({code for _m, _s, code, _t in bought}) or sorted(
            Sku.objects.filter(brand=brand).values_list("product__code", flat=True).distinct())
        walk_outs = []
        for _ in range(wanted):
            store = rng.choice(stores)
            if not members_of[store.pk]:
                continue
            day = self.start.astimezone(self.tz).date() + dt.timedelta(days=rng.randrange(REPLAY_DAYS))
            when = dt.datetime.combine(day, dt.time(rng.randrange(10, 20), rng.randrange(60)), tzinfo=self.tz)
            walk_outs.append((rng.choice(members_of[store.pk]), store.pk, rng.choice(codes), when, None))
        tries = [(m, s, code, t - dt.timedelta(minutes=rng.randrange(5, 26)), True) for m, s, code, t in picked]
        members = Member.objects.in_bulk({m for m, *_ in tries + walk_outs})
        for member_id, store_id, code, when, _bought in tries + walk_outs:
            guide = rng.choice(guides[store_id]) if guides.get(store_id) else None
            self.at(when, lambda now, m=members[member_id], s=store_id, c=code, g=guide: self.try_on(
                now, m, brand, s, c, g), member=member_id)

    def try_on(self, now, member, brand, store_id, code, guide) -> int:
        event = try_on_record(member=member, brand_id=brand.pk, product_code=code,
                              guide_id=guide.pk if guide else None, store_id=store_id, at=now)
        self.counts["try_ons"] += 1
        return journeys_try_on_recorded(event_id=event.pk, member_id=member.pk, brand_id=brand.pk,
                                        product_code=code, at=now.isoformat())

    # ------------------------------------------------------------------ the replay
    def replay(self) -> None:
        """Events in time order; each minute something falls due, the executor and the dispatcher run with that
        minute as ``now`` (the beat runs them every minute), after the events up to it. Each action returns how
        many members it enrolled (the next due time is looked up again only then)."""
        group = self.seeder.group
        enrolments = JourneyEnrolment.objects.filter(journey__group=group, status__in=[
            JourneyEnrolment.Status.ACTIVE, JourneyEnrolment.Status.WAITING])
        queued = Delivery.objects.filter(brand__group=group, source__startswith="journey:",
                                         status__in=[Delivery.Status.QUEUED, Delivery.Status.WAITING])
        # The journeys send by SMS and subscribe message only: the other channels have nothing to claim.
        limits = {channel: 10**9 if channel in (Channel.SMS, Channel.SUBSCRIBE) else 0 for channel in Channel.values}
        last_tick = None
        while True:
            due = enrolments.aggregate(t=Min("next_run_at"))["t"]
            planned = queued.aggregate(t=Min("send_after"))["t"]
            soonest = min((t for t in (due, planned) if t is not None), default=None)
            tick = None
            if soonest is not None:
                tick = soonest.replace(second=0, microsecond=0)
                if tick < soonest:
                    tick += dt.timedelta(minutes=1)
                if last_tick is not None and tick <= last_tick:  # left due (a retry): the next minute's run
                    tick = last_tick + dt.timedelta(minutes=1)
            if tick is None or tick > self.end:
                if not self.events:
                    break
                while self.events:  # nothing due before the next event: on to the next that enrols someone
                    when, _, action = heapq.heappop(self.events)
                    if action(when):
                        break
                continue
            last_tick = tick
            applied = False
            while self.events and self.events[0][0] <= tick:
                when, _, action = heapq.heappop(self.events)
                action(when)
                applied = True
            acted = 0
            if applied or due is not None and due <= tick:
                self.counts["executor_runs"] += 1
                acted = journeys_advance(now=tick).actions
            if acted or planned is not None and planned <= tick:
                deliveries_dispatch(now=tick, limits=limits)

    def run(self) -> dict[str, int]:
        started = time.perf_counter()
        self.create_journeys()
        self.collect()
        self.replay()
        states = Counter(JourneyEnrolment.objects.filter(journey__group=self.seeder.group)
                         .values_list("status", flat=True))
        self.counts.update({f"journey_{status}": n for status, n in states.items()})
        self.seeder.log(f"  journeys: {self.counts['journeys']}, {sum(states.values())} enrolments ("
                        + ", ".join(f"{status} {n}" for status, n in sorted(states.items()))
                        + f"), {self.counts['try_ons']} try-ons in {time.perf_counter() - started:.1f}s")
        return dict(self.counts)


def seed_journey_life(seeder) -> dict[str, int]:
    """Add the seeds' journeys to what ``seeder`` (a DemoSeeder) has built and replay its last days through
    the engine; returns counts."""
    return _JourneyLife(seeder).run()
