"""Importing orders from store POS systems and other channels (file or API), set-based.

One row is one order line; the lines of an order share its order-level
columns. Every row is checked on its own first, then resolved against the
organisation, catalogue and members with a handful of bulk look-ups, and
written with bulk inserts, so 100,000 lines import in seconds rather than
minutes. An order is all or nothing: if one of its lines is bad, none of its
lines go in and every one of them is reported. Re-importing an order number
updates that order (its lines are replaced) and never duplicates it; an
order whose data did not change is left alone.

``ordered_at`` is an ISO 8601 date or datetime in the group's time zone; a
bare date means local midnight. A member not yet known by code or phone is
created with join channel ``import``; a known member without a membership of
the brand joins it the same way. An empty or unknown ``sku_code`` is booked
against the brand's "unspecified item".
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mall.models import OFFLINE_CHANNELS, Channel, Order, OrderLine, OrderStatus, Product, Sku
from members.models import BrandMembership, JoinChannel, Member
from retail_crm import events
from retail_crm.csv_import import ImportReport, RowInvalid
from retail_crm.models import Brand, Guide, Store
from retail_crm.phones import InvalidPhone, normalise_phone
from retail_crm.validation import check_date, money_limit, parse_money, parse_quantity, screen_rows

ORDER_COLUMNS = ["order_no", "ordered_at", "channel", "store_code", "guide_code", "member_code", "member_phone",
                 "sku_code", "quantity", "unit_price", "paid_amount", "refunded_amount"]
UNSPECIFIED_CODE = "UNSPECIFIED"
_ORDER_NO = re.compile(r"^[-A-Za-z0-9_./]{1,40}$")
ZERO = Decimal("0.00")
# The order-level columns every line of one order must repeat identically.
_ORDER_FIELDS = ("ordered_at", "channel", "store_code", "guide_code", "member_code", "member_phone")


@dataclass(frozen=True)
class ParsedLine:
    line: int
    order_no: str
    ordered_at: dt.datetime
    channel: str
    store_code: str
    guide_code: str
    member_code: str
    member_phone: str
    sku_code: str
    quantity: int
    unit_price: Decimal
    paid_amount: Decimal
    refunded_amount: Decimal


@dataclass
class OrderImportResult:
    """The per-row report plus what changed, for the jobs that follow an import (attribution, tags)."""

    report: ImportReport
    order_ids: list[int] = field(default_factory=list)
    member_ids: set[int] = field(default_factory=set)
    members_created: int = 0


# The order line column each money column of the file is stored in (its digits bound the value).
_MONEY_FIELDS = {"unit_price": "unit_price", "paid_amount": "amount", "refunded_amount": "refunded_amount"}


def _money(row: dict, column: str, *, required: bool) -> Decimal:
    return parse_money(row.get(column, ""), column=column, field=OrderLine._meta.get_field(_MONEY_FIELDS[column]),
                       required=required)


def _ordered_at(value: str, tz) -> dt.datetime:
    if not value:
        raise RowInvalid("ordered_at is empty")
    try:
        if len(value) == 10:
            moment = dt.datetime.combine(dt.date.fromisoformat(value), dt.time())
        else:
            moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise RowInvalid(f"ordered_at {value!r} is not an ISO 8601 date or datetime") from None
    check_date(moment, column="ordered_at", value=value)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, tz)
    if moment > timezone.now() + dt.timedelta(days=1):
        raise RowInvalid(f"ordered_at {value} is in the future")
    return moment


def parse_order_row(line: int, row: dict, tz) -> ParsedLine:
    """Check one row on its own; RowInvalid says what is wrong with it."""
    order_no = row.get("order_no", "")
    if not order_no:
        raise RowInvalid("order_no is empty")
    if not _ORDER_NO.match(order_no):
        raise RowInvalid(f"order_no {order_no!r} may hold letters, digits and -_./ (at most 40)")
    ordered_at = _ordered_at(row.get("ordered_at", ""), tz)
    channel = row.get("channel", "")
    if channel not in Channel.values:
        raise RowInvalid(f"channel {channel!r} is not one of {', '.join(Channel.values)}")
    store_code = row.get("store_code", "")
    if channel in OFFLINE_CHANNELS and not store_code:
        raise RowInvalid("store_code is empty (a store POS sale names its store)")
    phone = row.get("member_phone", "")
    if phone:
        try:
            phone = normalise_phone(phone)
        except InvalidPhone as exc:
            raise RowInvalid(f"member_phone: {exc}") from None
    member_code = row.get("member_code", "")
    if len(member_code) > 40:
        raise RowInvalid("member_code is longer than 40 characters")
    quantity = parse_quantity(row.get("quantity", ""))
    unit_price = _money(row, "unit_price", required=True)
    paid = _money(row, "paid_amount", required=True)
    refunded = _money(row, "refunded_amount", required=False)
    if refunded > paid:
        raise RowInvalid(f"refunded_amount {refunded} is more than paid_amount {paid}")
    return ParsedLine(line=line, order_no=order_no, ordered_at=ordered_at, channel=channel, store_code=store_code,
                      guide_code=row.get("guide_code", ""), member_code=member_code, member_phone=phone,
                      sku_code=row.get("sku_code", ""), quantity=quantity, unit_price=unit_price,
                      paid_amount=paid, refunded_amount=refunded)


def unspecified_sku(brand: Brand) -> Sku:
    """The brand's "unspecified item", booked for lines whose SKU is missing or unknown."""
    product, _ = Product.objects.get_or_create(
        brand=brand, code=UNSPECIFIED_CODE,
        defaults={"name": "未指定商品 / unspecified item", "category": "unspecified", "is_active": False})
    sku, _ = Sku.objects.get_or_create(
        brand=brand, code=UNSPECIFIED_CODE,
        defaults={"product": product, "list_price": ZERO, "member_price": ZERO, "cost_price": ZERO})
    return sku


