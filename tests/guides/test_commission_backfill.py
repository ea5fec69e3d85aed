"""guides.commission: the set-based build for history (exact rows, range, idempotent, constant queries) and
all-staff distribution (office staff's share links earn commission from the order, refunds reverse it)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from attribution.models import AttributionSettings, SalesCredit
from attribution.services import attribute_orders
from guides.commission import commission_build_for_range, commission_post_for_credits
from guides.models import CommissionEntry, CommissionRule, Share
from guides.services import guide_token_issue
from mall.models import MallSettings
from tests.factories import BrandFactory, GuideFactory, StoreFactory, staff_user
from tests.factories_payments import paid_ready_order

pytestmark = pytest.mark.django_db
D = Decimal
DAY = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)  # 18:00 in Shanghai: local day 2026-03-02


def credit(order, kind, amount, guide=None, store=None):
    return SalesCredit.objects.create(order=order, kind=kind, brand=order.brand, guide=guide, store=store,
                                      amount=D(amount), order_day=timezone.localdate(order.ordered_at),
                                      channel=order.channel, rule="test")


def shop(brand=None):
    """A brand with a 10-day return window and rules: 3% brand-wide, 5% mini-program, POS 0%, 4% dress online."""
    store = StoreFactory(region__brand=brand) if brand else StoreFactory()
    MallSettings.objects.create(brand=store.brand, return_days=10)
    for category, channel, rate in (("", "", "0.0300"), ("", "mini_program", "0.0500"), ("", "store_pos", "0"),
                                    ("dress", "community", "0.0400")):
        CommissionRule.objects.create(brand=store.brand, category=category, channel=channel, rate=D(rate))
    return store


def order(store, channel="mini_program", at=DAY, **fields):
    example = paid_ready_order(brand=store.brand, status="paid", ordered_at=at)
    for name, value in {"channel": channel, **fields}.items():
        setattr(example.order, name, value)
    example.order.save()
    return example.order


def ledger():
    return list(CommissionEntry.objects.order_by("pk").values_list(
        "guide_id", "staff_user_id", "kind", "amount", "rate", "order_id", "available_at"))


# ---------------------------------------------------------------------------- set-based build

@pytest.fixture
def history():
    store = shop()
    ann, ben = GuideFactory(store=store), GuideFactory(store=store)
    online = order(store)                                          # mini-program 5%
    pos = order(store, channel="store_pos")                        # 0%: no commission
    community = order(store, channel="community", at=DAY + dt.timedelta(days=5),
                      delivered_at=DAY + dt.timedelta(days=7))     # dress (first line) + community: 4%
    credit(online, "store", "437.00", store=store)
    credit(online, "exclusive", "437.00", guide=ann)
    credit(online, "selling", "437.00", guide=ben)                 # selling does not earn by default
    credit(online, "exclusive", "-87.04", guide=ann)               # a refund's negative row
    credit(pos, "exclusive", "437.00", guide=ann)
    credit(community, "exclusive", "250.00", guide=ben)
    return store, ann, ben, online, pos, community


def test_the_build_writes_exactly_the_rows_the_credits_call_for(history):
    store, ann, ben, online, pos, community = history

    result = commission_build_for_range()

    due = DAY + dt.timedelta(days=10)
    # 437.00 × 5% = 21.85; −87.04 × 5% = −4.352 → −4.35; 250.00 × 4% = 10.00 (delivered on day 7 → due day 17).
    assert ledger() == [
        (ann.pk, None, "earn", D("21.85"), D("0.0500"), online.pk, due),
        (ann.pk, None, "reversal", D("-4.35"), D("0.0500"), online.pk, due),
        (ben.pk, None, "earn", D("10.00"), D("0.0400"), community.pk, DAY + dt.timedelta(days=17)),
    ]
    # Four exclusive rows lacked an entry (the POS one stays without: its rate is 0).
    assert (result.credits_considered, result.entries_written, result.staff_entries_written) == (4, 3, 0)


def test_a_second_build_writes_nothing_and_the_per_order_path_agrees(history):
    commission_build_for_range()
    before = ledger()

    again = commission_build_for_range()

    assert (again.credits_considered, again.entries_written) == (1, 0)  # only the 0% POS row is looked at
    assert ledger() == before
    for one in history[3:]:
        assert commission_post_for_credits(order=one) == []
    assert ledger() == before


def test_a_range_builds_only_its_order_days_and_brand(history):
    store, ann, ben, online, pos, community = history
    other = shop()
    elsewhere = order(other)
    credit(elsewhere, "exclusive", "100.00", guide=GuideFactory(store=other))

    first = commission_build_for_range(brand_id=store.brand.pk, date_from=dt.date(2026, 3, 1),
                                       date_to=dt.date(2026, 3, 2))

    assert first.entries_written == 2
    assert {row[5] for row in ledger()} == {online.pk}
    rest = commission_build_for_range()
    assert rest.entries_written == 2  # the community order (day 7) and the other brand's order
    assert {row[5] for row in ledger()} == {online.pk, community.pk, elsewhere.pk}


def test_brand_settings_decide_which_credit_kinds_earn(history):
    store, ann, ben, online, pos, community = history
    AttributionSettings.objects.create(brand=store.brand, exclusive_earns_commission=False,
                                       selling_earns_commission=True)

    commission_build_for_range()

    assert [(r[0], r[2], r[3]) for r in ledger()] == [(ben.pk, "earn", D("21.85"))]


def test_the_build_takes_the_same_queries_for_more_orders(history):
    store, ann = history[0], history[1]
    with CaptureQueriesContext(connection) as few:
        commission_build_for_range()
    CommissionEntry.objects.all().delete()
    for _ in range(5):
        credit(order(store), "exclusive", "100.00", guide=ann)
    with CaptureQueriesContext(connection) as many:
        result = commission_build_for_range()
    assert result.entries_written == 8
    assert len(many.captured_queries) == len(few.captured_queries)


# ---------------------------------------------------------------------------- all-staff distribution

@pytest.fixture
def office():
    store = shop()
    user = staff_user("brand_operator", brand=store.brand)
    return store, user, guide_token_issue(staff_user=user)


def test_attribution_credits_nobody_for_an_office_staff_share(office):
    """Why commission_post_for_staff_shares exists: the order names no guide and SalesCredit has no staff
    target, so the office sharer gets no credit row."""
    store, user, token = office
    shared = order(store, share_token=token.token)

    attribute_orders(order_ids=[shared.pk])

    assert list(SalesCredit.objects.filter(order=shared).values_list("kind", flat=True)) == ["store"]


def test_an_office_staff_share_earns_and_refunds_reverse_it(office):
    store, user, token = office
    shared = order(store, share_token=token.token)
    order(store, share_token=guide_token_issue(guide=GuideFactory(store=store)).token)  # a guide's: not here

    posted = commission_post_for_credits(order=shared)  # what attribute_order runs after attribution

    due = DAY + dt.timedelta(days=10)
    assert [(e.staff_user_id, e.kind, e.amount) for e in posted] == [(user.pk, "earn", D("21.85"))]
    assert commission_post_for_credits(order=shared) == []
    assert commission_build_for_range().staff_entries_written == 0

    # A partial refund: net 349.96 × 5% = 17.498 → 17.50, so −4.35; the rate of the earning sticks.
    CommissionRule.objects.filter(brand=store.brand, channel="mini_program").update(rate=D("0.2000"))
    shared.refunded_amount = D("87.04")
    shared.save(update_fields=["refunded_amount"])
    assert commission_build_for_range().staff_entries_written == 1
    # Then the rest: nothing left to earn, so the remaining 17.50 is reversed.
    shared.refunded_amount = D("437.00")
    shared.save(update_fields=["refunded_amount"])
    commission_post_for_credits(order=shared)

    assert ledger() == [(None, user.pk, "earn", D("21.85"), D("0.0500"), shared.pk, due),
                        (None, user.pk, "reversal", D("-4.35"), D("0.0500"), shared.pk, due),
                        (None, user.pk, "reversal", D("-17.50"), D("0.0500"), shared.pk, due)]


def test_a_share_code_of_office_staff_earns_too_and_unpaid_orders_do_not(office):
    store, user, token = office
    share = Share.objects.create(code="S-OFFICE-1", group=store.brand.group, guide_token=token, staff_user=user,
                                 brand=store.brand, target=Share.Target.MALL)
    shared = order(store, share_token=share.code)
    unpaid = order(store, share_token=token.token, status="pending_payment", paid_amount=D("0.00"), paid_at=None)

    result = commission_build_for_range()

    assert (result.staff_orders_considered, result.staff_entries_written) == (2, 1)
    assert [(r[1], r[2], r[3], r[5]) for r in ledger()] == [(user.pk, "earn", D("21.85"), shared.pk)]
    assert unpaid.pk not in {r[5] for r in ledger()}


def test_no_rule_means_no_staff_commission(office):
    store, user, token = office
    bare = StoreFactory(region__brand=BrandFactory(group=store.brand.group))
    order(bare, share_token=token.token)

    assert commission_build_for_range().staff_entries_written == 0
    assert ledger() == []


def test_the_nightly_task_catches_up_credits_written_lately(history):
    from guides.tasks import commission_build_recent

    store, ann, ben, online, pos, community = history
    SalesCredit.objects.filter(order=community).update(booked_at=timezone.now() - dt.timedelta(days=3))

    assert commission_build_recent.delay().get()["entries_written"] == 2  # the online order's two rows
    assert {row[5] for row in ledger()} == {online.pk}
    assert commission_build_recent.delay(hours=24 * 4).get()["entries_written"] == 1
    assert commission_build_recent.delay(hours=24 * 4).get()["entries_written"] == 0
