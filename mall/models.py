"""The mall's catalogue and orders from every channel (mini-program, POS, livestream…)."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from retail_crm.scoping import ScopePaths
from retail_crm.vocabulary import OFFLINE_CHANNELS, PRIVATE_DOMAIN_CHANNELS, Channel  # noqa: F401 (re-exported)

ZERO = Decimal("0.00")


def money_field(verbose_name, **kwargs) -> models.DecimalField:
    """CNY with two decimals; never a float."""
    return models.DecimalField(verbose_name, max_digits=14, decimal_places=2, **kwargs)


class Product(models.Model):
    """A product (SPU) of one brand."""

    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="products")
    code = models.CharField(_("code"), max_length=40)
    name = models.CharField(_("name"), max_length=120)
    category = models.CharField(_("category"), max_length=40)
    season = models.CharField(_("season"), max_length=20, blank=True)
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(_("active"), default=True, help_text=_("Listed in the mall"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, null=True)

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="brand__regions",
                             store="brand__stores", guide="brand__stores__guides", multi=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        constraints = [models.UniqueConstraint(fields=["brand", "code"], name="product_code_unique_per_brand")]
        indexes = [models.Index(fields=["brand", "category"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class ProductImage(models.Model):
    """A picture of a product (served from the project's media storage or the group's image host)."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="images")
    url = models.CharField(_("image URL"), max_length=300)
    sort = models.PositiveIntegerField(_("sort order"), default=0)

    scope_paths = ScopePaths(group="product__brand__group", brand="product__brand")

    class Meta:
        verbose_name = _("product image")
        verbose_name_plural = _("product images")
        ordering = ["product_id", "sort", "pk"]

    def __str__(self) -> str:
        return self.url


