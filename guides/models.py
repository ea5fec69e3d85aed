"""Guides' own objects: the exclusive QR / share token (more arrive with the workbench issue)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
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
    credit = models.ForeignKey("analytics.SalesCredit", on_delete=models.PROTECT, null=True, blank=True,
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
