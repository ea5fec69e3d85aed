"""HQ journey pages at /hq/marketing/journeys/ through the Django test client: the list, the editor, status
changes, the preview and the results.

The members are tests/marketing/pages_world.py's (m1–m4 in brand WA, m5 in WB); the operator is WA's. m3 opted
out of SMS, so a journey's SMS step sends to the others and holds m3 back ("opted out"). The group's reach
rules here have no quiet hours (start = end), so sends go at once whatever the hour the test runs.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from marketing.channels import fake
from marketing.journeys import (
    JourneyPreview,
    is_held_out,
    journey_enrol,
    journey_preview,
    journeys_advance,
    journeys_order_paid,
)
from marketing.models import ChannelOptOut, Journey, JourneyStep, ReachRules
from members.models import BehaviourEvent, EventKind
from tests.factories import OrderFactory, staff_user
from tests.factories_payments import ProductFactory
from tests.marketing.pages_world import build_world

pytestmark = pytest.mark.django_db
NEW = "/hq/marketing/journeys/new/"
LIST = "/hq/marketing/journeys/"


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
    world.operator = staff_user("brand_operator", brand=world.wa, username="op-wa")
    return world


@pytest.fixture
def zh(w) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(w.operator)
    return client


def editor(w, steps=(), **changes) -> dict:
    """The editor's POST: the settings, then ``steps`` as {input: value} rows."""
    data = {"name": "未付款提醒", "brand": str(w.wa.pk), "trigger": "order_unpaid", "views": "", "days": "",
            "product_codes": "", "days_before": "", "reentry": "once", "reentry_days": "",
            "holdout_percent": "10", "exit_on_conversion": "on", "conversion_days": "7", "action": "save",
            "steps": str(len(steps))}
    for index, row in enumerate(steps):
        for key, value in row.items():
            data[f"s{index}-{key}"] = value
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


WAIT_30 = {"kind": "wait", "wait_amount": "30", "wait_unit": "minutes"}
UNPAID = {"kind": "check", "condition": "paid_since_entry", "expect": "false"}
SMS = {"kind": "send", "channel_1": "sms", "sms_template": "SMS_PAY", "sms_params": "name: {name}"}


def step_errors(response, index: int) -> dict[str, list[str]]:
    return {k: list(v) for k, v in response.context["steps"][index].errors.items()}


def test_create_a_journey_with_its_steps_as_a_draft(w, zh):
    response = zh.post(NEW, editor(w, steps=[WAIT_30, UNPAID, {**SMS, "coupon_template": str(w.template.pk),
                                                                "sms_params": "name: {name}\ncoupon: {coupon}"}]))

    journey = Journey.objects.get()
    assert response.status_code == 302 and response.url == f"/hq/marketing/journeys/{journey.pk}/"
    assert (journey.name, journey.brand, journey.group, journey.status, journey.trigger, journey.trigger_params) == (
        "未付款提醒", w.wa, w.group, "draft", "order_unpaid", {})
    assert (journey.reentry, journey.holdout_percent, journey.exit_on_conversion, journey.conversion_days) == (
        "once", Decimal("10.00"), True, 7)
    assert [(s.position, s.kind, s.params) for s in journey.steps.order_by("position")] == [
        (0, "wait", {"minutes": 30}),
        (1, "check", {"condition": "paid_since_entry", "expect": False}),
        (2, "send", {"channels": ["sms"], "content": {"sms": {"template": "SMS_PAY",
                                                                "params": {"name": "{name}", "coupon": "{coupon}"}}},
                     "coupon_template": w.template.pk}),
    ]
    page = zh.get(response.url)
    html = page.content.decode()
    assert "已保存旅程“未付款提醒”。" in html
    assert [row["text"] for row in page.context["rows"]] == ["等待 30 分钟", "检查：自进入后已付款？为否时继续",
                                                             "发送消息：短信"]

    # The editor shows the saved journey back, the wait in its largest whole unit.
    edit = zh.get(f"/hq/marketing/journeys/{journey.pk}/edit/")
    assert edit.status_code == 200
    assert [s.initial for s in edit.context["steps"]][0] == {"kind": "wait", "wait_amount": 30, "wait_unit": "minutes"}
    assert edit.context["steps"][2].initial["sms_params"] == "name: {name}\ncoupon: {coupon}"


