"""HQ marketing pages at /hq/marketing/ through the Django test client: audiences, the editor, issuing a coupon.

The members are tests/marketing/pages_world.py's; the pages call marketing.audiences and
marketing.audience_coupons, so what is checked here is the pages' own part: the counts they show, the
definition a filled-in form saves, the per-field messages in Chinese, who may open what.
"""

from __future__ import annotations

import json
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from mall.models import Coupon, CouponStatus
from marketing.models import Audience
from tests.factories import staff_user
from tests.marketing.pages_world import build_world

pytestmark = pytest.mark.django_db
LIST = "/hq/marketing/"
NEW = "/hq/marketing/audiences/new/"


def edit_url(audience) -> str:
    return f"/hq/marketing/audiences/{audience.pk}/"


@pytest.fixture
def w():
    world = build_world()
    world.operator = staff_user("brand_operator", brand=world.wa, username="op-wa")
    return world


@pytest.fixture
def zh(w) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(w.operator)
    return client


def saved(w, name, definition, brand=None) -> Audience:
    brand = brand or w.wa
    return Audience.objects.create(group=w.group, brand=brand, name=name, definition=definition)


def errors(response) -> dict[str, list[str]]:
    return {field: list(messages) for field, messages in response.context["form"].errors.items()}


# ---------------------------------------------------------------------------- the list

