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
