"""Store livestreams: the "1+N" model (an HQ central session, N store sessions following it)."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from retail_crm.scoping import ScopePaths


class LiveSession(models.Model):
    """One live session, hosted by HQ (the "1") or by a store (one of the "N").

    A store session that mirrors an HQ central session points at it through
    ``follows``. Orders placed from a session carry its id (channel store_live
    or hq_live), which is how attribution finds the host store.
    """

    class Kind(models.TextChoices):
        HQ_CENTRAL = "hq_central", _("HQ central")
        STORE = "store", _("Store")

    class Platform(models.TextChoices):
        MINI_PROGRAM = "mini_program", _("Mini-program live")
        VIDEO_CHANNEL = "video_channel", _("WeChat video channel")

    class Status(models.TextChoices):
        PLANNED = "planned", _("Planned")
        LIVE = "live", _("Live")
        ENDED = "ended", _("Ended")
        CANCELLED = "cancelled", _("Cancelled")

    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="live_sessions")
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    title = models.CharField(_("title"), max_length=120)
    host_store = models.ForeignKey("retail_crm.Store", on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="live_sessions")
    host_guide = models.ForeignKey("retail_crm.Guide", on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="hosted_sessions")
    follows = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="followers",
                                help_text=_("The HQ central session this store session mirrors"))
    platform = models.CharField(_("platform"), max_length=20, choices=Platform.choices,
                                default=Platform.MINI_PROGRAM)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PLANNED)
    planned_start = models.DateTimeField(_("planned start"))
    planned_end = models.DateTimeField(_("planned end"))
    actual_start = models.DateTimeField(_("actual start"), null=True, blank=True)
    actual_end = models.DateTimeField(_("actual end"), null=True, blank=True)
    products = models.ManyToManyField("mall.Product", blank=True, related_name="live_sessions")
    created_at = models.DateTimeField(auto_now_add=True)

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="host_store__region", store="host_store",
                             guide="host_guide")

    class Meta:
        verbose_name = _("live session")
        verbose_name_plural = _("live sessions")
        constraints = [
            models.CheckConstraint(condition=Q(planned_end__gt=F("planned_start")), name="live_planned_end_after"),
            models.CheckConstraint(condition=Q(actual_end__isnull=True) | Q(actual_start__isnull=False,
                                                                            actual_end__gte=F("actual_start")),
                                   name="live_actual_end_after"),
            models.CheckConstraint(condition=Q(kind="hq_central", host_store__isnull=True)
                                   | Q(kind="store", host_store__isnull=False), name="live_host_matches_kind"),
        ]
        indexes = [models.Index(fields=["brand", "planned_start"]), models.Index(fields=["host_store",
                                                                                        "planned_start"])]

    def __str__(self) -> str:
        return self.title