class _Resolver:
    """Bulk look-ups for one import: stores, guides, SKUs and members, each in a few queries."""

    def __init__(self, brand: Brand, orders: dict[str, list[ParsedLine]], allowed_store_ids: set[int] | None):
        self.brand = brand
        self.allowed_store_ids = allowed_store_ids
        heads = [lines[0] for lines in orders.values()]
        store_codes = {h.store_code for h in heads if h.store_code}
        self.stores = {s.code: s for s in Store.objects.filter(code__in=store_codes)}
        guide_codes = {h.guide_code for h in heads if h.guide_code}
        self.guides = {g.code: g for g in Guide.objects.select_related("store").filter(code__in=guide_codes)}
        sku_codes = {line.sku_code for lines in orders.values() for line in lines if line.sku_code}
        self.skus = {s.code: s for s in Sku.objects.filter(brand=brand, code__in=sku_codes)}
        self._unspecified: Sku | None = None
        codes = {h.member_code for h in heads if h.member_code}
        phones = {h.member_phone for h in heads if h.member_phone}
        group = brand.group_id
        found = list(Member.objects.filter(group_id=group, code__in=codes)) + list(
            Member.objects.filter(group_id=group, phone__in=phones))
        # Merged members left tombstones: follow them (in bulk) to the member that absorbed them.
        known = {m.pk: m for m in found}
        missing = {m.merged_into_id for m in known.values() if m.merged_into_id} - known.keys()
        while missing:
            known.update({m.pk: m for m in Member.objects.filter(pk__in=missing)})
            missing = {m.merged_into_id for m in known.values() if m.merged_into_id} - known.keys()

        def follow(member: Member) -> Member:
            while member.merged_into_id:
                member = known[member.merged_into_id]
            return member

        self.by_code = {m.code: follow(m) for m in found}
        self.by_phone = {m.phone: follow(m) for m in found if m.phone}
        self.new_members: dict[str, Member] = {}  # key: member code or phone, for members this file creates

    def store(self, head: ParsedLine) -> Store | None:
        if not head.store_code:
            return None
        store = self.stores.get(head.store_code)
        if store is None:
            raise RowInvalid(f"store_code {head.store_code} is not a known store")
        if store.brand_id != self.brand.pk:
            raise RowInvalid(f"store {head.store_code} is not a store of brand {self.brand.code}")
        if self.allowed_store_ids is not None and store.pk not in self.allowed_store_ids:
            raise RowInvalid(f"store {head.store_code} is outside your scope")
        return store

    def guide(self, head: ParsedLine, store: Store | None) -> Guide | None:
        if not head.guide_code:
            return None
        guide = self.guides.get(head.guide_code)
        if guide is None:
            raise RowInvalid(f"guide_code {head.guide_code} is not a known guide")
        if guide.store.brand_id != self.brand.pk:
            raise RowInvalid(f"guide {head.guide_code} does not work for brand {self.brand.code}")
        return guide

    def sku(self, code: str) -> Sku:
        sku = self.skus.get(code) if code else None
        if sku is None:
            if self._unspecified is None:
                self._unspecified = unspecified_sku(self.brand)
            sku = self._unspecified
        return sku

    def member(self, head: ParsedLine) -> Member | None:
        """The buyer: by code, else by phone; a new Member (unsaved) when neither is known; None for walk-ins."""
        if not head.member_code and not head.member_phone:
            return None
        by_code = self.by_code.get(head.member_code) if head.member_code else None
        by_phone = self.by_phone.get(head.member_phone) if head.member_phone else None
        if by_code and by_phone and by_code.pk != by_phone.pk:
            raise RowInvalid(f"member_phone belongs to member {by_phone.code}, not {head.member_code}")
        if by_code and head.member_phone and by_code.phone and by_code.phone != head.member_phone:
            raise RowInvalid(f"member {by_code.code} has another phone number on record")
        known = by_code or by_phone
        if known is not None:
            return known
        key_code = f"code:{head.member_code}" if head.member_code else None
        key_phone = f"phone:{head.member_phone}" if head.member_phone else None
        pending = (self.new_members.get(key_code) if key_code else None) or (
            self.new_members.get(key_phone) if key_phone else None)
        if pending is not None:
            if head.member_code and pending.code != head.member_code and pending.code:
                raise RowInvalid(f"member_phone belongs to member {pending.code}, not {head.member_code}")
            if head.member_phone and pending.phone and pending.phone != head.member_phone:
                raise RowInvalid(f"member {pending.code} is given another phone number on an earlier line")
            return pending
        from members.services import _new_member_code  # one code generator for members born here

        member = Member(group_id=self.brand.group_id, code=head.member_code or _new_member_code(),
                        phone=head.member_phone, created_at=head.ordered_at)
        for key in (key_code, key_phone):
            if key:
                self.new_members[key] = member
        return member


