"""A realistic demo group, generated deterministically from a seed.

Figures follow ../shared/DOMAIN.md: five brands of one apparel group, four
regions each, stores of all three kinds with ten guides apiece, members who
join at a store, by a guide's QR code, a livestream or a first mini-program
payment, hold memberships of several brands, and buy on a brand-specific
consumption cycle (about 45 days for women's wear) with seasonal peaks
(Double 11, new year, 618) and churn. Orders come from the store POS, the
mini-program, store and HQ livestreams and community groups; some are never
paid, some are refunded, some offline buyers are not members at all.

Everything is built in memory and written with bulk inserts so 20,000 members
and their 18 months of orders take well under a minute on SQLite.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from mall.models import Channel, Order, OrderLine, OrderStatus, Product, Sku
from members.models import BrandMembership, GuideBinding, JoinChannel, Member
from retail_crm.demo.journey_life import seed_journey_life
from retail_crm.demo.live_life import seed_live_life
from retail_crm.demo.mall_life import seed_mall_life
from retail_crm.demo.marketing_life import seed_marketing_life
from retail_crm.demo.member_life import seed_member_life, settle_member_profiles
from retail_crm.demo.workbench_life import seed_workbench_life
from retail_crm.models import Brand, Guide, Region, RetailGroup, StaffProfile, StaffRole, Store

DEMO_GROUP_CODE = "demo"
DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - printed for the demo; never used outside seed_demo
CENT = Decimal("0.01")


@dataclass(frozen=True)
class BrandSpec:
    code: str
    name: str
    category: str
    cycle_days: int  # median days between purchases (consumption cycle)
    price_band: tuple[int, int]
    categories: tuple[str, ...]
    female_share: float
    weight: float  # share of members whose first brand this is


BRANDS = (
    BrandSpec("WOM", "雅致女装", "womenswear", 45, (199, 1299), ("连衣裙", "衬衫", "针织衫", "外套", "半身裙", "裤装"),
              0.95, 0.32),
    BrandSpec("MEN", "型格男装", "menswear", 60, (199, 1599), ("衬衫", "T恤", "夹克", "西装", "裤装", "毛衫"),
              0.15, 0.20),
    BrandSpec("KID", "童趣童装", "kids", 50, (99, 599), ("童装上衣", "童裤", "童裙", "外套", "套装"), 0.80, 0.18),
    BrandSpec("SPT", "跃动运动", "sportswear", 55, (159, 1099), ("跑鞋", "板鞋", "运动T恤", "运动裤", "卫衣"),
              0.45, 0.20),
    BrandSpec("ACC", "饰界配饰", "accessories", 75, (59, 899), ("包袋", "围巾", "帽子", "首饰", "腰带"), 0.75, 0.10),
)

REGIONS = (
    ("EAST", "华东大区", ("上海", "杭州", "南京", "苏州")),
    ("SOUTH", "华南大区", ("广州", "深圳", "厦门", "福州")),
    ("NORTH", "华北大区", ("北京", "天津", "济南", "青岛")),
    ("WEST", "西南大区", ("成都", "重庆", "昆明", "贵阳")),
)

COLOURS = ("黑色", "白色", "米色", "藏青", "酒红", "雾霾蓝", "燕麦色", "黄色")
MATERIALS = ("棉", "羊毛", "真丝", "涤纶", "亚麻", "羊绒", "皮革")
SEASONS = ("2025春", "2025夏", "2025秋", "2025冬", "2026春", "2026夏", "2026秋")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "婷丽静敏燕艳娟霞芳娜秀英华玉兰萍红梅琳雪倩颖洁佳欣怡雅涵悦伟强磊军洋勇杰涛明超刚平辉鹏浩宇轩晨"

# Month weights: Spring Festival dip, 618, Golden Week, Double 11 and new-year peaks.
SEASONALITY = {1: 1.20, 2: 0.75, 3: 1.00, 4: 0.95, 5: 1.00, 6: 1.15, 7: 0.85, 8: 0.85, 9: 1.00, 10: 1.15,
               11: 1.45, 12: 1.25}
MAX_SEASON = max(SEASONALITY.values())

JOIN_CHANNEL_WEIGHTS = (
    (JoinChannel.STORE_CARD, 0.46), (JoinChannel.GUIDE_QR, 0.22), (JoinChannel.PAY_AS_JOIN, 0.14),
    (JoinChannel.LIVESTREAM, 0.08), (JoinChannel.PARCEL_CARD, 0.06), (JoinChannel.COMMUNITY, 0.04),
)
ORDER_CHANNEL_WEIGHTS = (
    (Channel.STORE_POS, 0.56), (Channel.MINI_PROGRAM, 0.27), (Channel.STORE_LIVE, 0.08),
    (Channel.HQ_LIVE, 0.05), (Channel.COMMUNITY, 0.04),
)
STORE_KINDS = ("direct", "direct", "franchise", "direct", "outlet", "franchise", "direct", "franchise", "direct",
               "outlet")


@dataclass
class SeedResult:
    brands: int = 0
    stores: int = 0
    guides: int = 0
    members: int = 0
    memberships: int = 0
    orders: int = 0
    order_lines: int = 0
    logins: list[tuple[str, str, str]] = field(default_factory=list)
    member_life: dict[str, int] = field(default_factory=dict)
    skipped: bool = False


def _pick(rng: random.Random, weighted):
    values = [value for value, _w in weighted]
    weights = [w for _v, w in weighted]
    return rng.choices(values, weights=weights, k=1)[0]


def _money(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


class DemoSeeder:
    """Builds the demo group. ``scale`` multiplies members (and stores above 1)."""

    def __init__(self, *, seed: int, scale: float, end_date: dt.date, months: int = 18, stdout=None):
        self.rng = random.Random(seed)
        self.seed = seed
        self.scale = scale
        self.end_date = end_date
        self.months = months
        self.tz = timezone.get_default_timezone()
        self.end = dt.datetime.combine(end_date, dt.time(21, 0), tzinfo=self.tz)
        self.start = self.end - dt.timedelta(days=round(months * 30.4))
        self.stdout = stdout
        self.result = SeedResult()

    def log(self, message: str) -> None:
        if self.stdout is not None:
            self.stdout.write(message)

    # ------------------------------------------------------------------ organisation
    def build_org(self) -> None:
        self.group = RetailGroup.objects.create(code=DEMO_GROUP_CODE, name="华裳时尚集团")
        stores_per_brand = max(8, round(10 * max(1.0, self.scale)))
        self.brands: dict[str, Brand] = {}
        self.regions: dict[tuple[str, str], Region] = {}
        self.stores_by_brand: dict[str, list[Store]] = {}
        for spec in BRANDS:
            brand = Brand.objects.create(group=self.group, code=spec.code, name=spec.name, category=spec.category)
            self.brands[spec.code] = brand
            for region_code, region_name, _cities in REGIONS:
                self.regions[(spec.code, region_code)] = Region.objects.create(
                    brand=brand, code=region_code, name=region_name)
            stores = []
            for index in range(stores_per_brand):
                region_code, _name, cities = REGIONS[index % len(REGIONS)]
                city = cities[(index // len(REGIONS)) % len(cities)]
                kind = STORE_KINDS[index % len(STORE_KINDS)]
                suffix = {"direct": "直营店", "franchise": "加盟店", "outlet": "奥莱店"}[kind]
                stores.append(Store(brand=brand, region=self.regions[(spec.code, region_code)],
                                    code=f"{spec.code}-{region_code[:1]}{index + 1:03d}",
                                    name=f"{spec.name}{city}{index + 1}号{suffix}", kind=kind, city=city))
            self.stores_by_brand[spec.code] = Store.objects.bulk_create(stores)
        self.result.brands = len(BRANDS)
        self.result.stores = sum(len(s) for s in self.stores_by_brand.values())

    def build_guides(self) -> None:
        User = get_user_model()
        password_hash = make_password(DEMO_PASSWORD)
        guides: list[Guide] = []
        users = []
        hire_floor = self.start.date() - dt.timedelta(days=900)
        for spec in BRANDS:
            for store in self.stores_by_brand[spec.code]:
                for index in range(10):
                    code = f"{store.code}-G{index + 1:02d}"
                    name = self.rng.choice(SURNAMES) + self.rng.choice(GIVEN) + self.rng.choice(GIVEN)
                    hired = hire_floor + dt.timedelta(days=self.rng.randrange(0, 900))
                    role = Guide.Role.STORE_MANAGER if index == 0 else Guide.Role.GUIDE
                    guides.append(Guide(code=code, name=name, store=store, role=role, hired_at=hired,
                                        phone=f"+86139{self.rng.randrange(10**8):08d}"))
                    users.append(User(username=code, first_name=name, password=password_hash,
                                      is_staff=role == Guide.Role.STORE_MANAGER))
        users = User.objects.bulk_create(users, batch_size=1000)
        for guide, user in zip(guides, users, strict=True):
            guide.user_id = user.pk
        guides = Guide.objects.bulk_create(guides, batch_size=1000)
        profiles = []
        for guide in guides:
            store = guide.store
            role = StaffRole.STORE_MANAGER if guide.role == Guide.Role.STORE_MANAGER else StaffRole.GUIDE
            profiles.append(StaffProfile(user_id=guide.user_id, role=role, group=self.group, brand_id=store.brand_id,
                                         region_id=store.region_id, store=store, guide=guide))
        StaffProfile.objects.bulk_create(profiles, batch_size=1000)
        self.guides_by_store: dict[int, list[Guide]] = {}
        for guide in guides:
            self.guides_by_store.setdefault(guide.store_id, []).append(guide)
        self.result.guides = len(guides)

    def build_staff_logins(self) -> None:
        from retail_crm.services import staff_account_create

        wom = self.brands["WOM"]
        east = self.regions[("WOM", "EAST")]
        store = next(s for s in self.stores_by_brand["WOM"] if s.region_id == east.pk)
        manager, guide = self.guides_by_store[store.pk][0], self.guides_by_store[store.pk][1]
        staff_account_create(username="hq", password=DEMO_PASSWORD, role=StaffRole.HQ, group=self.group,
                             full_name="集团新零售部")
        staff_account_create(username="brand_wom", password=DEMO_PASSWORD, role=StaffRole.BRAND_OPERATOR,
                             group=self.group, brand=wom, full_name="雅致女装品牌运营")
        staff_account_create(username="region_wom_east", password=DEMO_PASSWORD, role=StaffRole.REGION_MANAGER,
                             group=self.group, brand=wom, region=east, full_name="雅致女装华东大区经理")
        self.result.logins = [
            ("hq", "hq", "集团 / whole group"),
            ("brand_operator", "brand_wom", f"{wom.name} ({wom.code})"),
            ("region_manager", "region_wom_east", f"{wom.name} {east.name}"),
            ("store_manager", manager.code, store.name),
            ("guide", guide.code, f"{store.name} · {guide.name}"),
        ]

    # ------------------------------------------------------------------ catalogue
    def build_catalogue(self) -> None:
        self.skus_by_brand: dict[str, list[Sku]] = {}
        for spec in BRANDS:
            brand = self.brands[spec.code]
            products = []
            for index in range(40):
                category = spec.categories[index % len(spec.categories)]
                products.append(Product(brand=brand, code=f"{spec.code}-P{index + 1:03d}",
                                        name=f"{self.rng.choice(COLOURS[:4])}{category}{index + 1:02d}",
                                        category=category, season=SEASONS[index % len(SEASONS)]))
            products = Product.objects.bulk_create(products)
            skus = []
            low, high = spec.price_band
            for product in products:
                list_price = Decimal(self.rng.randrange(low, high) // 10 * 10 + 9)
                material = self.rng.choice(MATERIALS)
                sizes = ("35", "36", "37", "38", "39", "40") if product.category in ("跑鞋", "板鞋") else \
                    ("S", "M", "L", "XL")
                for colour in self.rng.sample(COLOURS, 2):
                    for size in sizes:
                        skus.append(Sku(product=product, brand=brand, code=f"{product.code}-{len(skus) + 1:03d}",
                                        colour=colour, size=size, material=material, list_price=list_price,
                                        member_price=_money(list_price * Decimal("0.85")),
                                        cost_price=_money(list_price * Decimal(str(self.rng.uniform(0.28, 0.42))))))
            self.skus_by_brand[spec.code] = Sku.objects.bulk_create(skus, batch_size=2000)

    # ------------------------------------------------------------------ members and orders
    def _random_name(self) -> str:
        return self.rng.choice(SURNAMES) + self.rng.choice(GIVEN) + (self.rng.choice(GIVEN) if self.rng.random()
                                                                       < 0.7 else "")

    def build_members_and_orders(self) -> None:
        rng = self.rng
        n_members = int(round(20_000 * self.scale))
        phone_numbers = rng.sample(range(10**8), n_members)
        prefixes = ("135", "136", "137", "138", "139", "150", "151", "158", "186", "187", "188")
        join_floor = self.start - dt.timedelta(days=180)
        join_span = (self.end - join_floor).total_seconds()
        brand_specs = {spec.code: spec for spec in BRANDS}
        brand_weights = [(spec.code, spec.weight) for spec in BRANDS]

        members: list[Member] = []
        plans = []  # (member index, brand code, store, joined_at, join channel, bound guide or None)
        for index in range(n_members):
            first_brand = _pick(rng, brand_weights)
            spec = brand_specs[first_brand]
            joined = join_floor + dt.timedelta(seconds=rng.random() * join_span)
            region_index = rng.randrange(len(REGIONS))
            female = rng.random() < spec.female_share
            members.append(Member(
                group=self.group, code=f"M{index + 1:07d}",
                phone=f"+86{prefixes[phone_numbers[index] % len(prefixes)]}{phone_numbers[index]:08d}",
                name=self._random_name(), gender="F" if female else "M",
                birthday=dt.date(rng.randrange(1965, 2006), rng.randrange(1, 13), rng.randrange(1, 29)),
                created_at=joined,
            ))
            brands = [first_brand]
            # Cross-brand: the group mall and member policy keep members across brands.
            for _ in range(2):
                if rng.random() < 0.33:
                    other = _pick(rng, brand_weights)
                    if other not in brands:
                        brands.append(other)
            for position, brand_code in enumerate(brands):
                region_stores = [s for s in self.stores_by_brand[brand_code]
                                 if s.region.code == REGIONS[region_index][0]]
                store = rng.choice(region_stores or self.stores_by_brand[brand_code])
                brand_joined = joined if position == 0 else joined + dt.timedelta(days=rng.randrange(10, 400))
                if brand_joined > self.end:
                    continue
                channel = _pick(rng, JOIN_CHANNEL_WEIGHTS)
                guides = self.guides_by_store[store.pk]
                bound = rng.choice(guides) if (channel == JoinChannel.GUIDE_QR or rng.random() < 0.62) else None
                plans.append((index, brand_code, store, brand_joined, channel, bound))

        members = Member.objects.bulk_create(members, batch_size=2000)
        memberships, bindings = [], []
        for index, brand_code, store, joined, channel, bound in plans:
            brand = self.brands[brand_code]
            memberships.append(BrandMembership(member=members[index], brand=brand, joined_at=joined,
                                               join_channel=channel, store=store,
                                               tier=rng.choices(("standard", "silver", "gold"), (70, 22, 8))[0]))
            if bound is not None:
                reason = GuideBinding.Reason.QR_SCAN if channel == JoinChannel.GUIDE_QR else \
                    GuideBinding.Reason.STORE_PURCHASE
                bindings.append(GuideBinding(member=members[index], brand=brand, guide=bound, store=store,
                                             started_at=joined, reason=reason))
        BrandMembership.objects.bulk_create(memberships, batch_size=2000)
        GuideBinding.objects.bulk_create(bindings, batch_size=2000)
        self.bindings = bindings
        self.membership_pairs = [(m.member_id, m.brand_id) for m in memberships]
        self.result.members = len(members)
        self.result.memberships = len(memberships)
        self.log(f"  members: {len(members)}, memberships: {len(memberships)}, bindings: {len(bindings)}")

        orders: list[Order] = []
        lines_per_order: list[list[OrderLine]] = []
        sequence = 0
        for index, brand_code, store, joined, _channel, bound in plans:
            spec = brand_specs[brand_code]
            personal = rng.lognormvariate(0.0, 0.35)
            churn = rng.uniform(0.06, 0.22)
            when = joined + dt.timedelta(hours=rng.uniform(0, 240))
            while when <= self.end:
                if when >= self.start and rng.random() < SEASONALITY[when.month] / MAX_SEASON:
                    sequence += 1
                    self._make_order(spec, members[index], store, bound, when, sequence, orders, lines_per_order)
                    if rng.random() < churn:
                        break
                    # A gamma's median sits below its mean: stretch so the median gap lands on the cycle.
                    gap = rng.gammavariate(2.2, spec.cycle_days * 1.12 * personal / 2.2)
                else:
                    gap = rng.uniform(3, 12)
                when += dt.timedelta(days=max(1.0, gap))
        # Offline buyers who are not members (the card-opening rate is below 100%).
        all_stores = [s for spec in BRANDS for s in self.stores_by_brand[spec.code]]
        walk_ins = int(len(orders) * 0.14)
        span = (self.end - self.start).total_seconds()
        for _ in range(walk_ins):
            store = rng.choice(all_stores)
            spec = brand_specs[store.brand.code]
            when = self.start + dt.timedelta(seconds=rng.random() * span)
            sequence += 1
            self._make_order(spec, None, store, None, when, sequence, orders, lines_per_order,
                             channel=Channel.STORE_POS)
        self.log(f"  orders generated: {len(orders)}")
        orders = Order.objects.bulk_create(orders, batch_size=2000)
        lines = []
        for order, order_lines in zip(orders, lines_per_order, strict=True):
            for line in order_lines:
                line.order = order
                lines.append(line)
        OrderLine.objects.bulk_create(lines, batch_size=4000)
        self.result.orders = len(orders)
        self.result.order_lines = len(lines)

    def _make_order(self, spec: BrandSpec, member: Member | None, home_store: Store, bound: Guide | None,
                    when: dt.datetime, sequence: int, orders: list, lines_per_order: list,
                    channel: str | None = None) -> None:
        rng = self.rng
        # Shops are open 10:00-22:00 local time; never earlier than the moment the purchase was
        # generated for (the member may have joined that very morning), never after the end.
        earliest = when
        when = when.replace(hour=rng.randrange(10, 22), minute=rng.randrange(60), second=rng.randrange(60),
                            microsecond=0)
        if when < earliest:
            when += dt.timedelta(days=1)
        if when > self.end:
            return  # no shop hour left before the demo ends: this purchase does not happen
        channel = channel or _pick(rng, ORDER_CHANNEL_WEIGHTS)
        brand = self.brands[spec.code]
        store, guide = None, None
        if channel == Channel.STORE_POS:
            store = home_store
            if rng.random() < 0.1:
                store = rng.choice(self.stores_by_brand[spec.code])
            staff = self.guides_by_store[store.pk]
            guide = bound if bound is not None and bound.store_id == store.pk and rng.random() < 0.7 \
                else rng.choice(staff)
        elif channel == Channel.STORE_LIVE:
            store = home_store
            guide = self.guides_by_store[store.pk][0]
        elif channel in (Channel.MINI_PROGRAM, Channel.COMMUNITY):
            roll = rng.random()
            if bound is not None and roll < 0.55:
                guide, store = bound, home_store
            elif roll < 0.65:
                shop = rng.choice(self.stores_by_brand[spec.code])
                guide = rng.choice(self.guides_by_store[shop.pk])
                store = shop
        # HQ livestream: no store, no guide: attribution decides later.
        skus = self.skus_by_brand[spec.code]
        n_lines = rng.choices((1, 2, 3), (60, 28, 12))[0]
        discount_choices = ((0.0, 40), (0.1, 25), (0.2, 18), (0.3, 10), (0.5, 7))
        if home_store.kind == "outlet" and channel == Channel.STORE_POS:
            discount_choices = ((0.3, 40), (0.5, 45), (0.6, 15))
        lines = []
        for _ in range(n_lines):
            sku = rng.choice(skus)
            quantity = 1 if rng.random() < 0.88 else 2
            if member is not None and channel != Channel.STORE_POS:
                unit_price = sku.member_price
            else:
                unit_price = _money(sku.list_price * Decimal(str(1 - _pick(rng, discount_choices))))
            lines.append(OrderLine(brand=brand, sku=sku, quantity=quantity, list_price=sku.list_price,
                                   unit_price=unit_price, amount=unit_price * quantity))
        total = sum((line.amount for line in lines), Decimal("0.00"))
        online = channel != Channel.STORE_POS
        age_days = (self.end - when).days
        status, paid_at, paid, refunded = OrderStatus.COMPLETED, when, total, Decimal("0.00")
        if online and rng.random() < 0.09:
            status = OrderStatus.EXPIRED if rng.random() < 0.6 else OrderStatus.CANCELLED
            paid_at, paid = None, Decimal("0.00")
        else:
            if online:
                paid_at = when + dt.timedelta(seconds=rng.randrange(20, 900))
                status = OrderStatus.PAID if age_days < 2 else OrderStatus.SHIPPED if age_days < 9 else \
                    OrderStatus.COMPLETED
            refund_rate = 0.07 if online else 0.02
            if rng.random() < refund_rate:
                if len(lines) > 1 and rng.random() < 0.4:
                    lines[0].refunded_amount = lines[0].amount
                    refunded = lines[0].amount
                else:
                    for line in lines:
                        line.refunded_amount = line.amount
                    refunded = total
        orders.append(Order(brand=brand, order_no=f"{spec.code}{when:%y%m%d}{sequence:07d}", member=member,
                            channel=channel, store=store, guide=guide, status=status, ordered_at=when,
                            paid_at=paid_at, total_amount=total, paid_amount=paid, refunded_amount=refunded))
        lines_per_order.append(lines)

    # ------------------------------------------------------------------ entry point
    def run(self) -> SeedResult:
        with transaction.atomic():
            self.build_org()
            self.log(f"  organisation: {self.result.brands} brands, {self.result.stores} stores")
            self.build_guides()
            self.log(f"  guides with logins: {self.result.guides}")
            self.build_staff_logins()
            self.build_catalogue()
            self.build_members_and_orders()
            self.result.member_life = (seed_member_life(self) | seed_mall_life(self) | seed_live_life(self)
                                       | seed_workbench_life(self))
            self.log("  member life: " + ", ".join(f"{k} {v}" for k, v in self.result.member_life.items()))
            self.build_rfm_history()
            self.build_points_balances()  # every step above may have bulk-written points entries
            # Last: campaigns are decided on everything above (RFML classes, orders, bindings, coupons, points).
            self.result.member_life |= seed_marketing_life(self)
            # Then the journeys, replayed over the last days on top of the campaigns (the cap counts both).
            self.result.member_life |= seed_journey_life(self)
            # After every order (live, campaign and try-on orders too): told sizes and colours agree with the
            # purchases.
            self.result.member_life["profiles_settled"] = settle_member_profiles(self)
        return self.result

    def build_rfm_history(self) -> None:
        """A year of month-end RFML runs per brand (class trend and transitions); run_jobs adds today's."""
        from segments.rfm import rfm_backfill_monthly

        started = time.monotonic()
        runs = sum(len(rfm_backfill_monthly(brand=brand, months=12, today=self.end_date))
                   for brand in self.brands.values())
        self.result.member_life["rfm_monthly_runs"] = runs
        self.log(f"  RFML history: {runs} month-end runs in {time.monotonic() - started:.1f} s")

    def build_points_balances(self) -> None:
        """The balance rows from the points ledger, which the life seeds write in bulk (bypassing points_post)."""
        from members.services import points_balances_rebuild

        self.result.member_life["points_balances"] = sum(points_balances_rebuild(brand_id=brand.pk)
                                                         for brand in self.brands.values())


