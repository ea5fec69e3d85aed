"""Refunds and returns: limits, the 7-day window, staff decisions, provider answers, and what booking moves
(order and line amounts, points reversed and returned, stock, credits and commission); the API around them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from attribution.models import SalesCredit
from guides.models import CommissionEntry, CommissionRule
from mall.models import MallSettings, Order, OrderLine, OrderStatus, Refund, Stock, StockMovement
from mall.payments.fake import FakeWeChatPay
from mall.payments.provider import ProviderError, RefundOutcome
from mall.payments.services import payment_notify, payment_prepare
from mall.refunds import RefundLineRequest, refund_approve, refund_reject, refund_request
from mall.selectors import purchases
from members.auth import member_token_issue
from members.models import PointsEntry
from retail_crm.errors import ApplicationError
from tests.factories import (
    BrandFactory,
    GuideBindingFactory,
    GuideFactory,
    MemberFactory,
    StoreFactory,
    staff_user,
)
from tests.factories_payments import fake_trade_for_paid, paid_ready_order

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls_payments")]


@pytest.fixture(autouse=True)
def _fake_provider(settings):
    settings.PAYMENT_PROVIDER = "fake"
    cache.clear()
    yield
    cache.clear()


def paid_example(status=OrderStatus.PAID, **kwargs):
    example = paid_ready_order(status=status, **kwargs)
    fake_trade_for_paid(example)
    return example


def _points(order, reason):
    return list(PointsEntry.objects.filter(order=order, reason=reason, refund__isnull=False)
                .order_by("pk").values_list("delta", flat=True))


def _stock(example):
    return (Stock.objects.get(sku_id=example.line_a.sku_id).quantity,
            Stock.objects.get(sku_id=example.line_b.sku_id).quantity)


def _operator(brand):
    return staff_user("brand_operator", brand=brand)


# ---------------------------------------------------------------------------- whole and partial

def test_whole_refund_of_an_unshipped_order_gives_everything_back(django_capture_on_commit_callbacks):
    example = paid_example()
    refund = refund_request(order=example.order, member=example.member, reason="changed my mind")
    assert (refund.kind, refund.status, refund.amount) == ("refund", "requested", Decimal("437.00"))
    assert sorted(refund.lines.values_list("order_line_id", "amount", "quantity")) == [
        (example.line_a.pk, Decimal("349.96"), 2), (example.line_b.pk, Decimal("87.04"), 1)]

    with django_capture_on_commit_callbacks(execute=True):
        refund = refund_approve(refund=refund, user=_operator(example.brand))

    assert refund.status == "refunded" and refund.provider_refund_id.startswith("50300")
    order = Order.objects.get(pk=example.order.pk)
    assert (order.status, order.paid_amount, order.refunded_amount) == ("paid", Decimal("437.00"),
                                                                        Decimal("437.00"))
    assert list(OrderLine.objects.filter(order=order).order_by("pk").values_list("refunded_amount", flat=True)) == [
        Decimal("349.96"), Decimal("87.04")]
    assert _points(order, PointsEntry.Reason.REVERSE) == [-437]
    assert _points(order, PointsEntry.Reason.RELEASE) == [1000]
    assert sum(PointsEntry.objects.filter(member=example.member).values_list("delta", flat=True)) == 2000
    assert _stock(example) == (10, 5)
    assert sorted(StockMovement.objects.filter(order=order).values_list("delta", "reason")) == [
        (1, "return"), (2, "return")]
    assert FakeWeChatPay().refunded_fen(order.payments.get().out_trade_no) == 43700
    assert not purchases().filter(pk=order.pk).exists()


def test_partial_refunds_per_line_reverse_and_return_points_in_proportion(django_capture_on_commit_callbacks):
    example = paid_example(status=OrderStatus.SHIPPED)
    user = _operator(example.brand)
    first = refund_request(order=example.order, member=example.member,
                           lines=[RefundLineRequest(order_line_id=example.line_b.pk, amount=Decimal("40.00"))])
    with django_capture_on_commit_callbacks(execute=True):
        refund_approve(refund=first, user=user)
    # 40 of 437 refunded: floor(437 × 40 / 437) = 40 reversed, floor(1000 × 40 / 437) = 91 returned.
    assert _points(example.order, PointsEntry.Reason.REVERSE) == [-40]
    assert _points(example.order, PointsEntry.Reason.RELEASE) == [91]
    assert _stock(example) == (8, 4)  # shipped, nothing sent back: no units return

    second = refund_request(order=example.order, member=example.member, kind=Refund.Kind.REFUND,
                            lines=[RefundLineRequest(order_line_id=example.line_a.pk, amount=Decimal("100.00"),
                                                     quantity=1)])
    with django_capture_on_commit_callbacks(execute=True):
        refund_approve(refund=second, user=user)
    # 140 of 437: 140 reversed in all (100 more), floor(1000 × 140 / 437) = 320 returned in all (229 more).
    assert _points(example.order, PointsEntry.Reason.REVERSE) == [-40, -100]
    assert _points(example.order, PointsEntry.Reason.RELEASE) == [91, 229]
    order = Order.objects.get(pk=example.order.pk)
    assert order.refunded_amount == Decimal("140.00")
    assert (OrderLine.objects.get(pk=example.line_a.pk).refunded_amount,
            OrderLine.objects.get(pk=example.line_b.pk).refunded_amount) == (Decimal("100.00"), Decimal("40.00"))
    assert _stock(example) == (9, 4)

    rest = refund_request(order=example.order, member=example.member)
    assert sorted(rest.lines.values_list("amount", "quantity")) == [(Decimal("47.04"), 0), (Decimal("249.96"), 0)]
    with django_capture_on_commit_callbacks(execute=True):
        refund_approve(refund=rest, user=user)
    # Fully refunded: exactly every earned point reversed and every spent point returned.
    assert sum(_points(example.order, PointsEntry.Reason.REVERSE)) == -437
    assert sum(_points(example.order, PointsEntry.Reason.RELEASE)) == 1000


def test_over_refunds_are_refused_with_409_and_open_requests_count():
    example = paid_example()
    line_b = example.line_b
    with pytest.raises(ApplicationError) as exc:
        refund_request(order=example.order, member=example.member,
                       lines=[RefundLineRequest(order_line_id=line_b.pk, amount=Decimal("87.05"))])
    assert (exc.value.status, exc.value.code) == (409, "refund_exceeds_paid")

    held = refund_request(order=example.order, member=example.member,
                          lines=[RefundLineRequest(order_line_id=line_b.pk, amount=Decimal("50.00"))])
    with pytest.raises(ApplicationError) as exc:
        refund_request(order=example.order, member=example.member,
                       lines=[RefundLineRequest(order_line_id=line_b.pk, amount=Decimal("40.00"))])
    assert (exc.value.status, exc.value.code, exc.value.fields) == (
        409, "refund_exceeds_paid", {"lines": ["Line 1: at most 37.04."]})

    refund_reject(refund=held, user=_operator(example.brand), note="not eligible")
    freed = refund_request(order=example.order, member=example.member,
                           lines=[RefundLineRequest(order_line_id=line_b.pk, amount=Decimal("40.00"))])
    assert freed.amount == Decimal("40.00")

    whole = refund_request(order=example.order, member=example.member)
    assert whole.amount == Decimal("397.00")  # 437.00 − the 40.00 still open
    with pytest.raises(ApplicationError) as exc:
        refund_request(order=example.order, member=example.member)
    assert (exc.value.status, exc.value.code) == (409, "refund_exceeds_paid")
    assert Refund.objects.filter(order=example.order).count() == 3


@pytest.mark.parametrize("status", [OrderStatus.PENDING_PAYMENT, OrderStatus.EXPIRED, OrderStatus.CANCELLED])
def test_refund_of_an_unpaid_order_is_409(status):
    example = paid_ready_order(status=OrderStatus.PENDING_PAYMENT)
    Order.objects.filter(pk=example.order.pk).update(status=status)
    with pytest.raises(ApplicationError) as exc:
        refund_request(order=example.order, member=example.member)
    assert (exc.value.status, exc.value.code) == (409, "order_not_refundable")
    assert Refund.objects.count() == 0


def test_returns_only_within_the_window_after_delivery():
    example = paid_example(status=OrderStatus.COMPLETED)
    with pytest.raises(ApplicationError) as exc:
        refund_request(order=example.order, member=example.member, kind=Refund.Kind.RETURN)
    assert (exc.value.status, exc.value.code) == (409, "not_delivered")

    Order.objects.filter(pk=example.order.pk).update(delivered_at=timezone.now() - dt.timedelta(days=7, minutes=1))
    example.order.refresh_from_db()
    with pytest.raises(ApplicationError) as exc:
        refund_request(order=example.order, member=example.member, kind=Refund.Kind.RETURN)
    assert (exc.value.status, exc.value.code) == (409, "return_window_closed")

    MallSettings.objects.create(brand=example.brand, return_days=10)
    refund = refund_request(order=example.order, member=example.member, kind=Refund.Kind.RETURN,
                            lines=[RefundLineRequest(order_line_id=example.line_a.pk, quantity=1,
                                                     amount=Decimal("174.98"))])
    assert (refund.kind, refund.amount) == ("return", Decimal("174.98"))


def test_return_within_seven_days_brings_units_back(django_capture_on_commit_callbacks):
    example = paid_example(status=OrderStatus.COMPLETED)
    Order.objects.filter(pk=example.order.pk).update(delivered_at=timezone.now() - dt.timedelta(days=6))
    example.order.refresh_from_db()
    refund = refund_request(order=example.order, member=example.member, kind=Refund.Kind.RETURN)
    with django_capture_on_commit_callbacks(execute=True):
        refund_approve(refund=refund, user=_operator(example.brand))
    assert _stock(example) == (10, 5)
    assert Order.objects.get(pk=example.order.pk).refunded_amount == Decimal("437.00")


def test_refund_request_refuses_other_members_and_bad_lines():
    example = paid_example()
    stranger = MemberFactory(group=example.brand.group)
    with pytest.raises(ApplicationError) as exc:
        refund_request(order=example.order, member=stranger)
    assert exc.value.status == 404
    other = paid_example()
    with pytest.raises(ApplicationError) as exc:
        refund_request(order=example.order, member=example.member,
                       lines=[RefundLineRequest(order_line_id=other.line_a.pk, amount=Decimal("1.00"))])
    assert (exc.value.status, exc.value.fields) == (400, {"lines": [
        "Line 1: not a line of this order, or given twice."]})
    with pytest.raises(ApplicationError) as exc:
        refund_request(order=example.order, member=example.member,
                       lines=[RefundLineRequest(order_line_id=example.line_a.pk, amount=Decimal("1.005"))])
    assert exc.value.status == 400
    assert Refund.objects.count() == 0


# ---------------------------------------------------------------------------- decisions and the provider

def test_only_staff_in_scope_decide_and_a_decision_is_final(django_capture_on_commit_callbacks):
    example = paid_example()
    refund = refund_request(order=example.order, member=example.member)
    outsider = _operator(BrandFactory(group=example.brand.group))
    guide = staff_user("guide", guide=GuideFactory(store=StoreFactory(region__brand=example.brand)))
    with pytest.raises(ApplicationError) as exc:
        refund_approve(refund=refund, user=outsider)
    assert exc.value.status == 404
    with pytest.raises(ApplicationError) as exc:
        refund_approve(refund=refund, user=guide)
    assert exc.value.status == 403
    assert Refund.objects.get(pk=refund.pk).status == "requested"

    user = _operator(example.brand)
    with django_capture_on_commit_callbacks(execute=True):
        refund_approve(refund=refund, user=user)
        again = refund_approve(refund=refund, user=user)
    assert again.status == "refunded"
    assert Order.objects.get(pk=example.order.pk).refunded_amount == Decimal("437.00")
    assert _points(example.order, PointsEntry.Reason.REVERSE) == [-437]
    with pytest.raises(ApplicationError) as exc:
        refund_reject(refund=refund, user=user, note="too late")
    assert (exc.value.status, exc.value.code) == (409, "invalid_refund_state")


class RefusingProvider:
    name = "fake"

    def __init__(self, *, retryable):
        self.retryable = retryable

    def refund(self, order):
        raise ProviderError("NOT_ENOUGH", code="NOT_ENOUGH", retryable=self.retryable)


def test_provider_refusal_fails_the_refund_and_an_outage_leaves_it_approved(django_capture_on_commit_callbacks):
    example = paid_example()
    user = _operator(example.brand)
    refused = refund_request(order=example.order, member=example.member,
                             lines=[RefundLineRequest(order_line_id=example.line_b.pk, amount=Decimal("10.00"))])
    with pytest.raises(ApplicationError) as exc:
        refund_approve(refund=refused, user=user, provider=RefusingProvider(retryable=False))
    assert (exc.value.status, exc.value.code) == (409, "refund_failed")
    assert Refund.objects.get(pk=refused.pk).status == "failed"

    outage = refund_request(order=example.order, member=example.member,
                            lines=[RefundLineRequest(order_line_id=example.line_b.pk, amount=Decimal("20.00"))])
    with pytest.raises(ApplicationError) as exc:
        refund_approve(refund=outage, user=user, provider=RefusingProvider(retryable=True))
    assert (exc.value.status, exc.value.code) == (503, "payment_provider_unavailable")
    assert Refund.objects.get(pk=outage.pk).status == "approved"
    assert Order.objects.get(pk=example.order.pk).refunded_amount == Decimal("0.00")
    assert PointsEntry.objects.filter(refund__isnull=False).count() == 0

    with django_capture_on_commit_callbacks(execute=True):
        done = refund_approve(refund=outage, user=user)  # approving again retries the payout
    assert done.status == "refunded"
    assert Order.objects.get(pk=example.order.pk).refunded_amount == Decimal("20.00")


class ProcessingProvider:
    name = "fake"

    def refund(self, order):
        return RefundOutcome(refund_id="50300000001", status="ABNORMAL")


def test_a_refund_the_provider_does_not_accept_is_failed_and_books_nothing():
    example = paid_example()
    refund = refund_request(order=example.order, member=example.member)
    with pytest.raises(ApplicationError) as exc:
        refund_approve(refund=refund, user=_operator(example.brand), provider=ProcessingProvider())
    assert exc.value.code == "refund_failed"
    refund.refresh_from_db()
    assert (refund.status, refund.decision_note) == ("failed", "provider status ABNORMAL")
    assert Order.objects.get(pk=example.order.pk).refunded_amount == Decimal("0.00")


def test_refund_after_payment_reverses_credit_and_commission(django_capture_on_commit_callbacks):
    store = StoreFactory()
    guide = GuideFactory(store=store)
    example = paid_ready_order(brand=store.brand)
    GuideBindingFactory(member=example.member, guide=guide, started_at=timezone.now() - dt.timedelta(days=3))
    CommissionRule.objects.create(brand=store.brand, rate=Decimal("0.0300"))
    fake = FakeWeChatPay()
    payment = payment_prepare(order=example.order, member=example.member).payment
    with django_capture_on_commit_callbacks(execute=True):
        payment_notify(provider=fake, headers=(n := fake.notification(fake.pay(payment.out_trade_no)))[0],
                       body=n[1])
    refund = refund_request(order=example.order, member=example.member,
                            lines=[RefundLineRequest(order_line_id=example.line_b.pk, amount=Decimal("87.04"))])
    with django_capture_on_commit_callbacks(execute=True):
        refund_approve(refund=refund, user=_operator(store.brand))

    exclusive = list(SalesCredit.objects.filter(order=example.order, kind="exclusive").order_by("pk")
                     .values_list("amount", flat=True))
    assert exclusive == [Decimal("437.00"), Decimal("-87.04")]
    assert list(CommissionEntry.objects.order_by("pk").values_list("kind", "amount")) == [
        ("earn", Decimal("13.11")), ("reversal", Decimal("-2.61"))]


# ---------------------------------------------------------------------------- API

def _member_client(api_client, member):
    api_client.credentials(HTTP_AUTHORIZATION=f"Member {member_token_issue(member=member)}")
    return api_client


def test_refund_request_endpoint_with_idempotency_key(api_client):
    example = paid_example()
    url = f"/api/v1/mp/orders/{example.order.order_no}/refunds/"
    assert api_client.post(url, {}, format="json").status_code == 401

    stranger = MemberFactory(group=example.brand.group)
    assert _member_client(api_client, stranger).post(url, {}, format="json").status_code == 404

    client = _member_client(api_client, example.member)
    bad = client.post(url, {"kind": "gift", "lines": [{"order_line_id": "x"}]}, format="json")
    assert bad.status_code == 400
    # Nested field errors may be reported as "lines" or "lines.0.order_line_id": judge by the top-level name.
    assert sorted({name.split(".")[0] for name in bad.json()["error"]["fields"]}) == ["kind", "lines"]

    body = {"kind": "refund", "reason": "size", "lines": [{"order_line_id": example.line_b.pk, "amount": "30.00"}]}
    first = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201
    assert (first.json()["amount"], first.json()["status"], first.json()["lines"][0]["amount"]) == (
        "30.00", "requested", "30.00")
    replay = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert (replay.status_code, replay.json(), replay["Idempotent-Replayed"]) == (201, first.json(), "true")
    other = client.post(url, dict(body, reason="colour"), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert (other.status_code, other.json()["error"]["code"]) == (422, "idempotency_key_reused")
    assert Refund.objects.count() == 1

    too_much = client.post(url, {"lines": [{"order_line_id": example.line_b.pk, "amount": "60.00"}]},
                           format="json")
    assert (too_much.status_code, too_much.json()["error"]["code"]) == (409, "refund_exceeds_paid")


def test_staff_refund_list_approve_and_reject_endpoints(api_client, django_capture_on_commit_callbacks):
    example = paid_example()
    mine = refund_request(order=example.order, member=example.member,
                          lines=[RefundLineRequest(order_line_id=example.line_b.pk, amount=Decimal("10.00"))])
    rejected = refund_request(order=example.order, member=example.member,
                              lines=[RefundLineRequest(order_line_id=example.line_a.pk, amount=Decimal("5.00"))])
    elsewhere = paid_example()
    theirs = refund_request(order=elsewhere.order, member=elsewhere.member)

    assert api_client.get("/api/v1/mall/refunds/").status_code == 401
    assert api_client.post(f"/api/v1/mall/refunds/{mine.pk}/approve/").status_code == 401

    api_client.force_authenticate(_operator(example.brand))
    listed = api_client.get("/api/v1/mall/refunds/").json()
    assert (listed["count"], sorted(r["id"] for r in listed["results"])) == (2, sorted([mine.pk, rejected.pk]))
    assert api_client.get("/api/v1/mall/refunds/", {"status": "nope"}).status_code == 400
    odd_offset = api_client.get("/api/v1/mall/refunds/", {"requested_to": "0324-06-19T00:48:12.50-20:56"})
    assert (odd_offset.status_code, odd_offset.json()["count"]) == (200, 0)
    assert api_client.get("/api/v1/mall/refunds/", {"requested_from": "0001-01-01T00:00:00+10:00"}
                          ).status_code == 400

    assert api_client.post(f"/api/v1/mall/refunds/{theirs.pk}/approve/").status_code == 404
    assert api_client.post(f"/api/v1/mall/refunds/{rejected.pk}/reject/", {}, format="json").status_code == 400
    response = api_client.post(f"/api/v1/mall/refunds/{rejected.pk}/reject/", {"note": "worn"}, format="json")
    assert (response.status_code, response.json()["status"], response.json()["decision_note"]) == (
        200, "rejected", "worn")
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(f"/api/v1/mall/refunds/{mine.pk}/approve/")
    assert (response.status_code, response.json()["status"]) == (200, "refunded")
    assert api_client.get("/api/v1/mall/refunds/", {"status": "refunded"}).json()["count"] == 1
    response = api_client.post(f"/api/v1/mall/refunds/{rejected.pk}/approve/")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "invalid_refund_state")

    guide = staff_user("guide", guide=GuideFactory(store=StoreFactory(region__brand=example.brand)))
    api_client.force_authenticate(guide)
    assert api_client.post(f"/api/v1/mall/refunds/{mine.pk}/approve/").status_code == 403
    assert api_client.post(f"/api/v1/mall/refunds/{mine.pk}/reject/", {"note": "x"}, format="json"
                           ).status_code == 403