def _group_orders(rows: Iterable[tuple[int, dict]], report: ImportReport, tz) -> dict[str, list[ParsedLine]]:
    """Parse every row; drop (and report) whole orders with a bad line or inconsistent order columns."""
    orders: dict[str, list[ParsedLine]] = defaultdict(list)
    first_bad: dict[str, int] = {}  # order_no → its first invalid line
    for line, row in rows:
        order_no = row.get("order_no", "")
        try:
            parsed = parse_order_row(line, row, tz)
        except RowInvalid as exc:
            report.add_error(line, str(exc))
            first_bad.setdefault(order_no, line)
            continue
        lines = orders[order_no]
        mismatch = next((name for name in _ORDER_FIELDS if lines and getattr(parsed, name) != getattr(lines[0], name)),
                        None)
        if mismatch:
            report.add_error(line, f"{mismatch} differs from line {lines[0].line} of order {order_no}")
            first_bad.setdefault(order_no, line)
            continue
        lines.append(parsed)
    limit = money_limit(Order._meta.get_field("total_amount"))
    for order_no, lines in orders.items():
        # Each line's amount fits its column; their sum must fit the order's.
        if order_no not in first_bad and sum(parsed.paid_amount for parsed in lines) >= limit:
            report.add_error(lines[0].line, _("order %(order_no)s: the paid_amount of its lines adds up to "
                                              "%(limit)s or more") % {"order_no": order_no, "limit": limit})
            first_bad[order_no] = lines.pop(0).line
    for order_no, bad_line in first_bad.items():
        for parsed in orders.pop(order_no, []):
            report.add_error(parsed.line, f"order {order_no} not imported: line {bad_line} is invalid")
    return orders


