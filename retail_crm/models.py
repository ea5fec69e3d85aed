"""The organisation core: group → brand → region → branch → store → guide, and staff scope.

Every staff user has exactly one role and one scope (a StaffProfile). What a
staff user may see is decided in one place, ``retail_crm.scoping``; the
``scope_paths`` declared on each model tell that helper how the model hangs
off the organisation tree.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from retail_crm.scoping import ScopePaths


class RetailGroup(models.Model):
    """A retail group (集团): the top of the tree; one member identity per person per group."""

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    scope_paths = ScopePaths(group="pk", brand="brands", region="brands__regions", store="brands__stores",
                             guide="brands__stores__guides", multi=True)

    class Meta:
        verbose_name = _("retail group")
        verbose_name_plural = _("retail groups")

    def __str__(self) -> str:
        return self.name


class Brand(models.Model):
    """A brand of the group (品牌); codes are unique across the deployment."""

    class Category(models.TextChoices):
        WOMENSWEAR = "womenswear", _("Women's wear")
        MENSWEAR = "menswear", _("Men's wear")
        KIDS = "kids", _("Kids")
        SPORTSWEAR = "sportswear", _("Sportswear")
        ACCESSORIES = "accessories", _("Accessories")
        OTHER = "other", _("Other")

    group = models.ForeignKey(RetailGroup, on_delete=models.PROTECT, related_name="brands", verbose_name=_("group"))
    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    category = models.CharField(_("category"), max_length=20, choices=Category.choices, default=Category.OTHER)
    is_active = models.BooleanField(_("active"), default=True)

    scope_paths = ScopePaths(group="group", brand="pk", region="regions", store="stores",
                             guide="stores__guides", multi=True)

    class Meta:
        verbose_name = _("brand")
        verbose_name_plural = _("brands")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Region(models.Model):
    """A sales region of one brand (大区)."""

    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="regions", verbose_name=_("brand"))
    code = models.SlugField(_("code"), max_length=32)
    name = models.CharField(_("name"), max_length=100)

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="pk", store="stores",
                             guide="stores__guides", multi=True)

    class Meta:
        verbose_name = _("region")
        verbose_name_plural = _("regions")
        ordering = ["brand__code", "code"]
        constraints = [models.UniqueConstraint(fields=["brand", "code"], name="region_code_unique_per_brand")]

    def __str__(self) -> str:
        return f"{self.name} ({self.brand.code}/{self.code})"


class Branch(models.Model):
    """A branch company inside a region (分公司/支社); optional level."""

    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="branches", verbose_name=_("region"))
    code = models.SlugField(_("code"), max_length=32)
    name = models.CharField(_("name"), max_length=100)

    scope_paths = ScopePaths(group="region__brand__group", brand="region__brand", region="region",
                             store="stores", guide="stores__guides", multi=True)

    class Meta:
        verbose_name = _("branch")
        verbose_name_plural = _("branches")
        constraints = [models.UniqueConstraint(fields=["region", "code"], name="branch_code_unique_per_region")]

    def __str__(self) -> str:
        return self.name


class Store(models.Model):
    """A store (门店) of one brand: directly operated, franchise or outlet."""

    class Kind(models.TextChoices):
        DIRECT = "direct", _("Directly operated")
        FRANCHISE = "franchise", _("Franchise")
        OUTLET = "outlet", _("Outlet")

    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="stores", verbose_name=_("brand"))
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="stores", verbose_name=_("region"))
    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, null=True, blank=True, related_name="stores",
                               verbose_name=_("branch"))
    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    city = models.CharField(_("city"), max_length=50, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="region", store="pk",
                             guide="guides", multi=True)

    class Meta:
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["direct", "franchise", "outlet"]), name="store_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Guide(models.Model):
    """A shopping guide (导购) or store manager working in one store, with a staff login."""

    class Role(models.TextChoices):
        GUIDE = "guide", _("Shopping guide")
        STORE_MANAGER = "store_manager", _("Store manager")

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=50)
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="guides", verbose_name=_("store"))
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.GUIDE)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="guide")
    hired_at = models.DateField(_("hired at"), null=True, blank=True)
    left_at = models.DateField(_("left at"), null=True, blank=True)

    scope_paths = ScopePaths(group="store__brand__group", brand="store__brand", region="store__region",
                             store="store", guide="pk")

    class Meta:
        verbose_name = _("guide")
        verbose_name_plural = _("guides")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(left_at__isnull=True) | Q(hired_at__isnull=True)
                                   | Q(left_at__gte=models.F("hired_at")), name="guide_left_after_hired"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def is_active(self) -> bool:
        return self.left_at is None


class StaffRole(models.TextChoices):
    HQ = "hq", _("HQ (group)")
    BRAND_OPERATOR = "brand_operator", _("Brand operator")
    REGION_MANAGER = "region_manager", _("Regional manager")
    STORE_MANAGER = "store_manager", _("Store manager")
    GUIDE = "guide", _("Shopping guide")


class StaffProfile(models.Model):
    """One role and one scope for a staff login. The scope column the role needs must be set."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile")
    role = models.CharField(_("role"), max_length=20, choices=StaffRole.choices)
    group = models.ForeignKey(RetailGroup, on_delete=models.PROTECT, related_name="+", verbose_name=_("group"))
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    region = models.ForeignKey(Region, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    store = models.ForeignKey(Store, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    guide = models.ForeignKey(Guide, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # Set when a manager gave this login a temporary password: the next login must choose a new one first.
    must_change_password = models.BooleanField(_("must change password"), default=False)

    scope_paths = ScopePaths(group="group", brand="brand", region="region", store="store", guide="guide")

    class Meta:
        verbose_name = _("staff profile")
        verbose_name_plural = _("staff profiles")
        constraints = [
            models.CheckConstraint(
                name="staff_scope_matches_role",
                condition=(
                    Q(role="hq", brand__isnull=True, region__isnull=True, store__isnull=True, guide__isnull=True)
                    | Q(role="brand_operator", brand__isnull=False, region__isnull=True, store__isnull=True,
                        guide__isnull=True)
                    | Q(role="region_manager", region__isnull=False, store__isnull=True, guide__isnull=True)
                    | Q(role="store_manager", store__isnull=False)
                    | Q(role="guide", guide__isnull=False)
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()}"


class JobLock(models.Model):
    """A named row that set-based jobs lock (SELECT … FOR UPDATE) so two runs never interleave."""

    name = models.CharField(max_length=100, primary_key=True)

    class Meta:
        verbose_name = _("job lock")
        verbose_name_plural = _("job locks")

    def __str__(self) -> str:
        return self.name


class OutboxEvent(models.Model):
    """A domain event recorded in the transaction that caused it (the transactional outbox).

    ``retail_crm.events.record`` writes the row next to the change it describes, so a rolled-back change
    records nothing and a committed one can never lose its follow-ups. The relay hands each row to its
    subscribers through Celery and marks it ``done_at`` once every subscriber has run (``EventDelivery``).
    """

    name = models.CharField(_("event"), max_length=60)
    payload = models.JSONField(_("payload"), default=dict)
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    relayed_at = models.DateTimeField(_("last handed to the workers"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("relay attempts"), default=0)
    done_at = models.DateTimeField(_("every subscriber ran"), null=True, blank=True)

    class Meta:
        verbose_name = _("domain event")
        verbose_name_plural = _("domain events")
        indexes = [models.Index(fields=["id"], condition=Q(done_at__isnull=True), name="outbox_pending")]

    def __str__(self) -> str:
        return f"{self.name} #{self.pk}"


class EventDelivery(models.Model):
    """One subscriber having handled one event; written in the handler's own transaction.

    The unique pair is what makes a delivery idempotent: a redelivered or duplicated message finds the
    row and does nothing, and two copies running at once cannot both commit.
    """

    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="deliveries")
    handler = models.CharField(_("handler"), max_length=120)
    delivered_at = models.DateTimeField(_("handled at"), auto_now_add=True)

    class Meta:
        verbose_name = _("event delivery")
        verbose_name_plural = _("event deliveries")
        constraints = [models.UniqueConstraint(fields=["event", "handler"], name="event_delivery_once")]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.handler}"


class StaffPasswordReset(models.Model):
    """Audit of one password reset: who (a manager) gave whom (a staff login below them) a temporary password,
    through which page. The password itself is never stored here."""

    class Channel(models.TextChoices):
        WORKBENCH = "workbench", _("Workbench")
        API = "api", _("API")

    reset_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                 verbose_name=_("reset by"))
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("user"))
    guide = models.ForeignKey(Guide, on_delete=models.CASCADE, related_name="password_resets",
                              verbose_name=_("guide"))
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    scope_paths = ScopePaths(group="guide__store__brand__group", brand="guide__store__brand",
                             region="guide__store__region", store="guide__store", guide="guide")

    class Meta:
        verbose_name = _("password reset")
        verbose_name_plural = _("password resets")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.reset_by} → {self.user} ({self.created_at:%Y-%m-%d %H:%M})"


class IdempotencyRecord(models.Model):
    """A request made with an Idempotency-Key: the same key and body get the same response (kept ≥ 24 h)."""

    owner = models.CharField(max_length=40, help_text=_("member:<id> or user:<id>"))
    scope = models.CharField(max_length=40, help_text=_("The operation, e.g. order_create"))
    key = models.CharField(max_length=100)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True,
                                                   help_text=_("Empty while the first request is in flight"))
    response = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "mall_idempotencyrecord"  # created by the mall app; moved here without touching rows
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [models.UniqueConstraint(fields=["owner", "scope", "key"], name="idempotency_key_unique")]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"{self.owner}/{self.scope}/{self.key}"