def test_product_views_trigger_reads_product_codes_and_the_list_shows_it(w, zh):
    shoe = ProductFactory(brand=w.wa, code="SHOE-1")
    response = zh.post(NEW, editor(w, name="看了三次", trigger="product_views", views="3", days="14",
                                   product_codes="SHOE-1", reentry="per_period", reentry_days="30",
                                   steps=[{"kind": "coupon", "coupon_template": str(w.template.pk)}]))
    assert response.status_code == 302
    journey = Journey.objects.get()
    assert journey.trigger_params == {"views": 3, "days": 14, "product_ids": [shoe.pk]}
    assert (journey.reentry, journey.reentry_days) == ("per_period", 30)

    rows = zh.get(LIST).context["rows"]
    assert [(r["journey"].name, r["trigger"], r["journey"].entered) for r in rows] == [
        ("看了三次", "多次浏览商品未下单：14 天内浏览 3 次以上（1 个商品）", 0)]


def test_validation_errors_are_shown_in_chinese_on_their_fields(w, zh):
    response = zh.post(NEW, editor(w, name="看了", trigger="product_views", views="0", days="", product_codes="NOPE",
                                   reentry="per_period", holdout_percent="60",
                                   steps=[{"kind": "wait", "wait_amount": "", "wait_unit": "minutes"},
                                          {"kind": "send", "channel_1": "sms", "sms_template": "",
                                           "sms_params": "{nome}"},
                                          {"kind": "guide_task", "reason": ""},
                                          {"kind": "tag_add"}]))

    assert response.status_code == 400
    assert not Journey.objects.exists()
    form = response.context["form"]
    assert form.errors["product_codes"] == ["该品牌没有这些商品：NOPE。"]
    # The form's own checks come first; the service's (views, days, re-entry) once the form reads.
    response = zh.post(NEW, editor(w, name="看了", trigger="product_views", views="0", days="",
                                   reentry="per_period", holdout_percent="60",
                                   steps=[{"kind": "wait", "wait_amount": "", "wait_unit": "minutes"},
                                          {"kind": "send", "channel_1": "sms", "sms_template": "",
                                           "sms_params": "{nome}"},
                                          {"kind": "guide_task", "reason": ""},
                                          {"kind": "tag_add"}]))
    assert response.status_code == 400
    errors = {k: list(v) for k, v in response.context["form"].errors.items()}
    assert errors == {"views": ["请填写 1 到 100 之间的整数。"], "days": ["请填写 1 到 30 之间的整数。"],
                      "reentry_days": ["请填写周期天数。"], "holdout_percent": ["请填写 0 到 50。"]}
    assert step_errors(response, 0) == {"wait_amount": ["请填写 1 到 86400 之间的整数。"]}
    assert step_errors(response, 1) == {"sms_template": ["请填写模板 ID（1–64 个字符）。"]}
    assert step_errors(response, 2) == {"reason": ["请填写原因（1 到 200 个字符）。"]}
    assert step_errors(response, 3) == {"tag_value": ["请选择该旅程品牌的标签。"]}
    assert "请填写 1 到 100 之间的整数。" in response.content.decode()
    assert not Journey.objects.exists()


def test_steps_are_added_moved_and_removed_without_saving(w, zh):
    data = editor(w, steps=[WAIT_30, UNPAID, SMS])
    moved = zh.post(NEW, {**data, "step_action": "up:2"})
    assert moved.status_code == 200
    assert [s.initial["kind"] for s in moved.context["steps"]] == ["wait", "send", "check"]
    removed = zh.post(NEW, {**data, "step_action": "remove:0"})
    assert [s.initial["kind"] for s in removed.context["steps"]] == ["check", "send"]
    added = zh.post(NEW, {**data, "step_action": "add"})
    assert [s.initial["kind"] for s in added.context["steps"]] == ["wait", "check", "send", "wait"]
    assert added.context["form"].initial["name"] == "未付款提醒"
    assert not Journey.objects.exists()


