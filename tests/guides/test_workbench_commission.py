"""Workbench commission pages with the Django test client: my commission (balance, ledger, withdrawal form),
a withdrawal's page, and the approvers' review list with its decision buttons, for every role."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.test import Client
from django.utils import timezone

from guides.models import CommissionEntry, WithdrawalRequest
from guides.withdrawals import withdrawal_request
from tests.factories import BrandFactory, GuideFactory, MemberFactory, OrderFactory, StoreFactory, staff_user

pytestmark = pytest.mark.django_db
D = Decimal
PAGE = "/workbench/commission/"
WITHDRAW = "/workbench/commission/withdraw/"
REVIEW = "/workbench/withdrawals/review/"


@pytest.fixture
def org():
    store = StoreFactory(name="一号店")
    other_store = StoreFactory(region=store.region)
    guide = GuideFactory(store=store, code="G-ANN", name="安")
    colleague = GuideFactory(store=store, code="G-BEN", name="本")
    manager_guide = GuideFactory(store=store, code="G-MGR", role="store_manager")
    member = MemberFactory(group=store.brand.group)
    now = timezone.now()
    mine = OrderFactory(brand=store.brand, member=member, order_no="ORD-ANN")
    theirs = OrderFactory(brand=store.brand, member=member, order_no="ORD-BEN")
    CommissionEntry.objects.create(guide=guide, brand=store.brand, kind="earn", amount=D("120.00"), order=mine,
                                   rate=D("0.0300"), available_at=now - dt.timedelta(days=3))
    CommissionEntry.objects.create(guide=guide, brand=store.brand, kind="earn", amount=D("7.25"), order=mine,
                                   rate=D("0.0500"), available_at=now + dt.timedelta(days=4))
    CommissionEntry.objects.create(guide=colleague, brand=store.brand, kind="earn", amount=D("654.32"),
                                   order=theirs, available_at=now - dt.timedelta(days=3))
    return SimpleNamespace(store=store, guide=guide, colleague=colleague, brand=store.brand,
                           guide_user=staff_user("guide", guide=guide),
                           colleague_user=staff_user("guide", guide=colleague),
                           manager=staff_user("store_manager", store=store, guide=manager_guide),
                           manager_guide=manager_guide,
                           other_manager=staff_user("store_manager", store=other_store),
                           operator=staff_user("brand_operator", brand=store.brand))


def login(user, language=None) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language) if language else Client()
    client.force_login(user)
    return client


def balances(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-balance="(\w+)"><span>[^<]*</span><strong>¥([-\d.]+)</strong>', html))


def request_key(html: str) -> str:
    return re.search(r'name="request_key" value="([0-9a-f]+)"', html).group(1)


def field_errors(html: str) -> list[str]:
    return re.findall(r'<ul class="errorlist[^"]*"[^>]*>\s*<li>([^<]*)</li>', html)


# ---------------------------------------------------------------------------- my commission

def test_anonymous_is_sent_to_log_in():
    response = Client().get(PAGE)
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/?next=/workbench/commission/")


def test_a_guide_sees_their_own_balance_and_ledger_only(org):
    response = login(org.guide_user).get(PAGE)

    assert response.status_code == 200
    html = response.content.decode()
    assert balances(html) == {"pending": "7.25", "available": "120.00", "withdrawn": "0.00"}
    assert re.findall(r'data-kind="(\w+)"', html) == ["earn", "earn"]
    assert "ORD-ANN" in html and "ORD-BEN" not in html and "654.32" not in html
    assert "3%" in html and "5%" in html
    assert len(response.content) < 100_000


def test_each_render_carries_a_fresh_request_key(org):
    client = login(org.guide_user)
    first, second = (request_key(client.get(PAGE).content.decode()) for _ in range(2))
    assert len(first) == 32 and first != second


def test_a_double_tapped_form_makes_one_request(org):
    client = login(org.guide_user)
    key = request_key(client.get(PAGE).content.decode())

    first = client.post(WITHDRAW, {"amount": "100.00", "request_key": key})
    second = client.post(WITHDRAW, {"amount": "100.00", "request_key": key})

    assert (first.status_code, second.status_code) == (302, 302)
    assert list(WithdrawalRequest.objects.values_list("guide_id", "amount", "status")) == [
        (org.guide.pk, D("100.00"), "requested")]
    html = client.get(PAGE).content.decode()
    assert balances(html) == {"pending": "7.25", "available": "20.00", "withdrawn": "100.00"}
    assert re.findall(r'data-kind="(\w+)"', html) == ["earn", "withdrawal", "earn"]


@pytest.mark.parametrize(("language", "amount", "message"), [
    (None, "", "该字段是必填项。"),
    (None, "abc", "输入一个数字。"),
    (None, "0", "确保该值大于或等于0.01。"),
    ("en", "", "This field is required."),
    ("en", "1.234", "Ensure that there are no more than 2 decimal places."),
])
def test_form_errors_come_back_on_the_field_in_chinese_or_english(org, language, amount, message):
    client = login(org.guide_user, language)
    response = client.post(WITHDRAW, {"amount": amount, "request_key": "k-1"})

    assert response.status_code == 400
    assert field_errors(response.content.decode()) == [message]
    assert WithdrawalRequest.objects.count() == 0


def test_more_than_available_is_a_409_on_the_amount_field(org):
    response = login(org.guide_user, "en").post(WITHDRAW, {"amount": "120.01", "request_key": "k-1"})

    assert response.status_code == 409
    assert field_errors(response.content.decode()) == ["Only ¥120.00 is available to withdraw."]
    assert WithdrawalRequest.objects.count() == 0


def test_a_form_without_its_key_gets_a_fresh_one_and_makes_nothing(org):
    response = login(org.guide_user, "en").post(WITHDRAW, {"amount": "10.00"})

    html = response.content.decode()
    assert response.status_code == 400
    assert "The form had expired; check the amount and send it again." in html
    assert len(request_key(html)) == 32
    assert WithdrawalRequest.objects.count() == 0


def test_office_staff_have_a_commission_page_too(org):
    office = staff_user("hq", group=org.brand.group)
    CommissionEntry.objects.create(staff_user=office, brand=org.brand, kind="earn", amount=D("9.90"),
                                   available_at=timezone.now() - dt.timedelta(days=1))

    response = login(office, "en").get(PAGE)

    assert response.status_code == 200
    html = response.content.decode()
    assert balances(html) == {"pending": "0.00", "available": "9.90", "withdrawn": "0.00"}
    assert "All-staff distribution" in html and "Bought through your share link" in html


def test_a_member_login_without_staff_role_is_refused(org):
    from tests.factories import UserFactory

    assert login(UserFactory()).get(PAGE).status_code == 403


# ---------------------------------------------------------------------------- a withdrawal's page

def test_a_withdrawal_page_is_for_its_owner_and_deciders_in_scope(org):
    withdrawal = withdrawal_request(guide=org.guide, amount=D("50.00"), request_key="k").withdrawal
    url = f"/workbench/withdrawals/{withdrawal.pk}/"

    own = login(org.guide_user).get(url)
    assert own.status_code == 200
    assert 'data-status="requested"' in own.content.decode() and "/approve/" not in own.content.decode()
    assert login(org.colleague_user).get(url).status_code == 404
    assert login(org.other_manager).get(url).status_code == 404
    assert login(org.guide_user).get("/workbench/withdrawals/999999/").status_code == 404
    managed = login(org.manager).get(url).content.decode()
    assert f"/workbench/withdrawals/{withdrawal.pk}/approve/" in managed


# ---------------------------------------------------------------------------- review

def test_the_review_page_lists_requests_in_scope_with_buttons(org):
    ann = withdrawal_request(guide=org.guide, amount=D("50.00"), request_key="a").withdrawal
    CommissionEntry.objects.create(guide=org.manager_guide, brand=org.brand, kind="earn", amount=D("30.00"),
                                   available_at=timezone.now() - dt.timedelta(days=1))
    own = withdrawal_request(guide=org.manager_guide, amount=D("30.00"), request_key="m").withdrawal
    office = staff_user("brand_operator", brand=org.brand)
    CommissionEntry.objects.create(staff_user=office, brand=org.brand, kind="earn", amount=D("5.00"),
                                   available_at=timezone.now() - dt.timedelta(days=1))
    office_request = withdrawal_request(staff_user=office, amount=D("5.00"), request_key="o").withdrawal

    html = login(org.manager, "en").get(REVIEW).content.decode()
    assert sorted(int(pk) for pk in re.findall(r'data-withdrawal="(\d+)"', html)) == sorted([ann.pk, own.pk])
    assert f"/workbench/withdrawals/{ann.pk}/approve/" in html
    assert f"/workbench/withdrawals/{own.pk}/approve/" not in html  # their own: someone else decides
    assert "Your own request: someone else decides it." in html

    operator_html = login(org.operator).get(REVIEW).content.decode()
    assert sorted(int(pk) for pk in re.findall(r'data-withdrawal="(\d+)"', operator_html)) == sorted(
        [ann.pk, own.pk, office_request.pk])
    assert re.findall(r'data-withdrawal="(\d+)"', login(org.other_manager).get(REVIEW).content.decode()) == []
    assert login(org.guide_user).get(REVIEW).status_code == 403


def test_deciding_from_the_review_page(org):
    withdrawal = withdrawal_request(guide=org.guide, amount=D("50.00"), request_key="a").withdrawal
    manager = login(org.manager, "en")

    approved = manager.post(f"/workbench/withdrawals/{withdrawal.pk}/approve/")
    assert (approved.status_code, approved["Location"]) == (302, REVIEW)
    again = manager.post(f"/workbench/withdrawals/{withdrawal.pk}/approve/")
    assert again.status_code == 409
    assert "This withdrawal was already decided or paid" in again.content.decode()
    assert manager.post(f"/workbench/withdrawals/{withdrawal.pk}/paid/").status_code == 302
    assert WithdrawalRequest.objects.get().status == "paid"
    assert login(org.other_manager).post(f"/workbench/withdrawals/{withdrawal.pk}/reject/").status_code == 404
    assert manager.post(f"/workbench/withdrawals/{withdrawal.pk}/cancel/").status_code == 404
    assert login(org.guide_user).post(f"/workbench/withdrawals/{withdrawal.pk}/reject/").status_code == 403
    assert manager.get(f"/workbench/withdrawals/{withdrawal.pk}/approve/").status_code == 405


def test_a_manager_cannot_approve_their_own_request_from_the_page(org):
    CommissionEntry.objects.create(guide=org.manager_guide, brand=org.brand, kind="earn", amount=D("30.00"),
                                   available_at=timezone.now() - dt.timedelta(days=1))
    own = withdrawal_request(guide=org.manager_guide, amount=D("30.00"), request_key="m").withdrawal

    response = login(org.manager, "en").post(f"/workbench/withdrawals/{own.pk}/approve/")

    assert response.status_code == 403
    assert "You cannot decide your own withdrawal; someone else must." in response.content.decode()
    assert WithdrawalRequest.objects.get().status == "requested"


def test_reject_from_the_page_returns_the_money(org):
    withdrawal = withdrawal_request(guide=org.guide, amount=D("120.00"), request_key="a").withdrawal
    login(org.operator).post(f"/workbench/withdrawals/{withdrawal.pk}/reject/",
                             {"next": f"/workbench/withdrawals/{withdrawal.pk}/", "note": "银行卡信息有误"})

    html = login(org.guide_user).get(PAGE).content.decode()
    assert balances(html) == {"pending": "7.25", "available": "120.00", "withdrawn": "0.00"}


def test_an_unsafe_next_is_ignored(org):
    withdrawal = withdrawal_request(guide=org.guide, amount=D("1.00"), request_key="a").withdrawal
    response = login(org.manager).post(f"/workbench/withdrawals/{withdrawal.pk}/approve/",
                                       {"next": "https://evil.example/"})
    assert response["Location"] == REVIEW


def test_another_brand_operator_sees_nothing(org):
    withdrawal_request(guide=org.guide, amount=D("1.00"), request_key="a")
    foreign = staff_user("brand_operator", brand=BrandFactory(group=org.brand.group))
    assert re.findall(r'data-withdrawal="(\d+)"', login(foreign).get(REVIEW).content.decode()) == []


# ---------------------------------------------------------------------------- rejecting needs a reason (issue 23 #9)

def test_rejecting_without_a_reason_is_refused_and_changes_nothing(org):
    withdrawal = withdrawal_request(guide=org.guide, amount=D("120.00"), request_key="a").withdrawal
    manager = login(org.manager)

    for body in ({}, {"note": "   "}):
        response = manager.post(f"/workbench/withdrawals/{withdrawal.pk}/reject/", body)
        assert response.status_code == 400
        html = response.content.decode()
        assert "请填写拒绝原因，申请人会看到它。" in html
        # the reject box of that withdrawal opens again, with the field's message under the reason
        assert re.search(rf'<details class="reject-box" data-testid="reject-box" open>\s*<summary[^>]*>拒绝…</summary>'
                         rf'\s*<form method="post" action="/workbench/withdrawals/{withdrawal.pk}/reject/"', html)
    withdrawal.refresh_from_db()
    assert (withdrawal.status, withdrawal.note, withdrawal.decided_by_id) == ("requested", "", None)
    assert CommissionEntry.objects.filter(kind="withdrawal_return").count() == 0


def test_the_reason_is_stored_and_shown_to_the_guide(org):
    withdrawal = withdrawal_request(guide=org.guide, amount=D("120.00"), request_key="a").withdrawal

    response = login(org.manager).post(f"/workbench/withdrawals/{withdrawal.pk}/reject/",
                                       {"note": "  银行卡信息有误，请更新后再申请  "})

    assert (response.status_code, response["Location"]) == (302, REVIEW)
    withdrawal.refresh_from_db()
    assert (withdrawal.status, withdrawal.note) == ("rejected", "银行卡信息有误，请更新后再申请")
    guide = login(org.guide_user)
    commission = guide.get(PAGE).content.decode()
    assert re.findall(r'data-testid="reject-reason">([^<]*)</p>', commission) == [
        "拒绝原因: 银行卡信息有误，请更新后再申请"]
    detail = guide.get(f"/workbench/withdrawals/{withdrawal.pk}/").content.decode()
    assert re.search(r'<dt>拒绝原因</dt><dd data-testid="withdrawal-note">银行卡信息有误，请更新后再申请</dd>', detail)


def test_approve_and_reject_look_different_and_reject_asks_to_confirm(org):
    withdrawal = withdrawal_request(guide=org.guide, amount=D("120.00"), request_key="a").withdrawal

    for url in (REVIEW, f"/workbench/withdrawals/{withdrawal.pk}/"):
        html = login(org.manager).get(url).content.decode()
        assert re.findall(r'<button type="submit" class="([\w-]+)" data-testid="approve">通过</button>', html) == [
            "btn-approve"]
        # reject is a secondary, outlined control that only opens the box; the box asks for the reason and a
        # confirmation naming the amount
        assert re.findall(r'<summary class="([\w-]+)" role="button" data-testid="reject">拒绝…</summary>', html) == [
            "btn-danger-outline"]
        assert f'<textarea id="reject-{withdrawal.pk}-note" name="note" rows="2" maxlength="200" required>' in html
        assert re.findall(r'data-testid="reject-confirm">([^<]*)</button>', html) == ["确认拒绝 ¥120.00"]


def test_the_managers_home_counts_the_withdrawals_waiting_for_them(org):
    withdrawal_request(guide=org.guide, amount=D("50.00"), request_key="a")
    withdrawal_request(guide=org.guide, amount=D("20.00"), request_key="b")
    decided = withdrawal_request(guide=org.colleague, amount=D("10.00"), request_key="c").withdrawal
    login(org.manager).post(f"/workbench/withdrawals/{decided.pk}/approve/")
    CommissionEntry.objects.create(guide=org.manager_guide, brand=org.brand, kind="earn", amount=D("30.00"),
                                   available_at=timezone.now() - dt.timedelta(days=1))
    withdrawal_request(guide=org.manager_guide, amount=D("30.00"), request_key="m")  # their own: not theirs to decide

    html = login(org.manager).get("/workbench/").content.decode()

    # 2 requested of G-ANN; G-BEN's is approved already; the manager's own request waits for someone else
    assert re.search(r'data-kpi="withdrawals_pending">2</strong>', html)
    assert "2 笔提现等待您审核" in html
    assert 'href="/workbench/withdrawals/review/" data-testid="withdrawals-review-link"' in html
    assert "没有等待您审核的提现" in login(org.other_manager).get("/workbench/").content.decode()
    assert 'data-testid="withdrawals-summary"' not in login(org.guide_user).get("/workbench/").content.decode()
