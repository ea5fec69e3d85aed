"""Pre-aggregated facts the dashboard reads, so no dashboard query scans raw orders: the daily fact tables
behind the HQ dashboard (issue 8), built by ``analytics.facts``.

``SalesFact`` is the sales grain: day × brand × store × guide × channel. The other tables
complete it:

* ``BrandSalesFact``: the same measures rolled up to day × brand × channel, so that
  group- and brand-wide pages read a few hundred rows a month instead of one row per
  store and guide. Only group and brand scopes read it (regional staff read SalesFact).
* ``GuideSalesFact``: the guide credits of attribution (``SalesCredit`` exclusive and
  selling rows) summed per day × order brand × guide × channel × kind × cross-brand,
  filed under the guide's store: guide rankings, online/offline guide sales and the
  cross-brand guided share.
* ``PurchaseFact``: one narrow row per purchase (``mall.selectors.purchases``) with
  its credited store and guide: what member-level rates (repurchase, frequency,
  cross purchase, WeCom friend rate of store buyers) count distinct members over.
* ``EngagementFact``: a guide's day: shares, share and material PV/UV, tasks, care
  items, WeCom friends added, new members bound, commission.
* ``MemberGrowthFact`` / ``MemberCountFact``: new memberships per day × brand × join
  store × join channel, and memberships held at the end of each day per brand × store.
* ``InventorySnapshot``: the online warehouse's stock per day × brand, in units and
  at cost (``Stock`` × ``Sku.cost_price``), for inventory turnover days.

Rollups the pages read at scale (so no page aggregates millions of rows):

* ``GuideRegionFact``: per day × brand × region, the guides' credits and task/care
  counters (the daily trend of the guide ratios).
* ``StoreMonthFact`` / ``GuideMonthFact``: per calendar month, sales per credited store
  and channel, and each guide's KPIs; a period is answered from its whole months plus
  the month-to-date rollups at its edges.
* ``StoreMonthToDateFact`` / ``GuideMonthToDateFact``: the same sums from the first of a month
  through each day of it, so the days at a period's edges are one or two of those rows, never a
  scan of day facts.
* ``MemberMonthFact`` / ``SegmentMonthFact``: the distinct-member counts behind the
  member-level rates and the sales per RFML class, per month at each organisation
  level (distinct counts do not add up, so each level has its own rows).

Every day table is rebuilt per day (delete + insert in one transaction), and the
month rollups per month from the day tables, so a rebuild is idempotent;
``FactBuild`` records when each day was last built.
Distinct counts (buyers, UV) are distinct at their row's grain and do not add up
across rows: metrics that need distinct members over a period read PurchaseFact.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

from retail_crm.scoping import ScopePaths

ZERO = Decimal("0.00")


def _money(verbose_name) -> models.DecimalField:
    return models.DecimalField(verbose_name, max_digits=16, decimal_places=2, default=ZERO)


class SalesMeasures(models.Model):
    """The sales measures shared by SalesFact and BrandSalesFact (see SalesFact)."""

    orders = models.PositiveIntegerField(_("orders"), default=0)
    gmv = _money(_("GMV"))
    paid_orders = models.PositiveIntegerField(_("paid orders"), default=0)
    paid_amount = _money(_("paid amount"))
    refunded_amount = _money(_("refunded amount"))
    sales_flow = _money(_("sales flow"))
    buyers = models.PositiveIntegerField(_("buyers"), default=0)
    unpaid_orders = models.PositiveIntegerField(_("unpaid orders"), default=0)
    unpaid_amount = _money(_("unpaid amount"))
    refunded_orders = models.PositiveIntegerField(_("orders with a refund"), default=0)
    member_paid_orders = models.PositiveIntegerField(_("paid orders by members"), default=0)
    cost_of_goods = _money(_("cost of goods"))

    class Meta:
        abstract = True


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


class BrandSalesFact(SalesMeasures):
    """Sales of one day × brand × channel (the brand-level rollup of SalesFact)."""

    day = models.DateField(_("day"))
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(_("channel"), max_length=20)

    scope_paths = ScopePaths(group="brand__group", brand="brand")

    class Meta:
        verbose_name = _("brand sales fact")
        verbose_name_plural = _("brand sales facts")
        constraints = [models.UniqueConstraint(fields=["day", "brand", "channel"], name="one_brand_sales_fact")]

    def __str__(self) -> str:
        return f"{self.day} {self.brand_id}/{self.channel}"


class GuideSalesFact(models.Model):
    """Guide credits of one day × order brand × guide × channel × credit kind × cross-brand.

    ``amount`` is the sum of the credit rows (corrections included) of orders placed
    that day; ``orders`` counts orders whose credit is positive. ``store`` is the
    guide's store (the guide's brand may differ from ``brand``: cross-brand sales).
    """

    day = models.DateField(_("day"))
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="+",
                              help_text=_("The order's brand"))
    guide = models.ForeignKey("retail_crm.Guide", on_delete=models.CASCADE, related_name="+")
    store = models.ForeignKey("retail_crm.Store", on_delete=models.CASCADE, related_name="+",
                              help_text=_("The guide's store"))
    channel = models.CharField(_("channel"), max_length=20)
    kind = models.CharField(_("credit kind"), max_length=10)
    cross_brand = models.BooleanField(_("cross-brand"), default=False)
    amount = _money(_("credited amount"))
    orders = models.PositiveIntegerField(_("orders"), default=0)

    scope_paths = ScopePaths(group="store__brand__group", brand="store__brand", region="store__region",
                             store="store", guide="guide")

    class Meta:
        verbose_name = _("guide sales fact")
        verbose_name_plural = _("guide sales facts")
        indexes = [models.Index(fields=["day", "store"]), models.Index(fields=["guide", "day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.guide_id} {self.kind} {self.amount}"


class PurchaseFact(models.Model):
    """One purchase (paid, net > 0) with its local day, credited store and guide, member and net amount."""

    order = models.OneToOneField("mall.Order", on_delete=models.CASCADE, primary_key=True, related_name="+")
    day = models.DateField(_("day"))
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="+")
    store = models.ForeignKey("retail_crm.Store", on_delete=models.CASCADE, null=True, related_name="+")
    guide = models.ForeignKey("retail_crm.Guide", on_delete=models.CASCADE, null=True, related_name="+")
    member = models.ForeignKey("members.Member", on_delete=models.SET_NULL, null=True, related_name="+")
    channel = models.CharField(_("channel"), max_length=20)
    offline = models.BooleanField(_("offline"), default=False)
    net_amount = models.DecimalField(_("net amount"), max_digits=14, decimal_places=2)

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="store__region", store="store",
                             guide="guide")

    class Meta:
        verbose_name = _("purchase fact")
        verbose_name_plural = _("purchase facts")
        indexes = [models.Index(fields=["day", "brand"]), models.Index(fields=["store", "day"]),
                   models.Index(fields=["member", "day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.order_id}"


class EngagementFact(models.Model):
    """A guide's day: shares, PV/UV of what they shared, tasks, care, WeCom friends, members, commission.

    Only guides with something to count that day have a row. UV counts distinct viewers
    (member or anonymous visitor) of the guide's shares that day and does not add up
    across days. ``tasks_executed`` counts, of the assignments made that day, those
    executed by the time the day was built (the job rebuilds days whose tasks or care
    items changed later).
    """

    day = models.DateField(_("day"))
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="+",
                              help_text=_("The guide's brand"))
    store = models.ForeignKey("retail_crm.Store", on_delete=models.CASCADE, related_name="+")
    guide = models.ForeignKey("retail_crm.Guide", on_delete=models.CASCADE, related_name="+")
    shares = models.PositiveIntegerField(_("shares"), default=0)
    share_pv = models.PositiveIntegerField(_("share views (PV)"), default=0)
    share_uv = models.PositiveIntegerField(_("share viewers (UV)"), default=0)
    material_pv = models.PositiveIntegerField(_("material views (PV)"), default=0)
    material_uv = models.PositiveIntegerField(_("material viewers (UV)"), default=0)
    tasks_assigned = models.PositiveIntegerField(_("tasks assigned"), default=0)
    tasks_executed = models.PositiveIntegerField(_("of those, executed"), default=0)
    care_items = models.PositiveIntegerField(_("care items"), default=0)
    care_items_done = models.PositiveIntegerField(_("care items done"), default=0)
    wecom_friends_added = models.PositiveIntegerField(_("WeCom friends added"), default=0)
    new_members = models.PositiveIntegerField(_("new members bound"), default=0)
    commission = models.DecimalField(_("commission earned"), max_digits=14, decimal_places=2, default=ZERO)

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="store__region", store="store",
                             guide="guide")

    class Meta:
        verbose_name = _("engagement fact")
        verbose_name_plural = _("engagement facts")
        constraints = [models.UniqueConstraint(fields=["day", "guide"], name="one_engagement_fact_per_guide_day")]
        indexes = [models.Index(fields=["day", "brand"]), models.Index(fields=["store", "day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.guide_id}"


class MemberGrowthFact(models.Model):
    """New brand memberships of one day × brand × join store × join channel."""

    day = models.DateField(_("day"))
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="+")
    store = models.ForeignKey("retail_crm.Store", on_delete=models.CASCADE, null=True, related_name="+")
    join_channel = models.CharField(_("join channel"), max_length=20)
    new_members = models.PositiveIntegerField(_("new members"), default=0)

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="store__region", store="store")

    class Meta:
        verbose_name = _("member growth fact")
        verbose_name_plural = _("member growth facts")
        indexes = [models.Index(fields=["day", "brand"]), models.Index(fields=["store", "day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.brand_id}/{self.store_id}/{self.join_channel}: {self.new_members}"


class MemberCountFact(models.Model):
    """Brand memberships held at the end of one day, per brand × join store (empty store: joined online)."""

    day = models.DateField(_("day"))
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="+")
    store = models.ForeignKey("retail_crm.Store", on_delete=models.CASCADE, null=True, related_name="+")
    members = models.PositiveIntegerField(_("members"), default=0)

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="store__region", store="store")

    class Meta:
        verbose_name = _("member count fact")
        verbose_name_plural = _("member count facts")
        indexes = [models.Index(fields=["day", "brand"]), models.Index(fields=["store", "day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.brand_id}/{self.store_id}: {self.members}"


class InventorySnapshot(models.Model):
    """The online warehouse's stock of one brand at the end of one day, in units and at cost.

    Built by the facts job from ``Stock`` × ``Sku.cost_price``; a past day is the
    current stock rolled back by the ``StockMovement`` ledger (at today's cost
    prices). Inventory history starts with the first snapshot the job took.
    """

    day = models.DateField(_("day"))
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="+")
    units = models.BigIntegerField(_("units"), default=0)
    value_at_cost = _money(_("value at cost"))
    skus_in_stock = models.PositiveIntegerField(_("SKUs in stock"), default=0)

    scope_paths = ScopePaths(group="brand__group", brand="brand")

    class Meta:
        verbose_name = _("inventory snapshot")
        verbose_name_plural = _("inventory snapshots")
        constraints = [models.UniqueConstraint(fields=["day", "brand"], name="one_inventory_snapshot_per_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.brand_id}: {self.value_at_cost}"


class FactBuild(models.Model):
    """When a day's facts were last built (all brands or one), how long it took and how many rows it wrote."""

    day = models.DateField(_("day"))
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, null=True, blank=True, related_name="+",
                              help_text=_("Empty: every brand"))
    built_at = models.DateTimeField(_("built at"))
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    rows = models.JSONField(_("rows written per table"), default=dict)

    scope_paths = ScopePaths(group=lambda a: models.Q(brand__isnull=True) | models.Q(brand__group_id=a.group_id),
                             brand=lambda a: models.Q(brand__isnull=True) | models.Q(brand_id=a.brand_id))

    class Meta:
        verbose_name = _("fact build")
        verbose_name_plural = _("fact builds")
        indexes = [models.Index(fields=["day", "brand"])]

    def __str__(self) -> str:
        return f"{self.day} {self.brand_id or '*'} @ {self.built_at:%Y-%m-%d %H:%M}"