def test_activate_pause_end_with_refusals(w, zh):
    assert zh.post(NEW, editor(w, steps=[])).status_code == 302  # a draft may have no step yet
    journey = Journey.objects.get()
    url = f"/hq/marketing/journeys/{journey.pk}/"

    refused = zh.post(url, {"action": "activate"})
    assert refused.status_code == 400
    assert refused.context["error"] == "请至少添加一个步骤。"
    assert zh.post(url, {"action": "pause"}).context["error"] == "状态为“草稿”的旅程不能暂停。"
    assert zh.post(url, {"action": "pause"}).status_code == 409

    zh.post(f"{url}edit/", editor(w, steps=[WAIT_30, UNPAID, SMS]))
    assert zh.post(url, {"action": "activate"}).status_code == 302
    journey.refresh_from_db()
    assert journey.status == "active"
    assert "已启用旅程“未付款提醒”。" in zh.get(url).content.decode()
    # An active journey is no longer edited: its members follow the steps they entered with.
    assert zh.get(f"{url}edit/").status_code == 302
    assert zh.post(f"{url}edit/", editor(w, steps=[WAIT_30])).status_code == 409
    assert journey.steps.count() == 3

    assert zh.post(url, {"action": "pause"}).status_code == 302
    journey.refresh_from_db()
    assert journey.status == "paused"
    assert zh.post(url, {"action": "activate"}).status_code == 302
    assert zh.post(url, {"action": "end"}).status_code == 302
    journey.refresh_from_db()
    assert journey.status == "ended"
    again = zh.post(url, {"action": "end"})
    assert (again.status_code, again.context["error"]) == (409, "状态为“已结束”的旅程不能结束。")


def test_preview_counts_todays_entrants_or_last_weeks_events(w, zh):
    now = timezone.now()
    shoe = ProductFactory(brand=w.wa, code="SHOE-1")
    # m1 viewed the shoe 3 times in the last 2 days, m2 twice, m5 (WB) 3 times: only m1 meets "3 in 7 days".
    for member, times in ((w.m1, 3), (w.m2, 2)):
        for n in range(times):
            BehaviourEvent.objects.create(member=member, brand=w.wa, kind=EventKind.PRODUCT_VIEW,
                                          object_id=str(shoe.pk), occurred_at=now - dt.timedelta(hours=n + 1))
    views = Journey.objects.create(group=w.group, brand=w.wa, name="浏览", trigger="product_views",
                                   trigger_params={"views": 3, "days": 7})
    page = zh.get(f"/hq/marketing/journeys/{views.pk}/")
    assert (page.context["preview"].basis, page.context["preview"].count) == ("today", 1)
    assert "今天约有" in page.content.decode()

    # Birthdays on 10 March: m2 and m4 (m1's is the day after); the preview of a day fixed by the test, then
    # the page (today: whoever has a birthday today, none of these unless today is 10 March).
    for member, day in ((w.m2, 10), (w.m4, 10), (w.m1, 11)):
        member.birthday = dt.date(1990, 3, day)
        member.save(update_fields=["birthday"])
    birthday = Journey.objects.create(group=w.group, brand=w.wa, name="生日", trigger="birthday")
    march_10 = dt.datetime(2026, 3, 10, 9, 0, tzinfo=timezone.get_default_timezone())
    assert journey_preview(journey=birthday, now=march_10) == JourneyPreview(basis="today", count=2)
    today = timezone.localdate()
    on_page = zh.get(f"/hq/marketing/journeys/{birthday.pk}/").context["preview"]
    assert on_page == JourneyPreview(basis="today", count=sum(
        (3, d) == (today.month, today.day) for d in (10, 10, 11)))

    # An event trigger: WA orders of members in the last 7 days (2; the one 8 days ago and WB's do not count).
    OrderFactory(brand=w.wa, member=w.m1, ordered_at=now - dt.timedelta(days=1))
    OrderFactory(brand=w.wa, member=w.m2, ordered_at=now - dt.timedelta(days=6))
    OrderFactory(brand=w.wa, member=w.m3, ordered_at=now - dt.timedelta(days=8))
    OrderFactory(brand=w.wb, member=w.m5, ordered_at=now - dt.timedelta(days=1))
    unpaid = Journey.objects.create(group=w.group, brand=w.wa, name="未付款", trigger="order_unpaid")
    page = zh.get(f"/hq/marketing/journeys/{unpaid.pk}/")
    assert (page.context["preview"].basis, page.context["preview"].count) == ("events", 2)
    assert "过去 7 天有" in page.content.decode()