class Sku(models.Model):
    """A sellable variant of a product with its prices and cost."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="skus")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="+")
    code = models.CharField(_("code"), max_length=40)
    colour = models.CharField(_("colour"), max_length=30, blank=True)
    size = models.CharField(_("size"), max_length=20, blank=True)
    material = models.CharField(pgettext_lazy("fabric", "material"), max_length=30, blank=True)
    list_price = money_field(_("list price"))
    member_price = money_field(_("member price"))
    cost_price = money_field(_("cost price"))

    scope_paths = Product.scope_paths

    class Meta:
        verbose_name = _("SKU")
        verbose_name_plural = _("SKUs")
        constraints = [
            models.UniqueConstraint(fields=["brand", "code"], name="sku_code_unique_per_brand"),
            models.CheckConstraint(condition=Q(list_price__gte=0, member_price__gte=0, cost_price__gte=0),
                                   name="sku_prices_not_negative"),
        ]

    def __str__(self) -> str:
        return self.code


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", _("Pending payment")
    PAID = "paid", _("Paid")
    SHIPPED = "shipped", _("Shipped")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    EXPIRED = "expired", _("Expired")


PAID_STATUSES = frozenset({OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.COMPLETED})


class Order(models.Model):
    """An order of one brand from any channel. GMV counts every order; sales flow is paid − refunded."""

    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="orders")
    order_no = models.CharField(_("order number"), max_length=40)
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, null=True, blank=True,
                               related_name="orders")
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    store = models.ForeignKey("retail_crm.Store", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="orders", help_text=_("POS store, livestream host store or order store"))
    guide = models.ForeignKey("retail_crm.Guide", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="orders", help_text=_("Guide named by the POS or the share link"))
    status = models.CharField(_("status"), max_length=20, choices=OrderStatus.choices)
    ordered_at = models.DateTimeField(_("ordered at"))
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    total_amount = money_field(_("order amount"))
    paid_amount = money_field(_("paid amount"), default=ZERO)
    refunded_amount = money_field(_("refunded amount"), default=ZERO)
    # Mall checkout: goods at the price charged, then coupon and points; total_amount is what is payable.
    items_amount = money_field(_("goods amount"), default=ZERO)
    coupon_discount = money_field(_("coupon discount"), default=ZERO)
    points_used = models.PositiveIntegerField(_("points used"), default=0)
    points_discount = money_field(_("points discount"), default=ZERO)
    member_price_applied = models.BooleanField(_("member price applied"), default=False)
    share_token = models.CharField(_("share token"), max_length=100, blank=True,
                                   help_text=_("The guide share link the order came through"))
    live_session = models.ForeignKey("livestream.LiveSession", on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="orders")
    expires_at = models.DateTimeField(_("payment due by"), null=True, blank=True)
    shipped_at = models.DateTimeField(_("shipped at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("cancelled or expired at"), null=True, blank=True)

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="store__region", store="store",
                             guide="guide")

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.UniqueConstraint(fields=["brand", "order_no"], name="order_no_unique_per_brand"),
            models.CheckConstraint(condition=Q(total_amount__gte=0, paid_amount__gte=0, refunded_amount__gte=0),
                                   name="order_amounts_not_negative"),
            models.CheckConstraint(condition=Q(refunded_amount__lte=F("paid_amount")),
                                   name="order_refund_within_paid"),
            models.CheckConstraint(condition=Q(coupon_discount__gte=0, points_discount__gte=0, items_amount__gte=0),
                                   name="order_discounts_not_negative"),
        ]
        indexes = [
            models.Index(fields=["status", "expires_at"]),
            models.Index(fields=["brand", "ordered_at"]),
            models.Index(fields=["member", "ordered_at"]),
            models.Index(fields=["store", "ordered_at"]),
            models.Index(fields=["share_token"], condition=~Q(share_token=""), name="order_share_token_idx"),
        ]

    def __str__(self) -> str:
        return self.order_no

    @property
    def net_amount(self) -> Decimal:
        return self.paid_amount - self.refunded_amount


class OrderLine(models.Model):
    """One line of an order; brand per line because the group mall sells every brand."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="+")
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    quantity = models.PositiveIntegerField(_("quantity"))
    list_price = money_field(_("list price"))
    unit_price = money_field(_("unit price"))
    amount = money_field(_("amount"), help_text=_("What the line costs the buyer, after its share of discounts"))
    discount_amount = money_field(_("discount share"), default=ZERO,
                                  help_text=_("The line's share of the coupon and points discounts"))
    refunded_amount = money_field(_("refunded amount"), default=ZERO)

    scope_paths = ScopePaths(group="order__brand__group", brand="order__brand", region="order__store__region",
                             store="order__store", guide="order__guide")

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_positive"),
            models.CheckConstraint(condition=Q(refunded_amount__lte=F("amount")),
                                   name="order_line_refund_within_amount"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.quantity} × {self.sku_id}"


