"""attribution.services: every rule of DOMAIN.md "Guide binding and attribution", with exact rows.

The organisation used throughout (one group, two brands):

    brand A: store SA1 with guides GA1, GA2; store SA2 with guide GA3
    brand B: store SB1 with guide GB1

Amounts are worked out by hand; every test lists the exact rows the engine must have written
(kind, store, guide, amount, rule, cross-brand, correction), in the order they were written.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from attribution.models import SalesCredit
from attribution.services import (
    AttributionResult,
    CreditLine,
    attribute_all,
    attribute_orders,
    attribute_range,
    attribute_sweep,
)
from attribution.tasks import attribution_enqueue_on_commit
from mall.importing import ORDER_COLUMNS, order_import
from mall.models import Channel, Order, OrderStatus
from members.models import GuideBinding
from tests.factories import (
    BrandFactory,
    GuideBindingFactory,
    GuideFactory,
    MemberFactory,
    OrderFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
)

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2024, 3, 1, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai, local day 2024-03-01


def at(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


class Org:
    """The two-brand organisation of the module docstring."""

    def __init__(self):
        self.group = RetailGroupFactory()
        self.brand_a = BrandFactory(group=self.group, code="A")
        self.brand_b = BrandFactory(group=self.group, code="B")
        region_a = RegionFactory(brand=self.brand_a)
        region_b = RegionFactory(brand=self.brand_b)
        self.sa1 = StoreFactory(region=region_a, code="SA1")
        self.sa2 = StoreFactory(region=region_a, code="SA2")
        self.sb1 = StoreFactory(region=region_b, code="SB1")
        self.ga1 = GuideFactory(store=self.sa1, code="GA1")
        self.ga2 = GuideFactory(store=self.sa1, code="GA2")
        self.ga3 = GuideFactory(store=self.sa2, code="GA3")
        self.gb1 = GuideFactory(store=self.sb1, code="GB1")


@pytest.fixture
def org():
    return Org()


def bind(org, member, guide, *, start=-10, end=None, reason=GuideBinding.Reason.QR_SCAN):
    return GuideBindingFactory(member=member, guide=guide, started_at=at(start),
                               ended_at=None if end is None else at(end), reason=reason)


def order(org, member, *, channel=Channel.MINI_PROGRAM, store=None, guide=None, brand=None, when=0,
          paid="100.00", refunded="0.00", status=OrderStatus.PAID):
    return OrderFactory(brand=brand or org.brand_a, member=member, channel=channel, store=store, guide=guide,
                        ordered_at=at(when), paid_at=at(when), status=status, total_amount=Decimal(paid),
                        paid_amount=Decimal(paid), refunded_amount=Decimal(refunded))


def rows(the_order):
    """(kind, store code, guide code, amount, rule, cross-brand, correction) of its rows, oldest first."""
    return [(c.kind, c.store.code if c.store else None, c.guide.code if c.guide else None, str(c.amount), c.rule,
             c.cross_brand, c.is_correction)
            for c in SalesCredit.objects.filter(order=the_order).select_related("store", "guide").order_by("pk")]


def sums(the_order):
    """Sum per (kind, target code) of an order's credits."""
    out: dict[tuple[str, str | None], Decimal] = {}
    for c in SalesCredit.objects.filter(order=the_order).select_related("store", "guide"):
        target = c.store.code if c.kind == "store" and c.store else (c.guide.code if c.guide else None)
        out[(c.kind, target)] = out.get((c.kind, target), Decimal("0")) + c.amount
    return out


# ---------------------------------------------------------------------------- the rules


def test_offline_sale_credits_pos_store_pos_guide_selling_and_bound_guide_exclusive(org):
    member = MemberFactory(group=org.group)
    bind(org, member, org.ga3)  # bound to GA3 of store SA2
    sale = order(org, member, channel=Channel.STORE_POS, store=org.sa1, guide=org.ga1, paid="399.00")

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA1", None, "399.00", "offline_pos_store", False, False),
        ("exclusive", "SA2", "GA3", "399.00", "exclusive_bound_guide", False, False),
        ("selling", "SA1", "GA1", "399.00", "selling_named_guide", False, False),
    ]