# ---------------------------------------------------------------------------- rollups the pages read at scale


class GuideRegionFact(models.Model):
    """Guide work and guide sales of one day × brand × region, summed over the region's guides.

    The daily trend of the task execution rate, the care-list completion and the
    cross-brand guided share for group, brand and region views (a few hundred rows a
    day instead of one per active guide). ``brand`` and ``region`` are the guides'.
    """

    day = models.DateField(_("day"))
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="+")
    region = models.ForeignKey("retail_crm.Region", on_delete=models.CASCADE, related_name="+")
    guide_sales = _money(_("guide credits"))
    cross_brand_sales = _money(_("guide credits on other brands' orders"))
    tasks_assigned = models.PositiveIntegerField(_("tasks assigned"), default=0)
    tasks_executed = models.PositiveIntegerField(_("of those, executed"), default=0)
    care_items = models.PositiveIntegerField(_("care items"), default=0)
    care_items_done = models.PositiveIntegerField(_("care items done"), default=0)

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="region")

    class Meta:
        verbose_name = _("guide region fact")
        verbose_name_plural = _("guide region facts")
        constraints = [models.UniqueConstraint(fields=["day", "region"], name="one_guide_region_fact_per_day")]
        indexes = [models.Index(fields=["day", "brand"])]

    def __str__(self) -> str:
        return f"{self.day} {self.region_id}"


