"""The demo's store livestreams: the "1+N" model over the last four months (DOMAIN.md "Store livestreams").

Every brand runs a weekly HQ central session (the "1", Tuesday to Saturday evenings 19:30–21:00, one
brand a night) for 16 weeks up to the demo's end, plus the coming week's, still planned. About 30% of
each brand's stores are in the programme (the "N"; always the brand's first East store, where the demo's
store-manager and guide logins work): each mirrors every central session from its own
store at the same time (following it, with HQ's product list and run sheet), hosted in turn by its
guides; stores in phase 2 or 3 also hold a session of their own on Sunday afternoons. A few store
sessions are called off (cancelled), the coming week's are planned.

Viewers: about a thousand a central session and one to two hundred a store session (store sessions
draw on the store's own members, central ones on the whole brand), each with a join, usually a leave,
and now and then a like, comment, product click or share. Sales: a few percent of a store session's
viewers buy (fewer in a central one); live orders carry the session (channel ``store_live`` with the
host store and the store manager who posted the live room in the store's WeCom group, or ``hq_live``
with neither), about one in ten is never paid, a few are refunded, and some buyers join the brand
through the session (``BrandMembership.live_session``; the group's members who had not joined that
brand yet, never more than three brands a member). Paid purchases earn points like every demo order.

Phases: each brand has targets for phases 1–3 and every programme store is in a phase (HQ moved the
best ones on); HQ has coached the latest sessions of phase-3 stores. Session figures are not written
here: ``run_jobs`` computes them (job ``livestream.stats``), and attributes the live orders.

Drawn from its own random stream so the rest of the demo stays exactly as it was.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from livestream.models import CoachingNote, LivePhase, LivePhaseTarget, LiveSession, StoreLivePhase, ViewerEvent
from mall.models import Channel, Order, OrderLine, OrderStatus, Product
from members.models import BrandMembership, JoinChannel, Member, PointsEntry

WEEKS = 16
PROGRAMME_SHARE = 0.3  # of each brand's stores
CENTRAL_WEEKDAY = {"WOM": 1, "MEN": 2, "KID": 3, "SPT": 4, "ACC": 5}  # Monday = 0: one brand a night
EVENING = (dt.time(19, 30), dt.time(21, 0))
SUNDAY_AFTERNOON = (dt.time(14, 0), dt.time(15, 30))
CENTRAL_VIEWERS, STORE_VIEWERS = 780, 120  # medians at scale 1
MAX_MEMBERSHIPS = 3
CENT = Decimal("0.01")

_EVENT_COLUMNS = ("session", "member", "viewer_id", "kind", "occurred_at", "received_at", "product_id",
                  "client_event_id")
_EVENT_BATCH = 2000  # rows per INSERT (8 parameters each: within SQLite's 32,766)
_JOIN, _LEAVE, _CLICK = (str(k) for k in (ViewerEvent.Kind.JOIN, ViewerEvent.Kind.LEAVE,
                                          ViewerEvent.Kind.PRODUCT_CLICK))
_INTERACTIONS = ((str(ViewerEvent.Kind.LIKE), 0.12), (str(ViewerEvent.Kind.COMMENT), 0.05), (_CLICK, 0.08),
                 (str(ViewerEvent.Kind.SHARE), 0.02))

# Monthly targets per phase (sessions, hours, live sales, conversion): phase 1 judges sessions and hours,
# phase 2 adds sales and conversion, phase 3 keeps them while HQ coaches.
PHASE_TARGETS = {
    LivePhase.DURATION: (4, Decimal("6.0"), Decimal("0.00"), Decimal("0")),
    LivePhase.SALES: (8, Decimal("12.0"), Decimal("55000.00"), Decimal("0.0650")),
    LivePhase.COACHING: (8, Decimal("12.0"), Decimal("65000.00"), Decimal("0.0700")),
}
SCRIPT = ("19:30 开场：问候、今晚福利预告（整点抽奖）\n19:40 新品：{products}\n20:15 穿搭示范：一衣多穿\n"
          "20:40 福利款秒杀 + 会员专享价\n20:55 下期预告，引导添加导购企业微信")
COACHING = (
    (CoachingNote.Aspect.SCRIPT, "开场太长，前3分钟就要讲清今晚福利和主推款。", 3),
    (CoachingNote.Aspect.DELIVERY, "讲解节奏好，回答弹幕及时；试穿时多说面料和尺码建议。", 4),
    (CoachingNote.Aspect.SET, "背景杂乱、补光不足，主推款挂在镜头左侧衣架上更醒目。", 2),
    (CoachingNote.Aspect.PRODUCTS, "秒杀款库存提前确认，本场有两款中途断码。", 3),
    (CoachingNote.Aspect.DELIVERY, "互动很好，成交转化明显提升，保持每15分钟一次福利节点。", 5),
)


def _money(value) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


class _LiveLife:
    """Builds the livestream side of the demo from a DemoSeeder (``seeder``) and its own random stream."""

    def __init__(self, seeder):
        self.seeder = seeder
        self.rng = random.Random(seeder.seed * 15485863 + 29)
        self.tz = seeder.tz
        self.end = seeder.end
        self.volume = min(1.0, seeder.scale)
        self.hq_user = get_user_model().objects.filter(username="hq").first()
        self.sessions_central: list[LiveSession] = []
        self.sessions_store: list[LiveSession] = []
        self.counts: dict[str, int] = defaultdict(int)

    # ------------------------------------------------------------------ reference data
    def load(self) -> None:
        seeder = self.seeder
        self.products_by_brand: dict[int, list[int]] = defaultdict(list)
        for pk, brand_id in Product.objects.filter(brand__group=seeder.group).order_by("pk").values_list(
                "pk", "brand_id"):
            self.products_by_brand[brand_id].append(pk)
        self.skus_by_product = defaultdict(list)
        for skus in seeder.skus_by_brand.values():
            for sku in skus:
                self.skus_by_product[sku.product_id].append(sku)
        self.code_of_member = dict(Member.objects.filter(group=seeder.group).values_list("pk", "code"))
        self.members_of_brand: dict[int, list[tuple[int, dt.datetime]]] = defaultdict(list)
        self.members_of_store: dict[int, list[tuple[int, dt.datetime]]] = defaultdict(list)
        self.joined: set[tuple[int, int]] = set()
        self.brand_count: dict[int, int] = defaultdict(int)
        for member_id, brand_id, store_id, joined_at in (
                BrandMembership.objects.filter(brand__group=seeder.group).order_by("pk")
                .values_list("member_id", "brand_id", "store_id", "joined_at")):
            self.members_of_brand[brand_id].append((member_id, joined_at))
            if store_id is not None:
                self.members_of_store[store_id].append((member_id, joined_at))
            self.joined.add((member_id, brand_id))
            self.brand_count[member_id] += 1
        self.all_members = sorted(self.code_of_member)

    # ------------------------------------------------------------------ programme, phases, targets
    def programme(self) -> None:
        rng = self.rng
        targets = [LivePhaseTarget(brand=brand, phase=phase, sessions_per_month=s, hours_per_month=h,
                                   sales_per_month=sales, conversion=conv)
                   for brand in self.seeder.brands.values()
                   for phase, (s, h, sales, conv) in PHASE_TARGETS.items()]
        LivePhaseTarget.objects.bulk_create(targets)
        self.counts["live_phase_targets"] = len(targets)
        self.programme_stores: dict[str, list] = {}
        self.phase_of_store: dict[int, int] = {}
        phases = []
        for code, stores in self.seeder.stores_by_brand.items():
            # The brand's first East store (the demo's store-manager and guide logins work in WOM's) is always
            # in the programme, so the workbench and the admin show a store that streams.
            region = self.seeder.regions[(code, "EAST")]
            first = next(s for s in stores if s.region_id == region.pk)
            others = [s for s in stores if s.pk != first.pk]
            chosen = [first, *sorted(rng.sample(others, max(0, round(len(stores) * PROGRAMME_SHARE) - 1)),
                                     key=lambda s: s.code)]
            self.programme_stores[code] = chosen
            for index, store in enumerate(chosen):
                # The programme started four months ago; HQ moved the better stores on since.
                phase = (LivePhase.COACHING, LivePhase.SALES, LivePhase.DURATION)[index % 3]
                months_in = {LivePhase.DURATION: 4, LivePhase.SALES: 2, LivePhase.COACHING: 1}[phase]
                since = (self.end - dt.timedelta(days=30.4 * months_in + rng.randrange(0, 10))).date()
                self.phase_of_store[store.pk] = int(phase)
                phases.append(StoreLivePhase(store=store, phase=phase, since=since, updated_by=self.hq_user))
        StoreLivePhase.objects.bulk_create(phases)
        self.counts["store_live_phases"] = len(phases)

    # ------------------------------------------------------------------ sessions
    def _at(self, day: dt.date, when: dt.time) -> dt.datetime:
        return dt.datetime.combine(day, when, tzinfo=self.tz)

    def _days(self, weekday: int) -> list[tuple[dt.date, bool]]:
        """The weekday's dates over WEEKS weeks up to the end, and the coming one; (date, past)."""
        last = self.end.date() - dt.timedelta(days=(self.end.weekday() - weekday) % 7)
        days = [(last - dt.timedelta(weeks=k), True) for k in reversed(range(WEEKS))]
        return days + [(last + dt.timedelta(weeks=1), False)]

    def _timing(self, start: dt.datetime, end: dt.datetime, past: bool) -> dict:
        if not past or end > self.end:
            return {"status": LiveSession.Status.PLANNED}
        actual_start = start + dt.timedelta(minutes=self.rng.randrange(0, 7))
        actual_end = min(end + dt.timedelta(minutes=self.rng.randrange(-6, 13)), self.end)
        return {"status": LiveSession.Status.ENDED, "actual_start": actual_start, "actual_end": actual_end}

    def sessions(self) -> None:
        rng, seeder = self.rng, self.seeder
        central, shown = [], []
        for code, brand in seeder.brands.items():
            for day, past in self._days(CENTRAL_WEEKDAY.get(code, 1)):
                start, end = self._at(day, EVENING[0]), self._at(day, EVENING[1])
                products = sorted(rng.sample(self.products_by_brand[brand.pk], 10))
                central.append(LiveSession(
                    brand=brand, kind=LiveSession.Kind.HQ_CENTRAL, title=f"{brand.name} {day:%m月%d日} 总部直播间",
                    planned_start=start, planned_end=end, platform=LiveSession.Platform.MINI_PROGRAM,
                    script=SCRIPT.format(products="、".join(f"#{pk}" for pk in products[:4])),
                    **self._timing(start, end, past)))
                shown.append(products)
        central = LiveSession.objects.bulk_create(central)
        self.sessions_central = central
        self.products_of = {s.pk: p for s, p in zip(central, shown, strict=True)}

        store_sessions, store_shown = [], []
        for session in central:
            code = next(c for c, b in seeder.brands.items() if b.pk == session.brand_id)
            day = session.planned_start.astimezone(self.tz).date()
            past = session.status != LiveSession.Status.PLANNED
            for store in self.programme_stores[code]:
                guides = seeder.guides_by_store[store.pk]
                host = guides[(day.toordinal() // 7 + store.pk) % len(guides)]
                timing = self._timing(session.planned_start, session.planned_end, past)
                if past and rng.random() < 0.06:
                    timing = {"status": LiveSession.Status.CANCELLED}
                store_sessions.append(LiveSession(
                    brand_id=session.brand_id, kind=LiveSession.Kind.STORE, title=f"{store.name} 同步直播 {day:%m/%d}",
                    host_store=store, host_guide=host, follows=session, planned_start=session.planned_start,
                    planned_end=session.planned_end, script=session.script, **timing))
                store_shown.append(self.products_of[session.pk])
        for code, stores in self.programme_stores.items():
            brand = seeder.brands[code]
            for store in stores:
                if self.phase_of_store[store.pk] == LivePhase.DURATION:
                    continue
                guides = seeder.guides_by_store[store.pk]
                for day, past in self._days(6):
                    start, end = self._at(day, SUNDAY_AFTERNOON[0]), self._at(day, SUNDAY_AFTERNOON[1])
                    timing = self._timing(start, end, past)
                    if past and rng.random() < 0.06:
                        timing = {"status": LiveSession.Status.CANCELLED}
                    store_sessions.append(LiveSession(
                        brand=brand, kind=LiveSession.Kind.STORE, title=f"{store.name} 周末店播 {day:%m/%d}",
                        host_store=store, host_guide=guides[(day.toordinal() // 7 + 1) % len(guides)],
                        planned_start=start, planned_end=end, **timing))
                    store_shown.append(sorted(rng.sample(self.products_by_brand[brand.pk], 6)))
        store_sessions = LiveSession.objects.bulk_create(store_sessions)
        self.sessions_store = store_sessions
        for session, products in zip(store_sessions, store_shown, strict=True):
            self.products_of[session.pk] = products
        through = LiveSession.products.through
        links = [through(livesession_id=pk, product_id=p) for pk, products in self.products_of.items()
                 for p in products]
        through.objects.bulk_create(links, batch_size=5000)
        all_sessions = central + store_sessions
        self.counts["live_sessions"] = len(all_sessions)
        for status in LiveSession.Status.values:
            self.counts[f"live_sessions_{status}"] = sum(1 for s in all_sessions if s.status == status)

    # ------------------------------------------------------------------ viewers, joiners, orders
    def audience(self) -> None:
        rng = self.rng
        events: list[tuple] = []  # (session, member, viewer id, kind, occurred at, product)
        memberships: list[BrandMembership] = []
        self.purchases: list[tuple[LiveSession, int, dt.datetime]] = []  # (session, member, earliest time)
        held = [s for s in self.sessions_central + self.sessions_store if s.status == LiveSession.Status.ENDED]
        for session in held:
            is_store = session.kind == LiveSession.Kind.STORE
            median = (STORE_VIEWERS if is_store else CENTRAL_VIEWERS) * self.volume
            n_viewers = max(3, round(rng.lognormvariate(0, 0.4) * median))
            pool = self.members_of_store[session.host_store_id] if is_store else \
                self.members_of_brand[session.brand_id]
            eligible = [m for m, joined in pool if joined < session.actual_start]
            n_members = min(len(eligible), round(n_viewers * (0.45 if is_store else 0.3)))
            viewers = rng.sample(eligible, n_members)
            joiners = self._joiners(session, round(n_viewers * rng.uniform(0.005, 0.015)
                                                   * (1 if is_store else 0.5)))
            for member_id, joined_at in joiners:
                memberships.append(BrandMembership(
                    member_id=member_id, brand_id=session.brand_id, joined_at=joined_at,
                    join_channel=JoinChannel.LIVESTREAM, store_id=session.host_store_id, live_session=session))
            n_anonymous = max(0, n_viewers - len(viewers) - len(joiners))
            shown = self.products_of[session.pk]
            for member_id in viewers:
                self._watch(events, session, self.code_of_member[member_id], member_id, shown)
            for member_id, joined_at in joiners:
                self._watch(events, session, self.code_of_member[member_id], member_id, shown,
                            join_before=joined_at)
            for index in range(n_anonymous):
                self._watch(events, session, f"anon:{session.pk:05d}-{index:05d}", None, shown)
            rate = rng.uniform(0.04, 0.10) if is_store else rng.uniform(0.02, 0.045)
            n_buyers = min(len(viewers), round(n_viewers * rate))
            for member_id in rng.sample(viewers, n_buyers):
                self.purchases.append((session, member_id, session.actual_start))
            for member_id, joined_at in joiners:
                if rng.random() < 0.4:
                    self.purchases.append((session, member_id, joined_at))
            if len(events) >= 50_000:
                self._flush(events)
        self._flush(events)
        BrandMembership.objects.bulk_create(memberships, batch_size=2000)
        self.counts["live_memberships"] = len(memberships)
        self.seeder.result.memberships += len(memberships)

    def _flush(self, events: list[tuple]) -> None:
        """Multi-row INSERTs of plain tuples: model instances would cost more CPU than the database spends."""
        meta = ViewerEvent._meta
        quote = connection.ops.quote_name
        columns = ", ".join(quote(meta.get_field(name).column) for name in _EVENT_COLUMNS)
        placeholders = "(" + ", ".join(["%s"] * len(_EVENT_COLUMNS)) + ")"
        adapt = connection.ops.adapt_datetimefield_value
        received = adapt(timezone.now())
        with connection.cursor() as cursor:
            for offset in range(0, len(events), _EVENT_BATCH):
                batch = events[offset:offset + _EVENT_BATCH]
                params = [value for row in batch for value in (*row[:4], adapt(row[4]), received, row[5], "")]
                cursor.execute(f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES "  # noqa: S608 - model names
                               f"{', '.join([placeholders] * len(batch))}", params)
        self.counts["viewer_events"] += len(events)
        events.clear()

    def _joiners(self, session: LiveSession, n: int) -> list[tuple[int, dt.datetime]]:
        """Members of the group joining the session's brand through it (new to the brand, < 3 brands)."""
        rng = self.rng
        out = []
        for _ in range(n * 4):
            if len(out) == n:
                break
            member_id = rng.choice(self.all_members)
            if (member_id, session.brand_id) in self.joined or self.brand_count[member_id] >= MAX_MEMBERSHIPS:
                continue
            self.joined.add((member_id, session.brand_id))
            self.brand_count[member_id] += 1
            span = (session.actual_end - session.actual_start).total_seconds()
            out.append((member_id, session.actual_start + dt.timedelta(seconds=rng.uniform(0.05, 0.6) * span)))
        return out

    def _watch(self, events: list, session: LiveSession, viewer_id: str, member_id: int | None, shown: list[int],
               join_before: dt.datetime | None = None) -> None:
        """One viewer's events: a join (most in the first quarter hour), usually a leave, a few interactions."""
        rng = self.rng
        start, end = session.actual_start, session.actual_end
        span = (end - start).total_seconds()
        join = start + dt.timedelta(seconds=rng.betavariate(1.1, 4.0) * span - 300)
        if join_before is not None:
            join = min(join, join_before - dt.timedelta(seconds=30))
        watch = rng.expovariate(1 / (900 if session.kind == LiveSession.Kind.STORE else 1200))
        leave = join + dt.timedelta(seconds=max(30.0, watch))
        who = (session.pk, member_id, viewer_id)
        events.append((*who, _JOIN, join, None))
        last = min(leave, end)
        for kind, chance in _INTERACTIONS:
            if rng.random() < chance:
                seen_from = max(join, start)
                at = seen_from + (last - seen_from) * rng.random() if last > seen_from else seen_from
                events.append((*who, kind, at, rng.choice(shown) if kind == _CLICK else None))
        if leave < end or rng.random() < 0.85:
            events.append((*who, _LEAVE, last, None))

    def orders(self) -> None:
        rng, seeder = self.rng, self.seeder
        managers = {store_pk: guides[0] for store_pk, guides in seeder.guides_by_store.items()}
        brand_code = {b.pk: code for code, b in seeder.brands.items()}
        orders, lines_per_order = [], []
        sequence = 0
        for session, member_id, earliest in self.purchases:
            for _ in range(2 if rng.random() < 0.1 else 1):
                low = max(earliest, session.actual_start + dt.timedelta(minutes=3))
                high = min(session.actual_end, self.end)
                if high <= low:
                    continue
                when = (low + (high - low) * rng.random()).replace(microsecond=0)
                sequence += 1
                order, lines = self._order(session, member_id, when, sequence, managers, brand_code)
                orders.append(order)
                lines_per_order.append(lines)
        orders = Order.objects.bulk_create(orders, batch_size=2000)
        all_lines = []
        for order, lines in zip(orders, lines_per_order, strict=True):
            for line in lines:
                line.order = order
                all_lines.append(line)
        OrderLine.objects.bulk_create(all_lines, batch_size=4000)
        entries = [PointsEntry(member_id=o.member_id, brand_id=o.brand_id, order=o, delta=int(o.paid_amount -
                               o.refunded_amount), reason=PointsEntry.Reason.EARN, note="demo")
                   for o in orders if o.paid_at is not None and int(o.paid_amount - o.refunded_amount) > 0]
        PointsEntry.objects.bulk_create(entries, batch_size=5000)
        PointsEntry.objects.filter(brand__group=seeder.group, note="demo", order__live_session__isnull=False).update(
            created_at=Subquery(Order.objects.filter(pk=OuterRef("order_id")).values("paid_at")[:1]))
        self.counts["live_orders"] = len(orders)
        self.counts["live_order_lines"] = len(all_lines)
        self.counts["live_points_entries"] = len(entries)
        seeder.result.orders += len(orders)
        seeder.result.order_lines += len(all_lines)

    def _order(self, session, member_id, when, sequence, managers, brand_code) -> tuple[Order, list[OrderLine]]:
        rng = self.rng
        lines = []
        for product_id in rng.sample(self.products_of[session.pk], rng.choices((1, 2, 3), (62, 28, 10))[0]):
            sku = rng.choice(self.skus_by_product[product_id])
            quantity = 1 if rng.random() < 0.9 else 2
            unit_price = _money(sku.member_price * Decimal("0.9"))  # the live room's price: 10% off member price
            lines.append(OrderLine(brand_id=session.brand_id, sku=sku, quantity=quantity, list_price=sku.list_price,
                                   unit_price=unit_price, amount=unit_price * quantity))
        total = sum((line.amount for line in lines), Decimal("0.00"))
        is_store = session.kind == LiveSession.Kind.STORE
        age_days = (self.end - when).days
        status, paid_at, paid, refunded = OrderStatus.COMPLETED, None, Decimal("0.00"), Decimal("0.00")
        if rng.random() < 0.1:
            status = OrderStatus.EXPIRED if rng.random() < 0.6 else OrderStatus.CANCELLED
        else:
            paid_at, paid = when + dt.timedelta(seconds=rng.randrange(15, 600)), total
            status = OrderStatus.PAID if age_days < 2 else OrderStatus.SHIPPED if age_days < 9 else \
                OrderStatus.COMPLETED
            if rng.random() < 0.07:
                if len(lines) > 1 and rng.random() < 0.5:
                    lines[0].refunded_amount = lines[0].amount
                else:
                    for line in lines:
                        line.refunded_amount = line.amount
                refunded = sum((line.refunded_amount for line in lines), Decimal("0.00"))
        code = brand_code[session.brand_id]
        order = Order(brand_id=session.brand_id, order_no=f"{code}L{when.astimezone(self.tz):%y%m%d}{sequence:06d}",
                      member_id=member_id, channel=Channel.STORE_LIVE if is_store else Channel.HQ_LIVE,
                      store_id=session.host_store_id if is_store else None,
                      guide=managers[session.host_store_id] if is_store else None, live_session=session,
                      status=status, ordered_at=when, paid_at=paid_at, total_amount=total, items_amount=total,
                      paid_amount=paid, refunded_amount=refunded)
        return order, lines

    # ------------------------------------------------------------------ coaching
    def coaching(self) -> None:
        rng = self.rng
        recent = self.end - dt.timedelta(weeks=6)
        notes = []
        for session in self.sessions_store:
            if (session.status == LiveSession.Status.ENDED and session.actual_start >= recent
                    and self.phase_of_store.get(session.host_store_id) == LivePhase.COACHING):
                for aspect, text, rating in rng.sample(COACHING, rng.randint(1, 2)):
                    notes.append(CoachingNote(session=session, aspect=aspect, text=text, rating=rating,
                                              author=self.hq_user))
        notes = CoachingNote.objects.bulk_create(notes)
        # Written the morning after the session, not at seeding time.
        for note in notes:
            note.created_at = note.session.actual_end + dt.timedelta(hours=13)
        CoachingNote.objects.bulk_update(notes, ["created_at"])
        self.counts["coaching_notes"] = len(notes)

    def run(self) -> dict[str, int]:
        started = time.perf_counter()
        for step in (self.load, self.programme, self.sessions, self.audience, self.orders, self.coaching):
            step()
        self.seeder.log(f"  livestreams: {self.counts['live_sessions']} sessions, {self.counts['viewer_events']} "
                        f"viewer events, {self.counts['live_orders']} live orders in "
                        f"{time.perf_counter() - started:.1f}s")
        return dict(self.counts)


def seed_live_life(seeder) -> dict[str, int]:
    """Add the store-livestream side of the demo to what ``seeder`` (a DemoSeeder) has built; returns row counts."""
    return _LiveLife(seeder).run()
