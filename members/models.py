"""Members: one identity per person per group, memberships per brand, guide bindings."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from retail_crm.scoping import ScopePaths


def _member_store_rule(actor) -> Q:
    # A store sees members who joined there and members currently bound to one of its guides.
    return Q(memberships__store_id=actor.store_id) | Q(bindings__store_id=actor.store_id,
                                                        bindings__ended_at__isnull=True)


def _member_region_rule(actor) -> Q:
    # Like the store rule, one level up: joined in the region, or bound to a guide of one of its stores.
    return Q(memberships__store__region_id=actor.region_id) | Q(bindings__store__region_id=actor.region_id,
                                                                 bindings__ended_at__isnull=True)


def _member_guide_rule(actor) -> Q:
    # A guide sees only the members currently bound to them.
    return Q(bindings__guide_id=actor.guide_id, bindings__ended_at__isnull=True)


class JoinChannel(models.TextChoices):
    STORE_CARD = "store_card", _("Store card opening")
    PAY_AS_JOIN = "pay_as_join", _("Payment is membership")
    GUIDE_QR = "guide_qr", _("Guide QR scan")
    LIVESTREAM = "livestream", _("Livestream")
    PARCEL_CARD = "parcel_card", _("Parcel card")
    COMMUNITY = "community", _("Community / group buy")
    IMPORT = "import", _("Import")


class Member(models.Model):
    """A person known to the group, found by phone or WeChat ids; profile data is personal data."""

    class Gender(models.TextChoices):
        UNKNOWN = "", _("Unknown")
        FEMALE = "F", _("Female")
        MALE = "M", _("Male")

    group = models.ForeignKey("retail_crm.RetailGroup", on_delete=models.PROTECT, related_name="members")
    code = models.CharField(_("member code"), max_length=40)
    phone = models.CharField(_("phone"), max_length=20, blank=True, help_text=_("Stored as +86…; masked in lists"))
    unionid = models.CharField(max_length=64, blank=True)
    openid = models.CharField(max_length=64, blank=True)
    name = models.CharField(_("name"), max_length=50, blank=True)
    gender = models.CharField(_("gender"), max_length=1, choices=Gender.choices, blank=True, default="")
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), db_index=True)
    merged_into = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                                    help_text=_("Set when this record was merged into another member"))

    scope_paths = ScopePaths(group="group", brand="memberships__brand", region=_member_region_rule,
                             store=_member_store_rule, guide=_member_guide_rule, multi=True)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        constraints = [
            models.UniqueConstraint(fields=["group", "code"], name="member_code_unique_per_group"),
            models.UniqueConstraint(fields=["group", "phone"], condition=~Q(phone=""),
                                    name="member_phone_unique_per_group"),
            models.UniqueConstraint(fields=["group", "unionid"], condition=~Q(unionid=""),
                                    name="member_unionid_unique_per_group"),
            models.UniqueConstraint(fields=["group", "openid"], condition=~Q(openid=""),
                                    name="member_openid_unique_per_group"),
        ]

    def __str__(self) -> str:
        return self.code


class BrandMembership(models.Model):
    """A member's membership of one brand: when, how and where they joined."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="memberships")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="memberships")
    joined_at = models.DateTimeField(_("joined at"))
    join_channel = models.CharField(_("join channel"), max_length=20, choices=JoinChannel.choices)
    store = models.ForeignKey("retail_crm.Store", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="memberships", help_text=_("Store where the member joined"))
    tier = models.CharField(_("tier"), max_length=20, default="standard")

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="store__region", store="store",
                             guide=lambda a: Q(member__bindings__guide_id=a.guide_id,
                                               member__bindings__ended_at__isnull=True,
                                               member__bindings__brand=models.F("brand")),
                             multi=True)

    class Meta:
        verbose_name = _("brand membership")
        verbose_name_plural = _("brand memberships")
        constraints = [models.UniqueConstraint(fields=["member", "brand"], name="one_membership_per_brand")]
        indexes = [models.Index(fields=["brand", "joined_at"])]

    def __str__(self) -> str:
        return f"{self.member.code}@{self.brand.code}"


