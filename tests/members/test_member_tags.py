"""members.tags: the rule engine on hand-made order lines, hand tags, merging tags and the Celery wrappers.

Every expected tag value and evidence figure below is worked out by hand in the comments next to the
rows it comes from. Money in cents where it is divided, so the shares are exact.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import factory
import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from mall.models import Channel, OrderLine, OrderStatus, Product, Sku
from members import tasks as tag_tasks
from members.models import MemberTag, TagGroup, TagRule, TagSource, TagValue
from members.tags import (
    DEFAULT_RULES,
    brand_tags_recompute,
    member_tag_assign,
    member_tag_remove,
    member_tags_merge,
    member_tags_recompute,
    tag_group_get_or_create,
    tag_rules_install_defaults,
    tag_value_get_or_create,
)
from retail_crm.errors import ApplicationError
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    MemberFactory,
    OrderFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

AS_OF = dt.datetime(2026, 6, 1, 4, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def english():
    """Rule names and tag reasons are written in the active language (zh-hans by default); these tests read
    them in English. The Chinese reason has its own test below."""
    with translation.override("en"):
        yield


def ago(days: int) -> dt.datetime:
    return AS_OF - dt.timedelta(days=days)


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    brand = factory.SubFactory(BrandFactory)
    code = factory.Sequence(lambda n: f"P{n:04d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    category = "卫衣"


class SkuFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sku

    product = factory.SubFactory(ProductFactory)
    brand = factory.SelfAttribute("product.brand")
    code = factory.Sequence(lambda n: f"K{n:05d}")
    colour = "black"
    size = "M"
    material = "cotton"
    list_price = Decimal("300.00")
    member_price = Decimal("255.00")
    cost_price = Decimal("100.00")


def buy(member, brand, lines, *, days_ago=10, channel=Channel.STORE_POS, store=None,
        status=OrderStatus.PAID, order_brand=None):
    """One order; ``lines`` are (sku, quantity, unit price, refunded amount); amounts follow from them."""
    amounts = [Decimal(unit) * qty for _sku, qty, unit, _refund in lines]
    refunds = [Decimal(refund) for *_rest, refund in lines]
    paid = status in (OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.COMPLETED)
    order = OrderFactory(brand=order_brand or brand, member=member, channel=channel, store=store, status=status,
                         ordered_at=ago(days_ago), paid_at=ago(days_ago) if paid else None,
                         total_amount=sum(amounts), paid_amount=sum(amounts) if paid else Decimal("0"),
                         refunded_amount=sum(refunds))
    for (sku, qty, unit, _refund), amount, refund in zip(lines, amounts, refunds, strict=True):
        OrderLine.objects.create(order=order, brand=sku.brand, sku=sku, quantity=qty, list_price=sku.list_price,
                                 unit_price=Decimal(unit), amount=amount, refunded_amount=refund)
    return order


@pytest.fixture
def shop():
    """Brand SPT with two stores and a small catalogue (shoes, hoodies, a hat), plus another brand."""
    grp = RetailGroupFactory()
    brand = BrandFactory(group=grp, code="SPT")
    other = BrandFactory(group=grp, code="OTH")
    region = RegionFactory(brand=brand)
    s1 = StoreFactory(region=region, brand=brand, code="s1", name="Store One")
    s2 = StoreFactory(region=region, brand=brand, code="s2", name="Store Two")
    shoe = ProductFactory(brand=brand, category="跑鞋")
    hoodie = ProductFactory(brand=brand, category="卫衣")
    hat = ProductFactory(brand=brand, category="帽子")
    skus = SimpleNamespace(
        shoe38=SkuFactory(product=shoe, size="38", colour="black", material="leather", list_price=Decimal("500")),
        shoe39=SkuFactory(product=shoe, size="39", colour="white", material="leather", list_price=Decimal("500")),
        hoodie_m=SkuFactory(product=hoodie, size="M", colour="black", material="cotton"),
        hoodie_l=SkuFactory(product=hoodie, size="L", colour="red", material="cotton"),
        hat=SkuFactory(product=hat, size="M", colour="yellow", material="polyester", list_price=Decimal("100")),
        other=SkuFactory(product=ProductFactory(brand=other, category="跑鞋"), size="44", colour="green",
                         material="mesh", list_price=Decimal("900")),
    )
    rules = {rule.tag_group.code: rule for rule in tag_rules_install_defaults(brand)}
    members = SimpleNamespace(**{name: MemberFactory(group=grp) for name in ("a", "b", "c", "d")})
    for member in vars(members).values():
        BrandMembershipFactory(member=member, brand=brand)
    return SimpleNamespace(grp=grp, brand=brand, other=other, s1=s1, s2=s2, sku=skus, rules=rules, m=members)


def evidence(rule, **figures):
    return {"rule": str(rule.pk), **figures}


def tags_of(member, source=TagSource.RULE):
    """{tag group code: (value code, evidence)} of the member's tags from ``source``."""
    rows = MemberTag.objects.filter(member=member, source=source).select_related("tag_value__tag_group")
    return {row.tag_value.tag_group.code: (row.tag_value.code, row.evidence) for row in rows}


