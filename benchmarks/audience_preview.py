"""Benchmark: the live size preview of an audience for a brand of 1,000,000 members (issue 17: p95 < 2 s).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench_audience .venv/bin/python \
        benchmarks/audience_preview.py --members 1000000          # generate (minutes), then measure
    … benchmarks/audience_preview.py --reuse --calls 30           # measure again on the generated data

Generation (skipped with ``--reuse``; the database is dropped and created, then migrated): one brand with
``--members`` members, all generated inside PostgreSQL with ``INSERT … SELECT … FROM generate_series``
(seeded with ``setseed``: the same data every run), foreign-key triggers off during the load and the big
tables' secondary indexes rebuilt afterwards. Per member of the brand, about:

* a membership (join channel, store, join time over three years); 10 % are also members of a second brand;
* a current guide binding (60 %), a WeCom friendship with that guide (35 % of all);
* a size tag (80 %, group-wide values) and 0–2 brand style tags;
* 3 orders over two years with one line each (400 products in 20 categories, skewed; 3 % fully refunded),
  the RFML row built from them (two thirds of the members buy) with a class and a lifecycle stage, and a
  points ledger (earned on purchases, 30 % of buyers spent some) with its balance rows;
* a coupon for 30 % (available, void or expired);
* 3 behaviour events in the last 30 days (on a quarter of the members, the most active ones most; views
  70 %, favourites 15 %, adds to cart 15 %; products skewed), and the daily counters built from them.

At 100,000 members that is 66,000 RFML rows, 300,000 orders, 86,000 points entries, 160,000 member tags,
300,000 behaviour events and 222,000 daily counter rows; ten times as many at 1,000,000.

Measurement: for each realistic definition below, ``--calls`` previews exactly as the API runs them
(validation of the definition against the brand, then ``audience_count``: one COUNT under
``audience_query_settings``), timed one after the other; prints the count, p50, p95 and max per definition,
and the load average (the machine may be shared). Target: p95 < 2 s per definition at 1,000,000 members.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BRAND = "AUD"
AS_OF = dt.date(2026, 6, 30)
CATEGORIES = ("连衣裙", "衬衫", "T恤", "半身裙", "外套", "羽绒服", "风衣", "针织衫", "卫衣", "牛仔裤",
              "休闲裤", "西装", "鞋", "靴子", "包", "围巾", "帽子", "配饰", "内衣", "袜子")


def prepare_database(url: str) -> None:
    import psycopg2

    name = url.rsplit("/", 1)[1]
    admin = psycopg2.connect(url.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def defaults_for(model, given: set[str]) -> dict[str, object]:
    """Every other NOT NULL column with its field default, as a parameter (so later schema additions load)."""
    import json

    out = {}
    for field in model._meta.concrete_fields:
        if field.primary_key or field.null or field.column in given:
            continue
        value = field.get_default()
        out[field.column] = json.dumps(value) if isinstance(value, (list, dict)) else value
    return out


def insert_select(cursor, model, columns: dict[str, str], source: str, params: tuple[list, list]) -> None:
    """INSERT INTO model's table (columns…) SELECT expressions… FROM ``source``.

    ``params`` are (the column expressions' parameters, the source's); every other NOT NULL column gets its
    field default.
    """
    defaults = defaults_for(model, set(columns))
    names = [*columns, *defaults]
    exprs = [*columns.values(), *(["%s"] * len(defaults))]
    head, tail = params
    cursor.execute(f"INSERT INTO {model._meta.db_table} ({', '.join(names)}) "  # noqa: S608
                   f"SELECT {', '.join(exprs)} FROM {source}", [*head, *defaults.values(), *tail])


def without_indexes(cursor, table: str) -> list[str]:
    """Drop the table's secondary indexes and unique constraints; return the statements that rebuild them."""
    cursor.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                   "WHERE conrelid = %s::regclass AND contype = 'u'", [table])
    constraints = cursor.fetchall()
    cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
                   "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)", [table, table])
    indexes = cursor.fetchall()
    for name, _definition in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _definition in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    return [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for name, definition in constraints] + [
        definition for _name, definition in indexes]


