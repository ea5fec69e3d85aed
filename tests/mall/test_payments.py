"""Payment services and API: prepay, the paid path with exact figures, forged and late notifications,
reconciliation, and the pay / notify endpoints (auth, 404, 400/401, schema)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from attribution.models import SalesCredit
from guides.models import CommissionEntry, CommissionRule
from mall.models import (
    Coupon,
    CouponStatus,
    Order,
    OrderStatus,
    OrderTransition,
    Payment,
    PaymentNotification,
    Refund,
)
from mall.payments.fake import FakeWeChatPay
from mall.payments.services import NotifyOutcome, payment_notify, payment_prepare, payments_reconcile
from members.auth import member_token_issue
from members.models import PointsEntry
from retail_crm.errors import ApplicationError
from tests.factories import GuideBindingFactory, GuideFactory, MemberFactory, StoreFactory
from tests.factories_payments import paid_ready_order

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls_payments")]

NOTIFY_URL = "/api/v1/pay/notify/wechat/"


@pytest.fixture(autouse=True)
def _fake_provider(settings):
    settings.PAYMENT_PROVIDER = "fake"
    settings.PAYMENT_FAKE_KEY = "test-key"
    cache.clear()
    yield
    cache.clear()


def _prepared(example):
    result = payment_prepare(order=example.order, member=example.member)
    return result.payment


def _earned(order):
    return list(PointsEntry.objects.filter(order=order, reason=PointsEntry.Reason.EARN).values_list("delta",
                                                                                                     flat=True))


def _snapshot(order):
    order.refresh_from_db()
    return (order.status, order.paid_amount, order.paid_at, list(Payment.objects.filter(order=order).values_list(
        "status", "transaction_id")), list(Coupon.objects.filter(used_order=order).values_list("status", flat=True)),
        _earned(order), OrderTransition.objects.filter(order=order).count())


# ---------------------------------------------------------------------------- prepay

def test_prepare_creates_one_payment_and_returns_signed_params_reused_on_a_second_tap():
    example = paid_ready_order()
    first = payment_prepare(order=example.order, member=example.member)
    second = payment_prepare(order=example.order, member=example.member)

    assert Payment.objects.filter(order=example.order).count() == 1
    payment = Payment.objects.get(order=example.order)
    assert first.payment.pk == second.payment.pk == payment.pk
    assert (payment.status, payment.amount, payment.provider) == ("created", Decimal("437.00"), "fake")
    assert payment.out_trade_no.startswith(f"P{example.order.pk:010d}") and len(payment.out_trade_no) == 21
    assert payment.prepay_id == first.params.prepay_id
    params = first.params.as_request_payment()
    assert params["package"] == f"prepay_id={payment.prepay_id}"
    assert sorted(params) == ["appId", "nonceStr", "package", "paySign", "signType", "timeStamp"]


def test_prepare_refuses_other_members_closed_and_expired_orders():
    example = paid_ready_order()
    stranger = MemberFactory(group=example.brand.group, openid="o-stranger")
    with pytest.raises(ApplicationError) as exc:
        payment_prepare(order=example.order, member=stranger)
    assert (exc.value.status, exc.value.code) == (404, "order_not_found")

    Order.objects.filter(pk=example.order.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    with pytest.raises(ApplicationError) as exc:
        payment_prepare(order=example.order, member=example.member)
    assert (exc.value.status, exc.value.code) == (409, "order_expired")

    Order.objects.filter(pk=example.order.pk).update(status=OrderStatus.CANCELLED)
    with pytest.raises(ApplicationError) as exc:
        payment_prepare(order=example.order, member=example.member)
    assert (exc.value.status, exc.value.code) == (409, "order_not_payable")
    assert Payment.objects.count() == 0


# ---------------------------------------------------------------------------- the paid path

def test_paid_path_with_exact_figures_and_commission(django_capture_on_commit_callbacks):
    store = StoreFactory()
    guide = GuideFactory(store=store)
    example = paid_ready_order(brand=store.brand, ordered_at=timezone.now())
    GuideBindingFactory(member=example.member, guide=guide, started_at=timezone.now() - dt.timedelta(days=10))
    CommissionRule.objects.create(brand=store.brand, rate=Decimal("0.0200"))
    CommissionRule.objects.create(brand=store.brand, category="dress", rate=Decimal("0.0300"))
    CommissionRule.objects.create(brand=store.brand, category="scarf", rate=Decimal("0.0900"))
    payment = _prepared(example)
    fake = FakeWeChatPay()
    headers, body = fake.notification(fake.pay(payment.out_trade_no))

    with django_capture_on_commit_callbacks(execute=True):
        result = payment_notify(provider=fake, headers=headers, body=body)

    assert result.outcome == NotifyOutcome.PAID
    order = Order.objects.get(pk=example.order.pk)
    assert (order.status, order.paid_amount, order.refunded_amount) == ("paid", Decimal("437.00"), Decimal("0.00"))
    assert order.paid_at is not None
    payment.refresh_from_db()
    assert payment.status == "paid"
    assert payment.transaction_id == fake.query(payment.out_trade_no).transaction_id
    assert list(OrderTransition.objects.filter(order=order).values_list("from_status", "to_status", "by_system")) \
        == [("pending_payment", "paid", "notify:fake")]
    coupon = Coupon.objects.get(pk=example.coupon.pk)
    assert (coupon.status, coupon.used_order_id, coupon.used_at is not None) == ("used", order.pk, True)
    # floor(437.00 × 1 point per yuan); the 2,000 opening balance − 1,000 spent + 437 earned.
    assert _earned(order) == [437]
    assert sum(PointsEntry.objects.filter(member=example.member).values_list("delta", flat=True)) == 1437
    assert list(PaymentNotification.objects.values_list("outcome", "verified", "out_trade_no")) == [
        ("paid", True, payment.out_trade_no)]
    # Attribution credited the bound guide; commission at the first line's category rate (dress, 3%).
    exclusive = SalesCredit.objects.get(order=order, kind=SalesCredit.Kind.EXCLUSIVE)
    assert (exclusive.guide_id, exclusive.amount) == (guide.pk, Decimal("437.00"))
    entries = list(CommissionEntry.objects.values_list("guide_id", "kind", "amount", "rate", "credit_id"))
    assert entries == [(guide.pk, "earn", Decimal("13.11"), Decimal("0.0300"), exclusive.pk)]
    entry = CommissionEntry.objects.get()
    assert entry.available_at == order.paid_at + dt.timedelta(days=7)


def test_redelivered_notification_is_acknowledged_and_changes_nothing(django_capture_on_commit_callbacks):
    example = paid_ready_order()
    payment = _prepared(example)
    fake = FakeWeChatPay()
    headers, body = fake.notification(fake.pay(payment.out_trade_no))
    with django_capture_on_commit_callbacks(execute=True):
        payment_notify(provider=fake, headers=headers, body=body)
    before = _snapshot(example.order)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = payment_notify(provider=fake, headers=headers, body=body)

    assert again.outcome == NotifyOutcome.DUPLICATE and again.acknowledged
    assert callbacks == []
    assert _snapshot(example.order) == before
    assert list(PaymentNotification.objects.order_by("pk").values_list("outcome", flat=True)) == ["paid", "duplicate"]


@pytest.mark.parametrize("forgery", ["bad_signature", "amount_mismatch", "unknown_trade_no", "malformed"])
def test_forged_notifications_change_nothing_but_are_recorded(forgery):
    example = paid_ready_order()
    payment = _prepared(example)
    fake = FakeWeChatPay()
    before = _snapshot(example.order)
    if forgery == "bad_signature":
        headers, body = fake.notification(fake.pay(payment.out_trade_no), key="not-the-key")
    elif forgery == "amount_mismatch":
        headers, body = fake.notification(fake.pay(payment.out_trade_no, amount_fen=1))
    elif forgery == "unknown_trade_no":
        transaction = fake.pay(payment.out_trade_no)
        headers, body = fake.notification({**transaction, "out_trade_no": "P9999999999nothere"})
    else:
        headers, body = fake.notification({"amount": {"total": 43700}})

    result = payment_notify(provider=fake, headers=headers, body=body)

    assert result.outcome == forgery and not result.acknowledged
    assert _snapshot(example.order) == before
    assert list(PaymentNotification.objects.values_list("outcome", "verified")) == [
        (forgery, forgery != "bad_signature")]
    assert PaymentNotification.objects.get().body == body.decode()


@pytest.mark.parametrize("closed_status", [OrderStatus.EXPIRED, OrderStatus.CANCELLED])
def test_payment_after_the_order_closed_is_refunded_automatically(closed_status, django_capture_on_commit_callbacks):
    example = paid_ready_order()
    payment = _prepared(example)
    Order.objects.filter(pk=example.order.pk).update(status=closed_status, closed_at=timezone.now())
    Coupon.objects.filter(pk=example.coupon.pk).update(status=CouponStatus.AVAILABLE, used_order=None,
                                                       locked_at=None)
    fake = FakeWeChatPay()
    headers, body = fake.notification(fake.pay(payment.out_trade_no))

    with django_capture_on_commit_callbacks(execute=True):
        result = payment_notify(provider=fake, headers=headers, body=body)
    with django_capture_on_commit_callbacks(execute=True):
        again = payment_notify(provider=fake, headers=headers, body=body)

    assert (result.outcome, again.outcome) == (NotifyOutcome.PAID_AFTER_CLOSE, NotifyOutcome.DUPLICATE)
    order = Order.objects.get(pk=example.order.pk)
    assert (order.status, order.paid_amount, order.refunded_amount) == (closed_status, Decimal("0.00"),
                                                                        Decimal("0.00"))
    assert OrderTransition.objects.filter(order=order).count() == 0
    payment.refresh_from_db()
    assert payment.status == "paid"
    refund = Refund.objects.get(order=order)
    assert (refund.refund_no, refund.status, refund.amount, refund.lines.count()) == (
        f"RP{payment.out_trade_no}", "refunded", Decimal("437.00"), 0)
    assert refund.provider_refund_id.startswith("50300")
    assert fake.refunded_fen(payment.out_trade_no) == 43700
    assert _earned(order) == []
    assert Coupon.objects.get(pk=example.coupon.pk).status == "available"


def test_a_second_payment_of_a_paid_order_is_refunded_and_the_order_keeps_its_figures(
        django_capture_on_commit_callbacks):
    example = paid_ready_order()
    first = _prepared(example)
    second = Payment.objects.create(order=example.order, provider="fake", out_trade_no="P2ndpayment01",
                                    amount=Decimal("437.00"))
    fake = FakeWeChatPay()
    fake.create_prepay(example.order, second, openid=example.member.openid)
    with django_capture_on_commit_callbacks(execute=True):
        h1, b1 = fake.notification(fake.pay(first.out_trade_no))
        payment_notify(provider=fake, headers=h1, body=b1)
    with django_capture_on_commit_callbacks(execute=True):
        h2, b2 = fake.notification(fake.pay(second.out_trade_no))
        result = payment_notify(provider=fake, headers=h2, body=b2)

    assert result.outcome == NotifyOutcome.PAID_TWICE
    order = Order.objects.get(pk=example.order.pk)
    assert (order.status, order.paid_amount, order.refunded_amount) == ("paid", Decimal("437.00"), Decimal("0.00"))
    assert list(Refund.objects.values_list("refund_no", "status", "amount")) == [
        ("RPP2ndpayment01", "refunded", Decimal("437.00"))]
    assert (fake.refunded_fen(first.out_trade_no), fake.refunded_fen(second.out_trade_no)) == (0, 43700)
    assert _earned(order) == [437]


# ---------------------------------------------------------------------------- reconciliation

def test_reconcile_pays_an_order_whose_notification_never_came(django_capture_on_commit_callbacks):
    example = paid_ready_order()
    payment = _prepared(example)
    fake = FakeWeChatPay()
    fake.pay(payment.out_trade_no)
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - dt.timedelta(minutes=6))
    recent = paid_ready_order()
    recent_payment = _prepared(recent)
    fake.pay(recent_payment.out_trade_no)  # paid a minute ago: its notification is probably on its way
    unpaid_closed = paid_ready_order()
    closed_payment = _prepared(unpaid_closed)
    Order.objects.filter(pk=unpaid_closed.order.pk).update(status=OrderStatus.EXPIRED)
    Payment.objects.filter(pk=closed_payment.pk).update(created_at=timezone.now() - dt.timedelta(minutes=40))

    with django_capture_on_commit_callbacks(execute=True):
        result = payments_reconcile(older_than_minutes=5, provider=fake)
    with django_capture_on_commit_callbacks(execute=True):
        second = payments_reconcile(older_than_minutes=5, provider=fake)

    assert (result.checked, result.paid, result.closed, result.failed) == (2, 1, 1, 0)
    assert (second.checked, second.paid) == (0, 0)
    order = Order.objects.get(pk=example.order.pk)
    assert (order.status, order.paid_amount) == ("paid", Decimal("437.00"))
    assert list(OrderTransition.objects.filter(order=order).values_list("by_system", flat=True)) == ["reconcile"]
    assert _earned(order) == [437]
    assert Order.objects.get(pk=recent.order.pk).status == "pending_payment"
    assert Payment.objects.get(pk=closed_payment.pk).status == "closed"
    notification = PaymentNotification.objects.get()
    assert (notification.outcome, notification.out_trade_no) == ("paid", payment.out_trade_no)
    assert json.loads(notification.body)["source"] == "reconcile"


class DownForRefunds(FakeWeChatPay):
    """The fake, except that refunds fail as if the provider were unreachable."""

    def refund(self, order):
        from mall.payments.provider import ProviderError

        raise ProviderError("unreachable", retryable=True)


def test_reconcile_retries_an_automatic_refund_the_provider_could_not_take(django_capture_on_commit_callbacks,
                                                                           monkeypatch):
    example = paid_ready_order()
    payment = _prepared(example)
    Order.objects.filter(pk=example.order.pk).update(status=OrderStatus.EXPIRED)
    fake = FakeWeChatPay()
    headers, body = fake.notification(fake.pay(payment.out_trade_no))
    monkeypatch.setattr("mall.payments.provider.get_payment_provider", lambda: DownForRefunds())
    monkeypatch.setattr("mall.refunds.get_payment_provider", lambda: DownForRefunds())
    with django_capture_on_commit_callbacks(execute=True):
        result = payment_notify(provider=fake, headers=headers, body=body)
    assert result.outcome == NotifyOutcome.PAID_AFTER_CLOSE and result.acknowledged
    refund = Refund.objects.get()
    assert (refund.status, fake.refunded_fen(payment.out_trade_no)) == ("approved", 0)

    Refund.objects.filter(pk=refund.pk).update(decided_at=timezone.now() - dt.timedelta(minutes=6))
    outcome = payments_reconcile(older_than_minutes=5, provider=fake)
    assert (outcome.refunds_retried, outcome.refunds_failed) == (1, 0)
    assert Refund.objects.get(pk=refund.pk).status == "refunded"
    assert fake.refunded_fen(payment.out_trade_no) == 43700
    assert Order.objects.get(pk=example.order.pk).refunded_amount == Decimal("0.00")


# ---------------------------------------------------------------------------- API

def _member_client(api_client, member):
    api_client.credentials(HTTP_AUTHORIZATION=f"Member {member_token_issue(member=member)}")
    return api_client


def test_pay_endpoint(api_client):
    example = paid_ready_order()
    url = f"/api/v1/mp/orders/{example.order.order_no}/pay/"
    assert api_client.post(url).status_code == 401

    stranger = MemberFactory(group=example.brand.group, openid="o-other")
    assert _member_client(api_client, stranger).post(url).json()["error"]["code"] == "order_not_found"
    assert _member_client(api_client, stranger).post(url).status_code == 404

    response = _member_client(api_client, example.member).post(url)
    assert response.status_code == 200
    body = response.json()
    payment = Payment.objects.get(order=example.order)
    assert (body["order_no"], body["out_trade_no"], body["amount"]) == (example.order.order_no,
                                                                        payment.out_trade_no, "437.00")
    assert body["params"]["package"] == f"prepay_id={payment.prepay_id}"

    Order.objects.filter(pk=example.order.pk).update(status=OrderStatus.EXPIRED)
    response = _member_client(api_client, example.member).post(url)
    assert (response.status_code, response.json()["error"]["code"]) == (409, "order_not_payable")


def test_notify_endpoint_answers_as_wechat_expects(api_client, django_capture_on_commit_callbacks):
    example = paid_ready_order()
    payment = _prepared(example)
    fake = FakeWeChatPay()
    headers, body = fake.notification(fake.pay(payment.out_trade_no))
    http_headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k != "Content-Type"}

    forged = dict(http_headers, HTTP_WECHATPAY_SIGNATURE="AAAA")
    response = api_client.post(NOTIFY_URL, data=body, content_type="application/json", **forged)
    assert (response.status_code, response.json()) == (401, {"code": "FAIL", "message": "bad_signature"})

    response = api_client.post(NOTIFY_URL, data=b"{not json", content_type="application/json", **http_headers)
    assert response.status_code == 401  # the signature covers the body: a changed body fails it

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(NOTIFY_URL, data=body, content_type="application/json", **http_headers)
    assert (response.status_code, response.json()) == (200, {"code": "SUCCESS"})
    response = api_client.post(NOTIFY_URL, data=body, content_type="application/json", **http_headers)
    assert (response.status_code, response.json()) == (200, {"code": "SUCCESS"})
    assert Order.objects.get(pk=example.order.pk).status == "paid"

    wrong_headers, wrong_body = fake.notification(fake.pay(payment.out_trade_no, amount_fen=100))
    response = api_client.post(NOTIFY_URL, data=wrong_body, content_type="application/json",
                               **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in wrong_headers.items()})
    assert (response.status_code, response.json()["code"]) == (400, "FAIL")
    assert list(PaymentNotification.objects.order_by("pk").values_list("outcome", flat=True)) == [
        "bad_signature", "bad_signature", "paid", "duplicate", "amount_mismatch"]


def test_notify_endpoint_records_a_body_with_nul_bytes(api_client):
    response = api_client.post(NOTIFY_URL, data=b"\x00{}", content_type="application/json")
    assert (response.status_code, response.json()) == (401, {"code": "FAIL", "message": "bad_signature"})
    assert list(PaymentNotification.objects.values_list("outcome", "body")) == [("bad_signature", "\\u0000{}")]


def test_notify_endpoint_without_a_configured_provider_refuses_with_503(api_client, settings):
    settings.PAYMENT_PROVIDER = "wechat"
    settings.WECHATPAY_MCHID = ""
    response = api_client.post(NOTIFY_URL, data=b"{}", content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (503, "FAIL")


def test_schema_lists_the_payment_and_refund_endpoints(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in ("/api/v1/mp/orders/{order_no}/pay/", "/api/v1/pay/notify/wechat/",
                 "/api/v1/mp/orders/{order_no}/refunds/", "/api/v1/mall/refunds/",
                 "/api/v1/mall/refunds/{id}/approve/", "/api/v1/mall/refunds/{id}/reject/"):
        assert "post" in paths[path] or "get" in paths[path], path
    components = schema["components"]["schemas"]
    for name in ("MpOrderPay", "MpRequestPaymentParams", "MpRefundRequestInputRequest", "Refund", "RefundLine",
                 "RefundRejectInputRequest", "PaginatedRefundList", "PayNotifyAck"):
        assert name in components, name
    refund_request = paths["/api/v1/mp/orders/{order_no}/refunds/"]["post"]
    assert {"in": "header", "name": "Idempotency-Key"}.items() <= next(
        p for p in refund_request["parameters"] if p["name"] == "Idempotency-Key").items()


def test_a_paid_order_recomputes_the_buyers_rule_tags(django_capture_on_commit_callbacks):
    from members.models import MemberTag
    from members.tags import tag_rules_install_defaults

    example = paid_ready_order(ordered_at=timezone.now())
    tag_rules_install_defaults(example.order.brand)
    payment = _prepared(example)
    fake = FakeWeChatPay()
    headers, body = fake.notification(fake.pay(payment.out_trade_no))
    assert not MemberTag.objects.filter(member=example.member).exists()

    with django_capture_on_commit_callbacks(execute=True):
        payment_notify(provider=fake, headers=headers, body=body)

    tags = dict(MemberTag.objects.filter(member=example.member, source="rule").values_list(
        "tag_value__tag_group__code", "tag_value__code"))
    # 349.96 of the 437.00 paid went on dresses (80%): the favourite category.
    assert tags["favourite-category"] == "dress"
