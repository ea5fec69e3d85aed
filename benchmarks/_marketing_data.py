"""Shared data for the marketing benchmarks: one brand of N members generated in SQL (INSERT … SELECT over
generate_series), with the things the restraint rules look at.

Per member ``g`` (1…N): a phone; an openid for 40 % (g mod 5 < 2) and, of those, a subscribe consent for
half (g mod 10 = 0 or 1 → 20 % of all); a bound guide for 30 % (g mod 10 < 3); an SMS opt-out for 1 %
(g mod 100 = 7); a paid order 5 days before the run for 3 % (g mod 100 in 10…12: held by the care window);
two marketing messages in the 3 days before the run for 5 % (g mod 100 in 20…24: held by the cap).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def ensure_database(url: str, drop: bool) -> None:
    import psycopg2

    name = url.rsplit("/", 1)[1]
    admin = psycopg2.connect(url.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        if drop:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def setup_django(url: str) -> None:
    """Django on ``url`` with production settings (DEBUG off), migrated; both channels on the fake adapter."""
    if not url.startswith("postgres"):
        sys.exit("This benchmark runs on PostgreSQL (DATABASE_URL=postgres://…).")
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "benchmark-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "retail_crm.settings")
    os.environ.setdefault("LOG_LEVEL", "INFO")  # the resolve logs each range's time
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    # Production settings refuse the fake providers at start-up; the benchmark swaps them in afterwards.
    settings.MARKETING_CHANNELS = {"sms": "fake", "subscribe": "fake"}
    call_command("migrate", verbosity=0)


def _insert_select(cursor, model, exprs: dict[str, str], source: str, *, bound: dict | None = None) -> int:
    """INSERT INTO the model's table SELECT ``exprs`` (attribute name → SQL; ``%%`` for a modulo) FROM
    ``source``; ``bound`` values and the defaults of the other NOT NULL columns are bound parameters."""
    bound = bound or {}
    columns, select, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        if field.attname in exprs:
            select.append(exprs[field.attname])
        elif field.attname in bound:
            select.append("%s")
            params.append(bound[field.attname])
        elif not field.null:
            default = field.get_default()
            select.append("%s")
            params.append(json.dumps(default) if field.get_internal_type() == "JSONField" else default)
        else:
            continue
        columns.append(field.column)
    cursor.execute(f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "  # noqa: S608 - names from the model
                   f"SELECT {', '.join(select)} FROM {source}", params)
    return cursor.rowcount


def generate(members: int, *, brand_code: str, run_at: dt.datetime) -> None:
    """One brand with ``members`` members (see the module docstring), committed."""
    from django.db import connection, transaction

    from mall.models import Order
    from marketing.models import ChannelOptOut, Delivery, SubscribeConsent
    from members.models import BrandMembership, GuideBinding, Member
    from retail_crm.models import Brand, Guide, Region, RetailGroup, Store

    created = run_at - dt.timedelta(days=400)
    with transaction.atomic():
        group = RetailGroup.objects.create(code=f"bench-{brand_code.lower()}", name="Bench marketing")
        brand = Brand.objects.create(group=group, code=brand_code, name="Bench marketing brand")
        region = Region.objects.create(brand=brand, code="R1", name="R1")
        store = Store.objects.create(brand=brand, region=region, code=f"{brand_code}-S1", name="Store 1",
                                     kind="direct")
        guides = Guide.objects.bulk_create([Guide(code=f"{brand_code.lower()}-g{i}", name=f"导购{i}", store=store)
                                            for i in range(200)])
        first_guide = min(g.pk for g in guides)
        with connection.cursor() as cursor:
            _insert_select(cursor, Member, {
                "code": f"'{brand_code}' || g", "phone": "'+86139' || lpad(g::text, 8, '0')",
                "openid": "CASE WHEN g %% 5 < 2 THEN 'o-' || g ELSE '' END", "name": "'会员' || g"},
                f"generate_series(1, {int(members)}) g",
                bound={"group_id": group.pk, "created_at": created, "updated_at": created})
            member_g = ("(SELECT id, row_number() OVER (ORDER BY id) AS g FROM members_member "  # noqa: S608
                        f"WHERE group_id = {int(group.pk)}) m")
            common = {"brand_id": str(brand.pk)}
            _insert_select(cursor, BrandMembership, {"member_id": "m.id", **common, "join_channel": "'store_card'",
                                                     "store_id": str(store.pk)}, member_g,
                           bound={"joined_at": created})
            _insert_select(cursor, GuideBinding, {
                "member_id": "m.id", **common, "guide_id": f"{first_guide} + m.g %% 200",
                "store_id": str(store.pk), "reason": "'qr_scan'"}, f"{member_g} WHERE m.g %% 10 < 3",
                bound={"started_at": created})
            _insert_select(cursor, SubscribeConsent, {"member_id": "m.id", "template_id": "'TPL_NEW'",
                                                      "remaining": "1"}, f"{member_g} WHERE m.g %% 10 < 2",
                           bound={"updated_at": created})
            _insert_select(cursor, ChannelOptOut, {"member_id": "m.id", "channel": "'sms'", "source": "'sms_reply'"},
                           f"{member_g} WHERE m.g %% 100 = 7", bound={"opted_out_at": created})
            bought = run_at - dt.timedelta(days=5)
            _insert_select(cursor, Order, {
                **common, "order_no": "'BM' || m.g", "member_id": "m.id", "channel": "'store_pos'",
                "store_id": str(store.pk), "status": "'paid'", "total_amount": "199.00", "paid_amount": "199.00"},
                f"{member_g} WHERE m.g %% 100 BETWEEN 10 AND 12", bound={"ordered_at": bought, "paid_at": bought})
            for n in (1, 2):
                earlier = run_at - dt.timedelta(days=n)
                _insert_select(cursor, Delivery, {
                    "member_id": "m.id", **common, "kind": "'marketing'", "channel": "'sms'",
                    "source": f"'bench-prior:{n}'", "dedupe_key": f"'bench-prior:{n}|' || m.id", "status": "'sent'"},
                    f"{member_g} WHERE m.g %% 100 BETWEEN 20 AND 24",
                    bound={"planned_at": earlier, "send_after": earlier, "sent_at": earlier})
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def campaign_reset(brand_code: str) -> int:
    """Remove the benchmark brand's campaigns and what their runs wrote (not the generated data)."""
    from django.db import connection, transaction

    from marketing.models import Audience, Campaign, CampaignRecipient, Delivery

    with transaction.atomic(), connection.cursor() as cursor:
        campaigns = list(Campaign.objects.filter(brand__code=brand_code).values_list("pk", flat=True))
        if not campaigns:
            Audience.objects.filter(brand__code=brand_code).delete()
            return 0
        cursor.execute(f"DELETE FROM {CampaignRecipient._meta.db_table} WHERE run_id IN "  # noqa: S608 - model names
                       "(SELECT id FROM marketing_campaignrun WHERE campaign_id = ANY(%s))", [campaigns])
        cursor.execute(f"DELETE FROM {Delivery._meta.db_table} WHERE source LIKE 'campaign:%%' AND brand_id = "  # noqa: S608
                       "(SELECT id FROM retail_crm_brand WHERE code = %s)", [brand_code])
        removed = cursor.rowcount
        Campaign.objects.filter(pk__in=campaigns).delete()
        Audience.objects.filter(brand__code=brand_code).delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE marketing_delivery")
        cursor.execute("VACUUM ANALYZE marketing_campaignrecipient")
    return removed


