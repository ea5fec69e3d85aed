"""guides.commission: commission entries from sales credits (rule specificity, kinds that earn, reversals,
rounding, availability after the return window, idempotency) and the mall tasks that drive payments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from attribution.models import AttributionSettings, SalesCredit
from attribution.tasks import attribute_order
from guides.commission import commission_post_for_credits, commission_rule_for
from guides.models import CommissionEntry, CommissionRule
from mall.models import MallSettings
from retail_crm.models import IdempotencyRecord
from tests.factories import GuideBindingFactory, GuideFactory, StoreFactory
from tests.factories_payments import paid_ready_order

pytestmark = pytest.mark.django_db


def _credit(order, kind, amount, guide=None, store=None):
    return SalesCredit.objects.create(order=order, kind=kind, brand=order.brand, guide=guide, store=store,
                                      member=order.member, amount=Decimal(amount),
                                      order_day=timezone.localdate(order.ordered_at), channel=order.channel,
                                      rule="test")


def test_the_most_specific_active_rule_wins():
    brand = StoreFactory().brand
    assert commission_rule_for(brand_id=brand.pk, category="dress", channel="mini_program") is None
    wide = CommissionRule.objects.create(brand=brand, rate=Decimal("0.0100"))
    assert commission_rule_for(brand_id=brand.pk, category="dress", channel="mini_program") == wide
    channel = CommissionRule.objects.create(brand=brand, channel="mini_program", rate=Decimal("0.0200"))
    assert commission_rule_for(brand_id=brand.pk, category="dress", channel="mini_program") == channel
    category = CommissionRule.objects.create(brand=brand, category="dress", rate=Decimal("0.0300"))
    assert commission_rule_for(brand_id=brand.pk, category="dress", channel="mini_program") == category
    both = CommissionRule.objects.create(brand=brand, category="dress", channel="mini_program", rate=Decimal("0.04"))
    assert commission_rule_for(brand_id=brand.pk, category="dress", channel="mini_program") == both
    assert commission_rule_for(brand_id=brand.pk, category="scarf", channel="store_live") == wide
    CommissionRule.objects.filter(pk=both.pk).update(is_active=False)
    assert commission_rule_for(brand_id=brand.pk, category="dress", channel="mini_program") == category


def test_entries_per_credit_row_only_for_kinds_that_earn_and_once():
    store = StoreFactory()
    guide, seller = GuideFactory(store=store), GuideFactory(store=store)
    example = paid_ready_order(brand=store.brand, status="paid")
    order = example.order
    MallSettings.objects.create(brand=store.brand, return_days=10)
    CommissionRule.objects.create(brand=store.brand, category="dress", rate=Decimal("0.0250"))
    CommissionRule.objects.create(brand=store.brand, category="scarf", rate=Decimal("0.5000"))  # not the first line
    _credit(order, "store", "437.00", store=store)
    earned = _credit(order, "exclusive", "437.00", guide=guide)
    _credit(order, "selling", "437.00", guide=seller)
    taken_back = _credit(order, "exclusive", "-87.04", guide=guide)
    _credit(order, "exclusive", "0.10", guide=guide)  # 0.10 × 2.5% = 0.0025 → 0.00: no entry

    commission_post_for_credits(order=order)
    assert commission_post_for_credits(order=order) == []

    rows = list(CommissionEntry.objects.order_by("pk").values_list("guide_id", "kind", "amount", "rate", "credit_id"))
    # 437.00 × 2.5% = 10.925 → 10.93; −87.04 × 2.5% = −2.176 → −2.18 (half up, away from zero).
    assert rows == [(guide.pk, "earn", Decimal("10.93"), Decimal("0.0250"), earned.pk),
                    (guide.pk, "reversal", Decimal("-2.18"), Decimal("0.0250"), taken_back.pk)]
    assert {e.available_at for e in CommissionEntry.objects.all()} == {order.paid_at + dt.timedelta(days=10)}

    AttributionSettings.objects.create(brand=store.brand, selling_earns_commission=True)
    order.delivered_at = order.paid_at + dt.timedelta(days=2)
    order.save(update_fields=["delivered_at"])
    posted = commission_post_for_credits(order=order)
    assert [(e.guide_id, e.kind, e.amount, e.available_at) for e in posted] == [
        (seller.pk, "earn", Decimal("10.93"), order.delivered_at + dt.timedelta(days=10))]


def test_no_rule_or_no_earning_kind_posts_nothing():
    store = StoreFactory()
    example = paid_ready_order(brand=store.brand, status="paid")
    _credit(example.order, "exclusive", "437.00", guide=GuideFactory(store=store))
    assert commission_post_for_credits(order=example.order) == []
    CommissionRule.objects.create(brand=store.brand, rate=Decimal("0.0300"))
    AttributionSettings.objects.create(brand=store.brand, exclusive_earns_commission=False)
    assert commission_post_for_credits(order=example.order) == []
    assert CommissionEntry.objects.count() == 0


def test_the_per_order_attribution_task_posts_commission_at_once_through_the_hook():
    """attribution.tasks.attribute_order asks ``order_credits_posted``; guides answers (no import upward)."""
    store = StoreFactory()
    guide = GuideFactory(store=store)
    example = paid_ready_order(brand=store.brand, status="paid")
    GuideBindingFactory(member=example.member, guide=guide, started_at=example.order.ordered_at - dt.timedelta(days=1))
    CommissionRule.objects.create(brand=store.brand, category="dress", rate=Decimal("0.0300"))
    order_id = example.order.pk

    # Store and exclusive credit of 437.00; 437.00 × 3% = 13.11 for the bound guide, at once (no relay, no commit).
    assert attribute_order.delay(order_id).get() == {"order_id": order_id, "rows_written": 2, "commission_entries": 1}
    assert list(CommissionEntry.objects.values_list("guide_id", "kind", "amount", "credit__kind")) == [
        (guide.pk, "earn", Decimal("13.11"), "exclusive")]
    assert attribute_order.delay(order_id).get() == {"order_id": order_id, "rows_written": 0, "commission_entries": 0}
    assert CommissionEntry.objects.count() == 1


def test_mall_tasks_run_their_services(settings):
    from guides import tasks as guides_tasks
    from mall import tasks

    settings.PAYMENT_PROVIDER = "fake"
    old = IdempotencyRecord.objects.create(owner="member:1", scope="refund_request", key="k", request_hash="h")
    IdempotencyRecord.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(hours=25))
    IdempotencyRecord.objects.create(owner="member:1", scope="refund_request", key="k2", request_hash="h")
    assert tasks.idempotency_purge.delay().get() == {"deleted": 1}
    assert tasks.payments_reconcile.delay().get() == {"checked": 0, "paid": 0, "closed": 0, "failed": 0,
                                                      "refunds_retried": 0, "refunds_failed": 0}
    assert guides_tasks.order_commission_post.delay(0).get() == {"order_id": 0, "posted": 0}
    assert tasks.refund_execute.delay(0).get() == {"refund_id": 0, "status": "missing"}
