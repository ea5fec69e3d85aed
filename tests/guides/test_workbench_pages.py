"""The workbench pages through the Django test client: every page for every role, the numbers on the page,
scope (404 outside it), 403 without a staff role, the login redirect, marking care items done, page sizes.

The dataset is tests.guides.test_workbench_selectors.build_workbench_world (its docstring works the figures out).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from guides.models import TaskAssignment
from livestream.models import LiveSession
from members.models import GuideBinding, MemberTag, TagSource, WeComFriendship
from segments.models import CareItem, MemberRfm
from tests.factories import BrandMembershipFactory, GuideBindingFactory, MemberFactory
from tests.guides.test_workbench_selectors import add_live_sessions, build_workbench_world

pytestmark = pytest.mark.django_db

PAGES = ["/workbench/", "/workbench/members/", "/workbench/care/", "/workbench/performance/", "/workbench/live/"]
ROLES = ["g1", "store", "region", "hq"]


@pytest.fixture
def w():
    return build_workbench_world()


def browser(user, lang: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=lang)
    client.force_login(user)
    return client


def kpi(html: str, name: str) -> str:
    """The text of the element carrying data-kpi=name (tags inside stripped)."""
    match = re.search(rf'data-kpi="{name}"[^>]*>(.*?)</(strong|span|small)>', html, re.S)
    assert match, f"no data-kpi={name}"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


# ---------------------------------------------------------------------------- access

@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", PAGES)
def test_every_page_opens_for_every_role(w, role, url):
    response = browser(getattr(w.users, role)).get(url)

    assert response.status_code == 200
    assert b'data-testid="tabbar"' in response.content


@pytest.mark.parametrize("url", PAGES)
def test_a_login_without_a_staff_role_is_refused(w, url):
    assert browser(w.users.nobody).get(url).status_code == 403


@pytest.mark.parametrize("url", PAGES + ["/workbench/members/1/"])
def test_anonymous_visitors_are_sent_to_the_login_page(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


def test_the_staff_login_leads_a_guide_to_the_workbench(w):
    w.users.g1.set_password("pw-123456")
    w.users.g1.save()
    client = Client()

    response = client.post("/accounts/login/", {"username": "u-g1", "password": "pw-123456",
                                                "next": "/workbench/care/"}, follow=True)

    assert response.redirect_chain == [("/workbench/care/", 302)]
    assert response.status_code == 200


def test_the_tab_of_the_page_is_marked_active(w):
    html = browser(w.users.g1).get("/workbench/care/").content.decode()

    assert re.findall(r'data-tab="(\w+)" class="active"', html) == ["care"]
    assert 'href="/workbench/tasks/" data-tab="tasks"' in html


def test_pages_are_chinese_by_default_with_english_available(w):
    zh = browser(w.users.g1, lang="zh-hans").get("/workbench/").content.decode()
    en = browser(w.users.g1).get("/workbench/").content.decode()

    assert '<html lang="zh-hans">' in zh and '<html lang="en">' in en
    assert 'name="language"' in zh  # the switch in the header
    assert "Log out" in en


# ---------------------------------------------------------------------------- home

def test_home_shows_a_guides_numbers_for_today(w):
    html = browser(w.users.g1).get("/workbench/").content.decode()

    assert kpi(html, "sales_online") == "¥800.00"
    assert kpi(html, "sales_offline") == "¥200.00"
    assert kpi(html, "new_members") == "1"
    assert kpi(html, "shares") == "2"
    assert (kpi(html, "tasks_executed"), kpi(html, "tasks_assigned")) == ("1", "2")
    assert kpi(html, "commission_pending") == "¥20.00"
    assert kpi(html, "commission_available") == "¥15.00"
    assert (kpi(html, "care_open"), kpi(html, "care_total")) == ("2", "3")
    assert '<strong data-kpi="members">4</strong>' in html
    assert re.findall(r'data-testid="open-task" data-task-id="(\d+)"', html) == [str(w.tasks.t2.pk)]
    mine = TaskAssignment.objects.get(task=w.tasks.t2, guide__code="g1")  # task pages are per assignment
    assert f'href="/workbench/tasks/{mine.pk}/"' in html
    assert 'data-testid="guide-filter"' not in html  # a guide has no guide picker


def test_home_of_a_store_manager_and_their_guide_filter(w):
    client = browser(w.users.store)
    html = client.get("/workbench/").content.decode()
    assert (kpi(html, "sales_online"), kpi(html, "sales_offline")) == ("¥300.00", "¥350.00")
    assert (kpi(html, "new_members"), kpi(html, "shares"), kpi(html, "members")) == ("2", "3", "5")
    picker = re.search(r'<select id="wb-guide".*?</select>', html, re.S).group(0)
    assert re.findall(r'<option value="(\w*)"', picker) == ["", "g1", "g2", "mgr"]

    html = client.get("/workbench/?guide=g2").content.decode()
    assert (kpi(html, "sales_online"), kpi(html, "sales_offline")) == ("¥0.00", "¥350.00")
    assert kpi(html, "commission_available") == "¥99.00"
    assert '<option value="g2" selected>' in html

    assert client.get("/workbench/?guide=g3").status_code == 404  # another store's guide
    assert client.get("/workbench/?guide=nope").status_code == 404


def test_a_guide_cannot_switch_to_a_colleague(w):
    html = browser(w.users.g1).get("/workbench/?guide=g2").content.decode()

    assert kpi(html, "sales_online") == "¥800.00"  # still their own numbers


# ---------------------------------------------------------------------------- members

def member_codes(html: str) -> list[str]:
    return re.findall(r'data-testid="member-row" data-member-id="\d+">\s*<a[^>]*>\s*<div class="row-head">'
                      r'<strong>[^<]*</strong><span class="row-meta">[^<]*</span></div>.*?<div class="row-meta">'
                      r'(wbm\d)', html, re.S)


def test_my_members_search_and_filters(w):
    client = browser(w.users.g1)

    html = client.get("/workbench/members/").content.decode()
    assert sorted(member_codes(html)) == ["wbm1", "wbm2", "wbm3", "wbm6"]
    assert kpi(html, "member_results") == "4"
    assert "138****0001" in html and "13800000001" not in html  # lists are masked, even for the bound guide
    assert f'href="/workbench/members/{w.m["m1"].pk}/"' in html

    assert member_codes(client.get("/workbench/members/", {"q": "王"}).content.decode()) == ["wbm1"]
    assert member_codes(client.get("/workbench/members/", {"tag": w.shoe_38.pk}).content.decode()) == ["wbm1"]
    assert sorted(member_codes(client.get("/workbench/members/", {"wecom": "no"}).content.decode())) == [
        "wbm3", "wbm6"]
    assert member_codes(client.get("/workbench/members/", {"segment": "important_value", "wecom": "yes"})
                        .content.decode()) == ["wbm1"]
    yesterday = (w.today - dt.timedelta(days=1)).isoformat()
    assert member_codes(client.get("/workbench/members/", {"purchased_until": yesterday}).content.decode()) == [
        "wbm3"]


def test_member_filter_errors_are_shown_per_field_in_chinese_and_english(w):
    bad = {"bound_since": "31/02/2025", "purchased_from": "2025-03-01", "purchased_until": "2025-02-01",
           "tag": "999999"}

    en = browser(w.users.g1).get("/workbench/members/", bad)
    zh = browser(w.users.g1, lang="zh-hans").get("/workbench/members/", bad)

    assert en.status_code == zh.status_code == 400
    assert "Enter a valid date." in en.content.decode()
    assert "Select a valid choice." in en.content.decode()
    assert "Must not be before" in en.content.decode()
    assert "输入一个有效的日期。" in zh.content.decode()
    assert "选择一个有效的选项" in zh.content.decode()
    # The valid fields still filter: a brand wa purchase since 2025-03-01 (m6 bought only brand wb).
    assert sorted(member_codes(en.content.decode())) == ["wbm1", "wbm2", "wbm3"]


def test_member_list_is_paginated_small_and_costs_a_bounded_number_of_queries(w, django_assert_max_num_queries):
    for n in range(45):
        member = MemberFactory(group=w.grp, name=f"会员{n:02d}", phone=f"+8613900000{n:03d}")
        BrandMembershipFactory(member=member, brand=w.wa, store=w.s1)
        GuideBindingFactory(member=member, guide=w.g1, reason=GuideBinding.Reason.QR_SCAN)
        MemberTag.objects.create(member=member, tag_value=w.shoe_38, source=TagSource.RULE,
                                 assigned_at=timezone.now(), reason="rule")
    client = browser(w.users.g1)
    client.get("/workbench/members/")  # warm the session and the actor

    with django_assert_max_num_queries(14):
        response = client.get("/workbench/members/", {"tag": w.shoe_38.pk, "page": 2})

    html = response.content.decode()
    assert response.status_code == 200
    assert len(response.content) < 100_000
    assert kpi(html, "member_results") == "46"
    assert html.count('data-testid="member-row"') == 20
    assert "2 / 3" in html


def test_member_page_for_the_bound_guide(w):
    html = browser(w.users.g1).get(f"/workbench/members/{w.m['m1'].pk}/").content.decode()

    assert '<span data-testid="member-phone" data-whole="1">13800000001</span>' in html
    assert (kpi(html, "purchase_count"), kpi(html, "purchase_total")) == ("1", "300.00")
    assert "3 of 4 pairs bought in size 38" in html  # the tag's reason
    assert html.count('data-testid="binding"') == 1
    assert html.count('data-testid="care-history"') == 2
    # The RFML path, in English only (issue 23: no Chinese on an English page).
    assert "General value → <strong>Important value</strong>" in html
    assert "一般价值" not in html and "重要价值" not in html


def test_member_page_masks_the_phone_for_managers(w):
    for user in (w.users.store, w.users.region, w.users.hq):
        html = browser(user).get(f"/workbench/members/{w.m['m1'].pk}/").content.decode()
        assert '<span data-testid="member-phone" data-whole="0">138****0001</span>' in html


@pytest.mark.parametrize(("user", "member"), [("g1", "m4"), ("g2", "m1"), ("store", "m5"), ("g1", "m5")])
def test_another_guides_member_is_a_404(w, user, member):
    response = browser(getattr(w.users, user)).get(f"/workbench/members/{w.m[member].pk}/")

    assert response.status_code == 404


def test_an_unknown_member_is_a_404(w):
    assert browser(w.users.hq).get("/workbench/members/999999/").status_code == 404


# ---------------------------------------------------------------------------- care

def care_ids(html: str) -> list[tuple[str, str]]:
    return re.findall(r'id="care-(\d+)" data-testid="care-item" data-care-id="\d+" data-kind="(\w+)"', html)


def test_care_list_shows_todays_items_with_reason_action_and_personal_calls(w):
    html = browser(w.users.g1).get("/workbench/care/").content.decode()

    c = w.care
    # ranked (issue 23 #9): the personal call (c2) before the thank-you call (c1); c3 is done
    assert care_ids(html) == [(str(c["c2"].pk), "market"), (str(c["c1"].pk), "care"), (str(c["c3"].pk), "winback")]
    assert (kpi(html, "care_open"), kpi(html, "care_done")) == ("2", "1")
    assert html.count('data-testid="call-in-person"') == 1
    assert "Last purchase 40 days ago; cycle 45 days" in html
    assert "Call in person with matching new arrivals" in html
    assert str(c["old"].pk) not in [pk for pk, _kind in care_ids(html)]  # yesterday's list is gone
    assert html.count('data-testid="care-done-form"') == 2
    assert 'name="csrfmiddlewaretoken"' in html


def test_care_list_filters_by_kind_and_shows_the_done_ones(w):
    client = browser(w.users.g1)

    market = client.get("/workbench/care/", {"kind": "market"}).content.decode()
    assert care_ids(market) == [(str(w.care["c2"].pk), "market"), (str(w.care["c3"].pk), "winback")]  # + done
    done = client.get("/workbench/care/", {"kind": "done"}).content.decode()
    assert care_ids(done) == [(str(w.care["c3"].pk), "winback")]
    assert "No answer" in done
    assert client.get("/workbench/care/", {"kind": "nonsense"}).status_code == 200  # shows everything open


def test_care_list_of_a_store_is_paginated(w):
    for n in range(35):
        member = MemberFactory(group=w.grp, name=f"关怀{n:02d}")
        GuideBindingFactory(member=member, guide=w.g2)
        CareItem.objects.create(day=w.today, guide=w.g2, member=member, brand=w.wa, kind=CareItem.Kind.WINBACK,
                                reason="lapsed", suggested_action="coupon")
    client = browser(w.users.store)

    first = client.get("/workbench/care/").content.decode()
    second = client.get("/workbench/care/", {"page": 2}).content.decode()

    assert kpi(first, "care_open") == "38"
    assert first.count('data-testid="care-done-form"') == 30 and "1 / 2" in first
    assert second.count('data-testid="care-done-form"') == 8
    assert "Guide Two" in second  # a manager sees whose item it is


def test_marking_a_care_item_done_records_the_contact_as_service(w):
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(w.users.g1)
    page = client.get("/workbench/care/")
    token = page.cookies["csrftoken"].value
    item = w.care["c2"]
    before = timezone.now()

    response = client.post(f"/workbench/care/{item.pk}/done/", {"outcome": "Reached, will visit the store",
                                                                "csrfmiddlewaretoken": token})

    assert response.status_code == 302
    assert response["Location"] == f"/workbench/care/#care-{item.pk}"
    item.refresh_from_db()
    assert item.outcome == "Reached, will visit the store"
    assert item.done_by == w.users.g1 and item.done_at >= before
    binding = GuideBinding.objects.get(member=w.m["m2"], guide=w.g1, ended_at__isnull=True)
    assert binding.last_served_at == item.done_at  # counts as service for the binding policy
    html = client.get("/workbench/care/").content.decode()
    assert (kpi(html, "care_open"), kpi(html, "care_done")) == ("1", "2")
    assert "Done: 李雷" in html


def test_marking_done_without_csrf_is_refused(w):
    client = Client(enforce_csrf_checks=True)
    client.force_login(w.users.g1)

    response = client.post(f"/workbench/care/{w.care['c1'].pk}/done/", {"outcome": "ok"})

    assert response.status_code == 403
    assert CareItem.objects.get(pk=w.care["c1"].pk).done_at is None


@pytest.mark.parametrize(("lang", "message"), [("en", "This field is required."), ("zh-hans", "字段是必填项。")])
def test_marking_done_without_an_outcome_shows_the_field_error(w, lang, message):
    response = browser(w.users.g1, lang=lang).post(f"/workbench/care/{w.care['c1'].pk}/done/?kind=care",
                                                   {"outcome": "  "})

    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert 'role="alert"' in html  # also said at the top of the page
    assert f'action="/workbench/care/{w.care["c1"].pk}/done/?kind=care"' in html
    assert CareItem.objects.get(pk=w.care["c1"].pk).done_at is None
    assert GuideBinding.objects.get(member=w.m["m1"], guide=w.g1).last_served_at is None


def test_a_too_long_outcome_is_refused(w):
    response = browser(w.users.g1).post(f"/workbench/care/{w.care['c1'].pk}/done/", {"outcome": "x" * 201})

    assert response.status_code == 400
    assert "Ensure this value has at most 200 characters" in response.content.decode()


def test_another_guides_care_item_is_a_404_and_get_is_not_allowed(w):
    client = browser(w.users.g1)

    assert client.post(f"/workbench/care/{w.care['c4'].pk}/done/", {"outcome": "x"}).status_code == 404
    assert client.get(f"/workbench/care/{w.care['c1'].pk}/done/").status_code == 405
    assert CareItem.objects.get(pk=w.care["c4"].pk).done_at is None


def test_a_store_manager_marks_a_guides_item_done_and_returns_to_that_guide(w):
    client = browser(w.users.store)

    response = client.post(f"/workbench/care/{w.care['c4'].pk}/done/?guide=g2", {"outcome": "Sent a coupon"})

    assert response.status_code == 302
    assert response["Location"] == f"/workbench/care/?guide=g2#care-{w.care['c4'].pk}"
    assert GuideBinding.objects.get(member=w.m["m4"], guide=w.g2).last_served_at is not None


def test_marking_a_done_item_again_keeps_the_first_contact(w):
    item = w.care["c3"]
    first = item.done_at

    response = browser(w.users.g1).post(f"/workbench/care/{item.pk}/done/", {"outcome": "later"})

    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.done_at, item.outcome) == (first, "No answer")


def test_care_page_with_many_items_stays_under_100_kb(w):
    for n in range(60):
        member = MemberFactory(group=w.grp, name=f"关怀会员{n:02d}")
        GuideBindingFactory(member=member, guide=w.g1)
        CareItem.objects.create(day=w.today, guide=w.g1, member=member, brand=w.wa, kind=CareItem.Kind.MARKET,
                                reason="Last purchase 41 days ago; cycle 45 days", important=n % 5 == 0,
                                suggested_action="Share matching new arrivals or a coupon")

    response = browser(w.users.g1, lang="zh-hans").get("/workbench/care/")

    assert response.status_code == 200
    html = response.content.decode()
    assert kpi(html, "care_open") == "62"
    assert html.count('data-testid="care-done-form"') == 30
    assert len(response.content) < 100_000


# ---------------------------------------------------------------------------- performance

def test_performance_page_of_a_guide(w):
    html = browser(w.users.g1).get("/workbench/performance/").content.decode()

    expected = {"sales_total": "¥1000.00", "sales_online": "800.00", "sales_offline": "200.00",
                "members_served": "4", "new_members": "1", "wecom_added": "1", "shares": "2", "material_pv": "3",
                "material_uv": "2", "task_rate": "50%", "rank_store": "1", "rank_region": "2",
                "exclusive": "1000.00", "selling": "0.00", "cross_brand_share": "50.0%"}
    assert {name: kpi(html, name) for name in expected} == expected
    assert html.count('data-testid="credit"') == 4
    assert "works for another brand: the credit follows the guide across brands" in html
    assert "The order was refunded or is no longer paid: the credit is taken back." in html  # O4, net 0


def test_performance_page_of_a_store_lists_its_guides(w):
    html = browser(w.users.store).get("/workbench/performance/").content.decode()

    assert (kpi(html, "sales_total"), kpi(html, "rank_region"), kpi(html, "exclusive")) == (
        "¥650.00", "2", "1150.00")
    assert re.findall(r'<a href="\?guide=(\w+)">', html) == ["g1", "g2"]
    assert 'data-testid="credit"' not in html


def test_performance_of_last_month_and_a_bad_month_parameter(w):
    client = browser(w.users.g1)
    last = (w.month_start - dt.timedelta(days=1)).strftime("%Y-%m")

    html = client.get("/workbench/performance/", {"month": last}).content.decode()
    assert (kpi(html, "sales_total"), kpi(html, "shares")) == ("¥80.00", "1")
    for bad in ("nonsense", "2025-13", "2999-01"):
        response = client.get("/workbench/performance/", {"month": bad})
        assert response.status_code == 200
        assert kpi(response.content.decode(), "sales_total") == "¥1000.00"


def test_performance_page_with_many_credits_stays_under_100_kb(w):
    from attribution.models import SalesCredit
    from tests.factories import OrderFactory

    for n in range(120):
        order = OrderFactory(brand=w.wa, member=w.m["m1"], channel="mini_program", ordered_at=w.t_today)
        SalesCredit.objects.create(order=order, kind="exclusive", brand=w.wa, store=w.s1, guide=w.g1,
                                   member=w.m["m1"], amount=n + 1, order_day=w.today, channel="mini_program",
                                   rule="exclusive_bound_guide", inputs={"bound_guide": "g1"})

    response = browser(w.users.g1, lang="zh-hans").get("/workbench/performance/")

    assert response.status_code == 200
    assert response.content.decode().count('data-testid="credit"') == 50
    assert len(response.content) < 100_000


# ---------------------------------------------------------------------------- live schedule

def test_live_schedule_of_the_store(w):
    live = add_live_sessions(w)

    html = browser(w.users.store).get("/workbench/live/").content.decode()

    assert re.findall(r'data-session-id="(\d+)" data-status="(\w+)"', html) == [
        (str(live.past.pk), "ended"), (str(live.upcoming.pk), "planned"), (str(live.cancelled.pk), "cancelled")]
    assert "Open with the offer" in html and html.count('data-testid="coaching-note"') == 1


def test_live_schedule_for_wider_scopes_asks_for_a_store(w):
    live = add_live_sessions(w)
    client = browser(w.users.region)

    assert 'data-testid="store-picker"' in client.get("/workbench/live/").content.decode()
    html = client.get("/workbench/live/", {"store": "s1"}).content.decode()
    assert f'data-session-id="{live.past.pk}"' in html
    assert client.get("/workbench/live/", {"store": "s3"}).status_code == 404  # west is not theirs
    assert browser(w.users.g1).get("/workbench/live/", {"store": "s2"}).status_code == 404


def test_a_guide_who_hosts_nothing_sees_the_store_schedule(w):
    """The demo's case (issue 23 #2): the store streams, this guide hosts none of it; the schedule is not empty.

    g2 hosts nothing; s1 has, this week, "Spring looks" (g1 hosts it); next week "New arrivals" (g1) and
    "Cancelled one" (no host); s2's session stays out.
    """
    live = add_live_sessions(w)
    html = browser(w.users.g2, "zh-hans").get("/workbench/live/").content.decode()

    assert "暂无直播安排" not in html
    assert re.findall(r'data-session-id="(\d+)" data-status="(\w+)" data-mine="(\d)"', html) == [
        (str(live.past.pk), "ended", "0"), (str(live.upcoming.pk), "planned", "0"),
        (str(live.cancelled.pk), "cancelled", "0")]
    assert "Other store" not in html and 'data-testid="hosted-by-me"' not in html
    assert "主播 Guide Me" in html and "暂无主播" in html
    # HQ's notes coach the host: g2 does not read g1's coaching.
    assert "Open with the offer" not in html


def test_the_live_schedule_marks_the_guides_own_sessions_and_1_plus_n_relays(w):
    live = add_live_sessions(w)
    central = LiveSession.objects.create(brand=w.wa, kind=LiveSession.Kind.HQ_CENTRAL, title="HQ spring show",
                                         planned_start=live.upcoming.planned_start + dt.timedelta(days=2),
                                         planned_end=live.upcoming.planned_end + dt.timedelta(days=2))
    relay = LiveSession.objects.create(brand=w.wa, kind=LiveSession.Kind.STORE, title="HQ relay", host_store=w.s1,
                                       host_guide=w.g2, follows=central, planned_start=central.planned_start,
                                       planned_end=central.planned_end)

    g1 = browser(w.users.g1, "zh-hans").get("/workbench/live/").content.decode()
    g2 = browser(w.users.g2, "zh-hans").get("/workbench/live/").content.decode()

    assert re.findall(r'data-session-id="(\d+)" data-status="\w+" data-mine="(\d)"', g1) == [
        (str(live.past.pk), "1"), (str(live.upcoming.pk), "1"), (str(live.cancelled.pk), "0"), (str(relay.pk), "0")]
    assert g1.count('data-testid="hosted-by-me"') == 2 and "我主播" in g1
    assert re.findall(r'data-session-id="(\d+)" data-status="\w+" data-mine="(\d)"', g2)[-1] == (str(relay.pk), "1")
    assert g2.count('data-testid="follows-hq"') == 1 and "同步总部直播 HQ spring show" in g2
    assert "HQ spring show</strong>" not in g2  # the HQ session itself is not a store session



# ---------------------------------------------------------------------------- the care list ranked (issue 23 #9)

def test_the_care_list_puts_todays_few_first_and_folds_the_rest(w):
    """g1's open items: c2 (market, personal call), c1 (care, m1 worth 3400.00) and 10 new ones:
    3 market items worth 900, 500 and nothing, 6 win-backs worth 100 each (names 回01..回06) and one more personal
    call, a win-back (the lowest due rank but important). Ranked: important first (c2 market, then the important
    win-back), then market 900, 500, none, then win-backs by value (100 each, by name), then c1 (care)."""
    run = MemberRfm.objects.filter(brand=w.wa).first().run

    def item(name, kind, value=None, important=False):
        member = MemberFactory(group=w.grp, name=name, phone="")
        GuideBindingFactory(member=member, guide=w.g1)
        if value is not None:
            MemberRfm.objects.create(member=member, brand=w.wa, run=run, segment="general_value",
                                     lifecycle_stage="mature", frequency=1, monetary=Decimal(value))
        return CareItem.objects.create(day=w.today, guide=w.g1, member=member, brand=w.wa, kind=kind,
                                       reason="r", suggested_action="s", important=important).pk
    k = CareItem.Kind
    m500, m900, m_none = item("市500", k.MARKET, "500"), item("市900", k.MARKET, "900"), item("市无", k.MARKET)
    winbacks = [item(f"回{n:02d}", k.WINBACK, "100") for n in range(6, 0, -1)]
    vip = item("要紧", k.WINBACK, "50", important=True)

    html = browser(w.users.g1, "zh-hans").get("/workbench/care/").content.decode()

    first, _, later = html.partition('data-testid="care-later"')
    expected = [w.care["c2"].pk, vip, m900, m500, m_none, *reversed(winbacks), w.care["c1"].pk]
    assert [int(pk) for pk, _kind in care_ids(first)] == expected[:8]
    assert [int(pk) for pk, _kind in care_ids(later)] == expected[8:] + [w.care["c3"].pk]  # + done today
    assert "今天先做" in first and "其余 4 项可稍后处理" in later
    assert kpi(html, "care_open") == "12"


def test_a_care_item_has_a_call_and_a_wecom_button(w):
    WeComFriendship.objects.filter(member=w.m["m2"], guide=w.g1).update(external_userid="wmEXT-li-lei")
    g1 = browser(w.users.g1, "zh-hans").get("/workbench/care/").content.decode()
    store = browser(w.users.store, "zh-hans").get("/workbench/care/").content.decode()

    def contact(html, item):
        block = re.search(rf'data-care-id="{item.pk}".*?</li>', html, re.S).group(0)
        return re.search(r'data-testid="care-contact">(.*?)</div>', block, re.S).group(1)

    # g1 is m2's and m1's bound guide: whole numbers, tel: links; m2 is a WeCom friend with a known id
    m2 = contact(g1, w.care["c2"])
    assert '<a class="button btn-call" href="tel:+8613800000002" data-testid="call">拨打 13800000002</a>' in m2
    assert 'data-testid="wecom" data-copy-text="wmEXT-li-lei"' in m2 and ">企微：复制ID</button>" in m2
    m1 = contact(g1, w.care["c1"])  # a friend since today, the id not known: chat in WeCom itself
    assert 'href="tel:+8613800000001"' in m1
    assert '<span class="chip ok" data-testid="wecom">已是企微好友，请在企微中聊天' in m1
    # the store manager (no permission for whole phones) sees masked numbers and no tel: link
    m4 = contact(store, w.care["c4"])
    assert "tel:" not in store
    assert '<span class="row-meta" data-testid="phone-masked">138****0004</span>' in m4
    assert '<span class="chip" data-testid="no-wecom">非企业微信好友</span>' in m4
