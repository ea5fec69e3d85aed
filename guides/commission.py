"""Commission (分佣) from sales credits: one ledger row per credit row that earns commission.

Attribution books credits as append-only rows (a refund adds a negative row);
this turns each such row of a guide credit kind that earns commission (per the
brand's AttributionSettings: exclusive yes, selling no by default) into one
CommissionEntry: an earning for a positive row, a reversal for a negative one.

The rate is the most specific active CommissionRule of the order's brand:
category and channel > category > channel > brand-wide. The category is the
product category of the order's first line (lowest line id): a mall order is of
one brand, and its commission is judged by the item it was built around; a
mixed-category order therefore takes the rate of its first line's category.

An entry becomes available at the end of the return window: the order's
delivery (or, before delivery, its payment) plus MallSettings.return_days.
The unique key (credit, kind) makes posting idempotent: run it again, after
every attribution, from any number of workers, and nothing is paid twice.

``commission_build_for_range`` does the same for many credits at once (the
backfill), and office staff's share links (all-staff distribution) are paid
from the order itself: see the section at the end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from guides.models import CommissionEntry, CommissionRule

CENT = Decimal("0.01")


def commission_rule_for(*, brand_id: int, category: str, channel: str) -> CommissionRule | None:
    """The most specific active rule for a category and channel of a brand (None: no commission)."""
    rules = {(r.category, r.channel): r for r in CommissionRule.objects.filter(
        brand_id=brand_id, is_active=True, category__in={category, ""}, channel__in={channel, ""})}
    for key in ((category, channel), (category, ""), ("", channel), ("", "")):
        if key in rules and (key[0] == "" or category) and (key[1] == "" or channel):
            return rules[key]
    return None


def _commission_kinds(brand_id: int) -> list[str]:
    from attribution.models import AttributionSettings, SalesCredit

    settings_ = AttributionSettings.objects.filter(brand_id=brand_id).first() or AttributionSettings()
    kinds = []
    if settings_.exclusive_earns_commission:
        kinds.append(SalesCredit.Kind.EXCLUSIVE)
    if settings_.selling_earns_commission:
        kinds.append(SalesCredit.Kind.SELLING)
    return kinds


@transaction.atomic
def commission_post_for_credits(*, order) -> list[CommissionEntry]:
    """Post the commission entries the order's credit rows call for and do not have yet.

    Also brings an office-staff sharer's distribution commission up to date
    (see "all-staff distribution" below) when the order came through such a link.
    Returns the entries it posted (rows another worker posted first are dropped by the unique key).
    """
    entries = _post_for_guide_credits(order=order)
    if order.share_token:
        entries += commission_post_for_staff_shares(order_ids=[order.pk]).entries
    return entries


def _post_for_guide_credits(*, order) -> list[CommissionEntry]:
    from attribution.models import SalesCredit
    from mall.checkout import mall_settings_for
    from mall.models import OrderLine

    kinds = _commission_kinds(order.brand_id)
    if not kinds:
        return []
    credits = list(SalesCredit.objects.filter(order_id=order.pk, kind__in=kinds, guide__isnull=False)
                   .exclude(commission_entries__isnull=False).order_by("pk"))
    if not credits:
        return []
    category = (OrderLine.objects.filter(order_id=order.pk).order_by("pk")
                .values_list("sku__product__category", flat=True).first()) or ""
    rule = commission_rule_for(brand_id=order.brand_id, category=category, channel=order.channel)
    if rule is None or rule.rate == 0:
        return []
    basis = order.delivered_at or order.paid_at or timezone.now()
    available_at = basis + dt.timedelta(days=mall_settings_for(order.brand_id).return_days)
    entries = []
    for credit in credits:
        amount = (credit.amount * rule.rate).quantize(CENT, rounding=ROUND_HALF_UP)
        if amount == 0:
            continue
        entries.append(CommissionEntry(
            guide_id=credit.guide_id, brand_id=credit.brand_id, order_id=order.pk, credit=credit, rate=rule.rate,
            kind=CommissionEntry.Kind.EARN if amount > 0 else CommissionEntry.Kind.REVERSAL, amount=amount,
            available_at=available_at, note=f"{order.order_no} {credit.kind} {credit.rule}"[:200]))
    # Another worker may have posted the same credit rows meanwhile: the unique key drops the duplicates.
    CommissionEntry.objects.bulk_create(entries, ignore_conflicts=True)
    return entries


# ---------------------------------------------------------------------------- set-based build and backfill

@dataclass(frozen=True)
class CommissionBuildResult:
    """What a set-based build wrote: entries from guide credits and from office-staff shares."""

    credits_considered: int = 0
    entries_written: int = 0
    staff_orders_considered: int = 0
    staff_entries_written: int = 0


@dataclass
class _RuleBook:
    """Every active rule, MallSettings return window and earning-kind setting, loaded once per build."""

    rules: dict[int, dict[tuple[str, str], Decimal]] = field(default_factory=dict)
    return_days: dict[int, int] = field(default_factory=dict)
    default_return_days: int = 7

    @classmethod
    def load(cls, brand_ids: Iterable[int] | None = None) -> _RuleBook:
        from mall.models import MallSettings

        rules = CommissionRule.objects.filter(is_active=True)
        settings_ = MallSettings.objects.all()
        if brand_ids is not None:
            rules, settings_ = rules.filter(brand_id__in=brand_ids), settings_.filter(brand_id__in=brand_ids)
        book = cls(default_return_days=MallSettings().return_days)
        for brand_id, category, channel, rate in rules.values_list("brand_id", "category", "channel", "rate"):
            book.rules.setdefault(brand_id, {})[(category, channel)] = rate
        book.return_days = dict(settings_.values_list("brand_id", "return_days"))
        return book

    def rate(self, brand_id: int, category: str, channel: str) -> Decimal | None:
        """The same choice as :func:`commission_rule_for`, from memory."""
        rules = self.rules.get(brand_id, {})
        for key in ((category, channel), (category, ""), ("", channel), ("", "")):
            if key in rules and (key[0] == "" or category) and (key[1] == "" or channel):
                return rules[key]
        return None

    def available_at(self, brand_id: int, delivered_at, paid_at, now) -> dt.datetime:
        days = self.return_days.get(brand_id, self.default_return_days)
        return (delivered_at or paid_at or now) + dt.timedelta(days=days)


def _first_line_category(order_ref: str = "order_id") -> Subquery:
    """The product category of the order's first line (the rule's category, see the module docstring)."""
    from mall.models import OrderLine

    return Subquery(OrderLine.objects.filter(order_id=OuterRef(order_ref)).order_by("pk")
                    .values("sku__product__category")[:1])


def _earning_credits_q(brand_ids: Iterable[int] | None) -> Q:
    """Credit kinds that earn, per brand: exclusive unless a brand turned it off, selling where turned on."""
    from attribution.models import AttributionSettings, SalesCredit

    settings_ = AttributionSettings.objects.all()
    if brand_ids is not None:
        settings_ = settings_.filter(brand_id__in=brand_ids)
    no_exclusive, selling = [], []
    for brand_id, exclusive_earns, selling_earns in settings_.values_list(
            "brand_id", "exclusive_earns_commission", "selling_earns_commission"):
        if not exclusive_earns:
            no_exclusive.append(brand_id)
        if selling_earns:
            selling.append(brand_id)
    return ((Q(kind=SalesCredit.Kind.EXCLUSIVE) & ~Q(brand_id__in=no_exclusive))
            | Q(kind=SalesCredit.Kind.SELLING, brand_id__in=selling))


def commission_build_for_range(*, brand_id: int | None = None, date_from: dt.date | None = None,
                               date_to: dt.date | None = None, booked_since: dt.datetime | None = None,
                               batch_size: int = 5000) -> CommissionBuildResult:
    """Post every commission entry the credits (and office-staff shares) of a range call for and lack.

    The backfill for history (the demo, a brand that just got its first rule):
    one query for the earning credit rows without an entry (with their order's
    channel, dates and first-line category), the rules in memory, one bulk
    insert. The range is on the credit's local order day, and ``booked_since``
    limits it to credit rows written since then (the nightly catch-up); leave
    them open for all of history. Office-staff shares follow the brand and order
    days (they are few: only orders carrying an office token). Idempotent:
    credit rows that got their entry are not selected again, and the unique key
    (credit, kind) drops whatever a concurrent per-order posting wrote first, so
    a second run writes 0 rows.
    """
    from attribution.models import SalesCredit

    brand_ids = [brand_id] if brand_id is not None else None
    credits = SalesCredit.objects.filter(_earning_credits_q(brand_ids), guide__isnull=False).filter(
        ~Exists(CommissionEntry.objects.filter(credit_id=OuterRef("pk"))))
    if brand_id is not None:
        credits = credits.filter(brand_id=brand_id)
    if date_from is not None:
        credits = credits.filter(order_day__gte=date_from)
    if date_to is not None:
        credits = credits.filter(order_day__lte=date_to)
    if booked_since is not None:
        credits = credits.filter(booked_at__gte=booked_since)
    rows = list(credits.annotate(category=_first_line_category()).order_by("pk").values_list(
        "pk", "kind", "rule", "guide_id", "brand_id", "order_id", "amount", "order__order_no", "order__channel",
        "order__delivered_at", "order__paid_at", "category"))
    book = _RuleBook.load(brand_ids)
    now = timezone.now()
    entries = []
    for (pk, kind, rule, guide_id, credit_brand_id, order_id, amount, order_no, channel, delivered_at, paid_at,
         category) in rows:
        rate = book.rate(credit_brand_id, category or "", channel)
        if not rate:
            continue
        value = (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)
        if value == 0:
            continue
        entries.append(CommissionEntry(
            guide_id=guide_id, brand_id=credit_brand_id, order_id=order_id, credit_id=pk, rate=rate,
            kind=CommissionEntry.Kind.EARN if value > 0 else CommissionEntry.Kind.REVERSAL, amount=value,
            available_at=book.available_at(credit_brand_id, delivered_at, paid_at, now),
            note=f"{order_no} {kind} {rule}"[:200]))
    with transaction.atomic():
        CommissionEntry.objects.bulk_create(entries, ignore_conflicts=True, batch_size=batch_size)
        staff = commission_post_for_staff_shares(brand_id=brand_id, date_from=date_from, date_to=date_to,
                                                 book=book)
    return CommissionBuildResult(credits_considered=len(rows), entries_written=len(entries),
                                 staff_orders_considered=staff.orders, staff_entries_written=staff.written)


# ---------------------------------------------------------------------------- all-staff distribution (全员分销)
#
# Office staff without a guide row hold share tokens through GuideToken.staff_user (and their shares through
# Share.staff_user). Checkout accepts such a token but names no guide (order.guide stays empty), and attribution
# credits only stores and guides (SalesCredit has no staff target), so such an order credits nobody for the
# share. Their distribution commission is therefore posted here, straight from the order: the staff member who
# owns the order's share token earns the brand's rule rate (same rule choice as guides) on the order's net
# amount (paid − refunded) while it is a purchase (mall.selectors.purchases). The posted sum per (order, staff
# member) is brought to the wanted value: the first row is an earning, a refund adds a reversal. The rate of the
# first earning sticks, so a later rule change does not re-price old sales. It earns whatever the brand's
# selling_earns_commission says: the share is the only thing such an order credits its sharer with, and paying
# for it is the point of all-staff distribution. Runs that could race lock the sharers' user rows (primary-key
# order) first, the same per-owner lock a withdrawal takes.

@dataclass(frozen=True)
class StaffShareResult:
    orders: int
    entries: list[CommissionEntry]

    @property
    def written(self) -> int:
        return len(self.entries)


def _staff_share_owner() -> Coalesce:
    from guides.models import GuideToken, Share

    by_token = GuideToken.objects.filter(token=OuterRef("share_token"), guide__isnull=True,
                                         staff_user__isnull=False).values("staff_user_id")[:1]
    by_share = Share.objects.filter(code=OuterRef("share_token"), guide__isnull=True,
                                    staff_user__isnull=False).values("staff_user_id")[:1]
    return Coalesce(Subquery(by_token), Subquery(by_share))


def commission_post_for_staff_shares(*, order_ids: Iterable[int] | None = None, brand_id: int | None = None,
                                     date_from: dt.date | None = None, date_to: dt.date | None = None,
                                     book: _RuleBook | None = None) -> StaffShareResult:
    """Bring the distribution commission of orders shared by office staff to what their net amount calls for.

    Set-based: one query for the orders carrying an office-staff token (with
    their sharer, category and amounts), one lock on the sharers' user rows,
    one grouped query for what is posted, one bulk insert of the differences.
    """
    from django.contrib.auth import get_user_model

    from guides.models import GuideToken, Share
    from mall.models import PAID_STATUSES, Order

    staff_tokens = GuideToken.objects.filter(guide__isnull=True, staff_user__isnull=False).values("token")
    staff_codes = Share.objects.filter(guide__isnull=True, staff_user__isnull=False).values("code")
    orders = Order.objects.filter(Q(share_token__in=staff_tokens) | Q(share_token__in=staff_codes))
    if order_ids is not None:
        orders = orders.filter(pk__in=list(order_ids))
    if brand_id is not None:
        orders = orders.filter(brand_id=brand_id)
    tz = timezone.get_current_timezone()
    if date_from is not None:
        orders = orders.filter(ordered_at__gte=dt.datetime.combine(date_from, dt.time.min, tzinfo=tz))
    if date_to is not None:
        orders = orders.filter(ordered_at__lt=dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min,
                                                                  tzinfo=tz))
    with transaction.atomic():
        rows = list(orders.annotate(sharer_id=_staff_share_owner(), category=_first_line_category("pk"))
                    .order_by("pk").values_list(
            "pk", "sharer_id", "brand_id", "order_no", "channel", "status", "paid_amount", "refunded_amount",
            "delivered_at", "paid_at", "category"))
        if not rows:
            return StaffShareResult(orders=0, entries=[])
        sharers = sorted({row[1] for row in rows})
        # The per-owner lock (see guides.withdrawals): posting for a sharer waits for their withdrawal and back.
        list(get_user_model().objects.select_for_update().filter(pk__in=sharers).order_by("pk").values_list("pk"))
        posted: dict[tuple[int, int], list] = {}
        for order_id, user_id, kind, rate, total in (
                CommissionEntry.objects.filter(order_id__in=[r[0] for r in rows], staff_user_id__in=sharers,
                                               credit__isnull=True)
                .values_list("order_id", "staff_user_id", "kind").annotate(rate=Max("rate"), total=Sum("amount"))
                .order_by()):
            slot = posted.setdefault((order_id, user_id), [None, Decimal("0.00")])
            slot[1] += total
            if kind == CommissionEntry.Kind.EARN:
                slot[0] = rate
        book = book or _RuleBook.load({row[2] for row in rows})
        now = timezone.now()
        entries = []
        for (order_id, user_id, order_brand_id, order_no, channel, status, paid, refunded, delivered_at, paid_at,
             category) in rows:
            earned_rate, booked = posted.get((order_id, user_id), (None, Decimal("0.00")))
            rate = earned_rate if earned_rate is not None else book.rate(order_brand_id, category or "", channel)
            net = paid - refunded if status in PAID_STATUSES else Decimal("0.00")
            wanted = (net * rate).quantize(CENT, rounding=ROUND_HALF_UP) if rate and net > 0 else Decimal("0.00")
            difference = wanted - booked
            if difference == 0 or (rate is None and booked == 0):
                continue
            entries.append(CommissionEntry(
                staff_user_id=user_id, brand_id=order_brand_id, order_id=order_id, rate=rate,
                kind=CommissionEntry.Kind.EARN if difference > 0 else CommissionEntry.Kind.REVERSAL,
                amount=difference, available_at=book.available_at(order_brand_id, delivered_at, paid_at, now),
                note=f"{order_no} distribution staff_share"[:200]))
        CommissionEntry.objects.bulk_create(entries)
    return StaffShareResult(orders=len(rows), entries=entries)
