"""attribution.services for livestream sales: store sessions (the "N") and HQ central sessions (the "1").

The organisation (one group, two brands):

    brand A: store SA1 with guides GA1, GA2; store SA2 with guide GA3
    brand B: store SB1 with guide GB1

Store session S1 is hosted by SA1 with host guide GA2; HQ central session H1 has no host store.
Every test lists the exact rows the engine must have written (kind, store, guide, amount, rule,
cross-brand, correction), oldest first; amounts are worked out by hand.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import translation

from attribution.models import SalesCredit
from attribution.selectors import credit_reason
from attribution.services import attribute_orders, attribute_range
from livestream.models import LiveSession
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

T0 = dt.datetime(2024, 3, 1, 11, 0, tzinfo=dt.UTC)  # 19:00 in Shanghai, local day 2024-03-01


def at(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


class LiveOrg:
    """The organisation of the module docstring with its two sessions."""

    def __init__(self):
        self.group = RetailGroupFactory()
        self.brand_a = BrandFactory(group=self.group, code="A")
        self.brand_b = BrandFactory(group=self.group, code="B")
        region_a = RegionFactory(brand=self.brand_a)
        self.sa1 = StoreFactory(region=region_a, code="SA1")
        self.sa2 = StoreFactory(region=region_a, code="SA2")
        self.sb1 = StoreFactory(region=RegionFactory(brand=self.brand_b), code="SB1")
        self.ga1 = GuideFactory(store=self.sa1, code="GA1")
        self.ga2 = GuideFactory(store=self.sa1, code="GA2")
        self.ga3 = GuideFactory(store=self.sa2, code="GA3")
        self.gb1 = GuideFactory(store=self.sb1, code="GB1")
        self.h1 = LiveSession.objects.create(
            brand=self.brand_a, kind=LiveSession.Kind.HQ_CENTRAL, title="H1", status=LiveSession.Status.ENDED,
            planned_start=at(0), planned_end=at(0.1), actual_start=at(0), actual_end=at(0.1))
        self.s1 = LiveSession.objects.create(
            brand=self.brand_a, kind=LiveSession.Kind.STORE, title="S1", host_store=self.sa1, host_guide=self.ga2,
            follows=self.h1, status=LiveSession.Status.ENDED, planned_start=at(0), planned_end=at(0.1),
            actual_start=at(0), actual_end=at(0.1))


@pytest.fixture
def org():
    return LiveOrg()


def bind(member, guide, *, start=-10):
    return GuideBindingFactory(member=member, guide=guide, started_at=at(start), reason=GuideBinding.Reason.QR_SCAN)


def live_order(org, member, *, session, channel=None, store="host", guide=None, paid="100.00", refunded="0.00"):
    """An order placed from ``session``: channel and store as checkout sets them (``store=None`` leaves it empty)."""
    if channel is None:
        channel = Channel.STORE_LIVE if session.kind == LiveSession.Kind.STORE else Channel.HQ_LIVE
    if store == "host":
        store = session.host_store
    return OrderFactory(brand=org.brand_a, member=member, channel=channel, store=store, guide=guide,
                        live_session=session, ordered_at=at(0.05), paid_at=at(0.05), status=OrderStatus.PAID,
                        total_amount=Decimal(paid), paid_amount=Decimal(paid), refunded_amount=Decimal(refunded))


def rows(the_order):
    """(kind, store code, guide code, amount, rule, cross-brand, correction) of its rows, oldest first."""
    return [(c.kind, c.store.code if c.store else None, c.guide.code if c.guide else None, str(c.amount), c.rule,
             c.cross_brand, c.is_correction)
            for c in SalesCredit.objects.filter(order=the_order).select_related("store", "guide").order_by("pk")]


# ---------------------------------------------------------------------------- store sessions

def test_member_of_a_host_store_guide_credits_that_guide_and_not_the_host(org):
    member = MemberFactory(group=org.group)
    bind(member, org.ga1)  # GA1 works in SA1, the host store
    sale = live_order(org, member, session=org.s1, paid="199.00")

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA1", None, "199.00", "store_live_host", False, False),
        ("exclusive", "SA1", "GA1", "199.00", "exclusive_bound_guide", False, False),
    ]


def test_member_of_another_stores_guide_keeps_the_exclusive_credit_and_the_host_guide_gets_selling(org):
    member = MemberFactory(group=org.group)
    binding = bind(member, org.ga3)  # GA3 works in SA2, not the host store
    sale = live_order(org, member, session=org.s1, paid="258.00")

    [result] = attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA1", None, "258.00", "store_live_host", False, False),
        ("exclusive", "SA2", "GA3", "258.00", "exclusive_bound_guide", False, False),
        ("selling", "SA1", "GA2", "258.00", "store_live_host_guide", False, False),
    ]
    assert [(c.kind, c.guide_id, c.amount, c.rule) for c in result.credits] == [
        ("store", None, Decimal("258.00"), "store_live_host"),
        ("exclusive", org.ga3.pk, Decimal("258.00"), "exclusive_bound_guide"),
        ("selling", org.ga2.pk, Decimal("258.00"), "store_live_host_guide"),
    ]
    selling = SalesCredit.objects.get(order=sale, kind="selling")
    assert selling.inputs == {
        "rule": "store_live_host_guide", "channel": "store_live", "store": "SA1", "order_guide": None,
        "binding": binding.pk, "bound_guide": "GA3", "binding_store": "SA2", "binding_reason": "qr_scan",
        "binding_started_at": "2024-02-20T11:00:00+00:00", "binding_cross_brand": False, "net_amount": "258.00",
        "live_session": {"id": org.s1.pk, "kind": "store", "host_store": "SA1", "host_guide": "GA2"},
    }
    with translation.override("en"):
        assert credit_reason(selling.rule, selling.inputs) == (
            "Bought in store SA1's livestream hosted by GA2; the member's own guide (GA3) is not of that store: "
            "selling credit to the host.")


def test_member_without_a_guide_credits_the_host_store_and_the_host_guide(org):
    member = MemberFactory(group=org.group)
    sale = live_order(org, member, session=org.s1, paid="88.80")

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA1", None, "88.80", "store_live_host", False, False),
        ("selling", "SA1", "GA2", "88.80", "store_live_host_guide", False, False),
    ]


def test_order_without_a_store_takes_the_sessions_host_store(org):
    member = MemberFactory(group=org.group)
    bind(member, org.ga1)
    sale = live_order(org, member, session=org.s1, store=None, paid="45.50")

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA1", None, "45.50", "store_live_host", False, False),
        ("exclusive", "SA1", "GA1", "45.50", "exclusive_bound_guide", False, False),
    ]
    store_credit = SalesCredit.objects.get(order=sale, kind="store")
    assert (store_credit.inputs["store"], store_credit.inputs["live_session"]["host_store"]) == (None, "SA1")
    with translation.override("en"):
        assert credit_reason(store_credit.rule, store_credit.inputs) == (
            "Bought in store SA1's livestream: the sale belongs to the host store.")


def test_the_host_guide_takes_the_place_of_a_share_link_guide_from_another_store(org):
    member = MemberFactory(group=org.group)
    sale = live_order(org, member, session=org.s1, guide=org.ga3, paid="300.00")  # GA3 (SA2) shared the link

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA1", None, "300.00", "store_live_host", False, False),
        ("selling", "SA1", "GA2", "300.00", "store_live_host_guide", False, False),
    ]


def test_a_colleagues_share_link_keeps_its_selling_credit_when_the_bound_guide_is_of_the_host_store(org):
    member = MemberFactory(group=org.group)
    bind(member, org.ga1)
    sale = live_order(org, member, session=org.s1, guide=org.ga2, paid="120.00")  # the host shared the link

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA1", None, "120.00", "store_live_host", False, False),
        ("exclusive", "SA1", "GA1", "120.00", "exclusive_bound_guide", False, False),
        ("selling", "SA1", "GA2", "120.00", "selling_named_guide", False, False),
    ]


def test_the_host_guides_own_member_gives_only_the_exclusive_credit(org):
    member = MemberFactory(group=org.group)
    bind(member, org.ga2)
    sale = live_order(org, member, session=org.s1, paid="66.00")

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA1", None, "66.00", "store_live_host", False, False),
        ("exclusive", "SA1", "GA2", "66.00", "exclusive_bound_guide", False, False),
    ]


def test_a_cross_brand_guide_keeps_the_exclusive_credit_and_the_host_guide_gets_selling(org):
    member = MemberFactory(group=org.group)
    bind(member, org.gb1)  # only a brand-B guide: credit follows them across brands
    sale = live_order(org, member, session=org.s1, paid="150.00")

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA1", None, "150.00", "store_live_host", False, False),
        ("exclusive", "SB1", "GB1", "150.00", "exclusive_cross_brand_guide", True, False),
        ("selling", "SA1", "GA2", "150.00", "store_live_host_guide", False, False),
    ]


def test_a_session_without_a_host_guide_credits_no_host(org):
    org.s1.host_guide = None
    org.s1.save(update_fields=["host_guide"])
    member = MemberFactory(group=org.group)
    bind(member, org.ga3)
    sale = live_order(org, member, session=org.s1, paid="99.00")

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA1", None, "99.00", "store_live_host", False, False),
        ("exclusive", "SA2", "GA3", "99.00", "exclusive_bound_guide", False, False),
    ]


def test_refunds_take_the_host_guides_credit_back_with_the_same_rule_then_reverse_it(org):
    member = MemberFactory(group=org.group)
    bind(member, org.ga3)
    sale = live_order(org, member, session=org.s1, paid="300.00")
    attribute_orders(order_ids=[sale.pk])

    Order.objects.filter(pk=sale.pk).update(refunded_amount=Decimal("100.00"))
    attribute_orders(order_ids=[sale.pk])
    Order.objects.filter(pk=sale.pk).update(refunded_amount=Decimal("300.00"))
    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA1", None, "300.00", "store_live_host", False, False),
        ("exclusive", "SA2", "GA3", "300.00", "exclusive_bound_guide", False, False),
        ("selling", "SA1", "GA2", "300.00", "store_live_host_guide", False, False),
        ("store", "SA1", None, "-100.00", "store_live_host", False, True),
        ("exclusive", "SA2", "GA3", "-100.00", "exclusive_bound_guide", False, True),
        ("selling", "SA1", "GA2", "-100.00", "store_live_host_guide", False, True),
        ("store", "SA1", None, "-200.00", "reversal_not_purchase", False, True),
        ("exclusive", "SA2", "GA3", "-200.00", "reversal_not_purchase", False, True),
        ("selling", "SA1", "GA2", "-200.00", "reversal_not_purchase", False, True),
    ]
    assert attribute_orders(order_ids=[sale.pk])[0].rows_written == ()


def test_a_binding_corrected_to_a_host_store_guide_moves_the_guide_credit_on_rerun(org):
    member = MemberFactory(group=org.group)
    sale = live_order(org, member, session=org.s1, paid="80.00")
    attribute_orders(order_ids=[sale.pk])

    bind(member, org.ga1)  # the member had in fact scanned GA1's code before the stream
    result = attribute_range(brand_id=org.brand_a.pk, date_from=dt.date(2024, 3, 1), date_to=dt.date(2024, 3, 1))

    assert result.rows_written == 2
    assert rows(sale) == [
        ("store", "SA1", None, "80.00", "store_live_host", False, False),
        ("selling", "SA1", "GA2", "80.00", "store_live_host_guide", False, False),
        ("exclusive", "SA1", "GA1", "80.00", "exclusive_bound_guide", False, True),
        ("selling", "SA1", "GA2", "-80.00", "reversal_target_changed", False, True),
    ]
    assert attribute_range(brand_id=org.brand_a.pk, date_from=dt.date(2024, 3, 1),
                           date_to=dt.date(2024, 3, 1)).rows_written == 0


def test_a_store_live_order_without_store_or_session_is_an_online_sale(org):
    member = MemberFactory(group=org.group)
    bind(member, org.ga3)
    sale = OrderFactory(brand=org.brand_a, member=member, channel=Channel.STORE_LIVE, ordered_at=at(0.05),
                        paid_at=at(0.05), total_amount=Decimal("50.00"), paid_amount=Decimal("50.00"))

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA2", None, "50.00", "online_bound_guide_store", False, False),
        ("exclusive", "SA2", "GA3", "50.00", "exclusive_bound_guide", False, False),
    ]


# ---------------------------------------------------------------------------- HQ central sessions

def test_hq_central_sale_goes_to_the_bound_guide_and_that_guides_store(org):
    member = MemberFactory(group=org.group)
    bind(member, org.ga3)
    sale = live_order(org, member, session=org.h1, paid="599.00")

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA2", None, "599.00", "online_bound_guide_store", False, False),
        ("exclusive", "SA2", "GA3", "599.00", "exclusive_bound_guide", False, False),
    ]
    assert SalesCredit.objects.get(order=sale, kind="store").inputs["live_session"] == {
        "id": org.h1.pk, "kind": "hq_central", "host_store": None, "host_guide": None}


def test_hq_central_sale_through_a_guides_link_credits_the_link_guide_too(org):
    member = MemberFactory(group=org.group)
    bind(member, org.ga3)
    # Checkout puts the sharing guide's store on the order; an HQ sale still goes to the bound guide's store.
    sale = live_order(org, member, session=org.h1, store=org.sa1, guide=org.ga1, paid="399.00")

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", "SA2", None, "399.00", "online_bound_guide_store", False, False),
        ("exclusive", "SA2", "GA3", "399.00", "exclusive_bound_guide", False, False),
        ("selling", "SA1", "GA1", "399.00", "selling_named_guide", False, False),
    ]


def test_hq_central_sale_of_a_member_without_a_guide_goes_to_the_hq_pool(org):
    member = MemberFactory(group=org.group)
    sale = live_order(org, member, session=org.h1, paid="45.00")

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [("store", None, None, "45.00", "online_unbound_hq_pool", False, False)]


def test_hq_central_sale_follows_a_cross_brand_guide_but_not_to_their_store(org):
    member = MemberFactory(group=org.group)
    bind(member, org.gb1)
    sale = live_order(org, member, session=org.h1, paid="210.00")

    attribute_orders(order_ids=[sale.pk])

    assert rows(sale) == [
        ("store", None, None, "210.00", "online_unbound_hq_pool", False, False),
        ("exclusive", "SB1", "GB1", "210.00", "exclusive_cross_brand_guide", True, False),
    ]


def test_store_and_hq_sales_in_one_run_each_get_their_own_rules(org):
    m1, m2 = MemberFactory(group=org.group), MemberFactory(group=org.group)
    bind(m1, org.ga3)
    bind(m2, org.ga3)
    store_sale = live_order(org, m1, session=org.s1, paid="10.00")
    hq_sale = live_order(org, m2, session=org.h1, paid="20.00")

    results = attribute_orders(order_ids=[store_sale.pk, hq_sale.pk])

    assert [len(r.rows_written) for r in results] == [3, 2]
    assert rows(store_sale) == [
        ("store", "SA1", None, "10.00", "store_live_host", False, False),
        ("exclusive", "SA2", "GA3", "10.00", "exclusive_bound_guide", False, False),
        ("selling", "SA1", "GA2", "10.00", "store_live_host_guide", False, False),
    ]
    assert rows(hq_sale) == [
        ("store", "SA2", None, "20.00", "online_bound_guide_store", False, False),
        ("exclusive", "SA2", "GA3", "20.00", "exclusive_bound_guide", False, False),
    ]