def buy_scenario(shop):
    sku, m = shop.sku, shop.m
    # A: lines net of refunds (the shoe-39 line of order 3 is wholly refunded and counts for nothing):
    #   L1 shoe38 1×500 POS s1 | L2 hoodie M 2×210 (30% off) POS s1 | L3 shoe39 1×350 (30% off) MP s2
    #   L4 hat M 3×100 MP s2   | L6 hoodie L 1×300 POS s1           → spend 1870.00, 8 items
    buy(m.a, shop.brand, [(sku.shoe38, 1, "500", "0"), (sku.hoodie_m, 2, "210", "0")], days_ago=10, store=shop.s1)
    buy(m.a, shop.brand, [(sku.shoe39, 1, "350", "0"), (sku.hat, 3, "100", "0")], days_ago=20, store=shop.s2,
        channel=Channel.MINI_PROGRAM)
    buy(m.a, shop.brand, [(sku.shoe39, 2, "450", "900"), (sku.hoodie_l, 1, "300", "0")], days_ago=30, store=shop.s1)
    # Another brand's lines and a non-purchase never count.
    buy(m.a, shop.other, [(sku.other, 5, "900", "0")], days_ago=5, store=shop.s1)
    buy(m.a, shop.brand, [(sku.hat, 9, "10", "0")], days_ago=5, store=shop.s1, status=OrderStatus.PENDING_PAYMENT)
    # B: hoodie L 2×150 with 150 refunded → net 150.00 and 1 item; shoe39 1×350 (30% off) → spend 500.00.
    buy(m.b, shop.brand, [(sku.hoodie_l, 2, "150", "150"), (sku.shoe39, 1, "350", "0")], days_ago=5, store=shop.s2)
    # C: black and red hoodies at the same price and quantity (a tie), plus 3 red ones 400 days ago.
    buy(m.c, shop.brand, [(sku.hoodie_m, 1, "300", "0"), (sku.hoodie_l, 1, "300", "0")], days_ago=3, store=shop.s1)
    buy(m.c, shop.brand, [(sku.hoodie_l, 3, "300", "0")], days_ago=400, store=shop.s1)
    # D: only an unpaid order, a wholly refunded one and a cancelled one: no purchases, no tags.
    buy(m.d, shop.brand, [(sku.shoe38, 1, "500", "0")], status=OrderStatus.PENDING_PAYMENT)
    buy(m.d, shop.brand, [(sku.shoe38, 1, "500", "500")])
    buy(m.d, shop.brand, [(sku.shoe39, 1, "500", "0")], status=OrderStatus.CANCELLED)


def expected_a(r):
    return {
        # 38 and 39 each 1 item (the refunded 39s do not count): tie on quantity → larger spend, 500 > 350.
        "shoe-size": ("38", evidence(r["shoe-size"], share="0.500", spend="500.00", quantity="1",
                                     total_quantity="2")),
        # Shoes and the hat are not clothing: M 2 items, L 1 → M, 2/3 floored to 0.666.
        "clothing-size": ("M", evidence(r["clothing-size"], share="0.666", spend="420.00", quantity="2",
                                        total_quantity="3")),
        # black 500+420=920 of 1870 → 0.491 ≥ 0.4.
        "colour-preference": ("black", evidence(r["colour-preference"], share="0.491", spend="920.00",
                                                total_spend="1870.00")),
        # leather 500+350=850 of 1870 → 0.454.
        "material-preference": ("leather", evidence(r["material-preference"], share="0.454", spend="850.00",
                                                    total_spend="1870.00")),
        # (no discount tag: 420+350=770 of 1870 at ≥30% off is 0.411 < 0.5)
        "favourite-category": ("跑鞋", evidence(r["favourite-category"], share="0.454", spend="850.00",
                                               total_spend="1870.00")),
        # (500·1 + 210·2 + 350·1 + 100·3 + 300·1) / 8 = 233.75 → 200-500.
        "price-band": ("200-500", evidence(r["price-band"], average="233.75", quantity="8", spend="1870.00")),
        # POS 500+420+300=1220 of 1870 → 0.652; all of it in store s1.
        "preferred-channel": ("store_pos", evidence(r["preferred-channel"], share="0.652", spend="1220.00",
                                                    total_spend="1870.00")),
        "preferred-store": ("s1", evidence(r["preferred-store"], share="0.652", spend="1220.00",
                                           total_spend="1870.00")),
    }