class StoreRollup(models.Model):
    """Brand, credited store (empty: the HQ pool), channel and sales measures of the store rollups
    (StoreMonthFact, StoreMonthToDateFact)."""

    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="+")
    region = models.ForeignKey("retail_crm.Region", on_delete=models.CASCADE, null=True, related_name="+")
    store = models.ForeignKey("retail_crm.Store", on_delete=models.CASCADE, null=True, related_name="+")
    channel = models.CharField(_("channel"), max_length=20)

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="region", store="store")

    orders = models.PositiveIntegerField(_("orders"), default=0)
    gmv = _money(_("GMV"))
    paid_orders = models.PositiveIntegerField(_("paid orders"), default=0)
    paid_amount = _money(_("paid amount"))
    refunded_amount = _money(_("refunded amount"))
    sales_flow = _money(_("sales flow"))

    class Meta:
        abstract = True


class StoreMonthFact(StoreRollup):
    """Sales of one calendar month × brand × credited store × channel (empty store: the HQ pool)."""

    month = models.DateField(_("month"), help_text=_("The first day of the month"))

    class Meta:
        verbose_name = _("store month fact")
        verbose_name_plural = _("store month facts")
        indexes = [models.Index(fields=["month", "brand"]), models.Index(fields=["store", "month"])]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.store_id}/{self.channel}"


