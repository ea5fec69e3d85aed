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
    script = models.TextField(_("script"), blank=True, help_text=_("Run sheet / script shared with store sessions"))
    materials = models.ManyToManyField("guides.Material", blank=True, related_name="live_sessions")
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


_SESSION_SCOPE = ScopePaths(group="session__brand__group", brand="session__brand", region="session__host_store__region",
                            store="session__host_store", guide="session__host_guide")


class ViewerEvent(models.Model):
    """One viewer event of a live session (join, leave, like, comment, share, product click).

    Ingested in batches from the mini-program like behaviour events; a resent
    ``client_event_id`` is stored once. ``viewer_id`` identifies a viewer even
    when not logged in (the member code, or the mini-program's anonymous id).
    """

    class Kind(models.TextChoices):
        JOIN = "join", _("Joined")
        LEAVE = "leave", _("Left")
        LIKE = "like", _("Like")
        COMMENT = "comment", _("Comment")
        SHARE = "share", _("Share")
        PRODUCT_CLICK = "product_click", _("Product click")

    session = models.ForeignKey(LiveSession, on_delete=models.CASCADE, related_name="viewer_events")
    member = models.ForeignKey("members.Member", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    viewer_id = models.CharField(_("viewer id"), max_length=64)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    occurred_at = models.DateTimeField(_("occurred at"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    product_id = models.BigIntegerField(_("product id"), null=True, blank=True)
    client_event_id = models.CharField(_("client event id"), max_length=64, blank=True)

    scope_paths = _SESSION_SCOPE

    class Meta:
        verbose_name = _("viewer event")
        verbose_name_plural = _("viewer events")
        constraints = [
            models.UniqueConstraint(fields=["session", "client_event_id"], condition=~Q(client_event_id=""),
                                    name="viewer_event_client_id_unique_per_session"),
        ]
        indexes = [models.Index(fields=["session", "occurred_at"])]

    def __str__(self) -> str:
        return f"{self.session_id} {self.viewer_id} {self.kind}"


class SessionStats(models.Model):
    """A session's computed figures (from its viewer events and its orders), refreshed by a job."""

    session = models.OneToOneField(LiveSession, on_delete=models.CASCADE, primary_key=True, related_name="stats")
    viewers = models.PositiveIntegerField(_("viewers (UV)"), default=0)
    views = models.PositiveIntegerField(_("views (PV)"), default=0)
    peak_concurrent = models.PositiveIntegerField(_("peak concurrent viewers"), default=0)
    watch_seconds = models.BigIntegerField(_("total watch time (s)"), default=0)
    avg_watch_seconds = models.DecimalField(_("average watch time (s)"), max_digits=12, decimal_places=2, default=0)
    likes = models.PositiveIntegerField(_("likes"), default=0)
    comments = models.PositiveIntegerField(_("comments"), default=0)
    shares = models.PositiveIntegerField(_("shares"), default=0)
    product_clicks = models.PositiveIntegerField(_("product clicks"), default=0)
    orders = models.PositiveIntegerField(_("orders"), default=0)
    gmv = models.DecimalField(_("GMV"), max_digits=16, decimal_places=2, default=0)
    paid_orders = models.PositiveIntegerField(_("paid orders"), default=0)
    paid_sales = models.DecimalField(_("paid sales (net)"), max_digits=16, decimal_places=2, default=0)
    buyers = models.PositiveIntegerField(_("buyers"), default=0)
    conversion = models.DecimalField(_("conversion (buyers ÷ viewers)"), max_digits=7, decimal_places=4, default=0)
    new_members = models.PositiveIntegerField(_("new members joined"), default=0)
    computed_at = models.DateTimeField(_("computed at"), auto_now=True)

    scope_paths = _SESSION_SCOPE

    class Meta:
        verbose_name = _("session figures")
        verbose_name_plural = _("session figures")

    def __str__(self) -> str:
        return f"{self.session_id}"


class LivePhase(models.IntegerChoices):
    DURATION = 1, _("Phase 1: hours and sessions")
    SALES = 2, _("Phase 2: live sales")
    COACHING = 3, _("Phase 3: coaching the detail")


class LivePhaseTarget(models.Model):
    """A brand's monthly targets for stores in one phase of the store-livestream programme."""

    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="live_phase_targets")
    phase = models.PositiveSmallIntegerField(_("phase"), choices=LivePhase.choices)
    sessions_per_month = models.PositiveIntegerField(_("sessions a month"), default=0)
    hours_per_month = models.DecimalField(_("hours live a month"), max_digits=6, decimal_places=1, default=0)
    sales_per_month = models.DecimalField(_("live sales a month"), max_digits=14, decimal_places=2, default=0)
    conversion = models.DecimalField(_("conversion target"), max_digits=5, decimal_places=4, default=0)

    scope_paths = ScopePaths(group="brand__group", brand="brand")

    class Meta:
        verbose_name = _("livestream phase target")
        verbose_name_plural = _("livestream phase targets")
        constraints = [models.UniqueConstraint(fields=["brand", "phase"], name="one_target_per_brand_phase")]

    def __str__(self) -> str:
        return f"{self.brand_id} phase {self.phase}"


class StoreLivePhase(models.Model):
    """The phase a store is in (HQ moves it on as it meets its targets)."""

    store = models.OneToOneField("retail_crm.Store", on_delete=models.CASCADE, related_name="live_phase")
    phase = models.PositiveSmallIntegerField(_("phase"), choices=LivePhase.choices, default=LivePhase.DURATION)
    since = models.DateField(_("since"))
    updated_by = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    scope_paths = ScopePaths(group="store__brand__group", brand="store__brand", region="store__region",
                             store="store", guide="store__guides")

    class Meta:
        verbose_name = _("store livestream phase")
        verbose_name_plural = _("store livestream phases")

    def __str__(self) -> str:
        return f"{self.store_id}: {self.phase}"


class CoachingNote(models.Model):
    """HQ's coaching note on a session (script, delivery, set), visible to the store."""

    class Aspect(models.TextChoices):
        SCRIPT = "script", _("Script")
        DELIVERY = "delivery", _("Delivery")
        SET = "set", _("Set and lighting")
        PRODUCTS = "products", _("Products")
        OTHER = "other", _("Other")

    session = models.ForeignKey(LiveSession, on_delete=models.CASCADE, related_name="coaching_notes")
    aspect = models.CharField(_("aspect"), max_length=10, choices=Aspect.choices)
    text = models.TextField(_("note"))
    rating = models.PositiveSmallIntegerField(_("rating (1-5)"), null=True, blank=True)
    author = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    scope_paths = _SESSION_SCOPE

    class Meta:
        verbose_name = _("coaching note")
        verbose_name_plural = _("coaching notes")
        constraints = [models.CheckConstraint(condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                                              name="coaching_rating_1_to_5")]

    def __str__(self) -> str:
        return f"{self.session_id} {self.aspect}"
