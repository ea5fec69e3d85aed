"""The demo's reach: who can be reached on which channel, and six finished campaigns replayed through the real
engine, with holdouts and results.

Drawn from its own random stream, so the orders the seed has always produced stay the same.

**Addresses and consent.** About 60 % of members use the mini-program (an openid), 30 % follow the official
account (unionid and official-account openid), 40 % of mini-program users accepted the new-arrivals subscribe
message one to three times, and 2 % replied "TD" to an SMS some time in the last year (opted out of SMS).

**Campaigns.** Each is created, launched at 10:00 local on its day, resolved, dispatched (the fake channels
record what they would send) and answered, oldest first, through ``marketing.campaigns`` and
``marketing.services`` under the default rules, so each later campaign is decided with everything earlier in
place: opt-outs, consents, the care window (also after the campaign orders of earlier campaigns), the cap
across brands (three campaigns fall within five days) and quiet hours. Nothing here writes a delivery itself.
Then, for the members actually sent to: most SMS are delivered (a receipt), some members click their own
link within hours, and some of those who click buy in the mini-program within days (a campaign order, guided
by their bound guide when they have one, carried to the campaign by its click). The holdout only buys as it
would have anyway, so the results show each campaign's lift with its interval, and variant B of the spring
campaign draws more clicks than A.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import F, OuterRef, Subquery, Value
from django.db.models.functions import Concat
from django.utils import timezone

from mall.models import Channel as OrderChannel
from mall.models import Coupon, CouponStatus, CouponTemplate, Order, OrderLine, OrderStatus
from marketing.audiences import audience_definition_clean
from marketing.campaigns import VariantSpec, campaign_create, campaign_launch, campaign_run_resolve
from marketing.models import (
    Audience,
    Campaign,
    CampaignRecipient,
    CampaignRun,
    Channel,
    ChannelOptOut,
    Delivery,
    LinkClick,
    SubscribeConsent,
)
from marketing.services import deliveries_dispatch
from marketing.tracking import orders_conversions_record
from members.models import GuideBinding, Member, PointsEntry
from members.services import points_balances_rebuild

LINK = "https://mall.example.com/mp/campaign?id={code}"
SUBSCRIBE_TEMPLATE = "TPL_NEW_ARRIVAL"
CHUNK = 2000


@dataclass(frozen=True)
class DemoCampaign:
    brand: str
    name: str
    audience: str
    definition: dict
    channels: tuple[str, ...]
    days_before_end: int
    holdout: Decimal
    click_rate: tuple[float, ...]  # per variant (one value without variants)
    buy_rate: float  # of those who click, how many buy within days
    coupon: str = ""  # the name of one of the brand's demo coupon templates, issued at send time
    variants: tuple[str, ...] = ()  # variant B's wording differs in its SMS and subscribe texts


def _sms(text: str) -> dict:
    return {"template": "1896012", "params": ["{name}", text, "{link}"]}


def _subscribe(text: str) -> dict:
    return {"template": SUBSCRIBE_TEMPLATE, "params": {"thing1": text, "thing2": "{guide}", "page": "{link}"}}


CAMPAIGNS = (
    DemoCampaign("WOM", "春夏新品上市", "近三个月购买过的会员", {"purchase": [{"days": 90}]},
                 (Channel.SUBSCRIBE, Channel.SMS), 56, Decimal("10"), (0.08, 0.12), 0.25,
                 variants=("春夏新品已到店，来看看", "春夏新品到店，会员先试穿")),
    DemoCampaign("MEN", "沉睡会员唤醒券", "超过1.5个购买周期未回购", {"last_purchase": {"min_cycles": "1.5"}},
                 (Channel.SMS,), 42, Decimal("15"), (0.07,), 0.30, coupon="满500减50"),
    DemoCampaign("WOM", "重要会员专属回访", "重要价值会员", {"rfml_classes": ["important_value"]},
                 (Channel.GUIDE_TASK, Channel.SUBSCRIBE, Channel.SMS), 40, Decimal("10"), (0.10,), 0.30),
    DemoCampaign("WOM", "周末穿搭推荐", "近两个月购买过的会员", {"purchase": [{"days": 60}]},
                 (Channel.SUBSCRIBE, Channel.SMS), 38, Decimal("10"), (0.06,), 0.20),
    DemoCampaign("KID", "开学季焕新", "去年同期购买过的会员", {"purchase": [{"same_period_last_year_days": 45}]},
                 (Channel.OFFICIAL_ACCOUNT, Channel.SMS), 28, Decimal("10"), (0.09,), 0.25, coupon="会员88折"),
    DemoCampaign("SPT", "会员日双倍积分", "近半年购买过的会员", {"purchase": [{"days": 180}]},
                 (Channel.SUBSCRIBE, Channel.SMS), 21, Decimal("10"), (0.07,), 0.22),
)
TEXTS = {"沉睡会员唤醒券": "好久不见，送您一张{coupon}", "重要会员专属回访": "您的专属导购想约您来店试新品",
         "周末穿搭推荐": "本周末穿搭灵感已上新", "开学季焕新": "开学季焕新，会员专享{coupon}",
         "会员日双倍积分": "会员日全场双倍积分"}


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


class _MarketingLife:
    def __init__(self, seeder):
        self.seeder = seeder
        self.rng = random.Random(seeder.seed * 7919 + 17)
        self.end = seeder.end
        self.tz = timezone.get_default_timezone()
        self.counts: Counter[str] = Counter()
        self.sequence = 0

    # ------------------------------------------------------------------ addresses and consent
    def addresses(self) -> None:
        rng = self.rng
        ids = list(Member.objects.filter(group=self.seeder.group).order_by("pk").values_list("pk", flat=True))
        mini = [pk for pk in ids if rng.random() < 0.6]
        follows = [pk for pk in ids if rng.random() < 0.3]
        for start in range(0, len(mini), CHUNK):
            Member.objects.filter(pk__in=mini[start:start + CHUNK]).update(openid=Concat(Value("oMP-"), F("code")))
        for start in range(0, len(follows), CHUNK):
            Member.objects.filter(pk__in=follows[start:start + CHUNK]).update(
                unionid=Concat(Value("uWX-"), F("code")), oa_openid=Concat(Value("oOA-"), F("code")))
        consents = [SubscribeConsent(member_id=pk, template_id=SUBSCRIBE_TEMPLATE, remaining=rng.randint(1, 3))
                    for pk in mini if rng.random() < 0.4]
        SubscribeConsent.objects.bulk_create(consents, batch_size=CHUNK)
        opt_outs = [ChannelOptOut(member_id=pk, channel=Channel.SMS, source="sms_reply",
                                  opted_out_at=self.end - dt.timedelta(days=rng.uniform(60, 400)))
                    for pk in ids if rng.random() < 0.02]
        ChannelOptOut.objects.bulk_create(opt_outs, batch_size=CHUNK)
        self.counts.update(mini_program_members=len(mini), official_account_followers=len(follows),
                           subscribe_consents=len(consents), sms_opt_outs=len(opt_outs))

    # ------------------------------------------------------------------ campaigns
    def campaign(self, spec: DemoCampaign) -> None:
        brand = self.seeder.brands[spec.brand]
        audience_definition_clean(brand=brand, definition=spec.definition)  # the demo's own definitions hold
        audience, _ = Audience.objects.get_or_create(brand=brand, name=spec.audience,
                                                     defaults={"group": self.seeder.group,
                                                               "definition": spec.definition})
        coupon = CouponTemplate.objects.get(brand=brand, name=spec.coupon) if spec.coupon else None

        def content(text: str) -> dict:
            entries = {Channel.SMS: _sms(text), Channel.SUBSCRIBE: _subscribe(text),
                       Channel.OFFICIAL_ACCOUNT: {"template": "OA_TPL_ACTIVITY", "url": "{link}",
                                                  "params": {"first": "{name}，" + text, "keyword1": spec.name,
                                                             "remark": "点击查看详情"}},
                       Channel.GUIDE_TASK: {"reason": text, "action": "电话或企业微信邀约到店，推荐本季新品"}}
            return {channel: entries[channel] for channel in spec.channels}

        variants = [VariantSpec(name=name, weight=50, content=content(text))
                    for name, text in zip(("A", "B"), spec.variants, strict=False)]
        at = timezone.make_aware(dt.datetime.combine(self.end.astimezone(self.tz).date()
                                                     - dt.timedelta(days=spec.days_before_end), dt.time(10)), self.tz)
        campaign = campaign_create(brand=brand, audience=audience, name=spec.name, channels=list(spec.channels),
                                   content={} if variants else content(TEXTS[spec.name]), variants=variants,
                                   link=LINK.format(code=spec.brand.lower()), coupon_template=coupon,
                                   holdout_percent=spec.holdout)
        campaign_launch(campaign=campaign, at=at)
        run = CampaignRun.objects.get(campaign=campaign)
        campaign_run_resolve(run_id=run.pk, now=at)
        deliveries_dispatch(now=at + dt.timedelta(minutes=1), limits={channel: 10**9 for channel in Channel.values})
        Campaign.objects.filter(pk=campaign.pk).update(created_at=at - dt.timedelta(days=2), launched_at=at)
        self.receipts(run)
        clicks = self.clicks(spec, campaign, run)
        self.orders(spec, clicks)
        self.counts["campaigns"] += 1

    def receipts(self, run: CampaignRun) -> None:
        """Most SMS come back delivered a few seconds after they went (the provider's receipt)."""
        sms = Delivery.objects.filter(source=run.source, channel=Channel.SMS, status=Delivery.Status.SENT)
        ids = [pk for pk in sms.order_by("pk").values_list("pk", flat=True) if self.rng.random() < 0.96]
        for start in range(0, len(ids), CHUNK):
            Delivery.objects.filter(pk__in=ids[start:start + CHUNK]).update(
                status=Delivery.Status.DELIVERED, delivered_at=F("sent_at") + dt.timedelta(seconds=7))
        self.counts["sms_delivered"] += len(ids)

    def clicks(self, spec: DemoCampaign, campaign: Campaign, run: CampaignRun) -> list[LinkClick]:
        """Some members sent a message click their own link within hours of it (never after the demo ends)."""
        rng = self.rng
        variant_names = dict(campaign.variants.values_list("pk", "name"))
        sent = (CampaignRecipient.objects.filter(run=run, outcome=CampaignRecipient.Outcome.SENT,
                                                 link_code__isnull=False)
                .exclude(channel=Channel.GUIDE_TASK).order_by("member_id")
                .values_list("member_id", "variant_id", "delivery_id"))
        sent_at = dict(Delivery.objects.filter(source=run.source, sent_at__isnull=False)
                       .values_list("pk", "sent_at"))
        clicks = []
        for member_id, variant_id, delivery_id in sent:
            if delivery_id not in sent_at:
                continue  # failed at the provider
            rate = spec.click_rate[1] if variant_names.get(variant_id) == "B" else spec.click_rate[0]
            if rng.random() >= rate:
                continue
            when = sent_at[delivery_id] + dt.timedelta(minutes=min(rng.lognormvariate(3.6, 1.2), 2 * 24 * 60))
            if when < self.end:
                clicks.append(LinkClick(campaign=campaign, run=run, variant_id=variant_id, member_id=member_id,
                                        clicked_at=when.replace(microsecond=0)))
        LinkClick.objects.bulk_create(clicks, batch_size=CHUNK)
        self.counts["clicks"] += len(clicks)
        return clicks

    def orders(self, spec: DemoCampaign, clicks: list[LinkClick]) -> None:
        """Some who click buy in the mini-program within days; their bound guide serves the order."""
        rng, seeder = self.rng, self.seeder
        brand = seeder.brands[spec.brand]
        buyers = [click for click in clicks if rng.random() < spec.buy_rate]
        member_ids = {click.member_id for click in buyers}
        bound = dict(GuideBinding.objects.filter(brand=brand, member_id__in=member_ids, ended_at__isnull=True)
                     .values_list("member_id", "guide_id"))
        guide_store = {guide.pk: store_pk for store_pk, guides in seeder.guides_by_store.items() for guide in guides}
        skus = seeder.skus_by_brand[spec.brand]
        orders, lines_per_order = [], []
        for click in buyers:
            when = (click.clicked_at + dt.timedelta(hours=rng.uniform(0.1, 96))).astimezone(self.tz)
            if not 10 <= when.hour < 22:  # in the day, as the demo's other orders (never before the click)
                day = when.date() if when.hour < 10 else when.date() + dt.timedelta(days=1)
                when = timezone.make_aware(dt.datetime.combine(day, dt.time(rng.randrange(10, 22),
                                                                            rng.randrange(60))), self.tz)
            if when >= self.end:
                continue
            self.sequence += 1
            lines = []
            for sku in rng.sample(skus, rng.choices((1, 2), (70, 30))[0]):
                quantity = 1 if rng.random() < 0.9 else 2
                lines.append(OrderLine(brand=brand, sku=sku, quantity=quantity, list_price=sku.list_price,
                                       unit_price=sku.member_price, amount=sku.member_price * quantity))
            total = sum((line.amount for line in lines), Decimal("0.00"))
            paid_at = when + dt.timedelta(seconds=rng.randrange(30, 600))
            age_days = (self.end - when).days
            status = OrderStatus.PAID if age_days < 2 else OrderStatus.SHIPPED if age_days < 9 else \
                OrderStatus.COMPLETED
            guide_id = bound.get(click.member_id)
            local = when.astimezone(self.tz)
            orders.append(Order(brand=brand, order_no=f"{spec.brand}K{local:%y%m%d}{self.sequence:06d}",
                                member_id=click.member_id, channel=OrderChannel.MINI_PROGRAM,
                                store_id=guide_store.get(guide_id), guide_id=guide_id, status=status,
                                ordered_at=when, paid_at=paid_at, total_amount=total, items_amount=total,
                                paid_amount=total, refunded_amount=Decimal("0.00")))
            lines_per_order.append(lines)
        orders = Order.objects.bulk_create(orders, batch_size=CHUNK)
        all_lines = []
        for order, lines in zip(orders, lines_per_order, strict=True):
            for line in lines:
                line.order = order
                all_lines.append(line)
        OrderLine.objects.bulk_create(all_lines, batch_size=CHUNK)
        entries = PointsEntry.objects.bulk_create([
            PointsEntry(member_id=o.member_id, brand=brand, order=o, delta=int(o.paid_amount),
                        reason=PointsEntry.Reason.EARN, note="demo") for o in orders], batch_size=CHUNK)
        ids = [entry.pk for entry in entries]
        for start in range(0, len(ids), CHUNK):  # earned when the order was paid, not at seeding time
            PointsEntry.objects.filter(pk__in=ids[start:start + CHUNK]).update(
                created_at=Subquery(Order.objects.filter(pk=OuterRef("order_id")).values("paid_at")[:1]))
        points_balances_rebuild(brand_id=brand.pk, member_ids=sorted({o.member_id for o in orders}))
        self.counts["campaign_orders"] += len(orders)
        self.counts["campaign_order_lines"] += len(all_lines)
        seeder.result.orders += len(orders)
        seeder.result.order_lines += len(all_lines)

    def conversions(self) -> None:
        """Every paid order of a member who clicked, from the first click on, carried to its campaign (the last
        click within the window): the campaign orders and any the member placed anyway."""
        first = LinkClick.objects.filter(campaign__group=self.seeder.group).order_by("clicked_at") \
            .values_list("clicked_at", flat=True).first()
        if first is None:
            return
        clickers = LinkClick.objects.filter(campaign__group=self.seeder.group).values("member_id")
        order_ids = Order.objects.filter(member_id__in=clickers, paid_at__gte=first).values_list("pk", flat=True)
        self.counts["campaign_conversions"] = orders_conversions_record(order_ids=list(order_ids))

    def run(self) -> dict[str, int]:
        started = time.perf_counter()
        self.addresses()
        for spec in CAMPAIGNS:
            self.campaign(spec)
        self.conversions()
        # Coupons the campaigns issued whose validity ended before the demo's end, stored as the mall's own
        # seed stores them (the mall reads a lapsed coupon as expired either way).
        self.counts["campaign_coupons_expired"] = Coupon.objects.filter(
            template__brand__group=self.seeder.group, status=CouponStatus.AVAILABLE, valid_to__lte=self.end,
        ).update(status=CouponStatus.EXPIRED)
        statuses = Counter(Delivery.objects.filter(brand__group=self.seeder.group).values_list("status", flat=True))
        self.counts.update({f"deliveries_{status}": n for status, n in statuses.items()})
        self.seeder.log(f"  campaigns: {self.counts['campaigns']} finished, {sum(statuses.values())} deliveries "
                        f"({statuses['sent'] + statuses['delivered']} sent, {statuses['held']} held back, "
                        f"{statuses['to_guide']} to guides), {self.counts['clicks']} clicks, "
                        f"{self.counts['campaign_orders']} campaign orders in {time.perf_counter() - started:.1f}s")
        return dict(self.counts)


def seed_marketing_life(seeder) -> dict[str, int]:
    """Add reach to what ``seeder`` (a DemoSeeder) has built: addresses, consents, opt-outs and finished
    campaigns with their deliveries, clicks and orders; returns row counts."""
    return _MarketingLife(seeder).run()