class CouponTemplate(models.Model):
    """A kind of coupon a brand hands out (满减 threshold or 折扣 discount) and how long instances last.

    Validity is either a fixed window (``valid_from``–``valid_to``) or a number
    of days from the moment an instance is issued (``valid_days``).
    """

    class Kind(models.TextChoices):
        THRESHOLD = "threshold", _("Amount off above a threshold")
        DISCOUNT = "discount", _("Percentage off")

    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="coupon_templates")
    name = models.CharField(_("name"), max_length=60)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    threshold_amount = money_field(_("minimum order amount"), default=ZERO)
    discount_amount = money_field(_("amount off"), null=True, blank=True)
    discount_rate = models.DecimalField(_("price rate"), max_digits=4, decimal_places=3, null=True, blank=True,
                                        # xgettext:no-python-format
                                        help_text=_("What the member pays, e.g. 0.850 for 15% off"))
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_to = models.DateTimeField(_("valid to"), null=True, blank=True)
    valid_days = models.PositiveIntegerField(_("valid days after issue"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    # Templates are brand-wide: regional and store staff see (and issue to their own members) their brand's.
    scope_paths = ScopePaths(group="brand__group", brand="brand", region="brand__regions", store="brand__stores",
                             multi=True)

    class Meta:
        verbose_name = _("coupon template")
        verbose_name_plural = _("coupon templates")
        constraints = [
            models.CheckConstraint(
                # isnull=False spelled out: a comparison with NULL is unknown, and CHECK lets unknown pass.
                condition=Q(kind="threshold", discount_amount__isnull=False, discount_amount__gt=0,
                            discount_rate__isnull=True)
                | Q(kind="discount", discount_rate__isnull=False, discount_rate__gt=0, discount_rate__lt=1,
                    discount_amount__isnull=True),
                name="coupon_template_kind_has_its_amount"),
            models.CheckConstraint(condition=Q(threshold_amount__gte=0), name="coupon_template_threshold_not_negative"),
            # Exactly one way of saying how long an instance lasts.
            models.CheckConstraint(
                condition=Q(valid_days__isnull=True, valid_from__isnull=False, valid_to__isnull=False,
                            valid_to__gt=F("valid_from"))
                | Q(valid_days__isnull=False, valid_days__gt=0, valid_from__isnull=True, valid_to__isnull=True),
                name="coupon_template_validity_window_or_days"),
        ]

    def __str__(self) -> str:
        return self.name


class CouponStatus(models.TextChoices):
    AVAILABLE = "available", _("Available")
    LOCKED = "locked", _("Locked by an unpaid order")
    USED = "used", _("Used")
    EXPIRED = "expired", _("Expired")
    VOID = "void", _("Void")


class Coupon(models.Model):
    """One coupon held by one member: issued from a template, used at most once.

    Checkout locks an available coupon to its pending order (status ``locked``,
    ``used_order`` set) with a conditional update, so two checkouts cannot take
    the same coupon; payment makes it ``used``; an order that expires or is
    cancelled releases it back to ``available``. The checks below keep the
    status and the order/timestamps consistent whatever code writes the row.
    """

    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="coupons")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="coupons")
    code = models.CharField(_("code"), max_length=32, unique=True)
    issued_at = models.DateTimeField(_("issued at"))
    valid_from = models.DateTimeField(_("valid from"))
    valid_to = models.DateTimeField(_("valid to"))
    status = models.CharField(_("status"), max_length=10, choices=CouponStatus.choices,
                              default=CouponStatus.AVAILABLE)
    used_order = models.ForeignKey(Order, on_delete=models.PROTECT, null=True, blank=True, related_name="coupons",
                                   help_text=_("The order that locked or used the coupon"))
    locked_at = models.DateTimeField(_("locked at"), null=True, blank=True)
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    scope_paths = ScopePaths(group="template__brand__group", brand="template__brand")

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        constraints = [
            models.CheckConstraint(condition=Q(valid_to__gt=F("valid_from")), name="coupon_valid_window"),
            # An order is attached exactly while the coupon is locked or used.
            models.CheckConstraint(
                condition=Q(status__in=["locked", "used"], used_order__isnull=False)
                | (~Q(status__in=["locked", "used"]) & Q(used_order__isnull=True)),
                name="coupon_order_while_locked_or_used"),
            models.CheckConstraint(condition=Q(status="locked", locked_at__isnull=False) | ~Q(status="locked"),
                                   name="coupon_locked_has_time"),
            models.CheckConstraint(
                condition=Q(status="used", used_at__isnull=False) | (~Q(status="used") & Q(used_at__isnull=True)),
                name="coupon_used_has_time"),
        ]
        indexes = [models.Index(fields=["member", "status", "valid_to"])]

    def __str__(self) -> str:
        return self.code


# ---------------------------------------------------------------------------- stock, cart, mall settings

