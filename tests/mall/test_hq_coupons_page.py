"""HQ coupon issuing at /hq/coupons/: preview and issue a template to a tag, an RFML class or listed members.

The page uses the API's selector and service, so what is checked here is the page's own part: the counts it
previews, that it issues exactly to the members named (in scope, live, not already holding one), that a
resubmitted form never doubles, and who may use it.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from mall.models import Coupon, CouponTemplate
from members.models import MemberTag, TagGroup, TagSource, TagValue
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    MemberFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
    staff_user,
)

pytestmark = pytest.mark.django_db
URL = "/hq/coupons/"


@pytest.fixture
def world():
    brand = BrandFactory(code="WA", name="雅致女装")
    other = BrandFactory(code="MB", name="型男", group=brand.group)
    region = RegionFactory(brand=brand, code="east")
    store = StoreFactory(region=region, code="SA")
    template = CouponTemplate.objects.create(brand=brand, name="满200减30", kind="threshold",
                                             threshold_amount="200.00", discount_amount="30.00", valid_days=30)
    foreign = CouponTemplate.objects.create(brand=other, name="型男券", kind="threshold",
                                            threshold_amount="100.00", discount_amount="10.00", valid_days=30)
    group = TagGroup.objects.create(group=brand.group, brand=brand, code="style", name="风格")
    casual = TagValue.objects.create(tag_group=group, code="casual", name="休闲")
    members = [MemberFactory(group=brand.group, code=f"M{i}") for i in range(5)]
    for member in members[:4]:  # M4 is no WA member: a WA tag or class never reaches them
        BrandMembershipFactory(member=member, brand=brand, store=store)
    MemberTag.objects.create(member=members[4], tag_value=casual, source=TagSource.MANUAL, assigned_at=timezone.now())
    for member in members[:3]:
        MemberTag.objects.create(member=member, tag_value=casual, source=TagSource.MANUAL, assigned_at=timezone.now())
    hq = staff_user("hq", group=brand.group)
    return type("World", (), dict(brand=brand, other=other, store=store, template=template, foreign=foreign,
                                  casual=casual, members=members, hq=hq))


def test_lists_templates_in_scope_with_issued_and_used(client, world):
    operator = staff_user("brand_operator", brand=world.brand)
    client.force_login(operator)
    response = client.get(URL)
    assert response.status_code == 200
    assert [t.name for t in response.context["templates"]] == ["满200减30"]  # not the other brand's


def test_preview_counts_then_issue_gives_exactly_the_tagged_members_one_each(client, world):
    Coupon.objects.create(template=world.template, member=world.members[0], code="CHELD1",
                          issued_at="2030-01-01T00:00Z", valid_from="2030-01-01T00:00Z", valid_to="2099-01-01T00:00Z")
    client.force_login(world.hq)

    preview = client.post(URL, {"template": world.template.pk, "target": "tag", "tag": world.casual.pk,
                                "action": "preview"})
    assert preview.status_code == 200
    assert preview.context["preview"] == {"total": 3, "holding": 1, "new": 2}
    assert "共 3 位会员符合：2 位将获得优惠券，1 位已持有。" in preview.content.decode()
    assert Coupon.objects.count() == 1  # a preview issues nothing

    issued = client.post(URL, {"template": world.template.pk, "target": "tag", "tag": world.casual.pk,
                               "action": "issue"})
    again = client.post(URL, {"template": world.template.pk, "target": "tag", "tag": world.casual.pk,
                              "action": "issue"})

    assert issued.status_code == 302 and again.status_code == 302
    holders = sorted(Coupon.objects.filter(template=world.template).values_list("member__code", flat=True))
    assert holders == ["M0", "M1", "M2"]
    page = client.get(issued["Location"])
    texts = [str(m) for m in page.context["messages"]]
    assert texts == ["已发放 2 张“满200减30”；1 位会员已持有未使用的该券，未重复发放。",
                     "已发放 0 张“满200减30”；3 位会员已持有未使用的该券，未重复发放。"]


def test_listed_codes_issue_to_live_members_in_scope_only(client, world):
    outsider = MemberFactory(code="X1", group=RetailGroupFactory(code="other-group"))
    client.force_login(world.hq)
    response = client.post(URL, {"template": world.template.pk, "target": "members",
                                 "member_codes": "M3, M4\nX1 NOPE", "action": "issue"})
    assert response.status_code == 302
    assert sorted(Coupon.objects.values_list("member__code", flat=True)) == ["M3", "M4"]
    assert not Coupon.objects.filter(member=outsider).exists()


def test_bad_input_is_400_with_the_field_message_and_nothing_issued(client, world):
    client.force_login(world.hq)
    no_tag = client.post(URL, {"template": world.template.pk, "target": "tag", "action": "issue"})
    no_codes = client.post(URL, {"template": world.template.pk, "target": "members", "member_codes": " ",
                                 "action": "issue"})
    bad_class = client.post(URL, {"template": world.template.pk, "target": "segment", "segment": "vip",
                                  "action": "issue"})
    assert no_tag.status_code == 400
    assert no_tag.context["form"].errors["tag"] == ["请选择标签。"]
    assert no_codes.status_code == 400
    assert no_codes.context["form"].errors["member_codes"] == ["请至少填写一个会员编号。"]
    assert bad_class.status_code == 400
    assert "segment" in bad_class.context["form"].errors
    assert Coupon.objects.count() == 0


def test_another_brands_template_is_404_and_workbench_roles_are_sent_away(client, world):
    operator = staff_user("brand_operator", brand=world.brand)
    client.force_login(operator)
    foreign = client.post(URL, {"template": world.foreign.pk, "target": "members", "member_codes": "M1",
                                "action": "issue"})
    assert foreign.status_code == 404
    assert Coupon.objects.count() == 0

    client.force_login(staff_user("store_manager", store=world.store))
    assert client.get(URL)["Location"] == "/workbench/"
    client.force_login(get_user_model().objects.create_user("nobody", password="x-unused-9"))  # no staff role
    assert client.get(URL).status_code == 403


def test_issue_to_an_rfml_class_gives_exactly_that_class_of_the_templates_brand(client, world):
    """M0 and M1 are WA's important_value members, M2 WA's important_retain; M4 is important_value of the other
    brand MB only (RFML classes are per brand): issuing to WA's important_value reaches M0 and M1, 2 coupons."""
    from segments.rfm import rfml_tag_group

    wa_values = {v.code: v for v in TagValue.objects.filter(tag_group=rfml_tag_group(world.brand))}
    mb_values = {v.code: v for v in TagValue.objects.filter(tag_group=rfml_tag_group(world.other))}
    now = timezone.now()
    for member, value in ((world.members[0], wa_values["important_value"]),
                          (world.members[1], wa_values["important_value"]),
                          (world.members[2], wa_values["important_retain"]),
                          (world.members[4], mb_values["important_value"])):
        MemberTag.objects.create(member=member, tag_value=value, source=TagSource.RFML, assigned_at=now)
    client.force_login(world.hq)

    preview = client.post(URL, {"template": world.template.pk, "target": "segment", "segment": "important_value",
                                "action": "preview"})
    assert preview.status_code == 200
    assert preview.context["preview"] == {"total": 2, "holding": 0, "new": 2}
    issued = client.post(URL, {"template": world.template.pk, "target": "segment", "segment": "important_value",
                               "action": "issue"})

    assert issued.status_code == 302
    assert sorted(Coupon.objects.values_list("member__code", flat=True)) == ["M0", "M1"]
    assert Coupon.objects.filter(template=world.template).count() == 2
    page = client.get(issued["Location"])
    assert [str(m) for m in page.context["messages"]] == [
        "已发放 2 张“满200减30”；0 位会员已持有未使用的该券，未重复发放。"]
