"""Sales attribution's data (业绩归属): who is credited with each sale, and each brand's choices about it.

The tables keep the names they had when they lived in ``analytics`` (``Meta.db_table``): the models moved
between apps in the migration state only, no row was copied.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from retail_crm.scoping import ScopePaths


class AttributionSettings(models.Model):
    """Per-brand attribution choices; without a row the defaults (DOMAIN.md) apply."""

    brand = models.OneToOneField("retail_crm.Brand", on_delete=models.CASCADE, related_name="attribution_settings")
    exclusive_earns_commission = models.BooleanField(_("exclusive credit earns commission"), default=True)
    selling_earns_commission = models.BooleanField(_("selling credit earns commission"), default=False)
    exclusive_counts_for_kpi = models.BooleanField(_("exclusive credit counts for KPIs"), default=True)
    selling_counts_for_kpi = models.BooleanField(_("selling credit counts for KPIs"), default=True)

    scope_paths = ScopePaths(group="brand__group", brand="brand")

    class Meta:
        db_table = "analytics_attributionsettings"  # the table it had in analytics (moved without copying)
        verbose_name = _("attribution settings")
        verbose_name_plural = _("attribution settings")

    def __str__(self) -> str:
        return f"{self.brand_id}"


class SalesCredit(models.Model):
    """One row of credit for a purchase: to a store (exactly one per order) or to a guide.

    Rows are never edited: a refund or a changed rule adds a correcting row
    (negative to take credit back), so the credit of (order, kind, target) is
    the sum of its rows and history stays readable. ``rule`` and ``inputs``
    say why the sale counts for that store or guide.
    """

    class Kind(models.TextChoices):
        STORE = "store", _("Store credit")
        EXCLUSIVE = "exclusive", _("Exclusive guide credit (专属业绩)")
        SELLING = "selling", _("Selling guide credit (销售业绩)")

    order = models.ForeignKey("mall.Order", on_delete=models.CASCADE, related_name="credits")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="+")
    store = models.ForeignKey("retail_crm.Store", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="+", help_text=_("Empty on a store credit: the HQ pool"))
    guide = models.ForeignKey("retail_crm.Guide", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="credits")
    member = models.ForeignKey("members.Member", on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="+")
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    order_day = models.DateField(_("order day"), help_text=_("Local day the order was placed"))
    booked_at = models.DateTimeField(_("booked at"), auto_now_add=True)
    channel = models.CharField(_("channel"), max_length=20)
    rule = models.CharField(_("rule"), max_length=40)
    inputs = models.JSONField(_("inputs"), default=dict)
    cross_brand = models.BooleanField(_("cross-brand"), default=False,
                                      help_text=_("The order's brand differs from the credited guide's brand"))
    is_correction = models.BooleanField(_("correction"), default=False)

    # A brand's staff see their brand's sales and the cross-brand sales their own guides drove into other brands.
    scope_paths = ScopePaths(
        group="brand__group",
        brand=lambda a: models.Q(brand_id=a.brand_id) | models.Q(guide__store__brand_id=a.brand_id),
        region="store__region", store="store", guide="guide")

    class Meta:
        db_table = "analytics_salescredit"  # the table it had in analytics (moved without copying)
        verbose_name = _("sales credit")
        verbose_name_plural = _("sales credits")
        constraints = [
            models.CheckConstraint(condition=~models.Q(amount=0), name="sales_credit_not_zero"),
            models.CheckConstraint(condition=models.Q(kind="store") | models.Q(guide__isnull=False),
                                   name="guide_credit_names_a_guide"),
        ]
        indexes = [
            models.Index(fields=["order", "kind"]),
            models.Index(fields=["guide", "order_day"]),
            models.Index(fields=["store", "order_day"]),
            models.Index(fields=["brand", "order_day"]),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} {self.kind} {self.amount}"
