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