def expected_b(r):
    return {
        "shoe-size": ("39", evidence(r["shoe-size"], share="1.000", spend="350.00", quantity="1",
                                     total_quantity="1")),
        # 2 bought, half the amount refunded → 1 item and 150.00 counted.
        "clothing-size": ("L", evidence(r["clothing-size"], share="1.000", spend="150.00", quantity="1",
                                        total_quantity="1")),
        "colour-preference": ("white", evidence(r["colour-preference"], share="0.700", spend="350.00",
                                                total_spend="500.00")),
        "material-preference": ("leather", evidence(r["material-preference"], share="0.700", spend="350.00",
                                                    total_spend="500.00")),
        # 150 at 50% off and 350 at exactly 30% off: all 500.00 at ≥30% off.
        "discount-preference": ("discount-sensitive", evidence(r["discount-preference"], share="1.000",
                                                               spend="500.00", total_spend="500.00")),
        "favourite-category": ("跑鞋", evidence(r["favourite-category"], share="0.700", spend="350.00",
                                               total_spend="500.00")),
        # (150·1 + 350·1) / 2 = 250.00.
        "price-band": ("200-500", evidence(r["price-band"], average="250.00", quantity="2", spend="500.00")),
        "preferred-channel": ("store_pos", evidence(r["preferred-channel"], share="1.000", spend="500.00",
                                                    total_spend="500.00")),
        "preferred-store": ("s2", evidence(r["preferred-store"], share="1.000", spend="500.00",
                                           total_spend="500.00")),
    }


def expected_c(r):
    return {
        # No lookback for sizes: L 1+3=4 items, M 1 → L, 4/5 = 0.800.
        "clothing-size": ("L", evidence(r["clothing-size"], share="0.800", spend="1200.00", quantity="4",
                                        total_quantity="5")),
        # Last 365 days only: black 300.00 and red 300.00, 1 item each: a full tie → "black" sorts first.
        "colour-preference": ("black", evidence(r["colour-preference"], share="0.500", spend="300.00",
                                                total_spend="600.00")),
        "material-preference": ("cotton", evidence(r["material-preference"], share="1.000", spend="600.00",
                                                   total_spend="600.00")),
        "favourite-category": ("卫衣", evidence(r["favourite-category"], share="1.000", spend="600.00",
                                               total_spend="600.00")),
        "price-band": ("200-500", evidence(r["price-band"], average="300.00", quantity="2", spend="600.00")),
        "preferred-channel": ("store_pos", evidence(r["preferred-channel"], share="1.000", spend="600.00",
                                                    total_spend="600.00")),
        "preferred-store": ("s1", evidence(r["preferred-store"], share="1.000", spend="600.00",
                                           total_spend="600.00")),
    }


