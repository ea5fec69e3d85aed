"""The mall's catalogue and orders from every channel (mini-program, POS, livestream…)."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from retail_crm.scoping import ScopePaths

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
    is_active = models.BooleanField(_("active"), default=True)

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="brand__regions",
                             store="brand__stores", guide="brand__stores__guides", multi=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        constraints = [models.UniqueConstraint(fields=["brand", "code"], name="product_code_unique_per_brand")]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Sku(models.Model):
    """A sellable variant of a product with its prices and cost."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="skus")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="+")
    code = models.CharField(_("code"), max_length=40)
    colour = models.CharField(_("colour"), max_length=30, blank=True)
    size = models.CharField(_("size"), max_length=20, blank=True)
    material = models.CharField(_("material"), max_length=30, blank=True)
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


class Channel(models.TextChoices):
    MINI_PROGRAM = "mini_program", _("Mini-program")
    STORE_POS = "store_pos", _("Store POS")
    STORE_LIVE = "store_live", _("Store livestream")
    HQ_LIVE = "hq_live", _("HQ livestream")
    COMMUNITY = "community", _("Community group")
    DISTRIBUTION = "distribution", _("Distribution")
    ECOMMERCE = "ecommerce", _("E-commerce")


OFFLINE_CHANNELS = frozenset({Channel.STORE_POS})
# Private-domain sales (私域): the channels the group owns the relationship in.
PRIVATE_DOMAIN_CHANNELS = frozenset({Channel.MINI_PROGRAM, Channel.STORE_LIVE, Channel.HQ_LIVE,
                                     Channel.COMMUNITY, Channel.DISTRIBUTION})


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
        ]
        indexes = [
            models.Index(fields=["brand", "ordered_at"]),
            models.Index(fields=["member", "ordered_at"]),
            models.Index(fields=["store", "ordered_at"]),
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
    amount = money_field(_("amount"))
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
                                        help_text=_("What the member pays, e.g. 0.850 for 15% off"))
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_to = models.DateTimeField(_("valid to"), null=True, blank=True)
    valid_days = models.PositiveIntegerField(_("valid days after issue"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    scope_paths = ScopePaths(group="brand__group", brand="brand")

    class Meta:
        verbose_name = _("coupon template")
        verbose_name_plural = _("coupon templates")
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="threshold", discount_amount__gt=0, discount_rate__isnull=True)
                | Q(kind="discount", discount_rate__gt=0, discount_rate__lt=1, discount_amount__isnull=True),
                name="coupon_template_kind_has_its_amount"),
            models.CheckConstraint(condition=Q(threshold_amount__gte=0), name="coupon_template_threshold_not_negative"),
            # Exactly one way of saying how long an instance lasts.
            models.CheckConstraint(
                condition=Q(valid_days__isnull=True, valid_from__isnull=False, valid_to__gt=F("valid_from"))
                | Q(valid_days__gt=0, valid_from__isnull=True, valid_to__isnull=True),
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