def test_offline_sale_by_the_bound_guide_gives_only_the_exclusive_guide_credit(org):
    member = MemberFactory(group=org.group)
    bind(org, member, org.ga1)
    sale = order(org, member, channel=Channel.STORE_POS, store=org.sa1, guide=org.ga1, paid="120.50")

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA1", None, "120.50", "offline_pos_store", False, False),
        ("exclusive", "SA1", "GA1", "120.50", "exclusive_bound_guide", False, False),
    ]


def test_walk_in_pos_sale_without_member_credits_store_and_pos_guide(org):
    sale = order(org, None, channel=Channel.STORE_POS, store=org.sa2, guide=org.ga3, paid="59.90")

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA2", None, "59.90", "offline_pos_store", False, False),
        ("selling", "SA2", "GA3", "59.90", "selling_named_guide", False, False),
    ]


def test_online_sale_goes_to_the_bound_guide_and_that_guides_store(org):
    member = MemberFactory(group=org.group)
    binding = bind(org, member, org.ga3, reason=GuideBinding.Reason.SHARE_LINK)
    sale = order(org, member, channel=Channel.MINI_PROGRAM, paid="258.00")

    [result] = attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA2", None, "258.00", "online_bound_guide_store", False, False),
        ("exclusive", "SA2", "GA3", "258.00", "exclusive_bound_guide", False, False),
    ]
    exclusive = SalesCredit.objects.get(order=sale, kind="exclusive")
    assert exclusive.inputs == {
        "rule": "exclusive_bound_guide", "channel": "mini_program", "store": None, "order_guide": None,
        "binding": binding.pk, "bound_guide": "GA3", "binding_store": "SA2", "binding_reason": "share_link",
        "binding_started_at": "2024-02-20T02:00:00+00:00", "binding_cross_brand": False, "net_amount": "258.00",
    }
    assert exclusive.order_day == dt.date(2024, 3, 1)
    assert exclusive.member_id == member.pk and exclusive.brand_id == org.brand_a.pk
    assert result == AttributionResult(
        order_id=sale.pk, is_purchase=True, net_amount=Decimal("258.00"),
        credits=(CreditLine("store", org.sa2.pk, None, Decimal("258.00"), "online_bound_guide_store", False),
                 CreditLine("exclusive", org.sa2.pk, org.ga3.pk, Decimal("258.00"), "exclusive_bound_guide", False)),
        rows_written=(
            CreditLine("store", org.sa2.pk, None, Decimal("258.00"), "online_bound_guide_store", False),
            CreditLine("exclusive", org.sa2.pk, org.ga3.pk, Decimal("258.00"), "exclusive_bound_guide", False)),
    )


def test_online_sale_through_another_guides_link_credits_both_and_keeps_the_binding(org):
    member = MemberFactory(group=org.group)
    binding = bind(org, member, org.ga3)
    sale = order(org, member, channel=Channel.MINI_PROGRAM, guide=org.ga1, paid="88.80")

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA2", None, "88.80", "online_bound_guide_store", False, False),
        ("exclusive", "SA2", "GA3", "88.80", "exclusive_bound_guide", False, False),
        ("selling", "SA1", "GA1", "88.80", "selling_named_guide", False, False),
    ]
    assert list(GuideBinding.objects.filter(member=member).values_list("pk", "guide__code", "ended_at")) == [
        (binding.pk, "GA3", None)]
    selling = SalesCredit.objects.get(order=sale, kind="selling")
    assert (selling.inputs["order_guide"], selling.inputs["bound_guide"]) == ("GA1", "GA3")


def test_store_livestream_sale_goes_to_the_host_store(org):
    member = MemberFactory(group=org.group)
    bind(org, member, org.ga3)  # bound in SA2, watched SA1's stream
    sale = order(org, member, channel=Channel.STORE_LIVE, store=org.sa1, paid="199.00")

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA1", None, "199.00", "store_live_host", False, False),
        ("exclusive", "SA2", "GA3", "199.00", "exclusive_bound_guide", False, False),
    ]