@transaction.atomic
def order_import(*, brand: Brand, rows: Iterable[tuple[int, dict]],
                 allowed_store_ids: set[int] | None = None) -> OrderImportResult:
    """Import order lines for one brand; see the module docstring for the rules.

    ``allowed_store_ids`` limits a staff caller (the POS push API) to the stores in their scope.
    """
    tz = timezone.get_default_timezone()
    report = ImportReport()
    result = OrderImportResult(report=report)
    orders = _group_orders(screen_rows(rows, report), report, tz)
    if not orders:
        report.errors.sort(key=lambda e: e.line)
        return result
    resolver = _Resolver(brand, orders, allowed_store_ids)
    drafts: dict[str, tuple[Order, list[OrderLine], list[ParsedLine]]] = {}
    for order_no, lines in orders.items():
        head = lines[0]
        try:
            store = resolver.store(head)
            guide = resolver.guide(head, store)
            member = resolver.member(head)
        except RowInvalid as exc:
            for parsed in lines:
                report.add_error(parsed.line, str(exc) if parsed is head else
                                 f"order {order_no} not imported: line {head.line} is invalid")
            continue
        order_lines = []
        for parsed in lines:
            sku = resolver.sku(parsed.sku_code)
            list_price = sku.list_price if sku.code != UNSPECIFIED_CODE and sku.list_price else parsed.unit_price
            order_lines.append(OrderLine(brand=brand, sku=sku, quantity=parsed.quantity,
                                         list_price=max(list_price, parsed.unit_price), unit_price=parsed.unit_price,
                                         amount=parsed.paid_amount, refunded_amount=parsed.refunded_amount))
        paid = sum((ln.amount for ln in order_lines), ZERO)
        refunded = sum((ln.refunded_amount for ln in order_lines), ZERO)
        order = Order(brand=brand, order_no=order_no, member=member, channel=head.channel, store=store, guide=guide,
                      status=OrderStatus.COMPLETED, ordered_at=head.ordered_at, paid_at=head.ordered_at,
                      total_amount=paid, paid_amount=paid, refunded_amount=refunded)
        drafts[order_no] = (order, order_lines, lines)

    new_members = {id(m): m for m in resolver.new_members.values()}.values()
    if new_members:
        Member.objects.bulk_create(list(new_members), batch_size=2000)
        result.members_created = len(new_members)
    _join_brand(brand, drafts)

    existing = {o.order_no: o for o in Order.objects.filter(brand=brand, order_no__in=list(drafts))}
    existing_lines: dict[int, list[tuple]] = defaultdict(list)
    for row in OrderLine.objects.filter(order__in=existing.values()).values_list(
            "order_id", "sku_id", "quantity", "list_price", "unit_price", "amount", "refunded_amount"):
        existing_lines[row[0]].append(row[1:])
    to_create, to_update, lines_to_create, replaced = [], [], [], []
    for order_no, (order, order_lines, parsed_lines) in drafts.items():
        order.member_id = order.member.pk if order.member else None
        old = existing.get(order_no)
        if old is None:
            to_create.append((order, order_lines))
            report.created += len(parsed_lines)
            continue
        fields = ("member_id", "channel", "store_id", "guide_id", "ordered_at", "total_amount", "paid_amount",
                  "refunded_amount")
        new_line_keys = sorted((ln.sku.pk, ln.quantity, ln.list_price, ln.unit_price, ln.amount, ln.refunded_amount)
                               for ln in order_lines)
        same = all(getattr(old, f) == getattr(order, f) for f in fields) and \
            sorted(existing_lines[old.pk]) == new_line_keys
        if same:
            report.unchanged += len(parsed_lines)
            continue
        for f in fields:
            setattr(old, f, getattr(order, f))
        old.paid_at = order.paid_at
        to_update.append(old)
        replaced.append(old.pk)
        for ln in order_lines:
            ln.order = old
        lines_to_create.extend(order_lines)
        report.updated += len(parsed_lines)
        result.order_ids.append(old.pk)
        if old.member_id:
            result.member_ids.add(old.member_id)
    if to_create:
        created = Order.objects.bulk_create([o for o, _ in to_create], batch_size=2000)
        for order, (_, order_lines) in zip(created, to_create, strict=True):
            for ln in order_lines:
                ln.order = order
            lines_to_create.extend(order_lines)
            result.order_ids.append(order.pk)
            if order.member_id:
                result.member_ids.add(order.member_id)
    if replaced:
        OrderLine.objects.filter(order_id__in=replaced).delete()
        Order.objects.bulk_update(to_update, ["member", "channel", "store", "guide", "ordered_at", "paid_at",
                                              "total_amount", "paid_amount", "refunded_amount"], batch_size=2000)
    OrderLine.objects.bulk_create(lines_to_create, batch_size=4000)
    report.errors.sort(key=lambda e: e.line)
    moments = [order.ordered_at for order, _lines in to_create] + [order.ordered_at for order in to_update]
    if moments:
        _imported_event_record(brand, min(moments), max(moments))
    return result


def _imported_event_record(brand: Brand, first: dt.datetime, last: dt.datetime) -> None:
    """Record ``orders_imported`` for the imported local days: attribution and the brand's rule tags follow it."""
    tz = timezone.get_default_timezone()
    events.record("orders_imported", brand_id=brand.pk,
                  date_from=timezone.localtime(first, tz).date().isoformat(),
                  date_to=timezone.localtime(last, tz).date().isoformat())


def _join_brand(brand: Brand, drafts: dict) -> None:
    """Buyers without a membership of the brand join it (channel import) at their first imported order."""
    first: dict[int, tuple[dt.datetime, Store | None]] = {}
    for order, _lines, _parsed in drafts.values():
        if order.member is None:
            continue
        pk = order.member.pk
        if pk not in first or order.ordered_at < first[pk][0]:
            first[pk] = (order.ordered_at, order.store)
    have = set(BrandMembership.objects.filter(brand=brand, member_id__in=list(first)).values_list("member_id",
                                                                                                  flat=True))
    BrandMembership.objects.bulk_create(
        [BrandMembership(member_id=pk, brand=brand, joined_at=at, join_channel=JoinChannel.IMPORT, store=store)
         for pk, (at, store) in first.items() if pk not in have], batch_size=2000)
