"""Payments and refunds under real concurrency (PostgreSQL, real threads released together by a barrier).

20 deliveries of one notification pay once, earn points once and post one commission entry; concurrent
refund approvals never refund more than was paid; concurrent requests never reserve more than is left;
a payment racing a cancellation either pays the order or is refunded, never both.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from guides.models import CommissionEntry, CommissionRule
from mall.models import Order, OrderTransition, PaymentNotification, Refund, RefundLine
from mall.payments.fake import FakeWeChatPay
from mall.payments.services import payment_notify, payment_prepare
from mall.refunds import refund_approve, refund_request
from members.models import PointsEntry
from tests.factories import GuideBindingFactory, GuideFactory, StoreFactory, staff_user
from tests.factories_payments import fake_trade_for_paid, paid_ready_order
from tests.members.test_member_concurrency import run_at_once

pytestmark = [
    pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                       reason="concurrency tests need PostgreSQL (set DATABASE_URL)"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(autouse=True)
def _fake_provider(settings):
    settings.PAYMENT_PROVIDER = "fake"
    cache.clear()
    yield
    cache.clear()


def test_twenty_concurrent_deliveries_of_one_notification_pay_once():
    store = StoreFactory()
    guide = GuideFactory(store=store)
    example = paid_ready_order(brand=store.brand)
    GuideBindingFactory(member=example.member, guide=guide, started_at=timezone.now() - dt.timedelta(days=1))
    CommissionRule.objects.create(brand=store.brand, rate=Decimal("0.0300"))
    payment = payment_prepare(order=example.order, member=example.member).payment
    fake = FakeWeChatPay()
    headers, body = fake.notification(fake.pay(payment.out_trade_no))

    results = run_at_once([lambda: payment_notify(provider=fake, headers=headers, body=body)] * 20)

    assert [kind for kind, _ in results] == ["ok"] * 20
    assert sorted(r.outcome for _, r in results) == ["duplicate"] * 19 + ["paid"]
    order = Order.objects.get(pk=example.order.pk)
    assert (order.status, order.paid_amount) == ("paid", Decimal("437.00"))
    assert OrderTransition.objects.filter(order=order).count() == 1
    assert list(PointsEntry.objects.filter(order=order, reason="earn").values_list("delta", flat=True)) == [437]
    assert list(CommissionEntry.objects.values_list("guide_id", "kind", "amount")) == [
        (guide.pk, "earn", Decimal("13.11"))]
    assert PaymentNotification.objects.count() == 20


def test_two_concurrent_approvals_never_refund_more_than_paid():
    example = paid_ready_order(status="paid")
    fake_trade_for_paid(example)
    refunds = []
    for no in ("RFA", "RFB"):  # two open refunds that together exceed what was paid (bypassing the request check)
        refund = Refund.objects.create(order=example.order, refund_no=no, kind="refund", amount=Decimal("300.00"),
                                       requested_at=timezone.now())
        RefundLine.objects.create(refund=refund, order_line=example.line_a, amount=Decimal("300.00"))
        refunds.append(refund)
    user = staff_user("brand_operator", brand=example.brand)

    results = run_at_once([lambda r=r: refund_approve(refund=r, user=user) for r in refunds])

    assert sorted(kind for kind, _ in results) == ["error", "ok"]
    error = next(value for kind, value in results if kind == "error")
    assert (error.status, error.code) == (409, "refund_exceeds_paid")
    order = Order.objects.get(pk=example.order.pk)
    assert order.refunded_amount == Decimal("300.00")
    assert sorted(Refund.objects.values_list("status", flat=True)) == ["refunded", "requested"]
    assert FakeWeChatPay().refunded_fen(order.payments.get().out_trade_no) == 30000


def test_ten_concurrent_approvals_of_one_refund_book_it_once():
    example = paid_ready_order(status="paid")
    fake_trade_for_paid(example)
    refund = refund_request(order=example.order, member=example.member)
    user = staff_user("brand_operator", brand=example.brand)

    results = run_at_once([lambda: refund_approve(refund=refund, user=user)] * 10)

    assert [kind for kind, _ in results] == ["ok"] * 10
    order = Order.objects.get(pk=example.order.pk)
    assert order.refunded_amount == Decimal("437.00")
    assert list(PointsEntry.objects.filter(refund=refund).order_by("reason").values_list("reason", "delta")) == [
        ("release", 1000), ("reverse", -437)]
    assert FakeWeChatPay().refunded_fen(order.payments.get().out_trade_no) == 43700


def test_concurrent_whole_refund_requests_reserve_the_money_once():
    example = paid_ready_order(status="paid")
    results = run_at_once([lambda: refund_request(order=example.order, member=example.member)] * 8)
    assert sorted(kind for kind, _ in results) == ["error"] * 7 + ["ok"]
    assert {value.code for kind, value in results if kind == "error"} == {"refund_exceeds_paid"}
    assert list(Refund.objects.values_list("amount", flat=True)) == [Decimal("437.00")]


def test_a_payment_racing_a_cancellation_pays_or_is_refunded_never_both():
    from mall.checkout import order_cancel

    example = paid_ready_order()
    payment = payment_prepare(order=example.order, member=example.member).payment
    fake = FakeWeChatPay()
    headers, body = fake.notification(fake.pay(payment.out_trade_no))

    results = run_at_once([lambda: payment_notify(provider=fake, headers=headers, body=body),
                           lambda: order_cancel(order=example.order, by_member=example.member)])

    order = Order.objects.get(pk=example.order.pk)
    notify_outcome = results[0][1].outcome
    if order.status == "paid":
        assert notify_outcome == "paid" and results[1][0] == "error"
        assert Refund.objects.count() == 0
    else:
        assert (order.status, notify_outcome, results[1][0]) == ("cancelled", "paid_after_close", "ok")
        assert list(Refund.objects.values_list("status", "amount")) == [("refunded", Decimal("437.00"))]
        assert FakeWeChatPay().refunded_fen(payment.out_trade_no) == 43700