def test_brand_recompute_derives_every_default_tag_from_hand_made_lines(shop):
    buy_scenario(shop)

    result = brand_tags_recompute(shop.brand, as_of=AS_OF)

    assert tags_of(shop.m.a) == expected_a(shop.rules)
    assert tags_of(shop.m.b) == expected_b(shop.rules)
    assert tags_of(shop.m.c) == expected_c(shop.rules)
    assert tags_of(shop.m.d) == {}
    assert (result.created, result.updated, result.deleted, result.members, result.rules) == (24, 0, 0, 3, 9)
    row = MemberTag.objects.get(member=shop.m.a, tag_value__tag_group__code="shoe-size")
    # The reason is stored as a code and parameters and rendered in the viewer's language.
    assert (row.reason, row.reason_code, row.reason_params, row.assigned_at, row.assigned_by) == (
        "", "rule_top_quantity", {"rule": "Shoe size", "part": "1", "total": "2"}, AS_OF, None)
    with translation.override("en"):
        assert row.reason_text == "Shoe size: 38 (1 of 2 items)"
    store_value = TagValue.objects.get(tag_group__code="preferred-store", code="s1")
    channel_value = TagValue.objects.get(tag_group__code="preferred-channel", code="store_pos")
    assert (store_value.name, channel_value.name) == ("Store One", str(Channel.STORE_POS.label))
    band = TagValue.objects.get(tag_group__code="price-band", code="200-500")
    assert (band.tag_group.brand, band.sort) == (shop.brand, 1)


def test_recompute_twice_changes_nothing(shop):
    buy_scenario(shop)
    brand_tags_recompute(shop.brand, as_of=AS_OF)
    before = sorted(MemberTag.objects.values_list("pk", "member_id", "tag_value_id", "reason", "assigned_at"))

    again = brand_tags_recompute(shop.brand, as_of=AS_OF)
    member_again = member_tags_recompute(shop.m.a, shop.brand, as_of=AS_OF)

    assert (again.created, again.updated, again.deleted) == (0, 0, 0)
    assert (member_again.created, member_again.updated, member_again.deleted, member_again.members) == (0, 0, 0, 1)
    assert sorted(MemberTag.objects.values_list("pk", "member_id", "tag_value_id", "reason", "assigned_at")) == before


def test_tags_follow_refunds_and_removed_when_no_longer_qualifying(shop):
    buy_scenario(shop)
    brand_tags_recompute(shop.brand, as_of=AS_OF)
    # B returns the shoes: the line and the order are refunded 350.00 → only the hoodie (150.00, 1 item) is left.
    line = OrderLine.objects.get(order__member=shop.m.b, sku=shop.sku.shoe39)
    line.refunded_amount = Decimal("350.00")
    line.save()
    line.order.refunded_amount = Decimal("500.00")
    line.order.save()

    result = member_tags_recompute(shop.m.b, shop.brand, as_of=AS_OF)

    r = shop.rules
    assert tags_of(shop.m.b) == {
        "clothing-size": expected_b(r)["clothing-size"],
        "colour-preference": ("red", evidence(r["colour-preference"], share="1.000", spend="150.00",
                                              total_spend="150.00")),
        "material-preference": ("cotton", evidence(r["material-preference"], share="1.000", spend="150.00",
                                                   total_spend="150.00")),
        "discount-preference": ("discount-sensitive", evidence(r["discount-preference"], share="1.000",
                                                               spend="150.00", total_spend="150.00")),
        "favourite-category": ("卫衣", evidence(r["favourite-category"], share="1.000", spend="150.00",
                                               total_spend="150.00")),
        # 150.00 average → below the first edge.
        "price-band": ("<200", evidence(r["price-band"], average="150.00", quantity="1", spend="150.00")),
        "preferred-channel": ("store_pos", evidence(r["preferred-channel"], share="1.000", spend="150.00",
                                                    total_spend="150.00")),
        "preferred-store": ("s2", evidence(r["preferred-store"], share="1.000", spend="150.00",
                                           total_spend="150.00")),
    }
    # shoe size gone; colour, material, category and band replaced (delete + create); discount, channel
    # and store kept with new figures; clothing size unchanged.
    assert (result.created, result.updated, result.deleted) == (4, 3, 5)
    assert tags_of(shop.m.a) == expected_a(shop.rules)  # a member recompute touches that member only


def test_lookback_window_drops_old_purchases(shop):
    buy_scenario(shop)
    brand_tags_recompute(shop.brand, as_of=AS_OF)

    # A year later C's hoodies of 3 days ago are 368 days old: only the size (no lookback) remains.
    later = brand_tags_recompute(shop.brand, as_of=AS_OF + dt.timedelta(days=365))

    assert tags_of(shop.m.c) == {"clothing-size": expected_c(shop.rules)["clothing-size"]}
    assert later.deleted > 0


