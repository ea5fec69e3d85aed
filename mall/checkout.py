"""Cart and checkout: turning a member's choice into a pending order, and unwinding unpaid ones.

Creating an order reserves its stock, locks its coupon and spends its points
in one transaction, so an order that exists always holds what it needs and
one that is cancelled or expires gives all of it back. Stock rows are locked
in primary-key order (so two checkouts of overlapping SKUs cannot deadlock)
and decremented with F(); the CHECK constraint ``stock_never_negative`` is
the backstop if anything ever got past the locks. Prices come from the
catalogue, never from the client: member price only for members of the
brand (private-domain members), then the coupon, then points.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from mall.errors import MallErrorCode
from mall.models import (
    CartItem,
    Channel,
    Coupon,
    CouponStatus,
    CouponTemplate,
    MallSettings,
    Order,
    OrderLine,
    OrderStatus,
    OrderTransition,
    Product,
    Sku,
    Stock,
    StockMovement,
)
from mall.orders import order_lock, order_transition
from members.guide_tokens import guide_token_guide
from members.models import BrandMembership, Member, PointsEntry
from retail_crm import events, hooks, rawsql
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.idempotency import atomic_operation
from retail_crm.models import Brand, Store

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
MAX_LINES = 50
MAX_QUANTITY = 99
MAX_KEY = 2**63 - 1


@dataclass(frozen=True)
class OrderLiveSession:
    """What an order placed during a live session takes from it (the session itself is livestream's)."""

    session_id: int
    channel: Channel  # Channel.STORE_LIVE or Channel.HQ_LIVE
    store: Store | None  # the host store of a store session


hooks.declare(
    "order_live_session",
    "live_session_id: int, brand: retail_crm.models.Brand -> mall.checkout.OrderLiveSession for the brand's "
    "live session with that id, or None if the brand has none. Exactly one provider.")


def mall_settings_for(brand: Brand | int) -> MallSettings:
    if isinstance(brand, Brand):
        try:
            return brand.mall_settings  # cached when the brand came with select_related("brand__mall_settings")
        except MallSettings.DoesNotExist:
            return MallSettings(brand_id=brand.pk)
    brand_id = brand
    return MallSettings.objects.filter(brand_id=brand_id).first() or MallSettings(brand_id=brand_id)


# ---------------------------------------------------------------------------- cart

def cart_set(*, member: Member, sku: Sku, quantity: int, share_token: str = "") -> CartItem | None:
    """Put ``quantity`` of a SKU in the cart (0 removes it). The latest share link is remembered."""
    if quantity < 0 or quantity > MAX_QUANTITY:
        raise ApplicationError(ErrorCode.INVALID, f"Quantity must be between 0 and {MAX_QUANTITY}.",
                               fields={"quantity": [f"Must be between 0 and {MAX_QUANTITY}."]})
    if quantity == 0:
        CartItem.objects.filter(member=member, sku=sku).delete()
        return None
    if not sku.product.is_active:
        raise ApplicationError(MallErrorCode.SKU_UNAVAILABLE, f"{sku.code} is no longer sold.", status=409)
    defaults = {"quantity": quantity}
    if share_token:
        defaults["share_token"] = share_token
    with transaction.atomic():
        item, _ = CartItem.objects.update_or_create(member=member, sku=sku, defaults=defaults)
        # Journeys react to it (an abandoned-cart reminder); ``at`` tells one addition from the next.
        events.record("cart_item_added", member_id=member.pk, brand_id=sku.brand_id, sku_id=sku.pk,
                      at=timezone.now().isoformat())
    return item


def cart_member_merge(*, survivor: Member, absorbed: Member) -> dict[str, int]:
    """A member merge (``member_merge`` hook): the absorbed member's cart joins the survivor's.

    Where both hold the same SKU, the survivor's quantity wins.
    """
    mine = set(CartItem.objects.filter(member=survivor).values_list("sku_id", flat=True))
    CartItem.objects.filter(member=absorbed, sku_id__in=mine).delete()
    return {"cart_items": CartItem.objects.filter(member=absorbed).update(member=survivor)}


# ---------------------------------------------------------------------------- order creation

@dataclass(frozen=True)
class LineRequest:
    sku_id: int
    quantity: int


@dataclass(frozen=True)
class Pricing:
    """What checkout computed, before anything was written (also what a price preview shows)."""

    brand: Brand
    settings: MallSettings
    skus: dict[int, Sku]
    quantities: dict[int, int]
    unit_prices: dict[int, Decimal]
    stock: dict[int, int]  # available units of each SKU, its row locked by this transaction
    order_id: int | None  # PostgreSQL: the id the order will have (drawn from its sequence)
    member_price_applied: bool
    items_amount: Decimal


def _merge_lines(lines: list[LineRequest]) -> dict[int, int]:
    if not lines:
        raise ApplicationError(MallErrorCode.EMPTY_ORDER, "An order needs at least one line.",
                               fields={"lines": ["At least one line is required."]})
    quantities: dict[int, int] = {}
    for line in lines:
        if line.quantity < 1 or line.quantity > MAX_QUANTITY:
            raise ApplicationError(ErrorCode.INVALID, f"Quantity must be between 1 and {MAX_QUANTITY}.",
                                   fields={"lines": [f"quantity must be between 1 and {MAX_QUANTITY}"]})
        quantities[line.sku_id] = quantities.get(line.sku_id, 0) + line.quantity
    if len(quantities) > MAX_LINES:
        raise ApplicationError(ErrorCode.INVALID, f"At most {MAX_LINES} different items per order.",
                               fields={"lines": [f"At most {MAX_LINES} lines."]})
    if any(q > MAX_QUANTITY for q in quantities.values()):
        raise ApplicationError(ErrorCode.INVALID, f"At most {MAX_QUANTITY} of one item per order.",
                               fields={"lines": [f"At most {MAX_QUANTITY} of one SKU."]})
    return quantities


_SKU_FIELDS = ("id", "product_id", "brand_id", "code", "colour", "size", "material", "list_price", "member_price",
               "cost_price")
_PRODUCT_FIELDS = ("id", "brand_id", "code", "name", "category", "season", "is_active")
_BRAND_FIELDS = ("id", "group_id", "code", "name")
_SETTINGS_FIELDS = ("id", "brand_id", "points_per_yuan", "yuan_per_point", "points_max_share", "payment_minutes",
                    "return_days")


@rawsql.cached_sql
def _pricing_sql(count: int, with_stock: bool = True) -> str:
    """The SKUs with their product, brand, the brand's mall settings, whether the buyer is a member of that
    brand, and their stock, whose rows are locked in SKU order (so two checkouts of overlapping SKUs cannot
    deadlock). A SKU without a stock row is left out; ``with_stock=False`` finds such SKUs, with stock 0.

    On PostgreSQL the last column is the next order id from the order table's sequence, so the order can be
    written in the same round trip as its lines (a failed checkout leaves a gap in the ids, as any does).
    """
    t = rawsql.table
    next_id = "NULL"
    if with_stock and connection.vendor == "postgresql":
        next_id = f"(SELECT nextval(pg_get_serial_sequence('{Order._meta.db_table}', '{Order._meta.pk.column}')))"
    source = (f"st.quantity, {next_id} FROM {t(Sku)} s JOIN {t(Stock)} st ON st.sku_id = s.id" if with_stock
              else f"0, NULL FROM {t(Sku)} s")
    return (f"SELECT {rawsql.columns(Sku, 's', _SKU_FIELDS)}, {rawsql.columns(Product, 'p', _PRODUCT_FIELDS)}, "  # noqa: S608 - names from the models
            f"{rawsql.columns(Brand, 'b', _BRAND_FIELDS)}, {rawsql.columns(MallSettings, 'ms', _SETTINGS_FIELDS)}, "
            f"EXISTS (SELECT 1 FROM {t(BrandMembership)} bm WHERE bm.member_id = %s AND bm.brand_id = s.brand_id), "
            f"{source} JOIN {t(Product)} p ON p.id = s.product_id JOIN {t(Brand)} b ON b.id = s.brand_id "
            f"LEFT JOIN {t(MallSettings)} ms ON ms.brand_id = s.brand_id WHERE s.id IN ({rawsql.params_list(count)}) "
            f"ORDER BY s.id{rawsql.for_update('st') if with_stock else ''}")


@dataclass(frozen=True)
class _Loaded:
    skus: dict[int, Sku]
    settings: MallSettings | None
    is_member: bool
    stock: dict[int, int]
    order_id: int | None


def _load_skus(member: Member, sku_ids: list[int]) -> _Loaded:
    """One statement for everything pricing and the stock check need, as model instances (the ORM's
    select_related over four tables cost more to build than to run, on the busiest endpoint)."""
    if not sku_ids:
        return _Loaded({}, None, False, {}, None)
    with connection.cursor() as cursor:
        cursor.execute(_pricing_sql(len(sku_ids)), [member.pk, *sku_ids])
        rows = cursor.fetchall()
        if len(rows) < len(sku_ids):  # unknown SKUs, or SKUs that never had stock (an error either way)
            others = [pk for pk in sku_ids if pk not in {row[0] for row in rows}]
            cursor.execute(_pricing_sql(len(others), False), [member.pk, *others])
            rows += cursor.fetchall()
    skus: dict[int, Sku] = {}
    brands: dict[int, Brand] = {}
    stock: dict[int, int] = {}
    settings_ = order_id = None
    is_member = False
    a = len(_SKU_FIELDS)
    b = a + len(_PRODUCT_FIELDS)
    c = b + len(_BRAND_FIELDS)
    d = c + len(_SETTINGS_FIELDS)
    for row in rows:
        sku = rawsql.load(Sku, _SKU_FIELDS, row[:a])
        sku.product = rawsql.load(Product, _PRODUCT_FIELDS, row[a:b])
        if row[b] not in brands:
            brands[row[b]] = rawsql.load(Brand, _BRAND_FIELDS, row[b:c])
        sku.brand = brands[row[b]]
        if row[c] is not None:
            settings_ = rawsql.load(MallSettings, _SETTINGS_FIELDS, row[c:d])
        is_member = is_member or bool(row[d])
        skus[sku.pk] = sku
        stock[sku.pk] = row[d + 1]
        order_id = order_id or row[d + 2]
    return _Loaded(skus, settings_, is_member, stock, order_id)


def checkout_price(*, member: Member, lines: list[LineRequest]) -> Pricing:
    """Price the lines for this member: one brand, active products, member price for members of the brand.

    Reading the prices locks the SKUs' stock rows (until the transaction ends) and notes what is available.
    """
    quantities = _merge_lines(lines)
    # An id no key can hold is unknown without asking (SQLite cannot even bind an integer past 64 bits).
    loaded = _load_skus(member, [pk for pk in quantities if 0 < pk <= MAX_KEY])
    skus, is_member = loaded.skus, loaded.is_member
    missing = sorted(set(quantities) - set(skus))
    if missing:
        raise ApplicationError(MallErrorCode.SKU_UNAVAILABLE, "Some items do not exist.", status=400,
                               fields={"lines": [f"Unknown sku_id {pk}." for pk in missing]})
    inactive = sorted(s.code for s in skus.values() if not s.product.is_active)
    if inactive:
        raise ApplicationError(MallErrorCode.SKU_UNAVAILABLE, "Some items are no longer sold.", status=409,
                               fields={"lines": [f"{code} is no longer sold." for code in inactive]})
    brands = {s.brand_id for s in skus.values()}
    if len(brands) != 1:
        raise ApplicationError(MallErrorCode.MIXED_BRANDS,
                               "Each order is for one brand: check out each brand's items separately.",
                               fields={"lines": ["Items of several brands."]})
    brand = next(iter(skus.values())).brand
    if brand.group_id != member.group_id:
        raise ApplicationError(MallErrorCode.SKU_UNAVAILABLE, "Some items do not exist.",
                               fields={"lines": ["Items of another group."]})
    unit_prices = {pk: (sku.member_price if is_member else sku.list_price) for pk, sku in skus.items()}
    items = sum((unit_prices[pk] * q for pk, q in quantities.items()), ZERO)
    return Pricing(brand=brand, settings=loaded.settings or MallSettings(brand_id=brand.pk), skus=skus,
                   quantities=quantities, unit_prices=unit_prices, stock=loaded.stock, order_id=loaded.order_id,
                   member_price_applied=is_member and any(s.member_price < s.list_price for s in skus.values()),
                   items_amount=items)


def coupon_discount_for(template: CouponTemplate, items_amount: Decimal) -> Decimal:
    """What a coupon takes off ``items_amount`` (never the whole order: at least a cent stays payable)."""
    if items_amount < template.threshold_amount:
        return ZERO
    if template.kind == CouponTemplate.Kind.THRESHOLD:
        discount = template.discount_amount
    else:
        discount = (items_amount * (1 - template.discount_rate)).quantize(CENT, rounding=ROUND_HALF_UP)
    return min(discount, items_amount - CENT)


def _allocate(total_discount: Decimal, line_amounts: list[Decimal]) -> list[Decimal]:
    """Share a discount over lines in proportion to their amounts, in cents; the last line takes the rest."""
    base = sum(line_amounts, ZERO)
    if total_discount == 0 or base == 0:
        return [ZERO for _ in line_amounts]
    shares = [(total_discount * amount / base).quantize(CENT, rounding=ROUND_DOWN) for amount in line_amounts[:-1]]
    shares.append(total_discount - sum(shares, ZERO))
    return shares


def _new_order_no(brand: Brand, at: dt.datetime) -> str:
    """Brand (first 8 characters), local time to the second, 40 random bits: readable and unique in practice."""
    return f"{brand.code[:8]}{timezone.localtime(at):%y%m%d%H%M%S}{secrets.token_hex(5).upper()}"


def _check_stock(pricing: Pricing) -> None:
    """409 naming every SKU the order wants more of than is left (the rows were locked when priced)."""
    short = {pricing.skus[pk].code: pricing.stock[pk] for pk, q in sorted(pricing.quantities.items())
             if pricing.stock[pk] < q}
    if short:
        raise ApplicationError(MallErrorCode.OUT_OF_STOCK, "Not enough stock for some items.", status=409,
                               fields={code: [f"Only {left} left."] for code, left in short.items()})


@rawsql.cached_sql
def _stock_update_sql(count: int) -> str:
    stock_table, sku_col, qty_col = rawsql.table(Stock), rawsql.qn("sku_id"), rawsql.qn("quantity")
    return (f"UPDATE {stock_table} SET {qty_col} = {qty_col} - CASE {sku_col} "  # noqa: S608 - names from the model
            f"{' '.join(['WHEN %s THEN %s'] * count)} END WHERE {sku_col} IN ({rawsql.params_list(count)})")


def _stock_statements(order: Order, quantities: dict[int, int]) -> list[rawsql.Statement]:
    """Decrement the (locked, checked) stock rows in one statement, and record the movements."""
    ids = sorted(quantities)
    update = (_stock_update_sql(len(ids)), [v for pk in ids for v in (pk, quantities[pk])] + ids)
    movements = rawsql.insert_statement([StockMovement(sku_id=pk, delta=-quantities[pk], order=order,
                                                       reason=StockMovement.Reason.RESERVE) for pk in ids],
                                        returning=False)
    return [update, movements]


_COUPON_FIELDS = ("id", "template_id", "member_id", "code", "issued_at", "valid_from", "valid_to", "status",
                  "used_order_id", "locked_at", "used_at")
_TEMPLATE_FIELDS = ("id", "brand_id", "name", "kind", "threshold_amount", "discount_amount", "discount_rate",
                    "is_active")


@rawsql.cached_sql
def _coupon_sql() -> str:
    return (f"SELECT {rawsql.columns(Coupon, 'c', _COUPON_FIELDS)}, "  # noqa: S608 - names from the models
            f"{rawsql.columns(CouponTemplate, 't', _TEMPLATE_FIELDS)} "
            f"FROM {rawsql.table(Coupon)} c JOIN {rawsql.table(CouponTemplate)} t "
            f"ON t.id = c.template_id WHERE c.code = %s AND c.member_id = %s{rawsql.for_update('c')}")


def _lock_coupon(*, member: Member, code: str, brand: Brand, items_amount: Decimal, at: dt.datetime) -> Coupon:
    """The member's coupon with this code, row-locked (its template is read, not locked: every coupon issued
    from one template shares that row)."""
    with connection.cursor() as cursor:
        cursor.execute(_coupon_sql(), [code, member.pk])
        row = cursor.fetchone()
    if row is None:
        raise ApplicationError(MallErrorCode.COUPON_UNAVAILABLE, "No such coupon.",
                               fields={"coupon_code": ["You hold no coupon with this code."]})
    coupon = rawsql.load(Coupon, _COUPON_FIELDS, row[:len(_COUPON_FIELDS)])
    coupon.template = rawsql.load(CouponTemplate, _TEMPLATE_FIELDS, row[len(_COUPON_FIELDS):])
    if coupon.status != CouponStatus.AVAILABLE or not (coupon.valid_from <= at < coupon.valid_to):
        raise ApplicationError(MallErrorCode.COUPON_UNAVAILABLE, "This coupon cannot be used now.",
                               status=409, fields={"coupon_code": [f"Coupon is {coupon.status} or out of date."]})
    if coupon.template.brand_id != brand.pk:
        raise ApplicationError(MallErrorCode.COUPON_NOT_APPLICABLE, "This coupon is for another brand.",
                               fields={"coupon_code": ["Coupon of another brand."]})
    if items_amount < coupon.template.threshold_amount:
        raise ApplicationError(MallErrorCode.COUPON_NOT_APPLICABLE,
                               f"This coupon needs an order of at least {coupon.template.threshold_amount}.",
                               fields={"coupon_code": [f"Minimum {coupon.template.threshold_amount}."]})
    return coupon


def _share_guide(share_token: str):
    if not share_token:
        return None
    # A link shared before the token was rotated still credits the guide who shared it.
    try:
        return guide_token_guide(share_token, allow_revoked=True)
    except ApplicationError as exc:
        raise ApplicationError(exc.code, exc.message, fields={"share_token": exc.fields.get("token", [])}) from None


def _write_conflict(exc: IntegrityError) -> ApplicationError:
    """The 409 for a constraint a checkout's writes ran into; any other integrity error is a bug, re-raised."""
    if "order_no" in str(exc):  # PostgreSQL names the constraint (order_no_unique_per_brand), SQLite the columns
        # Two orders of one brand in the same second drawing the same 40 random bits: never in practice. The
        # whole checkout rolls back and the client retries (with its Idempotency-Key) instead of a savepoint
        # round trip on every order.
        return ApplicationError(ErrorCode.CONFLICT, "Could not allocate an order number; try again.", status=409)
    if "stock_never_negative" in str(exc):  # only if something bypassed the row locks
        return ApplicationError(MallErrorCode.OUT_OF_STOCK, "Not enough stock for some items.", status=409)
    raise exc


def _insert_order(order: Order) -> None:
    try:
        rawsql.insert([order])
    except IntegrityError as exc:
        raise _write_conflict(exc) from None


@atomic_operation
def order_create(*, member: Member, lines: list[LineRequest], coupon_code: str = "", points: int = 0,
                 share_token: str = "", live_session_id: int | None = None, from_cart: bool = False,
                 at: dt.datetime | None = None) -> Order:
    """Create a pending order: price it, reserve stock, lock the coupon, spend points; due in N minutes."""
    at = at or timezone.now()
    pricing = checkout_price(member=member, lines=lines)
    brand = pricing.brand
    settings_ = pricing.settings
    guide = _share_guide(share_token)
    channel, store, session = Channel.MINI_PROGRAM, None, None
    if live_session_id is not None:
        session = hooks.call_one("order_live_session", live_session_id=live_session_id, brand=brand)
        if session is None:
            raise ApplicationError(MallErrorCode.LIVE_SESSION_INVALID, "No such live session for this brand.",
                                   fields={"live_session_id": ["Unknown live session."]})
        channel, store = session.channel, session.store
    if store is None and guide is not None:
        store = guide.store
    if points < 0:
        raise ApplicationError(MallErrorCode.POINTS_INVALID, "Points cannot be negative.",
                               fields={"points": ["Must be 0 or more."]})

    items = pricing.items_amount
    order = Order(brand=brand, member=member, channel=channel, store=store, guide=guide,
                  live_session_id=session.session_id if session is not None else None,
                  share_token=share_token, status=OrderStatus.PENDING_PAYMENT, ordered_at=at,
                  expires_at=at + dt.timedelta(minutes=settings_.payment_minutes), items_amount=items,
                  total_amount=items, member_price_applied=pricing.member_price_applied)
    coupon = None
    if coupon_code:
        coupon = _lock_coupon(member=member, code=coupon_code, brand=brand, items_amount=items, at=at)
        order.coupon_discount = coupon_discount_for(coupon.template, items)
    after_coupon = items - order.coupon_discount
    if points:
        value = (points * settings_.yuan_per_point).quantize(CENT, rounding=ROUND_DOWN)
        cap = (after_coupon * settings_.points_max_share).quantize(CENT, rounding=ROUND_DOWN)
        if value > cap or value >= after_coupon:
            raise ApplicationError(MallErrorCode.POINTS_INVALID,
                                   f"Points can pay at most {cap} of this order.",
                                   fields={"points": [f"At most {int(cap / settings_.yuan_per_point)} points."]})
        order.points_used, order.points_discount = points, value
    order.total_amount = after_coupon - order.points_discount

    _check_stock(pricing)
    order.order_no = _new_order_no(brand, at)
    statements: list[rawsql.Statement] = []
    if pricing.order_id is not None:  # PostgreSQL: the order goes with everything else, in one round trip
        order.pk = pricing.order_id
        statements.append(rawsql.insert_statement([order], returning=False, with_pk=True))
    else:
        _insert_order(order)

    ordered = sorted(pricing.quantities)
    gross = [pricing.unit_prices[pk] * pricing.quantities[pk] for pk in ordered]
    shares = _allocate(order.coupon_discount + order.points_discount, gross)
    lines = [
        OrderLine(order=order, brand=brand, sku=pricing.skus[pk], quantity=pricing.quantities[pk],
                  list_price=pricing.skus[pk].list_price, unit_price=pricing.unit_prices[pk],
                  discount_amount=share, amount=amount - share)
        for pk, amount, share in zip(ordered, gross, shares, strict=True)]
    # Everything else the order holds, in one round trip on PostgreSQL: stock, movements, coupon, the first
    # transition, and the lines last (their keys come back).
    statements += _stock_statements(order, pricing.quantities)
    if coupon is not None:
        coupon.status, coupon.used_order, coupon.locked_at = CouponStatus.LOCKED, order, at
        statements.append(rawsql.update_statement(coupon, ("status", "used_order_id", "locked_at")))
    statements.append(rawsql.insert_statement([OrderTransition(
        order=order, from_status="", to_status=OrderStatus.PENDING_PAYMENT, at=at, by_member=member,
        note="created")], returning=False))
    statements.append(rawsql.insert_statement(lines))
    try:
        rawsql.set_keys(lines, rawsql.batch(statements))
    except IntegrityError as exc:
        raise _write_conflict(exc) from None
    if pricing.order_id is not None:
        rawsql.set_keys([order], [(pricing.order_id,)])
    # The caller shows the order it just made: its lines (with their SKUs and products) need no re-read.
    # Stored the way prefetch_related stores them (an evaluated queryset), so order.lines still filters.
    cached = order.lines.all()
    cached._result_cache, cached._prefetch_done = lines, True
    order._prefetched_objects_cache = {"lines": cached}
    if points:
        from members.services import points_post

        points_post(member=member, brand=brand, delta=-points, reason=PointsEntry.Reason.SPEND, order=order,
                    note=order.order_no)
    if from_cart:
        CartItem.objects.filter(member=member, sku_id__in=ordered).delete()
    # Journeys react to it (an unpaid-order reminder); recorded with the order, so never without it.
    events.record("order_created", order_id=order.pk, member_id=member.pk, brand_id=brand.pk)
    return order


@dataclass(frozen=True)
class CartLines:
    """A brand's cart items as order lines, and the share link the order is credited to by default."""

    lines: list[LineRequest]
    share_token: str  # the first one a cart item carries ('' when none does)


def cart_lines(*, member: Member, brand_code: str) -> CartLines:
    """The member's cart items of one brand as order lines; 400 ``empty_order`` when the cart has none."""
    items = list(CartItem.objects.filter(member=member, sku__brand__code=brand_code))
    if not items:
        raise ApplicationError(MallErrorCode.EMPTY_ORDER, "No items of this brand in the cart.",
                               fields={"from_cart_brand": ["The cart holds nothing of this brand."]})
    return CartLines(lines=[LineRequest(sku_id=i.sku_id, quantity=i.quantity) for i in items],
                     share_token=next((i.share_token for i in items if i.share_token), ""))


def order_create_from_cart(*, member: Member, brand_code: str, coupon_code: str = "", points: int = 0,
                           share_token: str = "", live_session_id: int | None = None) -> Order:
    """Check out the cart's items of one brand (:func:`order_create`; the ordered items leave the cart).

    The order is credited to ``share_token`` when given, else to the share link a cart item remembers.
    """
    cart = cart_lines(member=member, brand_code=brand_code)
    return order_create(member=member, lines=cart.lines, coupon_code=coupon_code, points=points,
                        share_token=share_token or cart.share_token, live_session_id=live_session_id,
                        from_cart=True)


# ---------------------------------------------------------------------------- unwinding unpaid orders

def _release(order: Order, at: dt.datetime) -> None:
    """Give back what a pending order held: stock, the coupon and spent points."""
    quantities = dict(order.lines.values_list("sku_id", "quantity"))
    for pk in sorted(quantities):
        if pk is not None:
            Stock.objects.filter(sku_id=pk).update(quantity=F("quantity") + quantities[pk])
    StockMovement.objects.bulk_create([StockMovement(sku_id=pk, delta=q, reason=StockMovement.Reason.RELEASE,
                                                     order=order) for pk, q in sorted(quantities.items()) if pk])
    Coupon.objects.filter(used_order=order, status=CouponStatus.LOCKED).update(
        status=CouponStatus.AVAILABLE, used_order=None, locked_at=None)
    if order.points_used and order.member_id:
        from members.services import points_post

        points_post(member=order.member, brand=order.brand, delta=order.points_used,
                    reason=PointsEntry.Reason.RELEASE, order=order, note=f"{order.order_no} {order.status}")


@transaction.atomic
def order_cancel(*, order: Order, by_member: Member | None = None, by_user=None, reason: str = "") -> Order:
    """The member (or staff) cancels an unpaid order; 409 once it is paid, cancelled or expired."""
    order = order_lock(order.pk)
    at = timezone.now()
    order_transition(order=order, to_status=OrderStatus.CANCELLED, by_member=by_member, by_user=by_user,
                     note=reason[:200], at=at)
    _release(order, at)
    return order


def orders_expire(*, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """Expire pending orders past their payment deadline, each in its own transaction; returns how many.

    Rows another worker (or a payment) is holding are skipped and picked up
    next run, so expiry never waits on, or races, a payment in progress.
    """
    from members.models import BehaviourEvent, EventKind

    now = now or timezone.now()
    due = list(Order.objects.filter(status=OrderStatus.PENDING_PAYMENT, expires_at__lte=now)
               .order_by("expires_at").values_list("pk", flat=True)[:limit])
    expired = 0
    for pk in due:
        with transaction.atomic():
            order = (Order.objects.select_for_update(skip_locked=True)
                     .filter(pk=pk, status=OrderStatus.PENDING_PAYMENT, expires_at__lte=now).first())
            if order is None:
                continue
            order_transition(order=order, to_status=OrderStatus.EXPIRED, by_system="expiry", at=now)
            _release(order, now)
            if order.member_id:
                # "Order created, unpaid": the behaviour guides follow up on.
                BehaviourEvent.objects.create(brand_id=order.brand_id, member_id=order.member_id,
                                              kind=EventKind.ORDER_UNPAID, occurred_at=now, object_type="order",
                                              object_id=order.order_no, share_token=order.share_token,
                                              guide_id=order.guide_id)
            expired += 1
    return expired


@transaction.atomic
def stock_adjust(*, sku: Sku, delta: int, user, note: str = "") -> Stock:
    """Staff add or remove stock (a count, a delivery); never below zero (409)."""
    if delta == 0:
        raise ApplicationError(ErrorCode.INVALID, "The change cannot be zero.", fields={"delta": ["Must not be 0."]})
    stock, _ = Stock.objects.get_or_create(sku=sku)
    stock = Stock.objects.select_for_update().get(pk=stock.pk)
    if stock.quantity + delta < 0:
        raise ApplicationError(MallErrorCode.OUT_OF_STOCK,
                               f"Only {stock.quantity} in stock; cannot remove {-delta}.", status=409,
                               fields={"delta": [f"At most {stock.quantity} can be removed."]})
    Stock.objects.filter(pk=stock.pk).update(quantity=F("quantity") + delta)
    StockMovement.objects.create(sku=sku, delta=delta, reason=StockMovement.Reason.ADJUST, by=user, note=note)
    stock.refresh_from_db()
    return stock
