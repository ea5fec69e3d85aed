"""Stored words read in the viewer's language (issue 23 point 3) and stated vs inferred preferences (point 4).

Hand-made brand "BR" whose every name is Latin (members, stores, products, colours), so any Han character on
an English page is the application's own text, not data. The standard tag rules are installed while English
is active (their groups' stored names are English), the tags, the RFML run and the care list are computed,
then each key page is rendered in both languages:

* English: no Han character at all in the visible text;
* Chinese: none of the English words the computed rows would have carried (group names, reasons), and the
  Chinese renderings are there.

Purchases (net, today = the local date the test runs): Alice: a white XL top 2 days ago (¥300) and a white XL
top 40 days ago (¥300); Bob: a black M top 400 days ago (¥200); Carol: a white L top 30 days ago and 60 days
ago (¥250 each). Alice told the guide she wears S and likes red: the page shows that beside "XL" and "white"
inferred from her purchases.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from types import SimpleNamespace

import factory
import pytest
from django.test import Client
from django.utils import timezone, translation

from analytics.services import local_today
from guides import library
from guides.models import TaskAssignment
from mall.models import Channel, CouponTemplate, OrderLine, OrderStatus, Product, Sku
from members.models import MemberTag, TagSource
from members.selectors import member_preferences
from members.tags import NOT_CLOTHING_WORDS, SHOE_WORDS, brand_tags_recompute, tag_rules_install_defaults
from segments.care import care_list_build
from segments.models import CareItem
from segments.rfm import rfm_recompute
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    GuideBindingFactory,
    GuideFactory,
    MemberFactory,
    OrderFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
    UserFactory,
    staff_user,
)

pytestmark = pytest.mark.django_db

HAN = re.compile(r"[\u4e00-\u9fff]")
# What the computed rows said in English before they were stored as codes; none may show on a Chinese page.
ENGLISH_STORED = ("Colour preference", "Clothing size", "Price band", "Preferred channel", "Preferred store",
                  "Favourite category", "Material preference", "RFML class as of", " items)", " spent)",
                  "(average", "Last purchase", "days ago", "Purchased ", "Important value", "General ",
                  "Discount-sensitive")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    code = factory.Sequence(lambda n: f"P{n:04d}")
    name = factory.Sequence(lambda n: f"Tee {n}")
    category = "tops"


class SkuFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sku

    brand = factory.SelfAttribute("product.brand")
    code = factory.Sequence(lambda n: f"K{n:05d}")
    material = "cotton"
    list_price = Decimal("300.00")
    member_price = Decimal("300.00")
    cost_price = Decimal("100.00")


def visible_text(html: str) -> str:
    """What a reader sees: no scripts, styles, tags, nor the language switch (it names 简体中文 on purpose)."""
    html = re.sub(r"<select name=\"language\".*?</select>", " ", html, flags=re.S)
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


@pytest.fixture
def world():
    today = local_today()
    grp = RetailGroupFactory(code="grp", name="Group")
    brand = BrandFactory(group=grp, code="BR", name="Brand R")
    region = RegionFactory(brand=brand, code="north", name="North")
    store = StoreFactory(region=region, brand=brand, code="s1", name="Store One")
    guide = GuideFactory(store=store, code="g1", name="Guide One")
    with translation.override("en"):
        tag_rules_install_defaults(brand)  # stored names in English: the pages must not care
    skus = {(colour, size): SkuFactory(product=ProductFactory(brand=brand), colour=colour, size=size)
            for colour, size in (("white", "XL"), ("black", "M"), ("white", "L"))}
    people = {}
    for name, told in (("Alice", {"clothing_size": "S", "preferred_colours": ["red"]}), ("Bob", {}), ("Carol", {})):
        member = MemberFactory(group=grp, code=name.lower(), name=name, **told)
        BrandMembershipFactory(member=member, brand=brand, store=store,
                               joined_at=timezone.now() - dt.timedelta(days=500))
        GuideBindingFactory(member=member, guide=guide, started_at=timezone.now() - dt.timedelta(days=500))
        people[name] = member

    def buy(member, sku, days_ago, amount):
        when = timezone.now() - dt.timedelta(days=days_ago)
        order = OrderFactory(brand=brand, member=member, channel=Channel.STORE_POS, store=store, ordered_at=when,
                             paid_at=when, status=OrderStatus.PAID, total_amount=Decimal(amount),
                             paid_amount=Decimal(amount), refunded_amount=Decimal("0"))
        OrderLine.objects.create(order=order, brand=brand, sku=sku, quantity=1, list_price=sku.list_price,
                                 unit_price=Decimal(amount), amount=Decimal(amount), refunded_amount=Decimal("0"))

    buy(people["Alice"], skus["white", "XL"], 2, "300")
    buy(people["Alice"], skus["white", "XL"], 40, "300")
    buy(people["Bob"], skus["black", "M"], 400, "200")
    buy(people["Carol"], skus["white", "L"], 30, "250")
    buy(people["Carol"], skus["white", "L"], 60, "250")
    with translation.override("en"):  # whatever language the jobs run in, the pages follow the viewer
        brand_tags_recompute(brand)
        rfm_recompute(brand=brand, as_of=today)
        care_list_build(brand=brand, day=today)
    # A published task for the store's guides (its detail page lists the members it reaches) and a coupon
    # template HQ can issue (its form lists the brand's tags and the RFML classes): Latin names, as above.
    now = timezone.now()
    task = library.task_create(group=grp, brand=brand, title="Spring tees", copy_text="New tees are in store.",
                               starts_at=now - dt.timedelta(hours=1), deadline=now + dt.timedelta(days=3),
                               assign_stores=[store])
    library.task_publish(task=task)
    coupon = CouponTemplate.objects.create(brand=brand, name="Tee 30 off", kind="threshold",
                                           threshold_amount="200.00", discount_amount="30.00", valid_days=30)
    users = SimpleNamespace(guide=staff_user("guide", guide=guide),
                            hq=staff_user("hq", group=grp),
                            root=UserFactory(username="root", is_staff=True, is_superuser=True))
    return SimpleNamespace(grp=grp, brand=brand, store=store, guide=guide, m=people, users=users, today=today,
                           assignment=TaskAssignment.objects.get(task=task, guide=guide), coupon=coupon)


def pages(w) -> list[tuple[str, str]]:
    alice = w.m["Alice"].pk
    return [
        ("guide", f"/workbench/members/{alice}/"),
        ("guide", "/workbench/care/"),
        ("root", f"/admin/members/member/{alice}/change/"),
        ("root", "/admin/members/taggroup/"),
        ("root", "/admin/members/tagrule/"),
        ("root", "/admin/members/membertag/"),
        ("root", "/admin/segments/careitem/"),
        ("hq", "/hq/segments/?brand=BR"),
        ("guide", f"/workbench/tasks/{w.assignment.pk}/"),
        ("hq", f"/hq/coupons/?template={w.coupon.pk}"),
        ("hq", f"/api/v1/members/{alice}/"),
        ("hq", "/api/v1/members/tag-groups/"),
    ]


def fetch(w, who: str, url: str, lang: str) -> str:
    client = Client(HTTP_ACCEPT_LANGUAGE=lang)
    client.force_login(getattr(w.users, who))
    response = client.get(url)
    assert response.status_code == 200, (url, lang, response.status_code)
    body = response.content.decode()
    return body if url.startswith("/api/") else visible_text(body)


def test_the_computed_rows_are_codes_not_words(world):
    tags = MemberTag.objects.filter(member__group=world.grp).exclude(source=TagSource.MANUAL)
    assert tags.count() > 0 and not tags.exclude(reason="").exists()
    assert not tags.filter(reason_code="").exists()
    items = CareItem.objects.filter(brand=world.brand)
    # Own cycles: Alice 38 days, Carol 30: the brand's cycle is 34, marketing from day 29, lapsed from day 68.
    assert sorted((i.member.name, i.kind, i.reason_code, i.reason_params) for i in items) == [
        ("Alice", "care", "care_period", {"days": 2, "care": 15}),
        ("Bob", "winback", "lapsed", {"days": 400, "cycle": 34}),
        ("Carol", "market", "due", {"days": 30, "cycle": 34})]
    assert not items.exclude(reason="").exists()


@pytest.mark.parametrize("index", range(12))
def test_english_pages_show_no_chinese(world, index):
    who, url = pages(world)[index]
    text = fetch(world, who, url, "en")
    # The standard rules' category filters are data: words matched against (Chinese) product categories.
    text = text.replace(NOT_CLOTHING_WORDS, "").replace(SHOE_WORDS, "")

    found = HAN.findall(text)
    assert not found, (url, "".join(found)[:80])


@pytest.mark.parametrize("index", range(12))
def test_chinese_pages_show_no_english_stored_words(world, index):
    who, url = pages(world)[index]
    text = fetch(world, who, url, "zh-hans")

    assert [word for word in ENGLISH_STORED if word in text] == [], url


def test_the_key_pages_render_the_stored_codes_in_each_language(world):
    alice = world.m["Alice"].pk
    member_zh = fetch(world, "guide", f"/workbench/members/{alice}/", "zh-hans")
    member_en = fetch(world, "guide", f"/workbench/members/{alice}/", "en")
    # Alice: clothing size XL from 2 of 2 items; colour white from ¥600 of ¥600 in the last year.
    assert "服装尺码" in member_zh and "服装尺码：XL（共 2 件，其中 2 件）" in member_zh
    assert "颜色偏好：white（共消费 600.00，其中 600.00）" in member_zh
    assert "Clothing size: XL (2 of 2 items)" in member_en
    assert "Colour preference: white (600.00 of 600.00 spent)" in member_en
    care_zh = fetch(world, "guide", "/workbench/care/", "zh-hans")
    care_en = fetch(world, "guide", "/workbench/care/", "en")
    assert "2 天前购买；处于 15 天关怀期，不做营销" in care_zh and "致谢并询问穿着是否合身；不做推销" in care_zh
    assert "Purchased 2 days ago; care period of 15 days, no marketing" in care_en
    api_zh = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    api_zh.force_login(world.users.hq)
    rows = {row["group"]: row for row in api_zh.get(f"/api/v1/members/{alice}/").json()["tags"]}
    assert (rows["colour-preference"]["group_name"], rows["colour-preference"]["reason"]) == (
        "颜色偏好", "颜色偏好：white（共消费 600.00，其中 600.00）")


def test_stated_preferences_show_beside_the_inferred_ones(world):
    alice = world.m["Alice"]
    tags = MemberTag.objects.filter(member=alice).select_related("tag_value__tag_group__brand")
    with translation.override("en"):
        rows = {row.field: row for row in member_preferences(member=alice, tags=tags)}

    assert (rows["clothing_size"].declared, [i.value for i in rows["clothing_size"].inferred]) == (["S"], ["XL"])
    assert rows["clothing_size"].disagrees
    assert (rows["preferred_colours"].declared, [i.value for i in rows["preferred_colours"].inferred]) == (
        ["red"], ["white"])
    assert (rows["shoe_size"].declared, rows["shoe_size"].inferred, rows["shoe_size"].disagrees) == ([], [], False)
    html = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    html.force_login(world.users.guide)
    page = html.get(f"/workbench/members/{alice.pk}/").content.decode()
    size = re.search(r'data-testid="pref-clothing_size">(.*?)</dd>', page, re.S).group(1)
    assert re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", size)).strip() == "S 会员自述 根据购买推断: XL"
    admin_page = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    admin_page.force_login(world.users.root)
    change = visible_text(admin_page.get(f"/admin/members/member/{alice.pk}/change/").content.decode())
    assert re.search(r"服装尺码\s+S\s+\(会员自述\)\s+根据购买推断: XL \(BR\)", change)


def test_the_task_and_coupon_pages_render_the_stored_names_in_each_language(world):
    task_zh = fetch(world, "guide", f"/workbench/tasks/{world.assignment.pk}/", "zh-hans")
    task_en = fetch(world, "guide", f"/workbench/tasks/{world.assignment.pk}/", "en")
    assert "目标人群名单" in task_zh and "Who the audience is" in task_en
    for text in (task_zh, task_en):
        assert all(name in text for name in ("Alice", "Bob", "Carol"))
    coupons_zh = fetch(world, "hq", f"/hq/coupons/?template={world.coupon.pk}", "zh-hans")
    coupons_en = fetch(world, "hq", f"/hq/coupons/?template={world.coupon.pk}", "en")
    # The tag choices: stored English group names and RFML class codes, each shown in the viewer's language.
    assert "颜色偏好: white" in coupons_zh and "RFML 分类: 重要价值" in coupons_zh
    assert "Colour preference: white" in coupons_en and "RFML class: Important value" in coupons_en