def test_hq_livestream_sale_goes_to_the_bound_guides_store(org):
    member = MemberFactory(group=org.group)
    bind(org, member, org.ga1)
    sale = order(org, member, channel=Channel.HQ_LIVE, paid="599.00")

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA1", None, "599.00", "online_bound_guide_store", False, False),
        ("exclusive", "SA1", "GA1", "599.00", "exclusive_bound_guide", False, False),
    ]


@pytest.mark.parametrize("channel", [Channel.MINI_PROGRAM, Channel.COMMUNITY, Channel.DISTRIBUTION,
                                     Channel.ECOMMERCE, Channel.HQ_LIVE])
def test_unbound_online_sale_goes_to_the_hq_pool_without_guide_credit(org, channel):
    member = MemberFactory(group=org.group)
    sale = order(org, member, channel=channel, paid="45.00")

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [("store", None, None, "45.00", "online_unbound_hq_pool", False, False)]


def test_binding_started_after_the_order_does_not_count(org):
    member = MemberFactory(group=org.group)
    sale = order(org, member, when=0, paid="70.00")
    bind(org, member, org.ga1, start=0.5)

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [("store", None, None, "70.00", "online_unbound_hq_pool", False, False)]


def test_a_transferred_members_old_order_stays_with_the_old_guide(org):
    member = MemberFactory(group=org.group)
    bind(org, member, org.ga1, start=-30, end=5)
    bind(org, member, org.ga3, start=5, reason=GuideBinding.Reason.TRANSFER)
    before = order(org, member, when=2, paid="100.00")
    boundary = order(org, member, when=5, paid="20.00")  # the new binding starts exactly then
    after = order(org, member, when=9, paid="30.00")

    attribute_orders(order_ids=[before.pk, boundary.pk, after.pk])

    assert rows(before) == [
        ("store", "SA1", None, "100.00", "online_bound_guide_store", False, False),
        ("exclusive", "SA1", "GA1", "100.00", "exclusive_bound_guide", False, False),
    ]
    assert rows(boundary) == [
        ("store", "SA2", None, "20.00", "online_bound_guide_store", False, False),
        ("exclusive", "SA2", "GA3", "20.00", "exclusive_bound_guide", False, False),
    ]
    assert SalesCredit.objects.get(order=after, kind="exclusive").inputs["binding_reason"] == "transfer"


def test_refund_partial_then_full_writes_exact_negative_rows(org):
    member = MemberFactory(group=org.group)
    bind(org, member, org.ga3)
    sale = order(org, member, guide=org.ga1, paid="300.00")
    attribute_orders(order_ids=[sale.pk])

    Order.objects.filter(pk=sale.pk).update(refunded_amount=Decimal("100.00"))
    [partial] = attribute_orders(order_ids=[sale.pk])
    Order.objects.filter(pk=sale.pk).update(refunded_amount=Decimal("300.00"))
    [full] = attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA2", None, "300.00", "online_bound_guide_store", False, False),
        ("exclusive", "SA2", "GA3", "300.00", "exclusive_bound_guide", False, False),
        ("selling", "SA1", "GA1", "300.00", "selling_named_guide", False, False),
        ("store", "SA2", None, "-100.00", "online_bound_guide_store", False, True),
        ("exclusive", "SA2", "GA3", "-100.00", "exclusive_bound_guide", False, True),
        ("selling", "SA1", "GA1", "-100.00", "selling_named_guide", False, True),
        ("store", "SA2", None, "-200.00", "reversal_not_purchase", False, True),
        ("exclusive", "SA2", "GA3", "-200.00", "reversal_not_purchase", False, True),
        ("selling", "SA1", "GA1", "-200.00", "reversal_not_purchase", False, True),
    ]
    assert sums(sale) == {("store", "SA2"): Decimal("0.00"), ("exclusive", "GA3"): Decimal("0.00"),
                          ("selling", "GA1"): Decimal("0.00")}
    assert (partial.is_purchase, partial.net_amount, len(partial.rows_written)) == (True, Decimal("200.00"), 3)
    assert (full.is_purchase, full.net_amount, full.credits, len(full.rows_written)) == (
        False, Decimal("0.00"), (), 3)
    reversal = SalesCredit.objects.filter(order=sale, kind="exclusive").order_by("pk").last()
    assert reversal.inputs == {"rule": "reversal_not_purchase", "channel": "mini_program", "is_purchase": False,
                               "net_amount": "0.00",
                               "reverses": {"kind": "exclusive", "store_id": org.sa2.pk, "guide_id": org.ga3.pk}}
    assert attribute_orders(order_ids=[sale.pk])[0].rows_written == ()