def campaign_new(brand_code: str, *, holdout: str = "10.00", variants: bool = True, channels=("subscribe", "sms")):
    """A draft campaign to every member of the brand: fallback subscribe → SMS, {name} {guide} {link} {coupon}."""
    from decimal import Decimal

    from mall.models import CouponTemplate
    from marketing.campaigns import VariantSpec, campaign_create
    from marketing.models import Audience
    from retail_crm.models import Brand

    brand = Brand.objects.get(code=brand_code)
    audience = Audience.objects.create(group_id=brand.group_id, brand=brand, name="全部会员")
    coupon = CouponTemplate.objects.create(brand=brand, name="满200减30", kind="threshold",
                                           threshold_amount=Decimal("200.00"), discount_amount=Decimal("30.00"),
                                           valid_days=14)

    def content(tag: str) -> dict:
        both = {"subscribe": {"template": "TPL_NEW", "params": {"thing1": "{name}", "thing2": f"{tag}{{coupon}}"}},
                "sms": {"template": "1110", "params": ["{name}", f"{tag}{{guide}}", "{coupon}", "{link}"]}}
        return {channel: both[channel] for channel in channels}

    arms = [VariantSpec(name="A", weight=50, content=content("A")),
            VariantSpec(name="B", weight=50, content=content("B"))] if variants else []
    return campaign_create(brand=brand, audience=audience, name="春季上新", channels=list(channels),
                           content={} if variants else content("A"), variants=arms,
                           link="https://mall.example.com/mp/join?page=product&id=7", coupon_template=coupon,
                           holdout_percent=Decimal(holdout))