def test_hand_rfml_and_import_tags_are_never_touched_by_rules(shop):
    buy_scenario(shop)
    colour = shop.rules["colour-preference"].tag_group
    manual_red = member_tag_assign(member=shop.m.a, tag_value=tag_value_get_or_create(tag_group=colour, code="red"),
                                   reason="Told the guide she loves red", assigned_by=UserFactory(), at=ago(50))
    vip_group = tag_group_get_or_create(group=shop.grp, code="vip", name="VIP", multi_valued=True)
    imported = member_tag_assign(member=shop.m.a, tag_value=tag_value_get_or_create(tag_group=vip_group, code="gold"),
                                 reason="CRM export 2025", source=TagSource.IMPORT, at=ago(60))
    rfml_group = tag_group_get_or_create(group=shop.grp, brand=shop.brand, code="rfml", name="RFML")
    rfml = MemberTag.objects.create(member=shop.m.c, tag_value=tag_value_get_or_create(tag_group=rfml_group,
                                                                                        code="important-value"),
                                    source=TagSource.RFML, assigned_at=ago(1))

    brand_tags_recompute(shop.brand, as_of=AS_OF)
    TagRule.objects.filter(brand=shop.brand).update(is_active=False)
    off = brand_tags_recompute(shop.brand, as_of=AS_OF)

    # The single-valued colour slot is A's own "red"; the rule gave A no colour, and switching rules off
    # removed every rule tag (23 = 24 − A's colour) but none of the others.
    assert off.deleted == 23
    assert tags_of(shop.m.a) == {}
    assert tags_of(shop.m.a, TagSource.MANUAL) == {"colour-preference": ("red", {})}
    assert tags_of(shop.m.a, TagSource.IMPORT) == {"vip": ("gold", {})}
    assert set(MemberTag.objects.values_list("pk", flat=True)) == {manual_red.pk, imported.pk, rfml.pk}


def test_rule_added_in_admin_terms_creates_values_on_the_fly(shop):
    """A rule an operator could add in the admin: a multi-valued group, quantity share ≥ 0.3, shoes only."""
    buy_scenario(shop)
    TagRule.objects.filter(brand=shop.brand).update(is_active=False)
    group = tag_group_get_or_create(group=shop.grp, brand=shop.brand, code="shoe-colour", name="Shoe colour",
                                    multi_valued=True)
    rule = TagRule.objects.create(brand=shop.brand, tag_group=group, name="Shoe colour", field="colour",
                                  aggregation="top_quantity", threshold=Decimal("0.6"), category_filter="鞋",
                                  min_quantity=1)
    rule.full_clean()

    brand_tags_recompute(shop.brand, as_of=AS_OF)

    # A: black 1, white 1 → black by spend, but 1/2 < 0.6: no tag. B: white 1/1.
    assert tags_of(shop.m.a) == {}
    assert tags_of(shop.m.b) == {"shoe-colour": ("white", evidence(rule, share="1.000", spend="350.00",
                                                                   quantity="1", total_quantity="1"))}
    assert list(TagValue.objects.filter(tag_group=group).values_list("code", "name")) == [("white", "white")]



def test_rule_value_already_held_by_hand_in_a_multi_valued_group_is_not_duplicated(shop):
    buy_scenario(shop)
    TagRule.objects.filter(brand=shop.brand).update(is_active=False)
    group = tag_group_get_or_create(group=shop.grp, brand=shop.brand, code="shoe-colour", name="Shoe colour",
                                    multi_valued=True)
    TagRule.objects.create(brand=shop.brand, tag_group=group, name="Shoe colour", field="colour",
                           aggregation="top_quantity", threshold=Decimal("0.6"), category_filter="鞋")
    member_tag_assign(member=shop.m.b, tag_value=tag_value_get_or_create(tag_group=group, code="white"),
                      reason="Said so", at=ago(40))

    result = brand_tags_recompute(shop.brand, as_of=AS_OF)

    # B's only qualifying value (white, 1/1) is already B's by hand: nothing to create, nothing touched.
    assert (result.created, result.updated, result.deleted) == (0, 0, 0)
    assert tags_of(shop.m.b) == {}
    assert tags_of(shop.m.b, TagSource.MANUAL) == {"shoe-colour": ("white", {})}