class StoreMonthToDateFact(StoreRollup):
    """Sales of a calendar month from its first day through ``day``, × brand × credited store × channel.

    Month to date, one set of rows per day: any run of days inside one month is the
    difference of two of them (or of the month's rollup and one), so a period that
    cuts a month never sums day facts.
    """

    day = models.DateField(_("through day"))

    class Meta:
        verbose_name = _("store month-to-date fact")
        verbose_name_plural = _("store month-to-date facts")
        indexes = [models.Index(fields=["day", "brand"]), models.Index(fields=["store", "day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.store_id}/{self.channel}"


class GuideRollup(models.Model):
    """A guide (placed at its store) with its credited sales (all channels) and engagement counters, summed:
    the guide rollups (GuideMonthFact, GuideMonthToDateFact)."""

    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="+",
                              help_text=_("The guide's brand"))
    region = models.ForeignKey("retail_crm.Region", on_delete=models.CASCADE, related_name="+")
    store = models.ForeignKey("retail_crm.Store", on_delete=models.CASCADE, related_name="+")
    guide = models.ForeignKey("retail_crm.Guide", on_delete=models.CASCADE, related_name="+")

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="region", store="store", guide="guide")

    online_sales = _money(_("online sales"))
    offline_sales = _money(_("offline sales"))
    sales = _money(_("sales"))
    cross_brand_sales = _money(_("cross-brand sales"))
    shares = models.PositiveIntegerField(default=0)
    share_pv = models.PositiveIntegerField(default=0)
    share_uv = models.PositiveIntegerField(default=0)
    material_pv = models.PositiveIntegerField(default=0)
    material_uv = models.PositiveIntegerField(default=0)
    tasks_assigned = models.PositiveIntegerField(default=0)
    tasks_executed = models.PositiveIntegerField(default=0)
    care_items = models.PositiveIntegerField(default=0)
    care_items_done = models.PositiveIntegerField(default=0)
    wecom_friends_added = models.PositiveIntegerField(default=0)
    new_members = models.PositiveIntegerField(default=0)
    commission = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)

    class Meta:
        abstract = True


