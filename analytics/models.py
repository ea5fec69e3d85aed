"""Pre-aggregated facts the dashboard reads, so no dashboard query scans raw orders."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from analytics.facts_models import SalesMeasures  # the other fact tables live there too
from retail_crm.scoping import ScopePaths


class SalesFact(SalesMeasures):
    """Sales of one day × brand × store × guide × channel, in the group's time zone.

    ``orders``/``gmv`` count every order placed (unpaid and refunded included);
    ``paid_*`` count orders paid; ``sales_flow`` is paid minus refunded (销售流水);
    ``unpaid_*`` count orders never paid; ``cost_of_goods`` is Σ quantity × SKU cost
    of paid orders' lines minus the cost of units returned by completed refunds.
    ``buyers`` are distinct members at this grain and do not add up across rows.

    ``store`` and ``guide`` are where attribution credited the sale (the store
    credit's store, empty for the HQ pool; the exclusive, else the selling guide);
    orders without credits (unpaid, fully refunded, not yet attributed) are filed
    under the order's own store and guide. See ``analytics.facts``.
    """

    day = models.DateField(_("day"))
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="+")
    store = models.ForeignKey("retail_crm.Store", on_delete=models.CASCADE, null=True, related_name="+")
    guide = models.ForeignKey("retail_crm.Guide", on_delete=models.CASCADE, null=True, related_name="+")
    channel = models.CharField(_("channel"), max_length=20)

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="store__region", store="store",
                             guide="guide")

    class Meta:
        verbose_name = _("sales fact")
        verbose_name_plural = _("sales facts")
        indexes = [models.Index(fields=["day", "brand"]), models.Index(fields=["store", "day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.brand_id}/{self.store_id}/{self.guide_id}/{self.channel}"

