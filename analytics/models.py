"""Pre-aggregated facts the dashboard reads, so no dashboard query scans raw orders."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

from retail_crm.scoping import ScopePaths

ZERO = Decimal("0.00")


class SalesFact(models.Model):
    """Sales of one day × brand × store × guide × channel, in the group's time zone.

    ``orders``/``gmv`` count every order placed (unpaid and refunded included);
    ``paid_*`` count orders paid; ``sales_flow`` is paid minus refunded (销售流水).
    ``buyers`` are distinct members at this grain and do not add up across rows.
    """

    day = models.DateField(_("day"))
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="+")
    store = models.ForeignKey("retail_crm.Store", on_delete=models.CASCADE, null=True, related_name="+")
    guide = models.ForeignKey("retail_crm.Guide", on_delete=models.CASCADE, null=True, related_name="+")
    channel = models.CharField(_("channel"), max_length=20)
    orders = models.PositiveIntegerField(_("orders"), default=0)
    gmv = models.DecimalField(_("GMV"), max_digits=16, decimal_places=2, default=ZERO)
    paid_orders = models.PositiveIntegerField(_("paid orders"), default=0)
    paid_amount = models.DecimalField(_("paid amount"), max_digits=16, decimal_places=2, default=ZERO)
    refunded_amount = models.DecimalField(_("refunded amount"), max_digits=16, decimal_places=2, default=ZERO)
    sales_flow = models.DecimalField(_("sales flow"), max_digits=16, decimal_places=2, default=ZERO)
    buyers = models.PositiveIntegerField(_("buyers"), default=0)

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="store__region", store="store",
                             guide="guide")

    class Meta:
        verbose_name = _("sales fact")
        verbose_name_plural = _("sales facts")
        indexes = [models.Index(fields=["day", "brand"]), models.Index(fields=["store", "day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.brand_id}/{self.store_id}/{self.guide_id}/{self.channel}"