def test_results_per_step_and_lift(w, zh):
    journey = Journey.objects.create(group=w.group, brand=w.wa, name="召回", trigger="lapse_point",
                                     status="active", holdout_percent=Decimal("50"))
    JourneyStep.objects.create(journey=journey, position=0, kind="send",
                               params={"channels": ["sms"],
                                       "content": {"sms": {"template": "T", "params": ["{name}"]}}})
    JourneyStep.objects.create(journey=journey, position=1, kind="wait", params={"minutes": 60})
    members = [w.m1, w.m2, w.m3, w.m4]
    now = timezone.now() - dt.timedelta(minutes=10)
    journey_enrol(journey=journey, candidates=[(m.pk, "lapse") for m in members], at=now)
    journeys_advance(now=now)
    held = [m for m in members if is_held_out(m.pk, journey)]
    treated = [m for m in members if m not in held]
    # Which members are held out follows a hash of member and journey ids (so the sets are derived here, not
    # written down); m1 (when treated) and every held-out member pay an order of WA after entering.
    converting = [m for m in members if m in held or m is w.m1]
    for member in converting:
        order = OrderFactory(brand=w.wa, member=member, ordered_at=now + dt.timedelta(minutes=5))
        journeys_order_paid(order_id=order.pk)

    page = zh.get(f"/hq/marketing/journeys/{journey.pk}/")
    figures = page.context["figures"]
    treated_converted = int(w.m1 in treated)
    assert (figures.entered, figures.held_out, figures.converted) == (4, len(held), len(converting))
    # Treated members who did not convert wait at step 2; m1 (if treated) exited on conversion.
    assert figures.on_the_way == len(treated) - treated_converted
    send, wait = page.context["rows"]
    sent_to = [m for m in treated if m is not w.m3]  # m3 opted out of SMS
    assert (send["figures"].entered, send["figures"].acted) == (len(treated), len(sent_to))
    assert send["held"] == ([("opted_out", "已退订所有可用渠道", 1)] if w.m3 in treated else [])
    assert (wait["figures"].entered, wait["figures"].waiting) == (len(treated), len(treated) - treated_converted)
    assert send["figures"].converted == treated_converted
    lift = page.context["lift"]
    if held and treated:
        assert (lift["treated"], lift["treated_converted"], lift["holdout"], lift["holdout_converted"]) == (
            len(treated), treated_converted, len(held), len(held))
    html = page.content.decode()
    assert "按步骤" in html and 'id="journey-step-chart"' in html


def test_a_brand_operator_cannot_open_another_brands_journey(w, zh):
    other = Journey.objects.create(group=w.group, brand=w.wb, name="型男旅程", trigger="member_joined")
    url = f"/hq/marketing/journeys/{other.pk}/"
    assert zh.get(url).status_code == 404
    assert zh.post(url, {"action": "activate"}).status_code == 404
    assert zh.get(f"{url}edit/").status_code == 404
    assert zh.get(LIST).context["rows"] == []
    # Another brand cannot be chosen for a new journey.
    response = zh.post(NEW, editor(w, brand=str(w.wb.pk), steps=[WAIT_30]))
    assert response.status_code == 400 and "brand" in response.context["form"].errors
    other.refresh_from_db()
    assert other.status == "draft" and Journey.objects.count() == 1


def test_hq_sees_every_brands_journeys(w):
    Journey.objects.create(group=w.group, brand=w.wb, name="型男旅程", trigger="member_joined")
    Journey.objects.create(group=w.group, brand=w.wa, name="雅致旅程", trigger="birthday")
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(staff_user("hq", group=w.group))
    assert sorted(r["journey"].name for r in client.get(LIST).context["rows"]) == ["型男旅程", "雅致旅程"]