def test_reasons_keep_admin_text_with_backslashes_and_tabs(shop):
    """Rule names are free admin text; the bulk write (COPY on PostgreSQL) must carry them unchanged."""
    buy_scenario(shop)
    rule = shop.rules["shoe-size"]
    rule.name = "Shoe\\size\t(EU)"
    rule.save()

    brand_tags_recompute(shop.brand, as_of=AS_OF)

    row = MemberTag.objects.get(member=shop.m.b, tag_value__tag_group__code="shoe-size")
    assert row.reason_params["rule"] == "Shoe\\size\t(EU)"
    assert len(row.reason_params["rule"]) == len("Shoe") + 1 + len("size") + 1 + len("(EU)")

def test_min_quantity_and_threshold_edges(shop):
    buy_scenario(shop)
    rule = shop.rules["discount-preference"]
    # A: 770.00 of 1870.00 at ≥30% off = 0.41176… → passes 0.411 exactly, fails 0.412.
    rule.threshold = Decimal("0.411")
    rule.save()
    brand_tags_recompute(shop.brand, as_of=AS_OF)
    assert tags_of(shop.m.a)["discount-preference"] == (
        "discount-sensitive", evidence(rule, share="0.411", spend="770.00", total_spend="1870.00"))
    rule.threshold = Decimal("0.412")
    rule.min_quantity = 3  # B has 2 items: no longer enough
    rule.save()
    brand_tags_recompute(shop.brand, as_of=AS_OF)
    assert "discount-preference" not in tags_of(shop.m.a)
    assert "discount-preference" not in tags_of(shop.m.b)


def test_install_defaults_is_idempotent(shop):
    assert sorted(shop.rules) == sorted(spec.code for spec in DEFAULT_RULES)
    assert tag_rules_install_defaults(shop.brand) == []
    assert TagRule.objects.filter(brand=shop.brand).count() == 9
    assert TagGroup.objects.filter(brand=shop.brand, multi_valued=False).count() == 9
    for rule in TagRule.objects.all():
        rule.full_clean()


@pytest.mark.parametrize(("changes", "field"), [
    ({"field": "unit_price", "aggregation": "top_spend"}, "aggregation"),
    ({"field": "colour", "aggregation": "average_band", "bands": "1,2"}, "field"),
    ({"field": "unit_price", "aggregation": "average_band", "bands": "500,200"}, "bands"),
    ({"field": "unit_price", "aggregation": "average_band", "bands": "a,b"}, "bands"),
    ({"field": "discount_rate", "aggregation": "share_at_least", "compare_value": None, "value_code": "x"},
     "compare_value"),
    ({"field": "discount_rate", "aggregation": "share_at_least", "compare_value": Decimal("0.3"), "value_code": ""},
     "value_code"),
    ({"threshold": Decimal("1.5")}, "threshold"),
])
def test_rule_validation_names_the_bad_field(shop, changes, field):
    rule = shop.rules["colour-preference"]
    for name, value in changes.items():
        setattr(rule, name, value)
    with pytest.raises(ValidationError) as caught:
        rule.full_clean()
    assert field in caught.value.message_dict


def test_rule_must_use_a_tag_group_of_its_brand(shop):
    rule = shop.rules["colour-preference"]
    rule.tag_group = tag_group_get_or_create(group=shop.grp, brand=shop.other, code="colour", name="Colour")
    with pytest.raises(ValidationError) as caught:
        rule.full_clean()
    assert list(caught.value.message_dict) == ["tag_group"]


def test_assign_replaces_single_value_and_refuses_foreign_tags(shop):
    colour = shop.rules["colour-preference"].tag_group
    red = tag_value_get_or_create(tag_group=colour, code="red")
    blue = tag_value_get_or_create(tag_group=colour, code="blue", name="Blue")
    member_tag_assign(member=shop.m.a, tag_value=red, reason="first")
    member_tag_assign(member=shop.m.a, tag_value=blue, reason="changed her mind")
    assert tags_of(shop.m.a, TagSource.MANUAL) == {"colour-preference": ("blue", {})}

    other_brand_value = tag_value_get_or_create(
        tag_group=tag_group_get_or_create(group=shop.grp, brand=shop.other, code="x", name="X"), code="y")
    with pytest.raises(ApplicationError) as caught:
        member_tag_assign(member=shop.m.a, tag_value=other_brand_value, reason="nope")
    assert (caught.value.code, caught.value.fields) == (
        "tag_brand_not_joined", {"tag_value": ["This tag belongs to a brand the member has not joined."]})
    foreign = tag_value_get_or_create(tag_group=tag_group_get_or_create(group=RetailGroupFactory(code="g2"),
                                                                        code="x", name="X"), code="y")
    with pytest.raises(ApplicationError) as caught:
        member_tag_assign(member=shop.m.a, tag_value=foreign, reason="nope")
    assert caught.value.code == "tag_other_group"
    with pytest.raises(ApplicationError) as caught:
        member_tag_assign(member=shop.m.a, tag_value=red, reason="nope", source=TagSource.RULE)
    assert caught.value.code == "tag_source_invalid"
    assert tags_of(shop.m.a, TagSource.MANUAL) == {"colour-preference": ("blue", {})}


