"""RFML segmentation and the consumption cycle: runs, each member's current class and path, care lists.

The tables keep the names they were created with in ``analytics`` (``Meta.db_table``): the models moved
here without moving a row. The RFML classes and lifecycle stages are shared words
(``retail_crm.vocabulary``), re-exported here for the code that works with them.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

from retail_crm.scoping import ScopePaths
from retail_crm.vocabulary import LifecycleStage, Segment  # also re-exported: the classes' words
from segments.care_text import care_action_text, care_reason_text

ZERO = Decimal("0.00")


class SegmentationSettings(models.Model):
    """Per-brand RFML and care-calendar settings; without a row the defaults apply."""

    brand = models.OneToOneField("retail_crm.Brand", on_delete=models.CASCADE, related_name="segmentation_settings")
    window_days = models.PositiveIntegerField(_("RFML window (days)"), default=365)
    mature_after_days = models.PositiveIntegerField(
        _("mature after (days of lifetime)"), default=180,
        help_text=_("Members with two or more purchases whose first and last purchase are this far apart"))
    cycle_days = models.PositiveIntegerField(_("consumption cycle override (days)"), null=True, blank=True,
                                             help_text=_("Empty: use the cycle measured from purchases"))
    care_days = models.PositiveIntegerField(_("care period after a purchase (days)"), default=15)
    marketing_offset_days = models.PositiveIntegerField(_("marketing starts this many days before the cycle"),
                                                        default=5)
    lapse_factor = models.DecimalField(_("lapse after this many cycles"), max_digits=4, decimal_places=2,
                                       default=Decimal("2.00"))

    scope_paths = ScopePaths(group="brand__group", brand="brand")

    class Meta:
        db_table = "analytics_segmentationsettings"
        verbose_name = _("segmentation settings")
        verbose_name_plural = _("segmentation settings")

    def __str__(self) -> str:
        return f"{self.brand_id}"


class RfmRun(models.Model):
    """One RFML computation for a brand: its inputs, thresholds, class counts and how long it took."""

    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="rfm_runs")
    as_of = models.DateField(_("as of"))
    window_days = models.PositiveIntegerField(_("window (days)"))
    median_recency_days = models.DecimalField(max_digits=10, decimal_places=2, null=True)
    median_frequency = models.DecimalField(max_digits=10, decimal_places=2, null=True)
    median_monetary = models.DecimalField(max_digits=16, decimal_places=2, null=True)
    # The monetary median exactly (it can fall between two cents; median_monetary shows it rounded): what the
    # run compared against and what the same-day updates compare against until the next run.
    median_monetary_half_cents = models.BigIntegerField(null=True)
    members = models.PositiveIntegerField(_("members classified"), default=0)
    lapsed = models.PositiveIntegerField(_("members lapsed"), default=0)
    counts = models.JSONField(_("members per class"), default=dict)
    stage_counts = models.JSONField(_("members per lifecycle stage"), default=dict)
    cycle_days = models.DecimalField(_("consumption cycle (days)"), max_digits=8, decimal_places=2, null=True)
    started_at = models.DateTimeField(_("started at"))
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)

    scope_paths = ScopePaths(group="brand__group", brand="brand")

    class Meta:
        db_table = "analytics_rfmrun"
        verbose_name = _("RFML run")
        verbose_name_plural = _("RFML runs")
        indexes = [models.Index(fields=["brand", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.brand_id} as of {self.as_of}"


def _via_member(prefix: str = "member__") -> ScopePaths:
    """Scope for per-member rows: the member's brand membership store/region, or current binding."""
    return ScopePaths(
        group="brand__group", brand="brand",
        region=lambda a: models.Q(**{f"{prefix}memberships__store__region_id": a.region_id})
        | models.Q(**{f"{prefix}bindings__store__region_id": a.region_id, f"{prefix}bindings__ended_at__isnull": True}),
        store=lambda a: models.Q(**{f"{prefix}memberships__store_id": a.store_id})
        | models.Q(**{f"{prefix}bindings__store_id": a.store_id, f"{prefix}bindings__ended_at__isnull": True}),
        guide=lambda a: models.Q(**{f"{prefix}bindings__guide_id": a.guide_id,
                                    f"{prefix}bindings__ended_at__isnull": True,
                                    f"{prefix}bindings__brand": models.F("brand")}),
        multi=True)


