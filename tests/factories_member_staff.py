"""A small organisation with members for the staff member API and the phone-masking tests.

Group ``grp``:

    brand-a ── east ── a-e1 (g-e1-1, g-e1-2, g-e1-left [left])   a-e2 (g-e2-1)
            └─ west ── a-w1 (g-w1-1)
    brand-b ── b-main ── b-1 (g-b1-1)

plus group ``other`` (brand-c / c-1 / g-c1-1) with member ``mc``, which nobody of ``grp`` sees.

Members of ``grp`` (created one day apart, m1 oldest; phones +86138000000<n>):
    m1  王小明  joined A at a-e1, bound to g-e1-1; tags A shoe-size:38 (rule) and A rfml:important_value
    m2  王芳    joined A at a-e1, was bound to g-e1-1 (ended), now bound to g-e1-2
    m3  李雷    joined A at a-e2 (bound g-e2-1) and B at b-1 (bound g-b1-1); tags B style:sporty,
                A rfml:general_develop, B rfml:important_value, group-wide colour:black
    m4  韩梅梅  joined B at b-1, bound to g-b1-1; tag colour:black
    m5  张伟    joined A at a-w1, bound to g-e1-1 (a guide of another store)
    m6  赵敏    joined A online (no store), never bound
    m9  (tombstone) merged into m6, phone +8613800000099 left on it
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import factory
from django.contrib.auth.models import Permission
from django.utils import timezone

from members.models import MemberDailyActivity, MemberTag, PointsEntry, TagGroup, TagSource, TagValue, WeComFriendship
from members.services import points_post
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    GuideBindingFactory,
    GuideFactory,
    MemberFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
    staff_user,
)

T0 = dt.datetime(2025, 1, 1, 2, 0, tzinfo=dt.UTC)
LIVE_MEMBERS = {"m1", "m2", "m3", "m4", "m5", "m6"}


class TagGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TagGroup

    group = factory.SubFactory(RetailGroupFactory)
    code = factory.Sequence(lambda n: f"tg{n}")
    name = factory.Sequence(lambda n: f"Tag group {n}")


class TagValueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TagValue

    tag_group = factory.SubFactory(TagGroupFactory)
    code = factory.Sequence(lambda n: f"v{n}")
    name = factory.Sequence(lambda n: f"Value {n}")


class MemberTagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MemberTag

    tag_value = factory.SubFactory(TagValueFactory)
    source = TagSource.MANUAL
    assigned_at = T0


def phone_of(n: int) -> str:
    return f"+86138000000{n:02d}"


def build_member_world() -> SimpleNamespace:
    grp = RetailGroupFactory(code="grp", name="Group")
    brand_a = BrandFactory(group=grp, code="brand-a", name="Brand A")
    brand_b = BrandFactory(group=grp, code="brand-b", name="Brand B")
    regions = {
        "east": RegionFactory(brand=brand_a, code="east"),
        "west": RegionFactory(brand=brand_a, code="west"),
        "b-main": RegionFactory(brand=brand_b, code="b-main"),
    }
    stores = {
        "a-e1": StoreFactory(region=regions["east"], code="a-e1"),
        "a-e2": StoreFactory(region=regions["east"], code="a-e2"),
        "a-w1": StoreFactory(region=regions["west"], code="a-w1"),
        "b-1": StoreFactory(region=regions["b-main"], code="b-1"),
    }
    guides = {code: GuideFactory(store=stores[store], code=code, name=f"Guide {code}")
              for code, store in [("g-e1-1", "a-e1"), ("g-e1-2", "a-e1"), ("g-e2-1", "a-e2"),
                                  ("g-w1-1", "a-w1"), ("g-b1-1", "b-1")]}
    guides["g-e1-left"] = GuideFactory(store=stores["a-e1"], code="g-e1-left", left_at=dt.date(2025, 6, 1))

    other = RetailGroupFactory(code="other", name="Other")
    brand_c = BrandFactory(group=other, code="brand-c")
    store_c = StoreFactory(region=RegionFactory(brand=brand_c, code="c-main"), code="c-1")
    guide_c = GuideFactory(store=store_c, code="g-c1-1")

    names = {"m1": "王小明", "m2": "王芳", "m3": "李雷", "m4": "韩梅梅", "m5": "张伟", "m6": "赵敏"}
    members = {code: MemberFactory(group=grp, code=code, name=name, phone=phone_of(int(code[1:])),
                                   created_at=T0 + dt.timedelta(days=int(code[1:])))
               for code, name in names.items()}
    members["m9"] = MemberFactory(group=grp, code="m9", name="赵敏", phone=phone_of(99),
                                  created_at=T0 + dt.timedelta(days=9), merged_into=members["m6"])
    members["mc"] = MemberFactory(group=other, code="mc", phone=phone_of(1), created_at=T0)

    def join(member, brand, store, days=0):
        BrandMembershipFactory(member=members[member], brand=brand, store=stores.get(store),
                               joined_at=T0 + dt.timedelta(days=days))

    def bind(member, guide, started=10, ended=None):
        GuideBindingFactory(member=members[member], guide=guides[guide], started_at=T0 + dt.timedelta(days=started),
                            ended_at=None if ended is None else T0 + dt.timedelta(days=ended))

    join("m1", brand_a, "a-e1", 1)
    bind("m1", "g-e1-1", 1)
    join("m2", brand_a, "a-e1", 2)
    bind("m2", "g-e1-1", 2, ended=20)
    bind("m2", "g-e1-2", 20)
    join("m3", brand_a, "a-e2", 3)
    join("m3", brand_b, "b-1", 4)
    bind("m3", "g-e2-1", 3)
    bind("m3", "g-b1-1", 4)
    join("m4", brand_b, "b-1", 4)
    bind("m4", "g-b1-1", 4)
    join("m5", brand_a, "a-w1", 5)
    bind("m5", "g-e1-1", 5)
    join("m6", brand_a, None, 6)
    BrandMembershipFactory(member=members["mc"], brand=brand_c, store=store_c, joined_at=T0)
    GuideBindingFactory(member=members["mc"], guide=guide_c, started_at=T0)

    shoe = TagGroupFactory(group=grp, brand=brand_a, code="shoe-size", name="Shoe size")
    shoe_38 = TagValueFactory(tag_group=shoe, code="38", name="38")
    shoe_39 = TagValueFactory(tag_group=shoe, code="39", name="39")
    # RFML writes one "rfml" group per brand, values sorted in class order.
    rfml_a = TagGroupFactory(group=grp, brand=brand_a, code="rfml", name="RFML class")
    important_value = TagValueFactory(tag_group=rfml_a, code="important_value", name="Important value", sort=0)
    a_general_develop = TagValueFactory(tag_group=rfml_a, code="general_develop", name="General develop", sort=5)
    rfml_b = TagGroupFactory(group=grp, brand=brand_b, code="rfml", name="RFML class")
    b_important_value = TagValueFactory(tag_group=rfml_b, code="important_value", name="Important value", sort=0)
    colour = TagGroupFactory(group=grp, brand=None, code="colour", name="Colour")
    black = TagValueFactory(tag_group=colour, code="black", name="Black")
    b_style = TagGroupFactory(group=grp, brand=brand_b, code="style", name="Style")
    b_sporty = TagValueFactory(tag_group=b_style, code="sporty", name="Sporty")
    MemberTagFactory(member=members["m1"], tag_value=shoe_38, source=TagSource.RULE, reason="3 of 4 pairs bought",
                     assigned_at=T0 + dt.timedelta(days=30))
    MemberTagFactory(member=members["m1"], tag_value=important_value, source=TagSource.RFML,
                     reason="R 12 d, F 5, M 3,400.00", assigned_at=T0 + dt.timedelta(days=31))
    MemberTagFactory(member=members["m3"], tag_value=b_sporty, source=TagSource.MANUAL, reason="asked in store",
                     assigned_at=T0 + dt.timedelta(days=32))
    MemberTagFactory(member=members["m3"], tag_value=a_general_develop, source=TagSource.RFML,
                     assigned_at=T0 + dt.timedelta(days=33))
    MemberTagFactory(member=members["m3"], tag_value=b_important_value, source=TagSource.RFML,
                     assigned_at=T0 + dt.timedelta(days=33))
    MemberTagFactory(member=members["m3"], tag_value=black, source=TagSource.IMPORT,
                     assigned_at=T0 + dt.timedelta(days=34))
    MemberTagFactory(member=members["m4"], tag_value=black, source=TagSource.IMPORT,
                     assigned_at=T0 + dt.timedelta(days=34))

    return SimpleNamespace(grp=grp, other=other, brand_a=brand_a, brand_b=brand_b, brand_c=brand_c, regions=regions,
                           stores=stores, guides=guides, store_c=store_c, guide_c=guide_c, members=members,
                           tags=SimpleNamespace(shoe_38=shoe_38, shoe_39=shoe_39, important_value=important_value,
                                                b_important_value=b_important_value, b_sporty=b_sporty, black=black))


def add_history(world) -> None:
    """Points, WeCom friendships and daily activity for m1 (brand A) and m3 (brands A and B)."""
    m1, m3 = world.members["m1"], world.members["m3"]
    points_post(member=m1, brand=world.brand_a, delta=100, reason=PointsEntry.Reason.EARN)
    points_post(member=m1, brand=world.brand_a, delta=-30, reason=PointsEntry.Reason.SPEND)
    points_post(member=m3, brand=world.brand_a, delta=50, reason=PointsEntry.Reason.EARN)
    points_post(member=m3, brand=world.brand_b, delta=20, reason=PointsEntry.Reason.EARN)
    WeComFriendship.objects.create(member=m1, guide=world.guides["g-e1-2"], added_at=T0 + dt.timedelta(days=2),
                                   removed_at=T0 + dt.timedelta(days=3), source=WeComFriendship.Source.API)
    WeComFriendship.objects.create(member=m1, guide=world.guides["g-e1-1"], added_at=T0 + dt.timedelta(days=4),
                                   source=WeComFriendship.Source.CALLBACK)
    WeComFriendship.objects.create(member=m3, guide=world.guides["g-b1-1"], added_at=T0 + dt.timedelta(days=5),
                                   source=WeComFriendship.Source.IMPORT)
    today = timezone.localdate()
    for member, brand, day, counts in [
        (m1, world.brand_a, today, {"product_views": 3, "favourites": 2}),
        (m1, world.brand_a, today - dt.timedelta(days=29), {"shares": 1, "product_views": 4}),
        (m1, world.brand_a, today - dt.timedelta(days=30), {"product_views": 100}),  # outside the 30 days
        (m3, world.brand_a, today, {"add_to_carts": 1}),
        (m3, world.brand_b, today, {"live_watches": 5}),
    ]:
        MemberDailyActivity.objects.create(member=member, brand=brand, day=day, **counts)


def grant_full_phone(user) -> None:
    user.user_permissions.add(Permission.objects.get(content_type__app_label="members", codename="view_full_phone"))


def world_user(world, key: str, *, full_phone: bool = False):
    """A staff login: ``hq``, ``brand-a``, ``region-east``, ``store-a-e1`` or a guide code like ``g-e1-1``."""
    if key == "hq":
        user = staff_user("hq", group=world.grp)
    elif key.startswith("brand-"):
        user = staff_user("brand_operator", brand={"brand-a": world.brand_a, "brand-b": world.brand_b}[key])
    elif key.startswith("region-"):
        user = staff_user("region_manager", region=world.regions[key.removeprefix("region-")])
    elif key.startswith("store-"):
        user = staff_user("store_manager", store=world.stores[key.removeprefix("store-")])
    else:
        user = staff_user("guide", guide=world.guides[key])
    if full_phone:
        grant_full_phone(user)
    return user
