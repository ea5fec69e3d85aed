"""Guides' own objects: the exclusive QR / share token (more arrive with the workbench issue)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from retail_crm.scoping import ScopePaths


class GuideToken(models.Model):
    """A guide's exclusive QR / share-link token (专属二维码): signed, rotatable, revocable.

    Rotating issues a new token; the old one stays valid for binding and
    attribution history until it is revoked. Office staff with no guide row
    (all-staff distribution) hold tokens through ``staff_user``.
    """

    token = models.CharField(_("token"), max_length=100, unique=True)
    guide = models.ForeignKey("retail_crm.Guide", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="tokens")
    staff_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="share_tokens")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    scope_paths = ScopePaths(group="guide__store__brand__group", brand="guide__store__brand",
                             region="guide__store__region", store="guide__store", guide="guide")

    class Meta:
        verbose_name = _("guide token")
        verbose_name_plural = _("guide tokens")
        constraints = [
            models.CheckConstraint(condition=Q(guide__isnull=False) | Q(staff_user__isnull=False),
                                   name="guide_token_has_owner"),
        ]

    def __str__(self) -> str:
        return self.token


class CommissionRule(models.Model):
    """A commission rate for a brand, optionally narrowed to a product category and/or a channel.

    The most specific active rule wins (category and channel > category > channel > brand-wide).
    """

    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="commission_rules")
    category = models.CharField(_("product category"), max_length=40, blank=True)
    channel = models.CharField(_("channel"), max_length=20, blank=True)
    rate = models.DecimalField(_("rate"), max_digits=5, decimal_places=4, help_text=_("e.g. 0.0300 for 3%"))
    is_active = models.BooleanField(_("active"), default=True)

    scope_paths = ScopePaths(group="brand__group", brand="brand")

    class Meta:
        verbose_name = _("commission rule")
        verbose_name_plural = _("commission rules")
        constraints = [
            models.CheckConstraint(condition=Q(rate__gte=0, rate__lte=1), name="commission_rate_is_a_fraction"),
            models.UniqueConstraint(fields=["brand", "category", "channel"], condition=Q(is_active=True),
                                    name="one_active_commission_rule_per_key"),
        ]

    def __str__(self) -> str:
        return f"{self.brand_id} {self.category or '*'}/{self.channel or '*'}: {self.rate}"


class CommissionEntry(models.Model):
    """One immutable row of a guide's (or office staff member's) commission ledger; the balance is the sum.

    An earning is pending until ``available_at`` (the end of the return
    window), then available; refunds add reversals, withdrawals add negative
    rows. Nothing is ever edited.
    """

    class Kind(models.TextChoices):
        EARN = "earn", _("Earned")
        REVERSAL = "reversal", _("Reversed by a refund")
        WITHDRAWAL = "withdrawal", _("Withdrawn")
        WITHDRAWAL_RETURN = "withdrawal_return", _("Withdrawal rejected, returned")

    guide = models.ForeignKey("retail_crm.Guide", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="commission_entries")
    staff_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="commission_entries")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    order = models.ForeignKey("mall.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    credit = models.ForeignKey("attribution.SalesCredit", on_delete=models.PROTECT, null=True, blank=True,
                               related_name="commission_entries")
    withdrawal = models.ForeignKey("guides.WithdrawalRequest", on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="entries")
    rate = models.DecimalField(_("rate"), max_digits=5, decimal_places=4, null=True, blank=True)
    available_at = models.DateTimeField(_("available from"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    note = models.CharField(_("note"), max_length=200, blank=True)

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="guide__store__region",
                             store="guide__store", guide="guide")

    class Meta:
        verbose_name = _("commission entry")
        verbose_name_plural = _("commission entries")
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="commission_entry_not_zero"),
            models.CheckConstraint(condition=Q(guide__isnull=False) | Q(staff_user__isnull=False),
                                   name="commission_entry_has_owner"),
            # One earning (and one reversal per credit row) per sales-credit row: redelivery cannot double-pay.
            models.UniqueConstraint(fields=["credit", "kind"], condition=Q(credit__isnull=False),
                                    name="commission_once_per_credit_and_kind"),
        ]
        indexes = [models.Index(fields=["guide", "available_at"]), models.Index(fields=["staff_user",
                                                                                        "available_at"])]

    def __str__(self) -> str:
        return f"{self.guide_id or self.staff_user_id}: {self.kind} {self.amount}"


class WithdrawalRequest(models.Model):
    """A guide asks to withdraw available commission; someone else approves; then it is paid out."""

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        PAID = "paid", _("Paid")

    guide = models.ForeignKey("retail_crm.Guide", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="withdrawals")
    staff_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="withdrawals")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.REQUESTED)
    requested_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    request_key = models.CharField(_("request key"), max_length=64,
                                   help_text=_("From the form: a double-tapped request creates one withdrawal"))
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="guide__store__region",
                             store="guide__store", guide="guide")

    class Meta:
        verbose_name = _("withdrawal request")
        verbose_name_plural = _("withdrawal requests")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="withdrawal_amount_positive"),
            models.UniqueConstraint(fields=["request_key"], name="withdrawal_request_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.guide_id}: {self.amount} {self.status}"


# ---------------------------------------------------------------------------- materials, tasks, shares (issue 6)

def _group_wide_or_own_brand(level: str):
    """Scope rule for library rows: group-wide rows (no brand) and rows of the actor's own brand.

    ``level`` is the actor's level; below brand level the brand is the one the
    actor's region, store or guide belongs to.
    """
    from retail_crm.models import Brand

    lookup = {"brand": "pk", "region": "regions", "store": "stores", "guide": "stores__guides"}[level]

    def rule(actor):
        own = Brand.objects.filter(**{lookup: getattr(actor, f"{level}_id")}).values("pk")
        return Q(brand__isnull=True, group_id=actor.group_id) | Q(brand__in=own)
    return rule


_LIBRARY_SCOPE = ScopePaths(group="group", brand=_group_wide_or_own_brand("brand"),
                            region=_group_wide_or_own_brand("region"), store=_group_wide_or_own_brand("store"),
                            guide=_group_wide_or_own_brand("guide"))


class Material(models.Model):
    """A piece of the material library (素材库): an image, a copy text or a short video link.

    HQ materials have no brand (group-wide); a brand's operators add their own.
    """

    class Kind(models.TextChoices):
        IMAGE = "image", _("Image")
        COPY = "copy", _("Copy text")
        VIDEO = "video", _("Video")

    group = models.ForeignKey("retail_crm.RetailGroup", on_delete=models.PROTECT, related_name="+")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="materials", help_text=_("Empty: for every brand of the group"))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    title = models.CharField(_("title"), max_length=120)
    body = models.TextField(_("copy text"), blank=True)
    image = models.FileField(_("image"), upload_to="materials/%Y/%m/", blank=True)
    video_url = models.URLField(_("video link"), blank=True)
    product = models.ForeignKey("mall.Product", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                help_text=_("The product this material shows, if any"))
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    # Every guide and manager of the group sees group-wide rows and their own brand's.
    scope_paths = _LIBRARY_SCOPE

    class Meta:
        verbose_name = _("material")
        verbose_name_plural = _("materials")
        indexes = [models.Index(fields=["group", "brand", "-created_at"])]

    def __str__(self) -> str:
        return self.title


class GuideTask(models.Model):
    """A task (导购任务) HQ or a brand pushes to guides: copy + materials + audience + deadline + assignees.

    Assignees are chosen by brand, region and/or store; publishing creates one
    TaskAssignment per guide in scope, which is what execution is measured on.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")
        CLOSED = "closed", _("Closed")

    group = models.ForeignKey("retail_crm.RetailGroup", on_delete=models.PROTECT, related_name="+")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="guide_tasks", help_text=_("Empty: an HQ task for every brand"))
    title = models.CharField(_("title"), max_length=120)
    copy_text = models.TextField(_("copy text"), help_text=_("What the guide copies and sends"))
    materials = models.ManyToManyField(Material, blank=True, related_name="tasks")
    product = models.ForeignKey("mall.Product", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                help_text=_("The product the task's share link opens, if any"))
    live_session = models.ForeignKey("livestream.LiveSession", on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+", help_text=_("The livestream the task promotes, if any"))
    audience_tags = models.ManyToManyField("members.TagValue", blank=True, related_name="+",
                                           verbose_name=_("audience tags"))
    audience_segments = models.JSONField(_("audience RFML classes"), default=list, blank=True)
    assign_brands = models.ManyToManyField("retail_crm.Brand", blank=True, related_name="+",
                                           verbose_name=_("assign to brands"))
    assign_regions = models.ManyToManyField("retail_crm.Region", blank=True, related_name="+",
                                            verbose_name=_("assign to regions"))
    assign_stores = models.ManyToManyField("retail_crm.Store", blank=True, related_name="+",
                                           verbose_name=_("assign to stores"))
    starts_at = models.DateTimeField(_("starts at"))
    deadline = models.DateTimeField(_("deadline"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    scope_paths = _LIBRARY_SCOPE

    class Meta:
        verbose_name = _("guide task")
        verbose_name_plural = _("guide tasks")
        constraints = [models.CheckConstraint(condition=Q(deadline__gt=F("starts_at")), name="task_deadline_after")]

    def __str__(self) -> str:
        return self.title


class TaskAssignment(models.Model):
    """One guide's copy of a published task: its audience size, and when and how far it was executed."""

    task = models.ForeignKey(GuideTask, on_delete=models.CASCADE, related_name="assignments")
    guide = models.ForeignKey("retail_crm.Guide", on_delete=models.PROTECT, related_name="task_assignments")
    assigned_at = models.DateTimeField(_("assigned at"), auto_now_add=True)
    audience_size = models.PositiveIntegerField(_("audience (members)"), default=0)
    executed_at = models.DateTimeField(_("executed at"), null=True, blank=True)
    reached = models.PositiveIntegerField(_("members reached"), default=0)
    share = models.ForeignKey("guides.Share", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    scope_paths = ScopePaths(group="guide__store__brand__group", brand="guide__store__brand",
                             region="guide__store__region", store="guide__store", guide="guide")

    class Meta:
        verbose_name = _("task assignment")
        verbose_name_plural = _("task assignments")
        constraints = [models.UniqueConstraint(fields=["task", "guide"], name="one_assignment_per_task_guide")]
        indexes = [models.Index(fields=["guide", "executed_at"])]

    def __str__(self) -> str:
        return f"{self.task_id} → {self.guide_id}"


class Share(models.Model):
    """One share by a guide (or office staff member) of a product, material, livestream or task.

    ``code`` is signed like a guide token and is accepted wherever a share
    token is (events, cart, order): it resolves to the sharer, and the funnel
    (view PV/UV → add to cart → order → paid → associated sales) is counted
    from the events and orders carrying it.
    """

    class Target(models.TextChoices):
        PRODUCT = "product", _("Product")
        MATERIAL = "material", _("Material")
        LIVE = "live", _("Livestream")
        TASK = "task", _("Task")
        MALL = "mall", _("Mall home")

    code = models.CharField(_("share code"), max_length=100, unique=True)
    group = models.ForeignKey("retail_crm.RetailGroup", on_delete=models.PROTECT, related_name="+")
    guide_token = models.ForeignKey(GuideToken, on_delete=models.PROTECT, related_name="shares")
    guide = models.ForeignKey("retail_crm.Guide", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="shares")
    staff_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="shares")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    target = models.CharField(_("shared"), max_length=10, choices=Target.choices)
    product = models.ForeignKey("mall.Product", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    material = models.ForeignKey(Material, on_delete=models.SET_NULL, null=True, blank=True, related_name="shares")
    live_session = models.ForeignKey("livestream.LiveSession", on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="shares")
    task = models.ForeignKey(GuideTask, on_delete=models.SET_NULL, null=True, blank=True, related_name="shares")
    created_at = models.DateTimeField(_("shared at"), default=timezone.now)

    scope_paths = ScopePaths(group="group", brand="guide__store__brand",
                             region="guide__store__region", store="guide__store", guide="guide")

    class Meta:
        verbose_name = _("share")
        verbose_name_plural = _("shares")
        constraints = [models.CheckConstraint(condition=Q(guide__isnull=False) | Q(staff_user__isnull=False),
                                              name="share_has_owner")]
        indexes = [models.Index(fields=["guide", "-created_at"]), models.Index(fields=["staff_user", "-created_at"]),
                   models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return self.code