class GuideMonthFact(GuideRollup):
    """A guide's calendar month: credited sales (all channels) and the engagement counters, summed."""

    month = models.DateField(_("month"), help_text=_("The first day of the month"))

    class Meta:
        verbose_name = _("guide month fact")
        verbose_name_plural = _("guide month facts")
        constraints = [models.UniqueConstraint(fields=["month", "guide"], name="one_guide_month_fact")]
        indexes = [models.Index(fields=["month", "brand"]), models.Index(fields=["store", "month"])]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.guide_id}"


class GuideMonthToDateFact(GuideRollup):
    """A guide's calendar month from its first day through ``day`` (see StoreMonthToDateFact)."""

    day = models.DateField(_("through day"))

    class Meta:
        verbose_name = _("guide month-to-date fact")
        verbose_name_plural = _("guide month-to-date facts")
        constraints = [models.UniqueConstraint(fields=["day", "guide"], name="one_guide_month_to_date_fact")]
        indexes = [models.Index(fields=["day", "brand"]), models.Index(fields=["store", "day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.guide_id}"


class RateLevel(models.TextChoices):
    GROUP = "group", _("Group")
    BRAND = "brand", _("Brand")
    REGION = "region", _("Region")
    STORE = "store", _("Store")


class MemberCounts(models.Model):
    """The distinct-member counts behind the member-level rates (see MemberMonthFact)."""

    level = models.CharField(_("level"), max_length=10, choices=RateLevel.choices)
    group = models.ForeignKey("retail_crm.RetailGroup", on_delete=models.CASCADE, related_name="+")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, null=True, related_name="+")
    region = models.ForeignKey("retail_crm.Region", on_delete=models.CASCADE, null=True, related_name="+")
    store = models.ForeignKey("retail_crm.Store", on_delete=models.CASCADE, null=True, related_name="+")
    channel = models.CharField(_("channel"), max_length=20, blank=True)
    buyers = models.PositiveIntegerField(_("purchasing members"), default=0)
    repeat_buyers = models.PositiveIntegerField(_("members with 2+ purchases"), default=0)
    purchases = models.PositiveIntegerField(_("purchases by members"), default=0)
    cross_buyers = models.PositiveIntegerField(_("members who bought online and offline"), default=0)
    store_buyers = models.PositiveIntegerField(_("store buyers (member × brand)"), default=0)
    wecom_store_buyers = models.PositiveIntegerField(_("of those, WeCom friends"), default=0)
    active_members = models.PositiveIntegerField(_("memberships active in the mini-program"), default=0)
    members = models.PositiveIntegerField(_("memberships at the month's end"), default=0)

    scope_paths = ScopePaths(group="group", brand="brand", region="region", store="store")

    class Meta:
        abstract = True


class MemberMonthFact(MemberCounts):
    """Distinct members behind the member-level rates of one calendar month, at one organisation level.

    Distinct counts do not add up across brands, regions or stores, so each level has
    its own rows: the group (``brand`` empty), a brand, a region, a store. ``channel``
    empty counts every channel; a channel's rows count only its purchases (buyers,
    repeat buyers, purchases). Stores and regions are the credited ones for purchases
    and the join store for memberships and activity. See ``analytics.metrics``.
    """

    month = models.DateField(_("month"), help_text=_("The first day of the month"))

    class Meta:
        verbose_name = _("member month fact")
        verbose_name_plural = _("member month facts")
        indexes = [models.Index(fields=["month", "level", "group"]), models.Index(fields=["month", "brand"]),
                   models.Index(fields=["month", "region"]), models.Index(fields=["month", "store"])]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.level} {self.brand_id}/{self.region_id}/{self.store_id} {self.channel}"


class MemberWindowFact(MemberCounts):
    """The same counts as MemberMonthFact over one window of days [date_from, date_to] (issue 24).

    A period that is not a calendar month is one window: its distinct members are
    those of exactly its days. The nightly and hourly builds write the windows of
    the dashboard's presets (the last 7 and 30 days ending on the day built, and the
    same days a year earlier); windows holding a day rebuilt later are deleted
    (stale), and any other period is counted live from PurchaseFact. ``members``
    are the memberships at the window's end.
    """

    date_from = models.DateField(_("first day"))
    date_to = models.DateField(_("last day"))

    class Meta:
        verbose_name = _("member window fact")
        verbose_name_plural = _("member window facts")
        indexes = [models.Index(fields=["date_to", "date_from", "level"])]

    def __str__(self) -> str:
        return f"{self.date_from}..{self.date_to} {self.level} {self.brand_id}/{self.region_id}/{self.store_id}"


class GuidedOrderFact(models.Model):
    """Guided sales with each order counted once, per day × order brand × channel × place in the organisation.

    The cross-brand guided share (``analytics.metrics.cross_brand_guided_share``) counts
    each guided order once in a view even when two guides (exclusive and selling) are
    credited. For an order, the value of a node N of the organisation (a guide's store,
    its region, brand, the group) is ``amount`` = the largest credit of the order's
    guides under N (every credit is worth the order's net amount) and ``cross_amount``
    = that amount when one of those guides is of another brand than the order, else 0.
    Each row holds a node's value less the values of its children that have credited
    guides, so that the rows of a view's nodes (a store, a region and its stores, a
    brand and everything under it, the group) add up to the view's value for every
    order: rows appear at guides' nodes and where two guides' paths meet (negative
    there). ``grain`` names the leaves: "store" (the guides' stores: what store views
    read), "region", "brand" or "group" (one row per day × order brand × channel: what
    the group view reads), so each view reads the fewest rows.
    """

    day = models.DateField(_("day"))
    grain = models.CharField(_("grain"), max_length=10)
    level = models.CharField(_("level"), max_length=10, choices=RateLevel.choices)
    order_brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="+",
                                    help_text=_("The order's brand"))
    channel = models.CharField(_("channel"), max_length=20)
    group = models.ForeignKey("retail_crm.RetailGroup", on_delete=models.CASCADE, related_name="+")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, null=True, related_name="+",
                              help_text=_("The guides' brand"))
    region = models.ForeignKey("retail_crm.Region", on_delete=models.CASCADE, null=True, related_name="+")
    store = models.ForeignKey("retail_crm.Store", on_delete=models.CASCADE, null=True, related_name="+")
    amount = _money(_("guided sales"))
    cross_amount = _money(_("cross-brand guided sales"))

    scope_paths = ScopePaths(group="group", brand="brand", region="region", store="store")

    class Meta:
        verbose_name = _("guided order fact")
        verbose_name_plural = _("guided order facts")
        indexes = [models.Index(fields=["day", "grain", "group"])]

    def __str__(self) -> str:
        return f"{self.day} {self.grain} {self.level} {self.brand_id}/{self.region_id}/{self.store_id}"