def test_unpaid_and_zero_amount_orders_get_no_credit(org):
    member = MemberFactory(group=org.group)
    bind(org, member, org.ga1)
    unpaid = order(org, member, status=OrderStatus.PENDING_PAYMENT, paid="0.00")
    cancelled = order(org, member, status=OrderStatus.CANCELLED, paid="0.00")
    free = order(org, member, paid="0.00")

    results = attribute_orders(order_ids=[unpaid.pk, cancelled.pk, free.pk])

    assert [(r.order_id, r.is_purchase, r.rows_written) for r in results] == [
        (unpaid.pk, False, ()), (cancelled.pk, False, ()), (free.pk, False, ())]
    assert SalesCredit.objects.count() == 0


def test_cross_brand_credit_follows_the_guide_of_another_brand(org):
    member = MemberFactory(group=org.group)
    bind(org, member, org.gb1)  # bound only in brand B
    sale = order(org, member, brand=org.brand_a, channel=Channel.MINI_PROGRAM, paid="150.00")

    attribute_orders(order_ids=[sale.pk])

    # A store is only credited with its own brand's sales: brand A's sale stays in the HQ pool.
    assert rows(sale) == [
        ("store", None, None, "150.00", "online_unbound_hq_pool", False, False),
        ("exclusive", "SB1", "GB1", "150.00", "exclusive_cross_brand_guide", True, False),
    ]
    assert SalesCredit.objects.get(order=sale, kind="exclusive").inputs["binding_cross_brand"] is True


def test_cross_brand_picks_the_most_recently_started_open_binding(org):
    other_brand = BrandFactory(group=org.group, code="C")
    sc1 = StoreFactory(region=RegionFactory(brand=other_brand), code="SC1")
    gc1 = GuideFactory(store=sc1, code="GC1")
    member = MemberFactory(group=org.group)
    bind(org, member, org.gb1, start=-20)
    bind(org, member, gc1, start=-3)
    sale = order(org, member, brand=org.brand_a, paid="10.00")

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale)[1] == ("exclusive", "SC1", "GC1", "10.00", "exclusive_cross_brand_guide", True, False)


def test_same_brand_binding_wins_over_a_newer_cross_brand_one(org):
    member = MemberFactory(group=org.group)
    bind(org, member, org.ga1, start=-20)
    bind(org, member, org.gb1, start=-1)
    sale = order(org, member, brand=org.brand_a, guide=org.gb1, paid="10.00")

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA1", None, "10.00", "online_bound_guide_store", False, False),
        ("exclusive", "SA1", "GA1", "10.00", "exclusive_bound_guide", False, False),
        ("selling", "SB1", "GB1", "10.00", "selling_named_guide", True, False),
    ]


# ---------------------------------------------------------------------------- idempotence and re-runs


def test_rerun_writes_nothing_and_keeps_rows_and_sums(org):
    member = MemberFactory(group=org.group)
    bind(org, member, org.ga3)
    orders = [order(org, member, guide=org.ga1, paid="100.00", when=1),
              order(org, None, channel=Channel.STORE_POS, store=org.sa1, guide=org.ga2, paid="35.50", when=2),
              order(org, MemberFactory(group=org.group), paid="12.00", when=3)]
    ids = [o.pk for o in orders]
    attribute_orders(order_ids=ids)
    before = list(SalesCredit.objects.order_by("pk").values_list("order_id", "kind", "store_id", "guide_id",
                                                                  "amount", "rule"))

    again = attribute_orders(order_ids=ids)
    ranged = attribute_range(brand_id=org.brand_a.pk, date_from=dt.date(2024, 3, 1), date_to=dt.date(2024, 3, 31))

    assert [r.rows_written for r in again] == [(), (), ()]
    assert (ranged.orders, ranged.purchases, ranged.rows_written) == (3, 3, 0)
    assert len(before) == 3 + 2 + 1
    assert list(SalesCredit.objects.order_by("pk").values_list("order_id", "kind", "store_id", "guide_id",
                                                                "amount", "rule")) == before