class GuideBinding(models.Model):
    """A period in which a guide is the member's exclusive guide for a brand (专属导购).

    History is kept: a rebinding ends the current row and starts a new one. At
    most one open row per member and brand, enforced by the database.
    """

    class Reason(models.TextChoices):
        QR_SCAN = "qr_scan", _("QR scan")
        SHARE_LINK = "share_link", _("Share link")
        STORE_PURCHASE = "store_purchase", _("Store purchase")
        TRANSFER = "transfer", _("Transfer")
        GUIDE_LEFT = "guide_left", _("Guide left")
        SERVICE_LAPSE = "service_lapse", _("Service lapse")
        IMPORT = "import", _("Import")

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="bindings")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="+")
    guide = models.ForeignKey("retail_crm.Guide", on_delete=models.PROTECT, related_name="bindings")
    store = models.ForeignKey("retail_crm.Store", on_delete=models.PROTECT, related_name="+",
                              help_text=_("The guide's store when the binding started"))
    started_at = models.DateTimeField(_("started at"))
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    last_served_at = models.DateTimeField(_("last served at"), null=True, blank=True,
                                          help_text=_("Last contact by the guide; drives the service-lapse rule"))

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="store__region", store="store",
                             guide="guide")

    class Meta:
        verbose_name = _("guide binding")
        verbose_name_plural = _("guide bindings")
        constraints = [
            models.UniqueConstraint(fields=["member", "brand"], condition=Q(ended_at__isnull=True),
                                    name="one_open_binding_per_member_brand"),
        ]
        indexes = [models.Index(fields=["guide", "ended_at"])]

    def __str__(self) -> str:
        return f"{self.member_id}→{self.guide_id}"


class BindingPolicy(models.Model):
    """Per-brand binding rules. Without a row, the defaults below apply (DOMAIN.md)."""

    brand = models.OneToOneField("retail_crm.Brand", on_delete=models.CASCADE, related_name="binding_policy")
    protect_first_binding = models.BooleanField(
        _("protect the first binding"), default=True,
        help_text=_("A purchase or scan through another guide does not move the member"))
    service_lapse_days = models.PositiveIntegerField(
        _("service lapse (days)"), null=True, blank=True, default=90,
        help_text=_("After this many days without contact the member may be rebound; empty: never"))

    scope_paths = ScopePaths(group="brand__group", brand="brand")

    class Meta:
        verbose_name = _("binding policy")
        verbose_name_plural = _("binding policies")

    def __str__(self) -> str:
        return f"{self.brand_id}"


class PointsEntry(models.Model):
    """One immutable movement of a member's points in one brand; the balance is the sum."""

    class Reason(models.TextChoices):
        EARN = "earn", _("Earned on a paid order")
        SPEND = "spend", _("Spent at checkout")
        REVERSE = "reverse", _("Reversed by a refund")
        ADJUST = "adjust", _("Manual adjustment")
        EXPIRE = "expire", _("Expired")
        IMPORT = "import", _("Import")

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="points_entries")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="+")
    delta = models.IntegerField(_("points"))
    reason = models.CharField(_("reason"), max_length=10, choices=Reason.choices)
    order = models.ForeignKey("mall.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    scope_paths = ScopePaths(group="brand__group", brand="brand",
                             region=lambda a: Q(member__memberships__store__region_id=a.region_id),
                             store=lambda a: Q(member__memberships__store_id=a.store_id),
                             guide=lambda a: Q(member__bindings__guide_id=a.guide_id,
                                               member__bindings__ended_at__isnull=True), multi=True)

    class Meta:
        verbose_name = _("points entry")
        verbose_name_plural = _("points entries")
        constraints = [
            # An order earns (or is reversed, or spends) once: redelivered events cannot double-credit.
            models.UniqueConstraint(fields=["member", "brand", "order", "reason"], condition=Q(order__isnull=False),
                                    name="points_once_per_order_and_reason"),
            models.CheckConstraint(condition=~Q(delta=0), name="points_entry_not_zero"),
        ]
        indexes = [models.Index(fields=["member", "brand"])]

    def __str__(self) -> str:
        return f"{self.member_id}@{self.brand_id}: {self.delta:+d}"


class MemberMerge(models.Model):
    """Audit of one merge: who was absorbed into whom, what moved, who did it."""

    survivor = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="merges")
    absorbed = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    absorbed_snapshot = models.JSONField(_("absorbed member before the merge"))
    moved = models.JSONField(_("rows moved, per kind"))
    reason = models.CharField(_("reason"), max_length=200)
    merged_by = models.ForeignKey("auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    merged_at = models.DateTimeField(_("merged at"), auto_now_add=True)

    scope_paths = ScopePaths(group="survivor__group")

    class Meta:
        verbose_name = _("member merge")
        verbose_name_plural = _("member merges")

    def __str__(self) -> str:
        return f"{self.absorbed_id} → {self.survivor_id}"
