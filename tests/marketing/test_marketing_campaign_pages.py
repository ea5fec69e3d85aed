"""HQ campaign pages at /hq/marketing/campaigns/ through the Django test client: the wizard, the list, results.

The members are tests/marketing/pages_world.py's. The audience "M 或 vip" holds m1, m2 and m3 of brand WA;
m3 opted out of SMS, so an SMS campaign to it sends to m1 and m2 and holds m3 back ("opted out"). The
group's reach rules here have no quiet hours (start = end), so a launch sends at once whatever the hour
the test runs; resolving runs on commit (captured and run here), sending is ``deliveries_dispatch``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from marketing.campaigns import campaign_create, is_held_out
from marketing.channels import fake
from marketing.models import Audience, Campaign, CampaignVariant, ChannelOptOut, Delivery, ReachRules
from marketing.results import newcombe_interval
from marketing.services import deliveries_dispatch
from tests.factories import BrandMembershipFactory, MemberFactory, OrderFactory, staff_user
from tests.marketing.pages_world import build_world

pytestmark = pytest.mark.django_db
NEW = "/hq/marketing/campaigns/new/"
LIST = "/hq/marketing/campaigns/"
LINK = "https://mall.example.com/mp/new-arrivals"


@pytest.fixture(autouse=True)
def _clean_fake():
    fake.reset()
    yield
    fake.reset()


@pytest.fixture
def w():
    world = build_world()
    ReachRules.objects.create(group=world.group, quiet_start="00:00", quiet_end="00:00")
    ChannelOptOut.objects.create(member=world.m3, channel="sms", source="reply", opted_out_at=timezone.now())
    world.audience = Audience.objects.create(group=world.group, brand=world.wa, name="M 或 vip",
                                             definition={"tags": {"any": [world.tag_m.pk, world.tag_vip.pk]}})
    world.operator = staff_user("brand_operator", brand=world.wa, username="op-wa")
    return world


@pytest.fixture
def zh(w) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(w.operator)
    return client


def wizard(w, **changes) -> dict:
    data = {"name": "春季上新", "audience": str(w.audience.pk), "channel_1": "sms", "channel_2": "", "channel_3": "",
            "sms_template": "1110", "sms_params": "{name}\n{link}", "link": LINK, "coupon_template": "",
            "schedule": "now", "send_at": "", "recur_time": "", "recur_weekday": "", "ends_at": "",
            "holdout_percent": "0", "attribution_days": "7", "a_weight": "50"}
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def errors(response) -> dict[str, list[str]]:
    return {field: list(messages) for field, messages in response.context["form"].errors.items()}


def test_review_checks_and_shows_the_campaign_without_saving_it(w, zh):
    response = zh.post(NEW, wizard(w, action="review", holdout_percent="10", coupon_template=str(w.template.pk),
                                   sms_params="{name}您好，新品到店 {link}\n{coupon}"))

    assert response.status_code == 200
    review = response.context["review"]
    assert (review["size"], review["holdout"], review["channels"]) == (3, 0, ["短信"])
    assert review["variants"] == [{"name": "", "weight": 100, "messages": [
        ("短信", [("模板 ID", "1110"), ("模板字段（每行一个）", "{name}您好，新品到店 {link} / {coupon}")])]}]
    assert review["coupon"] == w.template
    html = response.content.decode()
    assert "核对" in html and "启动活动" in html and 'id="review-size">3<' in html
    assert not Campaign.objects.exists()


def test_launch_from_the_wizard_then_dispatch_and_read_the_results(w, zh, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = zh.post(NEW, wizard(w, action="launch"))

    campaign = Campaign.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/hq/marketing/campaigns/{campaign.pk}/"
    # Resolved on commit: a campaign sent "now" has done its one run once its messages are queued.
    assert (campaign.brand, campaign.audience, campaign.status, campaign.channels, campaign.created_by) == (
        w.wa, w.audience, "done", ["sms"], w.operator)
    assert campaign.content == {"sms": {"template": "1110", "params": ["{name}", "{link}"]}}
    assert deliveries_dispatch().sent == 2
    sent = {m.address: m for m in fake.sent_messages()}
    assert set(sent) == {w.m1.phone, w.m2.phone}
    assert sent[w.m1.phone].template == "1110" and list(sent[w.m1.phone].params)[0] == "王一"

    page = zh.get(response["Location"])
    assert page.status_code == 200
    figures = page.context["figures"]
    assert (figures.audience, figures.holdout, figures.sent, figures.failed, figures.clicked, figures.converted) == (
        3, 0, 2, 0, 0, 0)
    assert page.context["held"] == [("opted_out", "已退订所有可用渠道", 1)]
    html = page.content.decode()
    assert "已启动活动“春季上新”。" in html
    assert "js/dashboard.js" in html and 'data-chart="campaign-funnel-data"' in html

    listing = zh.get(LIST)
    row = listing.context["rows"][0]
    assert (row["campaign"], row["figures"].sent, row["figures"].held, row["channels"], row["schedule"]) == (
        campaign, 2, 1, ["短信"], "立即发送")


def test_the_services_refusals_show_on_their_fields_in_chinese(w, zh):
    response = zh.post(NEW, wizard(w, action="review", sms_template="", link="http://evil.example.com/x",
                                   holdout_percent="60", schedule="at"))

    assert response.status_code == 400
    assert errors(response) == {
        "sms_template": ["请填写模板 ID（1–64 个字符）。"],
        "link": ["请填写 https 链接，域名须为：mall.example.com。"],
        "holdout_percent": ["请填写 0 到 50。"],
        "send_at": ["定时发送须填写时间。"],
    }
    response = zh.post(NEW, wizard(w, action="review", sms_params="{name} {foo}\n{coupon}", channel_2="sms"))
    assert errors(response) == {"channel_1": ["请选择互不相同的渠道。"]}
    response = zh.post(NEW, wizard(w, action="review", sms_params="{name} {foo}\n{coupon}"))
    assert errors(response) == {"sms_params": ["未知变量 {foo}；可用 {name}、{guide}、{link}、{coupon}。",
                                               "使用 {coupon} 须选择优惠券。"]}
    response = zh.post(NEW, wizard(w, action="review", name="", channel_1=""))
    assert errors(response) == {"name": ["该字段是必填项。"], "channel_1": ["该字段是必填项。"]}
    assert not Campaign.objects.exists()


def test_a_b_variants_and_a_weekly_schedule_saved_as_a_draft(w, zh):
    response = zh.post(NEW, wizard(w, action="draft", ab_test="on", a_weight="30",
                                   b_sms_params="{name}，专属折扣 {link}", schedule="weekly", recur_time="10:00",
                                   recur_weekday="0", holdout_percent="10"))

    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert (campaign.status, campaign.schedule, campaign.recur_weekday, campaign.holdout_percent) == (
        "draft", "weekly", 0, Decimal("10.00"))
    assert campaign.content == {}
    assert [(v.name, v.weight, v.content) for v in CampaignVariant.objects.filter(campaign=campaign)] == [
        ("A", 30, {"sms": {"template": "1110", "params": ["{name}", "{link}"]}}),
        ("B", 70, {"sms": {"template": "1110", "params": ["{name}，专属折扣 {link}"]}})]
    page = zh.get(f"/hq/marketing/campaigns/{campaign.pk}/")
    assert page.context["can_launch"] is True and page.context["schedule"] == "每周一 10:00"
    assert [v["name"] for v in page.context["variants"]] == ["A", "B"]


def test_launch_and_cancel_a_draft_from_its_page(w, zh, django_capture_on_commit_callbacks):
    campaign = campaign_create(brand=w.wa, audience=w.audience, name="草稿", channels=["sms"],
                               content={"sms": {"template": "1", "params": ["{name}"]}})
    url = f"/hq/marketing/campaigns/{campaign.pk}/"

    with django_capture_on_commit_callbacks(execute=True):
        assert zh.post(url, {"action": "launch"}).status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "done"
    again = zh.post(url, {"action": "launch"})
    assert again.status_code == 409
    assert again.context["error"] == "只有草稿可以启动；该活动当前为“已完成”。"

    assert zh.post(url, {"action": "cancel"}).status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "cancelled"
    assert set(Delivery.objects.values_list("status", "hold_reason")) == {("held", "cancelled"), ("held", "opted_out")}
    assert "已取消活动“草稿”；2 条尚未发出的消息已拦截。" in zh.get(url).content.decode()


def test_a_brand_operator_cannot_open_another_brands_campaign(w, zh):
    other_audience = Audience.objects.create(group=w.group, brand=w.wb, name="型男全部", definition={})
    other = campaign_create(brand=w.wb, audience=other_audience, name="型男活动", channels=["sms"],
                            content={"sms": {"template": "1", "params": ["{name}"]}})
    url = f"/hq/marketing/campaigns/{other.pk}/"
    assert zh.get(url).status_code == 404
    assert zh.post(url, {"action": "launch"}).status_code == 404
    assert zh.post(url, {"action": "cancel"}).status_code == 404
    assert zh.get(LIST).context["rows"] == []
    # Another brand's audience is not offered, and one posted anyway is refused.
    assert [a.name for a in zh.get(NEW).context["form"].audiences.values()] == ["M 或 vip"]
    response = zh.post(NEW, wizard(w, action="launch", audience=str(other_audience.pk)))
    assert response.status_code == 400 and "audience" in errors(response)
    other.refresh_from_db()
    assert other.status == "draft" and Campaign.objects.count() == 1


def test_a_guide_is_sent_to_the_workbench_and_a_regional_manager_refused(w):
    guide = Client()
    guide.force_login(staff_user("guide", guide=w.ga1))
    for url in (LIST, NEW):
        response = guide.get(url)
        assert (response.status_code, response["Location"]) == (302, "/workbench/")
    manager = Client()
    manager.force_login(staff_user("region_manager", region=w.sa1.region))
    assert manager.get(LIST).status_code == 403
    assert manager.post(NEW, {}).status_code == 403


def test_the_results_show_the_lift_against_the_holdout_with_its_interval(w, zh, django_capture_on_commit_callbacks):
    """24 members (the world's 4 and 20 more), half held out by the campaign's hash; every third member pays an
    order of the brand an hour after the launch. The page shows the rates and Newcombe's interval of them."""
    ChannelOptOut.objects.all().delete()
    extra = [MemberFactory(group=w.group, code=f"x{i:02d}") for i in range(20)]
    for member in extra:
        BrandMembershipFactory(member=member, brand=w.wa, store=w.sa1)
    everyone = Audience.objects.create(group=w.group, brand=w.wa, name="全部", definition={})
    with django_capture_on_commit_callbacks(execute=True):
        zh.post(NEW, wizard(w, action="launch", audience=str(everyone.pk), holdout_percent="50"))
    campaign = Campaign.objects.get()
    members = [w.m1, w.m2, w.m3, w.m4, *extra]
    buyers = members[::3]
    for member in buyers:
        OrderFactory(brand=w.wa, member=member, ordered_at=timezone.now() + dt.timedelta(hours=1))
    held_out = {m.pk for m in members if is_held_out(m.pk, campaign)}
    treated = [m for m in members if m.pk not in held_out]
    control = [m for m in members if m.pk in held_out]
    assert treated and control  # 2^-23 odds otherwise
    k1, k2 = sum(m in buyers for m in treated), sum(m in buyers for m in control)
    difference, low, high = newcombe_interval(k1, len(treated), k2, len(control))

    page = zh.get(f"/hq/marketing/campaigns/{campaign.pk}/")

    lift = page.context["total"]["lift"]
    assert (lift["treated"], lift["treated_converted"], lift["holdout"], lift["holdout_converted"]) == (
        len(treated), k1, len(control), k2)
    html = page.content.decode()
    assert f"{difference * 100:+.1f} 个百分点" in html
    assert f"95% 置信区间 {low * 100:+.1f} 至 {high * 100:+.1f}" in html
    assert f"发送组：{len(treated)} 人中 {k1} 人购买（{k1 / len(treated) * 100:.1f}%）" in html
    assert f"对照组：{len(control)} 人中 {k2} 人购买（{k2 / len(control) * 100:.1f}%）" in html
    assert 'data-chart="campaign-conversion-data"' in html


def test_the_wizard_in_english(w):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(w.operator)
    html = client.get(NEW).content.decode()
    assert "Channels, in fallback order" in html and "Check and review" in html and "渠道" not in html


def test_an_audience_that_no_longer_fits_is_named_in_the_review_and_refused_at_launch(w, zh):
    w.audience.definition = {"tags": {"any": [999_999]}}  # a tag value deleted since
    w.audience.save()

    review = zh.post(NEW, wizard(w, action="review"))
    assert review.status_code == 200 and review.context["review"]["size"] is None
    assert "条件已失效" in review.content.decode()

    launch = zh.post(NEW, wizard(w, action="launch"))
    assert launch.status_code == 400
    assert errors(launch) == {"audience": ["该人群的条件已不适用于其品牌，请先编辑人群。"]}
    assert not Campaign.objects.exists()