def generate(members: int) -> None:
    from decimal import Decimal

    from django.core.management import call_command
    from django.db import connection

    from mall.models import Coupon, CouponTemplate, Order, OrderLine, Product, Sku
    from members.models import (
        BehaviourEvent,
        BrandMembership,
        GuideBinding,
        Member,
        MemberDailyActivity,
        MemberTag,
        PointsBalance,
        PointsEntry,
        TagGroup,
        TagValue,
        WeComFriendship,
    )
    from members.services import points_balances_rebuild
    from retail_crm.models import Brand, Guide, Region, RetailGroup, Store
    from segments.models import MemberRfm, SegmentationSettings

    started = time.monotonic()

    def step(what: str) -> None:
        print(f"  {what}: {time.monotonic() - started:.0f} s", flush=True)

    call_command("migrate", verbosity=0)
    group = RetailGroup.objects.create(code="bench-aud", name="Bench audiences")
    brand = Brand.objects.create(group=group, code=BRAND, name="Audience brand")
    other = Brand.objects.create(group=group, code=f"{BRAND}2", name="Second brand")
    regions = Region.objects.bulk_create([Region(brand=brand, code=f"R{i}", name=f"R{i}") for i in range(5)])
    stores = Store.objects.bulk_create([Store(brand=brand, region=regions[i % 5], code=f"{BRAND}-S{i:03d}",
                                              name=f"S{i}", kind="direct") for i in range(100)])
    other_store = Store.objects.create(brand=other, region=Region.objects.create(brand=other, code="O1", name="O1"),
                                       code=f"{BRAND}2-S1", name="O", kind="direct")
    guides = Guide.objects.bulk_create([Guide(store=stores[i // 10], code=f"{BRAND}-G{i:04d}", name=f"G{i}")
                                        for i in range(1000)])
    products = Product.objects.bulk_create([Product(brand=brand, code=f"P{i:03d}", name=f"p{i}",
                                                    category=CATEGORIES[i % len(CATEGORIES)]) for i in range(400)])
    skus = Sku.objects.bulk_create([Sku(product=p, brand=brand, code=f"{p.code}-M", size="M",
                                        list_price=Decimal("599.00"), member_price=Decimal("599.00"),
                                        cost_price=Decimal("200.00")) for p in products])
    size = TagGroup.objects.create(group=group, code="size", name="尺码")
    size_values = TagValue.objects.bulk_create([TagValue(tag_group=size, code=c, name=c)
                                                for c in ("XS", "S", "M", "L", "XL", "XXL")])
    style = TagGroup.objects.create(group=group, brand=brand, code="style", name="风格", multi_valued=True)
    style_values = TagValue.objects.bulk_create([TagValue(tag_group=style, code=f"st{i}", name=f"风格{i}")
                                                 for i in range(10)])
    templates = CouponTemplate.objects.bulk_create([
        CouponTemplate(brand=brand, name=f"券{i}", kind="threshold", discount_amount=Decimal("30"),
                       threshold_amount=Decimal("299"), valid_days=30) for i in range(3)])
    SegmentationSettings.objects.create(brand=brand, cycle_days=45)

    end = dt.datetime.combine(AS_OF, dt.time(20, 0), tzinfo=dt.timezone(dt.timedelta(hours=8)))
    store_ids = [s.pk for s in stores]
    guide_ids = [g.pk for g in guides]
    sku_ids = [s.pk for s in skus]
    product_codes = [p.code for p in products]
    channels = ["store_card", "store_card", "store_card", "guide_qr", "guide_qr", "pay_as_join", "livestream",
                "parcel_card", "community"]
    segments = ["important_value", "important_develop", "important_retain", "important_winback",
                "general_value", "general_develop", "general_retain", "general_winback"]
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute("SELECT setseed(0.17)")
        big = [Member, BrandMembership, GuideBinding, WeComFriendship, MemberTag, Order, OrderLine, MemberRfm,
               PointsEntry, PointsBalance, Coupon, BehaviourEvent, MemberDailyActivity]
        rebuild = [statement for model in big for statement in without_indexes(cursor, model._meta.db_table)]

        insert_select(cursor, Member, {
            "group_id": "%s", "code": "'AM' || lpad(g::text, 8, '0')", "phone": "'+86139' || lpad(g::text, 8, '0')",
            "name": "'会员' || g", "created_at": "%s", "updated_at": "%s",
        }, "generate_series(1, %s) AS g", ([group.pk, end, end], [members]))
        cursor.execute("SELECT min(id) FROM members_member")
        first = cursor.fetchone()[0]
        step(f"{members:,} members")
        insert_select(cursor, BrandMembership, {
            "member_id": "%s + g - 1", "brand_id": "%s",
            "joined_at": "%s - random() * interval '1100 days'",
            "join_channel": "(%s::text[])[1 + floor(random() * 9)::int]",
            "store_id": "(%s::bigint[])[1 + floor(random() * 100)::int]",
            "tier": "'standard'",
        }, "generate_series(1, %s) AS g", ([first, brand.pk, end, channels, store_ids], [members]))
        insert_select(cursor, BrandMembership, {
            "member_id": "%s + g - 1", "brand_id": "%s", "joined_at": "%s - interval '100 days'",
            "join_channel": "'store_card'", "store_id": "%s", "tier": "'standard'",
        }, "generate_series(1, %s, 10) AS g", ([first, other.pk, end, other_store.pk], [members]))
        step("memberships")
        insert_select(cursor, GuideBinding, {
            "member_id": "r.member_id", "brand_id": "%s", "guide_id": "g.id", "store_id": "g.store_id",
            "started_at": "%s - interval '200 days'", "reason": "'qr_scan'",
        }, "(SELECT %s + s - 1 AS member_id, (%s::bigint[])[1 + floor(random() * 1000)::int] AS guide_id "
           " FROM generate_series(1, %s) AS s WHERE random() < 0.6) AS r JOIN retail_crm_guide g ON g.id = r.guide_id",
           ([brand.pk, end], [first, guide_ids, members]))
        insert_select(cursor, WeComFriendship, {
            "member_id": "b.member_id", "guide_id": "b.guide_id", "external_userid": "'wm' || b.member_id",
            "added_at": "%s - interval '100 days'", "source": "'api'",
        }, "members_guidebinding b WHERE b.brand_id = %s AND random() < 0.58", ([end], [brand.pk]))
        step("bindings and WeCom friendships")
        tag_source = ("(SELECT %s + s - 1 AS member_id, random() AS r, random() AS v FROM generate_series(1, %s) AS s) "
                      "AS x WHERE x.r < %s")
        tag_columns = {"member_id": "x.member_id", "source": "'rule'", "assigned_at": "%s"}
        insert_select(cursor, MemberTag, {**tag_columns, "tag_value_id": "(%s::bigint[])[1 + floor(x.v * 6)::int]"},
                      tag_source, ([end, [v.pk for v in size_values]], [first, members, 0.8]))
        for half in (style_values[:5], style_values[5:]):
            insert_select(cursor, MemberTag, {**tag_columns,
                                              "tag_value_id": "(%s::bigint[])[1 + floor(x.v * 5)::int]"},
                          tag_source, ([end, [v.pk for v in half]], [first, members, 0.4]))
        step("tags")
        orders = members * 3
        insert_select(cursor, Order, {
            "brand_id": "%s", "order_no": "'AO' || lpad(g::text, 10, '0')",
            # Buyers: 70 % of members, skewed (low indexes buy often).
            "member_id": "%s + floor(u * u * %s * 0.7)::bigint", "channel": "'store_pos'",
            "store_id": "(%s::bigint[])[1 + floor(s * 100)::int]", "status": "'completed'",
            "ordered_at": "t", "paid_at": "t", "total_amount": "a", "paid_amount": "a",
            "refunded_amount": "CASE WHEN k < 0.03 THEN a ELSE 0 END", "items_amount": "a",
        }, "(SELECT g, random() AS u, random() AS s, random() AS k, round((49 + random() * 1950)::numeric, 2) AS a, "
           "%s - random() * interval '730 days' AS t FROM generate_series(1, %s) AS g) AS r",
           ([brand.pk, first, members, store_ids], [end, orders]))
        insert_select(cursor, OrderLine, {
            "order_id": "o.id", "brand_id": "o.brand_id",
            # Skewed products: the first ones sell most.
            "sku_id": "(%s::bigint[])[1 + floor(random() * random() * 400)::int]",
            "quantity": "1", "list_price": "o.total_amount", "unit_price": "o.total_amount",
            "amount": "o.total_amount", "refunded_amount": "o.refunded_amount",
        }, "mall_order o WHERE o.brand_id = %s", ([sku_ids], [brand.pk]))
        step(f"{orders:,} orders with one line each")
        insert_select(cursor, MemberRfm, {
            "member_id": "p.member_id", "brand_id": "%s", "recency_days": "%s - p.last_day",
            "frequency": "p.n", "monetary": "p.total", "lifetime_days": "p.last_day - p.first_day",
            "purchases_total": "p.n", "first_purchase_on": "p.first_day", "last_purchase_on": "p.last_day",
            "segment": "(%s::text[])[1 + floor(random() * 8)::int]",
            "lifecycle_stage": "CASE WHEN p.last_day < %s - 365 THEN 'lapsed' WHEN p.n = 1 THEN 'new' "
                               "WHEN p.last_day - p.first_day >= 180 THEN 'mature' ELSE 'growing' END",
            "updated_at": "now()",
        }, "(SELECT member_id, count(*) AS n, sum(paid_amount - refunded_amount) AS total, "
           " min((ordered_at AT TIME ZONE 'Asia/Shanghai')::date) AS first_day, "
           " max((ordered_at AT TIME ZONE 'Asia/Shanghai')::date) AS last_day "
           " FROM mall_order WHERE brand_id = %s AND paid_amount > refunded_amount GROUP BY member_id) AS p",
           ([brand.pk, AS_OF, segments, AS_OF], [brand.pk]))
        insert_select(cursor, PointsEntry, {
            "member_id": "r.member_id", "brand_id": "%s", "delta": "greatest(floor(r.monetary)::int, 1)",
            "reason": "'earn'", "created_at": "%s", "note": "''",
        }, "analytics_memberrfm r WHERE r.brand_id = %s", ([brand.pk, end], [brand.pk]))
        insert_select(cursor, PointsEntry, {
            "member_id": "r.member_id", "brand_id": "%s", "delta": "-greatest(floor(r.monetary * 0.5)::int, 1)",
            "reason": "'spend'", "created_at": "%s", "note": "''",
        }, "analytics_memberrfm r WHERE r.brand_id = %s AND random() < 0.3", ([brand.pk, end], [brand.pk]))
        points_balances_rebuild(brand_id=brand.pk)  # the entries bypassed points_post: one INSERT … SELECT
        step("RFML rows, points and their balances")
        insert_select(cursor, Coupon, {
            "template_id": "(%s::bigint[])[1 + floor(random() * 3)::int]", "member_id": "x.member_id",
            "code": "'AC' || x.member_id", "issued_at": "%s - interval '20 days'",
            "valid_from": "%s - interval '20 days'",
            "valid_to": "CASE WHEN x.k < 0.8 THEN %s + interval '10 days' ELSE %s - interval '1 day' END",
            "status": "CASE WHEN x.k < 0.7 THEN 'available' WHEN x.k < 0.8 THEN 'void' ELSE 'expired' END",
        }, "(SELECT %s + s - 1 AS member_id, random() AS r, random() AS k FROM generate_series(1, %s) AS s) AS x "
           "WHERE x.r < 0.3", ([[t.pk for t in templates], end, end, end, end], [first, members]))
        step("coupons")
        events = members * 3  # on a quarter of the members (low indexes most active), about 12 each
        insert_select(cursor, BehaviourEvent, {
            "brand_id": "%s", "member_id": "%s + floor(u * %s * 0.25)::bigint",
            "visitor_id": "''",
            "kind": "CASE WHEN k < 0.7 THEN 'product_view' WHEN k < 0.85 THEN 'favourite' ELSE 'add_to_cart' END",
            "occurred_at": "%s - random() * interval '30 days'", "received_at": "%s",
            "object_type": "'product'", "object_id": "(%s::text[])[1 + floor(random() * random() * 400)::int]",
            "share_token": "''", "client_event_id": "''",
        }, "(SELECT g, power(random(), 2) AS u, random() AS k FROM generate_series(1, %s) AS g) AS r",
           ([brand.pk, first, members, end, end, product_codes], [events]))
        cursor.execute(
            "INSERT INTO members_memberdailyactivity (member_id, brand_id, day, product_views, favourites, shares, "
            "add_to_carts, orders_unpaid, live_watches, material_views) "
            "SELECT member_id, brand_id, (occurred_at AT TIME ZONE 'Asia/Shanghai')::date, "
            "count(*) FILTER (WHERE kind = 'product_view'), count(*) FILTER (WHERE kind = 'favourite'), 0, "
            "count(*) FILTER (WHERE kind = 'add_to_cart'), 0, 0, 0 FROM members_behaviourevent "
            "GROUP BY 1, 2, 3")
        step(f"{events:,} behaviour events and their daily counters")
        for statement in rebuild:
            cursor.execute(statement)
        step("indexes rebuilt")
        cursor.execute("SET session_replication_role = DEFAULT")
    with connection.cursor() as cursor:
        for model in big:
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")  # noqa: S608
    step("generated and analysed")


def definitions() -> dict[str, dict]:
    """Realistic audiences, with the generated data's ids."""
    from mall.models import CouponTemplate
    from members.models import TagValue
    from retail_crm.models import Region, Store

    size_m = TagValue.objects.get(tag_group__code="size", code="M").pk
    styles = list(TagValue.objects.filter(tag_group__code="style").order_by("code").values_list("pk", flat=True))
    region = Region.objects.filter(brand__code=BRAND).order_by("code").values_list("pk", flat=True).first()
    stores = list(Store.objects.filter(brand__code=BRAND).order_by("code").values_list("pk", flat=True)[:10])
    template = CouponTemplate.objects.filter(brand__code=BRAND).order_by("pk").values_list("pk", flat=True).first()
    joined_from = (AS_OF - dt.timedelta(days=365)).isoformat()
    return {
        "everyone": {},
        "important, lapsing, WeCom friends": {
            "rfml_classes": ["important_retain", "important_winback"], "care_stages": ["market", "winback"],
            "wecom_friend": True},
        "viewed P001 3+ times, no purchase in 30 days": {
            "behaviour": [{"event": "product_view", "products": ["P001"], "days": 30, "min": 3}],
            "purchase": [{"days": 30, "bought": False}]},
        "size M, bought 羽绒服 same period last year, no unused coupon": {
            "tags": {"any": [size_m]}, "purchase": [{"same_period_last_year_days": 30, "categories": ["羽绒服"]}],
            "coupons": {"held": False}},
        "bound in region R0, joined by guide QR in the last year, 500+ points": {
            "regions": [region], "join_channels": ["guide_qr"], "joined": {"from": joined_from},
            "points": {"min": 500}},
        "joined at 10 stores, big orders this year, 1–3 cycles since the last": {
            "join_stores": stores, "purchase": [{"days": 365, "order_value": {"min": "1000.00"}}],
            "last_purchase": {"min_cycles": 1, "max_cycles": 3}},
        "carted 鞋 this week, holds coupon 1, styles": {
            "behaviour": [{"event": "add_to_cart", "categories": ["鞋"], "days": 7}],
            "coupons": {"templates": [template]}, "tags": {"any": styles[:3], "none": styles[5:6]}},
        "at most 100 points (or none), no product view in 30 days": {
            "points": {"max": 100}, "behaviour": [{"event": "product_view", "days": 30, "min": 0, "max": 0}]},
        "favourites 2+ in 30 days, not bought in 90": {
            "behaviour": [{"event": "favourite", "days": 30, "min": 2}], "purchase": [{"days": 90, "bought": False}]},
    }


def measure(calls: int) -> bool:
    from django.utils import timezone

    from marketing.audiences import audience_count, audience_definition_clean
    from members.models import BrandMembership
    from retail_crm.models import Brand

    brand = Brand.objects.get(code=BRAND)
    at = timezone.make_aware(dt.datetime.combine(AS_OF, dt.time(12, 0)))
    print(f"brand {BRAND}: {BrandMembership.objects.filter(brand=brand).count():,} members; "
          f"{calls} previews per definition, one after the other", flush=True)
    worst = 0.0
    for name, definition in definitions().items():
        seconds = []
        for _ in range(calls):
            began = time.perf_counter()
            checked = audience_definition_clean(brand=brand, definition=definition)
            count = audience_count(brand=brand, definition=checked, at=at)
            seconds.append(time.perf_counter() - began)
        seconds.sort()
        p95 = seconds[max(0, round(0.95 * len(seconds)) - 1)]
        worst = max(worst, p95)
        print(f"  {name:<62} {count:>9,}  p50 {statistics.median(seconds):6.3f} s  p95 {p95:6.3f} s  "
              f"max {seconds[-1]:6.3f} s  (load {os.getloadavg()[0]:.1f})", flush=True)
    print(f"worst p95 {worst:.3f} s (target < 2 s); load average {os.getloadavg()[0]:.1f}", flush=True)
    return worst < 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="measure on the data generated before")
    parser.add_argument("--calls", type=int, default=20, help="previews per definition")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("DATABASE_URL must name a PostgreSQL database (it is dropped and created unless --reuse)")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "retail_crm.settings")
    if not args.reuse:
        prepare_database(url)

    import django

    django.setup()
    if not args.reuse:
        print(f"generating a brand of {args.members:,} members", flush=True)
        generate(args.members)
    measure(args.calls)


if __name__ == "__main__":
    main()
