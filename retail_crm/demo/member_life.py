"""The demo's member life beyond orders: profiles, guide QR tokens, WeCom friends, points, behaviour.

Runs after the organisation, members and orders are seeded, from its own
random stream (derived from the seed) so adding it leaves the orders the
seed has always produced untouched. Figures follow DOMAIN.md: about 40% of
bound store buyers become a guide's WeCom friend, points are earned one per
yuan of sales flow, and the last 30 days carry mini-program behaviour
(product views, favourites, shares through guides' links, add to cart,
unpaid orders) from members and anonymous visitors.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections import defaultdict

import pandas as pd
from django.core import signing
from django.db.models import Case, ExpressionWrapper, F, FloatField, IntegerField, OuterRef, Subquery, Value, When
from django.db.models.functions import Cast

from guides.models import GuideToken
from mall.models import Channel, Order, OrderLine, OrderStatus
from mall.selectors import purchases
from members.models import BehaviourEvent, EventKind, Member, PointsEntry, WeComFriendship

CLOTHING_SIZES = ("S", "M", "L", "XL")
SHOE_SIZES = ("35", "36", "37", "38", "39", "40", "41", "42", "43")
STYLES = ("通勤", "休闲", "运动", "优雅", "街头", "简约")
EVENT_DAYS = 30


def seed_member_life(seeder) -> dict[str, int]:
    """Add the member side of the demo to what ``seeder`` (a DemoSeeder) has built; returns row counts."""
    from retail_crm.demo.seed import COLOURS, MATERIALS

    rng = random.Random(seeder.seed * 7919 + 17)
    counts: dict[str, int] = {}
    members = list(Member.objects.filter(group=seeder.group).order_by("pk"))

    # Profiles: sizes and preferences for the members who told a guide. What they tell agrees with what they
    # buy (a member who bought mostly XL says XL); the random pick stands only where they bought nothing telling.
    # The orders seeded after this (live and campaign orders) can change what that is: settle_member_profiles
    # brings the told values in line with all the purchases at the end of the seed.
    bought = _purchase_preferences(seeder)
    for member in members:
        if rng.random() < 0.6:
            member.clothing_size = bought["clothing_size"].get(member.pk) or rng.choice(CLOTHING_SIZES)
        if rng.random() < 0.35:
            shoe = rng.choice(SHOE_SIZES[:6] if member.gender == "F" else SHOE_SIZES[3:])
            member.shoe_size = bought["shoe_size"].get(member.pk) or shoe
        if rng.random() < 0.4:
            colours, materials = rng.sample(COLOURS, rng.randint(1, 2)), rng.sample(MATERIALS, 1)
            colour, material = bought["colour"].get(member.pk), bought["material"].get(member.pk)
            member.preferred_colours = [colour] if colour else colours
            member.preferred_materials = [material] if material else materials
            member.preferred_styles = rng.sample(STYLES, rng.randint(1, 2))
    Member.objects.bulk_update(members, ["clothing_size", "shoe_size", "preferred_colours", "preferred_materials",
                                         "preferred_styles"], batch_size=2000)

    # Every guide's exclusive QR / share token, deterministic for the seed.
    signer = signing.Signer(salt="guides.token")
    guides = [g for store_guides in seeder.guides_by_store.values() for g in store_guides]
    tokens = GuideToken.objects.bulk_create(
        [GuideToken(guide=g, token=signer.sign(f"{rng.getrandbits(72):018x}")) for g in guides],
        batch_size=2000)
    token_of = {t.guide_id: t.token for t in tokens}
    counts["guide_tokens"] = len(tokens)

    # WeCom friends: ~45% of bound members add their guide a few days after binding; some delete later.
    friendships = []
    bindings = seeder.bindings
    for binding in bindings:
        if rng.random() >= 0.45:
            continue
        added = binding.started_at + dt.timedelta(days=rng.uniform(0, 6))
        if added > seeder.end:
            continue
        removed = None
        if rng.random() < 0.06:
            removed = added + dt.timedelta(days=rng.uniform(5, 200))
            removed = removed if removed <= seeder.end else None
        friendships.append(WeComFriendship(member_id=binding.member_id, guide_id=binding.guide_id,
                                           external_userid=f"wm{binding.member_id:08d}{binding.guide_id:05d}",
                                           added_at=added, removed_at=removed, source=WeComFriendship.Source.IMPORT))
    WeComFriendship.objects.bulk_create(friendships, batch_size=2000)
    counts["wecom_friendships"] = len(friendships)

    # Points: one per yuan of a purchase's sales flow, dated when the order was paid.
    bought = purchases(Order.objects.filter(brand__group=seeder.group, member__isnull=False)).values_list(
        "pk", "member_id", "brand_id", "net")
    entries = [PointsEntry(member_id=member_id, brand_id=brand_id, order_id=pk, delta=int(net),
                           reason=PointsEntry.Reason.EARN, note="demo")
               for pk, member_id, brand_id, net in bought.iterator(chunk_size=5000) if int(net) > 0]
    PointsEntry.objects.bulk_create(entries, batch_size=5000)
    PointsEntry.objects.filter(note="demo", brand__group=seeder.group).update(
        created_at=Subquery(Order.objects.filter(pk=OuterRef("order_id")).values("paid_at")[:1]))
    counts["points_entries"] = len(entries)

    counts["events"] = _seed_events(seeder, rng, token_of)
    counts["tag_rules"] = _seed_tags(seeder, rng)
    return counts


def settle_member_profiles(seeder) -> int:
    """Last step of the seed, after every order: a member's told clothing and shoe size, colour and material
    become what all their purchases say (the values the standard rule tags compute on the demo's end date), so
    a profile never contradicts its size or colour tag (issue 23 #4). Who told a guide anything, and the random
    pick of one who bought nothing telling, stay as seed_member_life drew them. Returns the members changed."""
    bought = _purchase_preferences(seeder)
    changed = []
    for member in Member.objects.filter(group=seeder.group).order_by("pk").only(
            "pk", "clothing_size", "shoe_size", "preferred_colours", "preferred_materials"):
        before = (member.clothing_size, member.shoe_size, member.preferred_colours, member.preferred_materials)
        if member.clothing_size:
            member.clothing_size = bought["clothing_size"].get(member.pk) or member.clothing_size
        if member.shoe_size:
            member.shoe_size = bought["shoe_size"].get(member.pk) or member.shoe_size
        if member.preferred_colours and member.pk in bought["colour"]:
            member.preferred_colours = [bought["colour"][member.pk]]
        if member.preferred_materials and member.pk in bought["material"]:
            member.preferred_materials = [bought["material"][member.pk]]
        if (member.clothing_size, member.shoe_size, member.preferred_colours, member.preferred_materials) != before:
            changed.append(member)
    Member.objects.bulk_update(changed, ["clothing_size", "shoe_size", "preferred_colours", "preferred_materials"],
                               batch_size=2000)
    return len(changed)


def _purchase_preferences(seeder) -> dict[str, dict[int, str]]:
    """What each member's purchases say, read as the standard tag rules read them (members.tags.DEFAULT_RULES):
    the clothing and shoe size bought in the largest quantity (all time), the colour and material with the
    largest spend in the last year; ties go to the larger spend, then the value first in order. One query,
    one frame: {"clothing_size" | "shoe_size" | "colour" | "material": {member id: value}}."""
    from members.tags import NOT_CLOTHING_WORDS, SHOE_WORDS

    year_ago = seeder.end - dt.timedelta(days=365)
    columns = ["member_id", "recent", "quantity", "amount", "spend", "size", "colour", "material", "category"]
    # Floats and a 0/1 flag straight from the database: no Decimal or datetime per row (190,000 lines).
    lines = OrderLine.objects.filter(order__brand__group=seeder.group, order__member__isnull=False,
                                     order_id__in=purchases().values("pk"), amount__gt=F("refunded_amount")) \
        .annotate(recent=Case(When(order__ordered_at__gte=year_ago, then=Value(1)), default=Value(0),
                              output_field=IntegerField()),
                  amount_f=Cast("amount", FloatField()),
                  spend=ExpressionWrapper(Cast("amount", FloatField()) - Cast("refunded_amount", FloatField()),
                                          output_field=FloatField())) \
        .values_list("order__member_id", "recent", "quantity", "amount_f", "spend", "sku__size", "sku__colour",
                     "sku__material", "sku__product__category")
    frame = pd.DataFrame.from_records(list(lines), columns=columns)
    if frame.empty:
        return {key: {} for key in ("clothing_size", "shoe_size", "colour", "material")}
    frame["qty"] = frame["quantity"] * frame["spend"] / frame["amount"]
    category = frame["category"].fillna("").str.lower()

    def contains(words: str) -> pd.Series:
        return category.str.contains("|".join(re.escape(w.lower()) for w in words.split(",")), regex=True)

    def top(rows: pd.DataFrame, field: str, first: str) -> dict[int, str]:
        rows = rows[rows[field].fillna("") != ""]
        per = rows.groupby(["member_id", field], sort=False).agg(qty=("qty", "sum"), spend=("spend", "sum"))
        order = [first, "spend" if first == "qty" else "qty"]
        per = per.reset_index().sort_values(["member_id", *order, field], ascending=[True, False, False, True])
        best = per.drop_duplicates("member_id")
        return dict(zip(best["member_id"].astype(int), best[field].astype(str), strict=True))

    recent = frame[frame["recent"] == 1]
    return {"clothing_size": top(frame[~contains(NOT_CLOTHING_WORDS)], "size", "qty"),
            "shoe_size": top(frame[contains(SHOE_WORDS)], "size", "qty"),
            "colour": top(recent, "colour", "spend"), "material": top(recent, "material", "spend")}


def _seed_tags(seeder, rng: random.Random) -> int:
    """The standard rule tags for every brand (run_jobs computes them) and a hand-kept VIP salon list."""
    from members.models import MemberTag, TagSource
    from members.tags import tag_group_get_or_create, tag_rules_install_defaults, tag_value_get_or_create

    rules = sum(len(tag_rules_install_defaults(brand)) for brand in seeder.brands.values())
    salon = tag_group_get_or_create(group=seeder.group, code="salon", name="VIP沙龙", multi_valued=True)
    invited = tag_value_get_or_create(tag_group=salon, code="invited-2026", name="2026春季沙龙邀请")
    guests = [m for m, _b in seeder.membership_pairs if rng.random() < 0.03]
    MemberTag.objects.bulk_create(
        [MemberTag(member_id=pk, tag_value=invited, source=TagSource.MANUAL, assigned_at=seeder.end,
                   reason="店长邀请") for pk in sorted(set(guests))],
        batch_size=2000)
    _seed_behaviour_rules(seeder)
    return rules


def _seed_behaviour_rules(seeder) -> None:
    """Per brand, "interested in <its commonest category>": 3 product views of it in 14 days, a behaviour tag
    (run_jobs applies the rules; later events keep the tags current)."""
    from collections import Counter

    from members.models import BehaviourTagRule, EventKind
    from members.tags import tag_group_get_or_create, tag_value_get_or_create

    for brand_code, skus in sorted(seeder.skus_by_brand.items()):
        brand = seeder.brands[brand_code]
        categories = Counter(sku.product.category for sku in {sku.product_id: sku for sku in skus}.values())
        category = sorted(categories.items(), key=lambda item: (-item[1], item[0]))[0][0]
        interest = tag_group_get_or_create(group=seeder.group, brand=brand, code="interest", name="兴趣",
                                           multi_valued=True)
        value = tag_value_get_or_create(tag_group=interest, code=f"views-{category}"[:60], name=f"关注{category}")
        rule = BehaviourTagRule(brand=brand, tag_value=value, name=f"对{category}感兴趣", kind=EventKind.PRODUCT_VIEW,
                                categories=category, min_count=3, window_days=14)
        rule.full_clean()
        rule.save()


def _seed_events(seeder, rng: random.Random, token_of: dict[int, str]) -> int:
    """The last 30 days of mini-program behaviour, ending at the demo's end."""
    start = seeder.end - dt.timedelta(days=EVENT_DAYS)
    products_by_brand: dict[int, list[str]] = defaultdict(list)
    for brand_code, skus in seeder.skus_by_brand.items():
        brand = seeder.brands[brand_code]
        products_by_brand[brand.pk] = sorted({sku.product.code for sku in skus})
    bound_guide = {(b.member_id, b.brand_id): b.guide_id for b in seeder.bindings}
    guides_by_brand: dict[int, list[int]] = defaultdict(list)
    for store_guides in seeder.guides_by_store.values():
        for guide in store_guides:
            guides_by_brand[guide.store.brand_id].append(guide.pk)
    events: list[BehaviourEvent] = []

    def session(brand_id: int, at: dt.datetime, member_id: int | None, visitor: str, guide_id: int | None):
        token = token_of.get(guide_id, "") if guide_id else ""
        product = rng.choice(products_by_brand[brand_id])
        common = {"brand_id": brand_id, "member_id": member_id, "visitor_id": visitor, "object_type": "product",
                  "object_id": product, "share_token": token, "guide_id": guide_id if token else None}
        for _ in range(rng.choice((1, 1, 2, 3))):
            at += dt.timedelta(seconds=rng.randrange(5, 120))
            events.append(BehaviourEvent(kind=EventKind.PRODUCT_VIEW, occurred_at=at, **common))
        roll = rng.random()
        if roll < 0.18:
            events.append(BehaviourEvent(kind=EventKind.FAVOURITE, occurred_at=at + dt.timedelta(seconds=20),
                                         **common))
        if roll < 0.12 and member_id:
            events.append(BehaviourEvent(kind=EventKind.ADD_TO_CART, occurred_at=at + dt.timedelta(seconds=40),
                                         **common))
        if rng.random() < 0.05 and member_id:
            events.append(BehaviourEvent(kind=EventKind.SHARE, occurred_at=at + dt.timedelta(seconds=60), **common))

    memberships = list(seeder.membership_pairs)
    for member_id, brand_id in memberships:
        if rng.random() >= 0.3:
            continue
        for _ in range(rng.choice((1, 1, 2, 3, 5))):
            at = start + dt.timedelta(seconds=rng.random() * EVENT_DAYS * 86400)
            # About a third of visits come through a guide's share link (usually the bound guide's).
            guide_id = None
            if rng.random() < 0.35:
                guide_id = bound_guide.get((member_id, brand_id)) or rng.choice(guides_by_brand[brand_id])
            session(brand_id, at, member_id, "", guide_id)
    brand_ids = sorted(products_by_brand)
    for visitor in range(int(3000 * seeder.scale)):
        brand_id = rng.choice(brand_ids)
        at = start + dt.timedelta(seconds=rng.random() * EVENT_DAYS * 86400)
        guide_id = rng.choice(guides_by_brand[brand_id]) if rng.random() < 0.5 else None
        session(brand_id, at, None, f"v{seeder.seed % 1000:03d}-{visitor:06d}", guide_id)
    unpaid = Order.objects.filter(brand__group=seeder.group, member__isnull=False, ordered_at__gte=start,
                                  status__in=[OrderStatus.EXPIRED, OrderStatus.CANCELLED]).exclude(
        channel=Channel.STORE_POS).values_list("brand_id", "member_id", "order_no", "ordered_at")
    for brand_id, member_id, order_no, at in unpaid:
        events.append(BehaviourEvent(brand_id=brand_id, member_id=member_id, kind=EventKind.ORDER_UNPAID,
                                     occurred_at=at, object_type="order", object_id=order_no))
    events = [e for e in events if e.occurred_at <= seeder.end]
    BehaviourEvent.objects.bulk_create(events, batch_size=5000)
    return len(events)
