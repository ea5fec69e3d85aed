"""Hand-made members for the HQ marketing page tests (tests/marketing/test_marketing_pages*.py).

Two brands of one group; tag M is group-wide, tag vip is WA's own.

======  =====================  ===========  ==================  ======
member  brands                 tags         bound to (store)    points
======  =====================  ===========  ==================  ======
m1 王一  WA                     M, vip       GA1 (SA1, east)     500
m2 李二  WA                     M            GA2 (SA2, west)     0
m3 张三  WA                     vip          -                   100
m4 赵四  WA                     -            -                   0
m5 钱五  WB                     M            GB1 (SB1)           900
======  =====================  ===========  ==================  ======

So for WA: tag M → m1, m2 (2); M or vip → m1, m2, m3 (3); points ≥ 100 → m1, m3 (2); M and points ≥ 100 → m1
(1); bound in SA1 → m1 (1); every member → 4. No WB member is ever in a WA audience.
"""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from mall.models import CouponTemplate
from members.models import MemberTag
from members.services import points_post
from members.tags import tag_group_get_or_create, tag_value_get_or_create
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    GuideBindingFactory,
    GuideFactory,
    MemberFactory,
    RegionFactory,
    StoreFactory,
)


def build_world() -> SimpleNamespace:
    w = SimpleNamespace()
    w.wa = BrandFactory(code="WA", name="雅致女装")
    w.wb = BrandFactory(code="WB", name="型男", group=w.wa.group)
    w.group = w.wa.group
    w.sa1 = StoreFactory(region=RegionFactory(brand=w.wa, code="east", name="华东"), code="SA1", name="上海一店")
    w.sa2 = StoreFactory(region=RegionFactory(brand=w.wa, code="west", name="西南"), code="SA2", name="成都一店")
    w.sb1 = StoreFactory(region=RegionFactory(brand=w.wb, code="b-east", name="B 华东"), code="SB1", name="型男上海")
    w.ga1 = GuideFactory(store=w.sa1, code="GA1", name="林小雨")
    w.ga2 = GuideFactory(store=w.sa2, code="GA2", name="陈晓")
    w.gb1 = GuideFactory(store=w.sb1, code="GB1", name="周明")
    size = tag_group_get_or_create(group=w.group, code="size", name="尺码")
    w.tag_m = tag_value_get_or_create(tag_group=size, code="M")
    interest = tag_group_get_or_create(group=w.group, brand=w.wa, code="interest", name="兴趣")
    w.tag_vip = tag_value_get_or_create(tag_group=interest, code="vip")
    w.template = CouponTemplate.objects.create(brand=w.wa, name="满200减30", kind="threshold",
                                               threshold_amount=Decimal("200.00"), discount_amount=Decimal("30.00"),
                                               valid_days=30)
    w.template_b = CouponTemplate.objects.create(brand=w.wb, name="型男券", kind="threshold",
                                                 threshold_amount=Decimal("100.00"),
                                                 discount_amount=Decimal("10.00"), valid_days=30)

    def member(code, name, brand, store, *, tags=(), guide=None, points=0):
        person = MemberFactory(group=w.group, code=code, name=name)
        BrandMembershipFactory(member=person, brand=brand, store=store)
        for value in tags:
            MemberTag.objects.create(member=person, tag_value=value, source="manual", assigned_at=person.created_at)
        if guide is not None:
            GuideBindingFactory(member=person, guide=guide)
        if points:
            points_post(member=person, brand=brand, delta=points, reason="adjust")
        return person

    w.m1 = member("m1", "王一", w.wa, w.sa1, tags=(w.tag_m, w.tag_vip), guide=w.ga1, points=500)
    w.m2 = member("m2", "李二", w.wa, w.sa2, tags=(w.tag_m,), guide=w.ga2)
    w.m3 = member("m3", "张三", w.wa, w.sa1, tags=(w.tag_vip,), points=100)
    w.m4 = member("m4", "赵四", w.wa, w.sa2)
    w.m5 = member("m5", "钱五", w.wb, w.sb1, tags=(w.tag_m,), guide=w.gb1, points=900)
    return w