def test_rerun_after_a_binding_correction_reverses_the_old_target_and_credits_the_new_one(org):
    member = MemberFactory(group=org.group)
    binding = bind(org, member, org.ga3)
    sale = order(org, member, paid="80.00")
    attribute_orders(order_ids=[sale.pk])

    # The binding was recorded against the wrong guide: it is corrected to GA1 (store SA1).
    GuideBinding.objects.filter(pk=binding.pk).update(guide=org.ga1, store=org.sa1)
    result = attribute_range(brand_id=org.brand_a.pk, date_from=dt.date(2024, 3, 1), date_to=dt.date(2024, 3, 1))

    assert result.rows_written == 4
    assert rows(sale) == [
        ("store", "SA2", None, "80.00", "online_bound_guide_store", False, False),
        ("exclusive", "SA2", "GA3", "80.00", "exclusive_bound_guide", False, False),
        ("store", "SA1", None, "80.00", "online_bound_guide_store", False, True),
        ("exclusive", "SA1", "GA1", "80.00", "exclusive_bound_guide", False, True),
        ("store", "SA2", None, "-80.00", "reversal_target_changed", False, True),
        ("exclusive", "SA2", "GA3", "-80.00", "reversal_target_changed", False, True),
    ]
    assert sums(sale) == {("store", "SA2"): Decimal("0.00"), ("store", "SA1"): Decimal("80.00"),
                          ("exclusive", "GA3"): Decimal("0.00"), ("exclusive", "GA1"): Decimal("80.00")}
    assert attribute_range(brand_id=org.brand_a.pk, date_from=dt.date(2024, 3, 1),
                           date_to=dt.date(2024, 3, 1)).rows_written == 0


def test_range_rerun_is_limited_to_one_brand_and_its_local_days(org):
    member = MemberFactory(group=org.group)
    bind(org, member, org.ga1)
    bind(org, member, org.gb1)
    # 2024-03-01 15:59 UTC is 23:59 on 1 March in Shanghai; 16:00 UTC is already 2 March.
    last_minute = OrderFactory(brand=org.brand_a, member=member, channel=Channel.MINI_PROGRAM,
                               ordered_at=dt.datetime(2024, 3, 1, 15, 59, tzinfo=dt.UTC))
    next_day = OrderFactory(brand=org.brand_a, member=member, channel=Channel.MINI_PROGRAM,
                            ordered_at=dt.datetime(2024, 3, 1, 16, 0, tzinfo=dt.UTC))
    other_brand = OrderFactory(brand=org.brand_b, member=member, channel=Channel.MINI_PROGRAM,
                               ordered_at=dt.datetime(2024, 3, 1, 8, 0, tzinfo=dt.UTC))

    result = attribute_range(brand_id=org.brand_a.pk, date_from=dt.date(2024, 2, 1), date_to=dt.date(2024, 3, 1))

    assert (result.orders, result.purchases, result.rows_written) == (1, 1, 2)
    assert rows(last_minute) == [
        ("store", "SA1", None, "100.00", "online_bound_guide_store", False, False),
        ("exclusive", "SA1", "GA1", "100.00", "exclusive_bound_guide", False, False),
    ]
    assert SalesCredit.objects.get(order=last_minute, kind="store").order_day == dt.date(2024, 3, 1)
    assert rows(next_day) == [] and rows(other_brand) == []
    attribute_orders(order_ids=[next_day.pk])
    assert SalesCredit.objects.get(order=next_day, kind="store").order_day == dt.date(2024, 3, 2)