def test_remove_takes_hand_tags_only(shop):
    buy_scenario(shop)
    brand_tags_recompute(shop.brand, as_of=AS_OF)
    computed = MemberTag.objects.get(member=shop.m.b, tag_value__tag_group__code="shoe-size")
    with pytest.raises(ApplicationError) as caught:
        member_tag_remove(member=shop.m.b, tag_value=computed.tag_value)
    assert (caught.value.code, caught.value.status) == ("tag_computed", 409)
    group = tag_group_get_or_create(group=shop.grp, code="vip", name="VIP")
    gold = tag_value_get_or_create(tag_group=group, code="gold")
    member_tag_assign(member=shop.m.b, tag_value=gold, reason="x")

    member_tag_remove(member=shop.m.b, tag_value=gold, reason="mistake")

    assert not MemberTag.objects.filter(member=shop.m.b, tag_value=gold).exists()
    assert MemberTag.objects.filter(pk=computed.pk).exists()
    with pytest.raises(ApplicationError) as caught:
        member_tag_remove(member=shop.m.b, tag_value=gold)
    assert (caught.value.code, caught.value.status) == ("tag_not_held", 404)


def test_merge_moves_tags_keeping_the_earlier_assignment(shop):
    survivor, absorbed = shop.m.a, shop.m.b
    colour = shop.rules["colour-preference"].tag_group  # single-valued
    hobbies = tag_group_get_or_create(group=shop.grp, code="hobby", name="Hobby", multi_valued=True)
    run, yoga, golf = (tag_value_get_or_create(tag_group=hobbies, code=c) for c in ("run", "yoga", "golf"))
    red, blue = tag_value_get_or_create(tag_group=colour, code="red"), tag_value_get_or_create(tag_group=colour,
                                                                                                 code="blue")
    member_tag_assign(member=survivor, tag_value=run, reason="s-run", at=ago(10))
    member_tag_assign(member=survivor, tag_value=yoga, reason="s-yoga", at=ago(5))
    member_tag_assign(member=survivor, tag_value=red, reason="s-red", at=ago(3))
    member_tag_assign(member=absorbed, tag_value=run, reason="a-run", at=ago(20))    # earlier: replaces survivor's
    member_tag_assign(member=absorbed, tag_value=yoga, reason="a-yoga", at=ago(1))   # later: dropped
    member_tag_assign(member=absorbed, tag_value=golf, reason="a-golf", at=ago(2))   # new: moves
    member_tag_assign(member=absorbed, tag_value=blue, reason="a-blue", at=ago(30))  # earlier single value: wins

    moved = member_tags_merge(survivor=survivor, absorbed=absorbed)

    assert moved == 3
    rows = MemberTag.objects.filter(member=survivor).select_related("tag_value")
    assert sorted((row.tag_value.code, row.reason, row.assigned_at) for row in rows) == [
        ("blue", "a-blue", ago(30)), ("golf", "a-golf", ago(2)), ("run", "a-run", ago(20)),
        ("yoga", "s-yoga", ago(5))]
    assert MemberTag.objects.filter(member=absorbed).count() == 0


def test_celery_tasks_take_ids_and_are_idempotent(shop):
    buy_scenario(shop)

    as_of = AS_OF.isoformat()
    first = tag_tasks.tags_recompute_brand.delay(shop.brand.pk, as_of).get()
    second = tag_tasks.tags_recompute_brand.delay(shop.brand.pk, as_of).get()
    member = tag_tasks.tags_recompute_member.delay(shop.m.b.pk, shop.brand.pk, as_of).get()

    assert first["created"] == 24
    assert (second["created"], second["updated"], second["deleted"]) == (0, 0, 0)
    assert (member["created"], member["updated"], member["deleted"]) == (0, 0, 0)
    assert tag_tasks.tags_recompute_member.name == "members.tasks.tags_recompute_member"
    assert tag_tasks.tags_recompute_brand.name == "members.tasks.tags_recompute_brand"
    assert tag_tasks.tags_recompute_member.delay(999_999, shop.brand.pk).get() == {"skipped": "member not found"}