class MallSettings(models.Model):
    """Per-brand mall rules; without a row the defaults apply."""

    brand = models.OneToOneField("retail_crm.Brand", on_delete=models.CASCADE, related_name="mall_settings")
    points_per_yuan = models.DecimalField(_("points earned per yuan"), max_digits=6, decimal_places=2,
                                          default=Decimal("1.00"))
    yuan_per_point = models.DecimalField(_("yuan a point is worth at checkout"), max_digits=6, decimal_places=4,
                                         default=Decimal("0.0100"))
    points_max_share = models.DecimalField(_("largest share of an order payable with points"), max_digits=3,
                                           decimal_places=2, default=Decimal("0.50"))
    payment_minutes = models.PositiveIntegerField(_("minutes to pay before an order expires"), default=30)
    return_days = models.PositiveIntegerField(_("no-reason return window (days after delivery)"), default=7)

    scope_paths = ScopePaths(group="brand__group", brand="brand")

    class Meta:
        verbose_name = _("mall settings")
        verbose_name_plural = _("mall settings")
        constraints = [
            models.CheckConstraint(condition=Q(points_max_share__gte=0, points_max_share__lte=1),
                                   name="mall_points_share_is_a_fraction"),
            models.CheckConstraint(condition=Q(points_per_yuan__gte=0, yuan_per_point__gte=0),
                                   name="mall_points_rates_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.brand_id}"


class Stock(models.Model):
    """Units of a SKU available in the online warehouse. Never negative (a database CHECK backs the locks)."""

    sku = models.OneToOneField(Sku, on_delete=models.CASCADE, primary_key=True, related_name="stock")
    quantity = models.IntegerField(_("available"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    scope_paths = ScopePaths(group="sku__brand__group", brand="sku__brand")

    class Meta:
        verbose_name = _("stock")
        verbose_name_plural = _("stock")
        constraints = [models.CheckConstraint(condition=Q(quantity__gte=0), name="stock_never_negative")]

    def __str__(self) -> str:
        return f"{self.sku_id}: {self.quantity}"


class StockMovement(models.Model):
    """One change of a SKU's stock and why: the audit trail behind the counter."""

    class Reason(models.TextChoices):
        ADJUST = "adjust", _("Manual adjustment")
        RESERVE = "reserve", _("Reserved by an order")
        RELEASE = "release", _("Released by a cancelled or expired order")
        RETURN = "return", _("Returned goods")

    sku = models.ForeignKey(Sku, on_delete=models.CASCADE, related_name="stock_movements")
    delta = models.IntegerField(_("change"))
    reason = models.CharField(_("reason"), max_length=10, choices=Reason.choices)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    by = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    note = models.CharField(_("note"), max_length=200, blank=True)
    at = models.DateTimeField(_("at"), auto_now_add=True)

    scope_paths = ScopePaths(group="sku__brand__group", brand="sku__brand")

    class Meta:
        verbose_name = _("stock movement")
        verbose_name_plural = _("stock movements")
        constraints = [models.CheckConstraint(condition=~Q(delta=0), name="stock_movement_not_zero")]
        indexes = [models.Index(fields=["sku", "at"])]

    def __str__(self) -> str:
        return f"{self.sku_id} {self.delta:+d}"


class CartItem(models.Model):
    """A SKU in a member's cart (one row per SKU; adding again raises the quantity)."""

    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="cart_items")
    sku = models.ForeignKey(Sku, on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveIntegerField(_("quantity"))
    share_token = models.CharField(_("share token"), max_length=100, blank=True)
    added_at = models.DateTimeField(_("added at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("cart item")
        verbose_name_plural = _("cart items")
        constraints = [
            models.UniqueConstraint(fields=["member", "sku"], name="one_cart_row_per_member_sku"),
            models.CheckConstraint(condition=Q(quantity__gte=1, quantity__lte=99), name="cart_quantity_1_to_99"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.quantity} × {self.sku_id}"


# ---------------------------------------------------------------------------- order life, payments, refunds

class OrderTransition(models.Model):
    """One status change of an order: from what, to what, when, and who (a member, a staff user or a job)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    at = models.DateTimeField(_("at"))
    by_user = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    by_member = models.ForeignKey("members.Member", on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+")
    by_system = models.CharField(_("by job or provider"), max_length=40, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)

    scope_paths = ScopePaths(group="order__brand__group", brand="order__brand", region="order__store__region",
                             store="order__store", guide="order__guide")

    class Meta:
        verbose_name = _("order transition")
        verbose_name_plural = _("order transitions")
        ordering = ["order_id", "at", "pk"]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.from_status or '-'} → {self.to_status}"


class Payment(models.Model):
    """A payment attempt with the provider (WeChat Pay shaped): prepay, then a signed notification."""

    class Status(models.TextChoices):
        CREATED = "created", _("Created")
        PAID = "paid", _("Paid")
        CLOSED = "closed", _("Closed")

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    provider = models.CharField(_("provider"), max_length=20)
    out_trade_no = models.CharField(_("merchant trade number"), max_length=40, unique=True)
    prepay_id = models.CharField(_("prepay id"), max_length=80, blank=True)
    amount = money_field(_("amount"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.CREATED)
    transaction_id = models.CharField(_("provider transaction id"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)

    scope_paths = ScopePaths(group="order__brand__group", brand="order__brand")

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        constraints = [
            models.UniqueConstraint(fields=["transaction_id"], condition=~Q(transaction_id=""),
                                    name="payment_transaction_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return self.out_trade_no


class PaymentNotification(models.Model):
    """Every notification the provider delivered, verified or not, and what we did with it (audit)."""

    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    provider = models.CharField(_("provider"), max_length=20)
    out_trade_no = models.CharField(max_length=40, blank=True)
    transaction_id = models.CharField(max_length=64, blank=True)
    verified = models.BooleanField(_("signature verified"), default=False)
    outcome = models.CharField(_("outcome"), max_length=40)
    body = models.TextField(_("body"))

    class Meta:
        verbose_name = _("payment notification")
        verbose_name_plural = _("payment notifications")
        indexes = [models.Index(fields=["out_trade_no"])]

    def __str__(self) -> str:
        return f"{self.out_trade_no} {self.outcome}"


class Refund(models.Model):
    """A refund or 7-day no-reason return of some or all of an order, requested, decided, then paid out."""

    class Kind(models.TextChoices):
        REFUND = "refund", _("Refund")
        RETURN = "return", _("7-day no-reason return")

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        REFUNDED = "refunded", _("Refunded")
        FAILED = "failed", _("Provider refused")

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    refund_no = models.CharField(_("refund number"), max_length=40, unique=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.REQUESTED)
    amount = money_field(_("amount"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    requested_at = models.DateTimeField(_("requested at"))
    requested_by_member = models.ForeignKey("members.Member", on_delete=models.SET_NULL, null=True, blank=True,
                                            related_name="+")
    requested_by_user = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True,
                                          related_name="+")
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decided_by = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    decision_note = models.CharField(_("decision note"), max_length=200, blank=True)
    provider_refund_id = models.CharField(_("provider refund id"), max_length=64, blank=True)
    refunded_at = models.DateTimeField(_("refunded at"), null=True, blank=True)

    scope_paths = ScopePaths(group="order__brand__group", brand="order__brand", region="order__store__region",
                             store="order__store", guide="order__guide")

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive")]
        indexes = [models.Index(fields=["status", "requested_at"])]

    def __str__(self) -> str:
        return self.refund_no


class RefundLine(models.Model):
    """How much of one order line a refund gives back (and how many units come back for a return)."""

    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="refund_lines")
    quantity = models.PositiveIntegerField(_("units returned"), default=0)
    amount = money_field(_("amount"))

    class Meta:
        verbose_name = _("refund line")
        verbose_name_plural = _("refund lines")
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="refund_line_amount_positive")]

    def __str__(self) -> str:
        return f"{self.refund_id}/{self.order_line_id}: {self.amount}"