def test_sweep_attributes_missed_payments_and_refunds_since(org):
    member = MemberFactory(group=org.group)
    bind(org, member, org.ga1)
    now = timezone.now()
    missed = OrderFactory(brand=org.brand_a, member=member, channel=Channel.MINI_PROGRAM, ordered_at=at(0),
                          paid_at=now - dt.timedelta(hours=3), paid_amount=Decimal("60.00"))
    old_unattributed = order(org, member, when=1, paid="40.00")  # paid long before `since`, never attributed
    refunded_later = order(org, member, when=2, paid="90.00")
    untouched = order(org, member, when=3, paid="25.00")
    attribute_orders(order_ids=[refunded_later.pk, untouched.pk])
    Order.objects.filter(pk=refunded_later.pk).update(refunded_amount=Decimal("30.00"))

    result = attribute_sweep(since=now - dt.timedelta(days=1))

    assert (result.orders, result.rows_written) == (3, 2 + 2 + 2)
    assert sums(missed) == {("store", "SA1"): Decimal("60.00"), ("exclusive", "GA1"): Decimal("60.00")}
    assert sums(old_unattributed) == {("store", "SA1"): Decimal("40.00"), ("exclusive", "GA1"): Decimal("40.00")}
    assert sums(refunded_later) == {("store", "SA1"): Decimal("60.00"), ("exclusive", "GA1"): Decimal("60.00")}
    assert len(rows(untouched)) == 2
    assert attribute_sweep(since=now - dt.timedelta(days=1)).rows_written == 0


def test_imported_pos_orders_are_attributed(org):
    member = MemberFactory(group=org.group, code="MEM1")
    bind(org, member, org.ga3)
    lines = [
        {"order_no": "P1", "ordered_at": "2024-03-05T14:00:00", "channel": "store_pos", "store_code": "SA1",
         "guide_code": "GA1", "member_code": "MEM1", "member_phone": "", "sku_code": "", "quantity": "1",
         "unit_price": "200.00", "paid_amount": "200.00", "refunded_amount": "50.00"},
        {"order_no": "P1", "ordered_at": "2024-03-05T14:00:00", "channel": "store_pos", "store_code": "SA1",
         "guide_code": "GA1", "member_code": "MEM1", "member_phone": "", "sku_code": "", "quantity": "2",
         "unit_price": "30.00", "paid_amount": "60.00", "refunded_amount": ""},
    ]
    assert set(lines[0]) == set(ORDER_COLUMNS)
    imported = order_import(brand=org.brand_a, rows=enumerate(lines, start=2))
    assert imported.report.errors == []

    attribute_orders(order_ids=imported.order_ids)

    sale = Order.objects.get(order_no="P1")
    assert rows(sale) == [
        ("store", "SA1", None, "210.00", "offline_pos_store", False, False),
        ("exclusive", "SA2", "GA3", "210.00", "exclusive_bound_guide", False, False),
        ("selling", "SA1", "GA1", "210.00", "selling_named_guide", False, False),
    ]


def test_enqueue_on_commit_attributes_after_the_transaction(org, django_capture_on_commit_callbacks):
    member = MemberFactory(group=org.group)
    bind(org, member, org.ga2)
    sale = order(org, member, paid="15.00")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        attribution_enqueue_on_commit(sale.pk)
        assert SalesCredit.objects.count() == 0  # nothing before commit

    assert len(callbacks) == 1
    assert sums(sale) == {("store", "SA1"): Decimal("15.00"), ("exclusive", "GA2"): Decimal("15.00")}


def test_attribute_all_covers_every_brand_or_one(org):
    member = MemberFactory(group=org.group)
    bind(org, member, org.ga1)
    bind(org, member, org.gb1)
    in_a = order(org, member, when=0, paid="10.00")
    later_a = order(org, member, when=40, paid="11.00")
    in_b = order(org, member, brand=org.brand_b, when=3, paid="12.00")

    only_b = attribute_all(brand_id=org.brand_b.pk)
    everything = attribute_all()

    assert (only_b.orders, only_b.rows_written) == (1, 2)
    assert (everything.orders, everything.rows_written) == (3, 4)
    assert sums(in_a) == {("store", "SA1"): Decimal("10.00"), ("exclusive", "GA1"): Decimal("10.00")}
    assert sums(later_a) == {("store", "SA1"): Decimal("11.00"), ("exclusive", "GA1"): Decimal("11.00")}
    assert sums(in_b) == {("store", "SB1"): Decimal("12.00"), ("exclusive", "GB1"): Decimal("12.00")}