class MemberRfm(models.Model):
    """A member's current RFML figures, class and lifecycle stage for one brand (from the latest run)."""

    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="rfm")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(RfmRun, on_delete=models.SET_NULL, null=True, related_name="+")
    recency_days = models.PositiveIntegerField(null=True)
    frequency = models.PositiveIntegerField(default=0)
    monetary = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)
    lifetime_days = models.PositiveIntegerField(default=0)
    purchases_total = models.PositiveIntegerField(_("purchases ever"), default=0)
    first_purchase_on = models.DateField(null=True)
    last_purchase_on = models.DateField(null=True)
    segment = models.CharField(_("RFML class"), max_length=20, choices=Segment.choices, blank=True)
    lifecycle_stage = models.CharField(_("lifecycle stage"), max_length=10, choices=LifecycleStage.choices)
    cycle_days = models.DecimalField(_("member's own cycle (days)"), max_digits=8, decimal_places=2, null=True,
                                     help_text=_("Median days between this member's purchases (2+ purchases)"))
    next_expected_on = models.DateField(_("next purchase expected"), null=True)
    updated_at = models.DateTimeField(auto_now=True)

    scope_paths = _via_member()

    class Meta:
        db_table = "analytics_memberrfm"
        verbose_name = _("member RFML")
        verbose_name_plural = _("member RFML")
        constraints = [models.UniqueConstraint(fields=["member", "brand"], name="one_rfm_row_per_member_brand")]
        indexes = [models.Index(fields=["brand", "segment"]), models.Index(fields=["brand", "lifecycle_stage"])]

    def __str__(self) -> str:
        return f"{self.member_id}@{self.brand_id}: {self.segment or self.lifecycle_stage}"


class RfmClassChange(models.Model):
    """A member moved from one RFML class to another in a run (the member's path)."""

    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="rfm_changes")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(RfmRun, on_delete=models.CASCADE, related_name="changes")
    from_segment = models.CharField(max_length=20, blank=True)
    to_segment = models.CharField(max_length=20, blank=True)
    from_stage = models.CharField(max_length=10, blank=True)
    to_stage = models.CharField(max_length=10, blank=True)
    changed_on = models.DateField()

    scope_paths = _via_member()

    class Meta:
        db_table = "analytics_rfmclasschange"
        verbose_name = _("RFML class change")
        verbose_name_plural = _("RFML class changes")
        indexes = [models.Index(fields=["member", "brand", "changed_on"]), models.Index(fields=["run"])]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.from_segment or '-'} → {self.to_segment or '-'}"


class CareItem(models.Model):
    """One line of a guide's daily care list: care for, market to, or win back a member, and why."""

    class Kind(models.TextChoices):
        CARE = "care", _("Care (no marketing)")
        MARKET = "market", _("Market")
        WINBACK = "winback", _("Win back")

    day = models.DateField(_("day"))
    guide = models.ForeignKey("retail_crm.Guide", on_delete=models.CASCADE, related_name="care_items")
    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="care_items")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    reason_code = models.CharField(_("reason code"), max_length=30, blank=True)
    reason_params = models.JSONField(_("reason parameters"), default=dict, blank=True)
    # Items written before the codes: the words in the language of the day they were built.
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    suggested_action = models.CharField(_("suggested action"), max_length=200, blank=True)
    important = models.BooleanField(_("personal call"), default=False,
                                    help_text=_("An important-class member: the guide or manager calls in person"))
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    done_by = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    outcome = models.CharField(_("outcome"), max_length=200, blank=True)

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="guide__store__region",
                             store="guide__store", guide="guide")

    class Meta:
        db_table = "analytics_careitem"
        verbose_name = _("care list item")
        verbose_name_plural = _("care list items")
        constraints = [models.UniqueConstraint(fields=["day", "guide", "member", "brand"],
                                               name="one_care_item_per_day_guide_member_brand")]
        indexes = [models.Index(fields=["guide", "day"]), models.Index(fields=["brand", "day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.guide_id}→{self.member_id} {self.kind}"

    @property
    def reason_text(self) -> str:
        """Why the member is listed, in the viewer's language."""
        return care_reason_text(reason_code=self.reason_code, params=self.reason_params, fallback=self.reason)

    @property
    def action_text(self) -> str:
        """The suggested action, in the viewer's language."""
        return care_action_text(reason_code=self.reason_code, important=self.important,
                                fallback=self.suggested_action)