# ---------------------------------------------------------------------------- admin

def rule_form(brand, tag_group, **overrides):
    data = {"brand": brand.pk, "tag_group": tag_group.pk, "name": "Sock size", "is_active": "on", "sort": "0",
            "field": "size", "aggregation": "top_quantity", "threshold": "0.5", "min_quantity": "1",
            "lookback_days": "", "category_filter": "袜,sock", "category_mode": "include", "compare_value": "",
            "value_code": "", "value_name": "", "bands": ""}
    return {**data, **overrides}


def test_brand_operator_adds_a_rule_in_the_admin(shop, client):
    from tests.factories import staff_user

    group = tag_group_get_or_create(group=shop.grp, brand=shop.brand, code="sock-size", name="Sock size")
    client.force_login(staff_user("brand_operator", brand=shop.brand))

    response = client.post("/admin/members/tagrule/add/", rule_form(shop.brand, group))

    assert response.status_code == 302
    rule = TagRule.objects.get(name="Sock size")
    assert (rule.brand, rule.tag_group, rule.field, rule.aggregation, rule.threshold, rule.category_filter) == (
        shop.brand, group, "size", "top_quantity", Decimal("0.500"), "袜,sock")
    # A combination the engine cannot compute is refused with the field named.
    response = client.post("/admin/members/tagrule/add/", rule_form(shop.brand, group, name="Bad",
                                                                    aggregation="average_band", bands=""))
    assert response.status_code == 200
    assert set(response.context["adminform"].form.errors) == {"field", "bands"}
    assert not TagRule.objects.filter(name="Bad").exists()


def test_brand_operator_cannot_define_group_wide_tag_groups_or_see_other_brands_rules(shop, client):
    from tests.factories import staff_user

    tag_rules_install_defaults(shop.other)
    client.force_login(staff_user("brand_operator", brand=shop.brand))

    response = client.post("/admin/members/taggroup/add/", {
        "group": shop.grp.pk, "brand": "", "code": "hobby", "name": "Hobby",
        "values-TOTAL_FORMS": "0", "values-INITIAL_FORMS": "0"})
    changelist = client.get("/admin/members/tagrule/")

    assert response.status_code == 200
    assert set(response.context["adminform"].form.errors) == {"brand"}
    assert not TagGroup.objects.filter(code="hobby").exists()
    assert {rule.brand_id for rule in changelist.context["cl"].result_list} == {shop.brand.pk}
    assert changelist.context["cl"].result_count == 9


def test_guide_cannot_change_rules(shop, client):
    from tests.factories import GuideFactory, staff_user

    guide = GuideFactory(store=shop.s1)
    client.force_login(staff_user("guide", guide=guide))
    rule = shop.rules["colour-preference"]
    name = rule.name
    response = client.post(f"/admin/members/tagrule/{rule.pk}/change/",
                           rule_form(shop.brand, rule.tag_group, name="Hijacked"))
    assert response.status_code == 403
    rule.refresh_from_db()
    assert rule.name == name == "Colour preference"


def test_reasons_are_rendered_in_the_viewers_language(shop):
    """Reasons are stored as codes: written under one language, they read in the viewer's."""
    buy_scenario(shop)
    with translation.override("en"):
        brand_tags_recompute(shop.brand, as_of=AS_OF)
    row = MemberTag.objects.select_related("tag_value__tag_group").get(
        member=shop.m.a, tag_value__tag_group__code="shoe-size")
    band = MemberTag.objects.select_related("tag_value__tag_group").get(
        member=shop.m.a, tag_value__tag_group__code="price-band")
    with translation.override("zh-hans"):
        assert row.reason_text == "鞋码：38（共 2 件，其中 1 件）"
        # A's quantity-weighted unit price: (500 + 2×210 + 350 + 3×100 + 300) / 8 items = 1870 / 8 = 233.75.
        assert band.reason_text == "价格带：200-500（平均 233.75）"
        assert band.tag_value.tag_group.label == "价格带"
    with translation.override("en"):
        assert band.reason_text == "Price band: 200-500 (average 233.75)"