class SegmentMonthFact(models.Model):
    """Members and purchases of one calendar month by RFML class (the class when the month was last built).

    One row per brand (``level`` brand), per region and per store: ``members`` are the
    class's members placed at their join store, purchases at the credited store;
    ``buyers`` are distinct members of the brand at the row's level.
    """

    month = models.DateField(_("month"), help_text=_("The first day of the month"))
    level = models.CharField(_("level"), max_length=10, choices=RateLevel.choices)
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="+")
    region = models.ForeignKey("retail_crm.Region", on_delete=models.CASCADE, null=True, related_name="+")
    store = models.ForeignKey("retail_crm.Store", on_delete=models.CASCADE, null=True, related_name="+")
    segment = models.CharField(_("RFML class"), max_length=20)
    members = models.PositiveIntegerField(_("members in the class when built"), default=0,
                                          help_text=_("Placed at their join store (online joins: brand level only)"))
    buyers = models.PositiveIntegerField(_("buyers"), default=0)
    purchases = models.PositiveIntegerField(_("purchases"), default=0)
    sales_flow = _money(_("sales flow"))

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="region", store="store")

    class Meta:
        verbose_name = _("segment month fact")
        verbose_name_plural = _("segment month facts")
        indexes = [models.Index(fields=["month", "brand"]), models.Index(fields=["month", "region"]),
                   models.Index(fields=["month", "store"])]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.brand_id} {self.segment}"
