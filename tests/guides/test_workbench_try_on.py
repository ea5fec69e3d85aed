"""The workbench's in-store try-on (two taps: the product list, then a product) and the member's journeys on the
member pages (workbench and admin), through the Django test client.

The dataset is tests.guides.test_workbench_selectors.build_workbench_world: guide g1 of store s1 (brand wa) has
members m1, m2, m3, m6; g2 has m4; m5 is a member of store s2; brand wb is the group's other brand.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from marketing.models import Journey, JourneyEnrolment, JourneyStep
from members.models import BehaviourEvent
from retail_crm.models import OutboxEvent
from tests.factories_payments import ProductFactory
from tests.guides.test_workbench_selectors import build_workbench_world

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def w():
    w = build_workbench_world()
    w.shoe = ProductFactory(brand=w.wa, code="SH-01", name="小白鞋", category="鞋")
    w.boot = ProductFactory(brand=w.wa, code="BT-02", name="切尔西靴", category="鞋")
    w.old = ProductFactory(brand=w.wa, code="OLD-9", name="下架款", is_active=False)
    w.other = ProductFactory(brand=w.wb, code="WB-01", name="跑鞋")
    return w


def browser(user, lang: str = "zh-hans", **kwargs) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=lang, **kwargs)
    client.force_login(user)
    return client


def url(w, member: str) -> str:
    return f"/workbench/members/{w.m[member].pk}/try-on/"


# ---------------------------------------------------------------------------- try-on

def test_a_guide_records_a_try_on_in_two_requests(w):
    client = browser(w.users.g1, enforce_csrf_checks=True)
    member_page = client.get(f"/workbench/members/{w.m['m1'].pk}/").content.decode()
    assert f'href="{url(w, "m1")}" data-testid="try-on">试穿</a>' in member_page

    picker = client.get(url(w, "m1"))  # first tap: the store brand's active products
    html = picker.content.decode()
    assert picker.status_code == 200
    assert html.count('data-testid="try-on-product"') == 2  # 小白鞋 and 切尔西靴; not the inactive one, not wb's
    assert "小白鞋" in html and "切尔西靴" in html and "下架款" not in html and "跑鞋" not in html
    token = picker.cookies["csrftoken"].value

    response = client.post(url(w, "m1"), {"product": "SH-01", "csrfmiddlewaretoken": token})  # second tap

    assert response.status_code == 302
    assert response["Location"] == f"/workbench/members/{w.m['m1'].pk}/"
    event = BehaviourEvent.objects.get(kind="try_on")
    assert (event.member_id, event.brand_id, event.object_type, event.object_id, event.guide_id, event.store_id) == (
        w.m["m1"].pk, w.wa.pk, "product", "SH-01", w.g1.pk, w.s1.pk)
    outbox = OutboxEvent.objects.get(name="try_on_recorded")
    assert outbox.payload == {"event_id": event.pk, "member_id": w.m["m1"].pk, "brand_id": w.wa.pk,
                              "product_code": "SH-01", "at": event.occurred_at.isoformat()}
    assert OutboxEvent.objects.filter(name="behaviour_recorded").count() == 1
    assert "已记录试穿" in client.get(response["Location"]).content.decode()
    # The product tried on in the store lately comes first next time.
    again = client.get(url(w, "m2")).content.decode()
    assert again.index("小白鞋") < again.index("切尔西靴")


def test_the_product_list_is_searchable_by_code_or_name(w):
    client = browser(w.users.g1)

    by_name = client.get(url(w, "m1"), {"q": "靴"}).content.decode()
    by_code = client.get(url(w, "m1"), {"q": "sh-"}).content.decode()
    nothing = client.get(url(w, "m1"), {"q": "跑鞋"}).content.decode()

    assert by_name.count('data-testid="try-on-product"') == 1 and "切尔西靴" in by_name
    assert by_code.count('data-testid="try-on-product"') == 1 and "小白鞋" in by_code
    assert 'data-testid="try-on-product"' not in nothing and "没有匹配的商品" in nothing


@pytest.mark.parametrize(("user", "member"), [("g1", "m4"), ("g2", "m1"), ("store", "m5")])
def test_a_member_outside_scope_is_a_404_and_nothing_is_recorded(w, user, member):
    client = browser(getattr(w.users, user))

    assert client.get(url(w, member)).status_code == 404
    assert client.post(url(w, member), {"product": "SH-01"}).status_code == 404
    assert not BehaviourEvent.objects.filter(kind="try_on").exists()


@pytest.mark.parametrize("code", ["NOPE", "WB-01", "OLD-9", ""])
def test_a_product_not_of_the_store_brand_is_refused_with_a_message(w, code):
    response = browser(w.users.g1).post(url(w, "m1"), {"product": code})

    assert response.status_code == 400
    assert "不是本店品牌的商品" in response.content.decode()
    assert not BehaviourEvent.objects.filter(kind="try_on").exists()
    assert not OutboxEvent.objects.filter(name="try_on_recorded").exists()


def test_a_post_without_the_csrf_token_is_refused(w):
    response = browser(w.users.g1, enforce_csrf_checks=True).post(url(w, "m1"), {"product": "SH-01"})

    assert response.status_code == 403
    assert not BehaviourEvent.objects.filter(kind="try_on").exists()


def test_a_store_manager_records_for_the_store_without_a_guide(w):
    response = browser(w.users.store).post(url(w, "m4"), {"product": "BT-02"})

    assert response.status_code == 302
    event = BehaviourEvent.objects.get(kind="try_on")
    assert (event.member_id, event.store_id, event.guide_id, event.object_id) == (w.m["m4"].pk, w.s1.pk, None,
                                                                                  "BT-02")


def test_hq_without_a_store_is_asked_to_pick_a_guide(w):
    response = browser(w.users.hq).post(url(w, "m1"), {"product": "SH-01"})

    assert response.status_code == 400
    assert not BehaviourEvent.objects.filter(kind="try_on").exists()


# ---------------------------------------------------------------------------- journeys on the member pages

def enrol(w, brand, name, **fields) -> JourneyEnrolment:
    journey = Journey.objects.create(group=w.wa.group, brand=brand, name=name, trigger="try_on", status="active")
    for position, kind in enumerate(("wait", "check", "send")):
        JourneyStep.objects.create(journey=journey, position=position, kind=kind, params={})
    return JourneyEnrolment.objects.create(journey=journey, member=w.m["m1"], trigger_key=f"k:{name}", **fields)


@pytest.fixture
def enrolments(w):
    entered = dt.datetime(2030, 3, 4, 14, 0, tzinfo=SH)
    waiting = enrol(w, w.wa, "试穿未购 30 分钟", entered_at=entered, status="waiting", position=0,
                    next_run_at=entered + dt.timedelta(minutes=30))
    exited = enrol(w, w.wa, "未支付提醒", entered_at=entered - dt.timedelta(days=1), status="converted", position=1,
                   exit_reason="converted", exited_at=entered - dt.timedelta(days=1) + dt.timedelta(minutes=12))
    other = enrol(w, w.wb, "WB 欢迎", entered_at=entered, status="active", position=0, next_run_at=entered)
    return waiting, exited, other


def test_the_workbench_member_page_shows_the_members_journeys_in_words(w, enrolments):
    html = browser(w.users.g1).get(f"/workbench/members/{w.m['m1'].pk}/").content.decode()

    assert html.count('data-testid="journey"') == 2  # the wb journey is outside the guide's scope
    assert "WB 欢迎" not in html
    assert html.index("试穿未购 30 分钟") < html.index("未支付提醒")  # latest entry first
    assert '<span class="chip market" data-testid="journey-status">等待中</span>' in html
    assert "当前步骤: 1. 等待 · 下一步时间 03-04 14:30" in html
    assert "进入时间 03-04 14:00" in html
    assert "退出原因: 已下单支付（转化） · 03-03 14:12" in html


def test_hq_sees_the_journeys_of_every_brand_with_the_brand(w, enrolments):
    html = browser(w.users.hq).get(f"/workbench/members/{w.m['m1'].pk}/").content.decode()

    assert html.count('data-testid="journey"') == 3
    assert "WB 欢迎" in html


def test_a_member_on_no_journey(w):
    html = browser(w.users.g1).get(f"/workbench/members/{w.m['m2'].pk}/").content.decode()

    assert "未参加任何旅程。" in html


def test_the_admin_member_page_shows_the_journeys_in_scope(w, enrolments):
    waiting, exited, other = enrolments
    guide = browser(w.users.g1).get(f"/admin/members/member/{w.m['m1'].pk}/change/")
    hq = browser(w.users.hq).get(f"/admin/members/member/{w.m['m1'].pk}/change/").content.decode()

    assert guide.status_code == 200
    html = guide.content.decode()
    assert f'data-journey="{waiting.journey_id}"' in html and f'data-journey="{exited.journey_id}"' in html
    assert f'data-journey="{other.journey_id}"' not in html
    assert ("<td>试穿未购 30 分钟 (wa)</td><td>等待中</td><td>1. 等待</td><td>2030-03-04 14:30</td>"
            "<td>2030-03-04 14:00</td><td>–</td>") in html
    assert "<td>已转化</td><td>–</td><td>–</td><td>2030-03-03 14:00</td><td>已下单支付（转化）</td>" in html
    assert f'data-journey="{other.journey_id}"' in hq