def demo_exists() -> bool:
    return RetailGroup.objects.filter(code=DEMO_GROUP_CODE).exists()


def demo_seed(*, seed: int, scale: float, end_date: dt.date, stdout=None) -> SeedResult:
    """Seed the demo group unless it is already there (a second run changes nothing)."""
    if demo_exists():
        return SeedResult(skipped=True)
    return DemoSeeder(seed=seed, scale=scale, end_date=end_date, stdout=stdout).run()


@transaction.atomic
def demo_delete() -> None:
    """Remove the demo group and everything hanging off it (for --reset)."""
    group = RetailGroup.objects.filter(code=DEMO_GROUP_CODE).first()
    if group is None:
        return
    from analytics.models import SalesFact
    from segments.models import CareItem, MemberRfm, RfmClassChange, RfmRun

    brands = Brand.objects.filter(group=group)
    from marketing.models import Audience, Campaign, Delivery, Journey, ReachRules

    Journey.objects.filter(group=group).delete()  # steps, enrolments and their step logs go with them
    # Campaigns (runs, recipients, clicks, conversions go with them), then deliveries, which protect members.
    Campaign.objects.filter(group=group).delete()
    Audience.objects.filter(group=group).delete()
    Delivery.objects.filter(brand__in=brands).delete()
    ReachRules.objects.filter(group=group).delete()
    SalesFact.objects.filter(brand__in=brands).delete()
    CareItem.objects.filter(brand__in=brands).delete()
    RfmClassChange.objects.filter(brand__in=brands).delete()  # the RFML history (build_rfm_history, run_jobs)
    MemberRfm.objects.filter(brand__in=brands).delete()
    RfmRun.objects.filter(brand__in=brands).delete()
    from guides.models import GuideToken
    from mall.models import Coupon, CouponTemplate, MallSettings, Stock, StockMovement
    from members.models import BehaviourEvent, MemberDailyActivity, MemberTag, PointsEntry, TagGroup, WeComFriendship

    Coupon.objects.filter(template__brand__in=brands).delete()
    CouponTemplate.objects.filter(brand__in=brands).delete()
    MallSettings.objects.filter(brand__in=brands).delete()
    StockMovement.objects.filter(sku__brand__in=brands).delete()
    Stock.objects.filter(sku__brand__in=brands).delete()
    BehaviourEvent.objects.filter(brand__in=brands).delete()
    MemberDailyActivity.objects.filter(brand__in=brands).delete()
    MemberTag.objects.filter(member__group=group).delete()
    TagGroup.objects.filter(group=group).delete()
    WeComFriendship.objects.filter(member__group=group).delete()
    PointsEntry.objects.filter(brand__in=brands).delete()
    from members.models import PointsBalance

    PointsBalance.objects.filter(brand__in=brands).delete()
    from guides.models import CommissionEntry, CommissionRule, WithdrawalRequest

    CommissionEntry.objects.filter(brand__in=brands).delete()  # ledger rows protect orders, credits, requests
    WithdrawalRequest.objects.filter(brand__in=brands).delete()
    CommissionRule.objects.filter(brand__in=brands).delete()
    from guides.models import GuideTask, Material, Share, TaskAssignment

    TaskAssignment.objects.filter(task__group=group).delete()  # assignments and shares protect guides and tokens
    Share.objects.filter(group=group).delete()
    GuideTask.objects.filter(group=group).delete()
    Material.objects.filter(group=group).delete()
    GuideToken.objects.filter(guide__store__brand__in=brands).delete()
    GuideToken.objects.filter(staff_user__staff_profile__group=group).delete()  # office staff's share links
    OrderLine.objects.filter(order__brand__in=brands).delete()
    Order.objects.filter(brand__in=brands).delete()
    from livestream.models import LiveSession

    # Sessions protect their host guides, stores and products (and followed HQ sessions): store sessions first.
    LiveSession.objects.filter(brand__in=brands, follows__isnull=False).delete()
    LiveSession.objects.filter(brand__in=brands).delete()
    Sku.objects.filter(brand__in=brands).delete()
    Product.objects.filter(brand__in=brands).delete()
    GuideBinding.objects.filter(brand__in=brands).delete()
    BrandMembership.objects.filter(brand__in=brands).delete()
    Member.objects.filter(group=group).delete()
    users = list(StaffProfile.objects.filter(group=group).values_list("user_id", flat=True))
    StaffProfile.objects.filter(group=group).delete()
    guides = Guide.objects.filter(store__brand__in=brands)
    users += [uid for uid in guides.values_list("user_id", flat=True) if uid]
    guides.delete()
    Store.objects.filter(brand__in=brands).delete()
    Region.objects.filter(brand__in=brands).delete()
    brands.delete()
    group.delete()
    get_user_model().objects.filter(pk__in=users).delete()