def list_page(client: Client, **params):
    """The list page, fetched while recording its queries; it must count no audience itself."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST, params)
    assert response.status_code == 200
    assert [q["sql"] for q in queries if "members_brandmembership" in q["sql"]] == []
    return response


def sizes(client: Client, response) -> list[tuple[str, int]]:
    """Each row's audience and its size as static/js/audience_sizes.js fills it in: the row's size cell, pending,
    names the audience's size URL, asked with the page's own session (the size, or the status of a refusal)."""
    html = response.content.decode()
    shown = []
    for audience in response.context["page"]:
        url = f"/api/v1/marketing/audiences/{audience.pk}/size/"
        row = re.search(rf'<tr data-audience="{audience.pk}">((?:(?!</tr>).)*)</tr>', html, re.S).group(1)
        assert f'<td class="num audience-size" data-state="pending" data-size-url="{url}">计算中…</td>' in row
        answer = client.get(url, HTTP_ACCEPT="application/json")
        shown.append((audience.name, answer.json()["count"] if answer.status_code == 200 else answer.status_code))
    return shown


def test_the_list_shows_the_operators_brand_audiences_and_their_sizes_are_counted_after(w, zh):
    saved(w, "M 码", {"tags": {"any": [w.tag_m.pk]}})
    saved(w, "全部会员", {})
    saved(w, "型男 M 码", {"tags": {"any": [w.tag_m.pk]}}, brand=w.wb)

    response = list_page(zh)

    assert sizes(zh, response) == [("M 码", 2), ("全部会员", 4)]
    html = response.content.decode()
    assert "型男 M 码" not in html
    assert "当前会员数" in html and "导出 CSV" in html and "新建人群" in html
    assert html.count('data-state="pending"') == 2 and "js/audience_sizes.js" in html
    assert 'data-label-invalid="条件已失效"' in html and 'data-label-failed="暂时无法计算"' in html


def test_hq_sees_every_brand_and_a_definition_that_no_longer_fits_says_so(w):
    saved(w, "VIP", {"tags": {"any": [w.tag_vip.pk]}})
    saved(w, "型男 M 码", {"tags": {"any": [w.tag_m.pk]}}, brand=w.wb)
    broken = saved(w, "旧标签", {"tags": {"any": [w.tag_vip.pk]}})
    broken.definition = {"tags": {"any": [999_999]}}
    broken.save()
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(staff_user("hq", group=w.group))

    response = list_page(client)

    assert sizes(client, response) == [("VIP", 2), ("旧标签", 400), ("型男 M 码", 1)]
    refused = client.get(f"/api/v1/marketing/audiences/{broken.pk}/size/").json()["error"]
    assert refused["fields"] == {"definition.tags.any": ["No such tag value in the audience's brand: 999999."]}


def test_a_full_page_of_audiences_renders_with_as_many_queries_as_an_empty_one(w, zh):
    with CaptureQueriesContext(connection) as empty:
        list_page(zh)
    for n in range(25):
        saved(w, f"人群 {n:02}", {"points": {"min": n * 25}})

    with CaptureQueriesContext(connection) as full:
        first = list_page(zh)
    second = list_page(zh, page=2)

    assert len(full) == len(empty) + 1  # the page's audiences, besides the paginator's COUNT of audiences
    assert first.content.decode().count('data-state="pending"') == 20
    assert second.content.decode().count('data-state="pending"') == 5
    # At least 500, 525, … 600 points: m1 holds 500, m3 100, m2 and m4 none.
    assert sizes(zh, second) == [("人群 20", 1), ("人群 21", 0), ("人群 22", 0), ("人群 23", 0), ("人群 24", 0)]


# ---------------------------------------------------------------------------- the editor

def test_a_new_audience_shows_the_brands_size_and_carries_the_preview_hooks(w, zh):
    response = zh.get(NEW)

    assert response.status_code == 200
    assert response.context["brand"] == w.wa and response.context["size"] == 4
    html = response.content.decode()
    assert 'data-preview-url="/api/v1/marketing/audiences/preview/"' in html and 'data-brand="WA"' in html
    assert 'data-def="tags.any" data-kind="ids"' in html
    assert 'data-def="behaviour.0.days" data-kind="int"' in html
    assert "js/audience_preview.js" in html
    # Only the brand's own and group-wide tags, stores and coupons are offered.
    assert {label for _pk, label in response.context["form"].fields["stores"].choices} == {
        "上海一店 (SA1)", "成都一店 (SA2)"}
    assert [label for _pk, label in response.context["form"].fields["coupon_templates"].choices] == ["满200减30"]


def test_saving_the_form_saves_exactly_the_definition_it_shows(w, zh):
    response = zh.post(NEW, {"name": "M 码 积分 100+", "tags_any": [str(w.tag_m.pk)], "points_min": "100",
                             "behaviour_event": "", "wecom_friend": "", "coupons_held": "", "purchase_bought": "",
                             "other_conditions": ""})

    audience = Audience.objects.get()
    assert response.status_code == 302 and response["Location"] == edit_url(audience)
    assert (audience.brand, audience.name, audience.created_by) == (w.wa, "M 码 积分 100+", w.operator)
    assert audience.definition == {"tags": {"any": [w.tag_m.pk]}, "points": {"min": 100}}
    page = zh.get(response["Location"])
    assert "已保存人群“M 码 积分 100+”：当前 1 位会员。" in page.content.decode()
    assert page.context["size"] == 1


def test_every_kind_of_field_writes_its_condition(w, zh):
    response = zh.post(NEW, {
        "name": "全都填", "tags_all": [str(w.tag_m.pk), str(w.tag_vip.pk)], "tags_none": [str(w.tag_vip.pk)],
        "rfml_classes": ["important_value", "general_value"], "lifecycle_stages": ["mature"],
        "recency_min": "10", "recency_max": "90", "behaviour_event": "favourite", "behaviour_days": "30",
        "behaviour_min": "0", "behaviour_max": "0", "purchase_bought": "false", "purchase_days": "30",
        "wecom_friend": "true", "stores": [str(w.sa1.pk)], "regions": [str(w.sa1.region_id)],
        "join_channels": ["guide_qr"], "joined_from": "2025-01-01", "joined_to": "2025-12-31", "points_max": "5000",
        "coupons_held": "false", "coupon_templates": [str(w.template.pk)], "other_conditions": ""})

    assert response.status_code == 302
    assert Audience.objects.get().definition == {
        "tags": {"all": [w.tag_m.pk, w.tag_vip.pk], "none": [w.tag_vip.pk]},
        "rfml_classes": ["important_value", "general_value"], "lifecycle_stages": ["mature"],
        "last_purchase": {"min_days": 10, "max_days": 90},
        "behaviour": [{"event": "favourite", "days": 30, "min": 0, "max": 0}],
        "purchase": [{"bought": False, "days": 30}], "wecom_friend": True, "stores": [w.sa1.pk],
        "regions": [w.sa1.region_id], "join_channels": ["guide_qr"],
        "joined": {"from": "2025-01-01", "to": "2025-12-31"}, "points": {"max": 5000},
        "coupons": {"held": False, "templates": [w.template.pk]}}


def test_the_services_refusals_are_shown_on_their_fields_in_chinese(w, zh):
    response = zh.post(NEW, {"name": "有错", "behaviour_event": "product_view", "behaviour_products": "NOPE",
                             "behaviour_days": "45", "recency_min": "90", "recency_max": "30",
                             "other_conditions": json.dumps({"guides": [999_999]})})

    assert response.status_code == 400
    assert errors(response) == {
        "behaviour_days": ["须在 1 到 30 之间。"],
        "recency_max": ["不能小于下限。"],
        "other_conditions": ["guides: 本品牌没有这些导购：999999。"],
    }
    html = response.content.decode()
    assert "须在 1 到 30 之间。" in html and 'class="field invalid' in html
    # With its days right, the behaviour's products are looked up in the brand.
    response = zh.post(NEW, {"name": "有错", "behaviour_event": "product_view", "behaviour_products": "NOPE, Q1",
                             "behaviour_days": "30"})
    assert errors(response) == {"behaviour_products": ["本品牌没有这些商品：NOPE, Q1。"]}
    assert not Audience.objects.exists()


def test_form_errors_come_first_in_chinese_and_a_name_taken_is_a_409_on_the_name(w, zh):
    response = zh.post(NEW, {"name": "", "points_min": "很多", "other_conditions": "{not json"})
    assert response.status_code == 400
    assert errors(response) == {"name": ["该字段是必填项。"], "points_min": ["输入整数。"],
                                "other_conditions": ["不是有效的 JSON。"]}

    saved(w, "M 码", {})
    taken = zh.post(NEW, {"name": "M 码", "behaviour_event": "product_view"})
    assert taken.status_code == 400  # the definition is checked before the name: a behaviour needs its days
    assert errors(taken) == {"behaviour_days": ["该字段是必填项。"]}
    taken = zh.post(NEW, {"name": "M 码"})
    assert taken.status_code == 409
    assert errors(taken) == {"name": ["该品牌已有同名人群。"]}
    assert Audience.objects.count() == 1


def test_editing_keeps_the_conditions_the_form_has_no_field_for(w, zh):
    definition = {"tags": {"any": [w.tag_m.pk]}, "guides": [w.ga1.pk],
                  "behaviour": [{"event": "favourite", "days": 7}, {"event": "share", "days": 7}]}
    audience = saved(w, "两种行为", definition)

    page = zh.get(edit_url(audience))
    form = page.context["form"]
    assert form.initial["tags_any"] == [w.tag_m.pk]
    assert json.loads(form.initial["other_conditions"]) == {"guides": [w.ga1.pk],
                                                            "behaviour": definition["behaviour"]}
    assert page.context["size"] == 0  # nobody favourited and shared

    response = zh.post(edit_url(audience), {"name": "两种行为（改名）", "tags_any": [str(w.tag_m.pk)],
                                            "other_conditions": form.initial["other_conditions"]})

    assert response.status_code == 302
    audience.refresh_from_db()
    assert (audience.name, audience.definition) == ("两种行为（改名）", definition)


def test_a_field_replaces_the_same_condition_in_the_json_box(w, zh):
    audience = saved(w, "积分", {"points": {"min": 1}})
    zh.post(edit_url(audience), {"name": "积分", "points_min": "100",
                                 "other_conditions": json.dumps({"points": {"max": 5}, "stores": [w.sa1.pk]})})
    audience.refresh_from_db()
    assert audience.definition == {"points": {"min": 100}, "stores": [w.sa1.pk]}


def test_delete_and_english(w, zh):
    audience = saved(w, "待删除", {})
    english = Client(HTTP_ACCEPT_LANGUAGE="en")
    english.force_login(w.operator)
    html = english.get(edit_url(audience)).content.decode()
    assert "Audience size" in html and "Save audience" in html and "人群规模" not in html

    response = zh.post(edit_url(audience), {"action": "delete"})
    assert response.status_code == 302 and response["Location"] == LIST
    assert not Audience.objects.exists()
    assert "已删除人群“待删除”。" in zh.get(LIST).content.decode()


# ---------------------------------------------------------------------------- issuing a coupon

def test_issuing_a_coupon_confirms_the_count_then_gives_exactly_those_members_one(w, zh):
    audience = saved(w, "M 或 vip", {"tags": {"any": [w.tag_m.pk, w.tag_vip.pk]}})  # m1, m2, m3
    Coupon.objects.create(template=w.template, member=w.m1, code="HELD1", issued_at="2030-01-01T00:00Z",
                          valid_from="2030-01-01T00:00Z", valid_to="2099-01-01T00:00Z")
    url = f"/hq/marketing/audiences/{audience.pk}/coupon/"

    page = zh.get(url, {"template": w.template.pk})
    assert page.status_code == 200
    preview = page.context["preview"]
    assert (preview.members, preview.holding, preview.new) == (3, 1, 2)
    html = page.content.decode()
    assert "将向 2 位会员各发放一张“满200减30”。" in html
    assert "该人群当前共 3 位会员，其中 1 位仍持有未使用的该券，不再重复发放。" in html
    assert Coupon.objects.count() == 1  # counting issues nothing

    issued = zh.post(url, {"template": w.template.pk, "action": "issue"})
    again = zh.post(url, {"template": w.template.pk, "action": "issue"})

    assert issued.status_code == 302 and again.status_code == 302
    assert sorted(Coupon.objects.filter(template=w.template, status=CouponStatus.AVAILABLE)
                  .values_list("member__code", flat=True)) == ["m1", "m2", "m3"]
    notes = zh.get(url).content.decode()
    assert "已向人群“M 或 vip”发放 2 张“满200减30”；1 位会员已持有，未重复发放。" in notes
    assert "已向人群“M 或 vip”发放 0 张“满200减30”；3 位会员已持有，未重复发放。" in notes


def test_another_brands_coupon_cannot_be_issued_to_an_audience(w, zh):
    audience = saved(w, "全部", {})
    url = f"/hq/marketing/audiences/{audience.pk}/coupon/"
    assert zh.get(url, {"template": w.template_b.pk}).status_code == 404
    assert zh.post(url, {"template": w.template_b.pk, "action": "issue"}).status_code == 404
    assert [t.name for t in zh.get(url).context["templates"]] == ["满200减30"]
    assert not Coupon.objects.exists()


# ---------------------------------------------------------------------------- who may open what

def test_a_brand_operator_cannot_open_another_brands_audience(w, zh):
    other = saved(w, "型男", {}, brand=w.wb)
    assert zh.get(edit_url(other)).status_code == 404
    assert zh.post(edit_url(other), {"name": "改", "other_conditions": ""}).status_code == 404
    assert zh.post(edit_url(other), {"action": "delete"}).status_code == 404
    assert zh.get(f"/hq/marketing/audiences/{other.pk}/coupon/").status_code == 404
    assert zh.get(NEW, {"brand": "WB"}).status_code == 404
    assert Audience.objects.get().name == "型男"


@pytest.mark.parametrize("role", ["guide", "store_manager"])
def test_workbench_roles_are_sent_to_their_workbench(w, role):
    user = staff_user(role, guide=w.ga1) if role == "guide" else staff_user(role, store=w.sa1)
    client = Client()
    client.force_login(user)
    audience = saved(w, "全部", {})
    for url in (LIST, NEW, edit_url(audience), f"/hq/marketing/audiences/{audience.pk}/coupon/"):
        response = client.get(url)
        assert (response.status_code, response["Location"]) == (302, "/workbench/"), url


def test_a_regional_manager_gets_the_no_access_page(w):
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(staff_user("region_manager", region=w.sa1.region))
    response = client.get(LIST)
    assert response.status_code == 403
    assert "无权访问" in response.content.decode() or "没有权限" in response.content.decode()


def test_anonymous_visitors_are_sent_to_the_login(client):
    response = client.get(LIST)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
