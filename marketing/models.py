"""Reaching members: the rules that restrain every message, members' consents, and one row per message.

Every message the platform sends or holds back goes through ``marketing.services.message_send`` and is
recorded as a ``Delivery``: sent, waiting for the morning, or held back with the reason. DOMAIN.md,
"Reaching members".
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from retail_crm.scoping import ScopePaths


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")
    SUBSCRIBE = "subscribe", _("Mini-program subscribe message")
    OFFICIAL_ACCOUNT = "official_account", _("Official-account template message")
    WECOM = "wecom", _("WeCom group send")
    # Not a message: an important member's bound guide gets a personal task (a care-list item) instead.
    GUIDE_TASK = "guide_task", _("Personal task for the guide")


class MessageKind(models.TextChoices):
    MARKETING = "marketing", _("Marketing")
    SERVICE = "service", _("Service")  # shipped, pickup ready, refund done: no cap, no quiet hours


class ReachRules(models.Model):
    """Quiet hours, the frequency cap and the care window: one group-wide row, optionally one per brand.

    A brand's row overrides the group's; without either the defaults below apply (DOMAIN.md).
    """

    group = models.ForeignKey("retail_crm.RetailGroup", on_delete=models.CASCADE, related_name="reach_rules")
    brand = models.OneToOneField("retail_crm.Brand", on_delete=models.CASCADE, null=True, blank=True,
                                 related_name="reach_rules", help_text=_("Empty: the group-wide default"))
    quiet_start = models.TimeField(_("quiet hours start"), default="21:00")
    quiet_end = models.TimeField(_("quiet hours end"), default="09:00")
    cap_messages = models.PositiveSmallIntegerField(_("marketing messages at most"), default=2)
    cap_days = models.PositiveSmallIntegerField(_("per rolling days"), default=7)
    care_days = models.PositiveSmallIntegerField(_("no marketing for days after a purchase"), default=15)

    scope_paths = ScopePaths(group="group", brand="brand")

    class Meta:
        verbose_name = _("reach rules")
        verbose_name_plural = _("reach rules")
        constraints = [
            models.UniqueConstraint(fields=["group"], condition=Q(brand__isnull=True), name="reach_rules_one_default"),
            models.CheckConstraint(condition=Q(cap_messages__gte=1) & Q(cap_days__gte=1), name="reach_cap_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.brand or self.group}: {self.cap_messages}/{self.cap_days}d"


class ChannelOptOut(models.Model):
    """A member said no to one channel (e.g. replied "TD" to an SMS); holds marketing and service alike."""

    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="channel_opt_outs")
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    source = models.CharField(_("how"), max_length=40)
    opted_out_at = models.DateTimeField(_("opted out at"))

    scope_paths = ScopePaths(group="member__group", brand="member__memberships__brand", multi=True)

    class Meta:
        verbose_name = _("channel opt-out")
        verbose_name_plural = _("channel opt-outs")
        constraints = [models.UniqueConstraint(fields=["member", "channel"], name="channel_opt_out_once")]

    def __str__(self) -> str:
        return f"{self.member_id} ✕ {self.channel}"


class SubscribeConsent(models.Model):
    """Consents a member gave in the mini-program for one subscribe-message template; each send uses one."""

    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="subscribe_consents")
    template_id = models.CharField(_("template id"), max_length=64)
    remaining = models.PositiveIntegerField(_("sends left"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    scope_paths = ScopePaths(group="member__group", brand="member__memberships__brand", multi=True)

    class Meta:
        verbose_name = _("subscribe consent")
        verbose_name_plural = _("subscribe consents")
        constraints = [models.UniqueConstraint(fields=["member", "template_id"], name="subscribe_consent_once")]

    def __str__(self) -> str:
        return f"{self.member_id} · {self.template_id}: {self.remaining}"


class HoldReason(models.TextChoices):
    OPTED_OUT = "opted_out", _("Opted out of every channel offered")
    NO_CONSENT = "no_consent", _("No channel with a consent or an address")
    FREQUENCY_CAP = "frequency_cap", _("Frequency cap reached")
    CARE_WINDOW = "care_window", _("Within the care window after a purchase")
    CANCELLED = "cancelled", _("Its campaign was cancelled before it went")


class Delivery(models.Model):
    """One message to one member from one source (a campaign step, a journey step, a service event).

    ``dedupe_key`` is unique: asking again for the same member and source finds this row, so no retry
    ever sends a message twice. ``send_after`` is when it may go (the next morning for a marketing message
    planned in quiet hours); a held-back message keeps its reason and is never sent.
    """

    class Status(models.TextChoices):
        WAITING = "waiting", _("Waiting (quiet hours)")
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Handed to the provider")
        CONFIRMING = "confirming", _("Waiting for the guide to confirm in WeCom")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")
        HELD = "held", _("Held back")
        TO_GUIDE = "to_guide", _("Routed to the guide as a personal task")

    # No index of its own on member: the (member, kind, send_after) index below serves every look-up by member.
    # No database foreign-key checks either: a campaign run writes a million rows for members and a brand it
    # holds locked, and each check would be one more lookup per row at commit. Django still protects both.
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="deliveries", db_index=False,
                               db_constraint=False)
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="deliveries",
                              db_constraint=False)
    kind = models.CharField(_("kind"), max_length=10, choices=MessageKind.choices)
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices, blank=True)
    source = models.CharField(_("source"), max_length=80, help_text=_("e.g. campaign:12/step:1 or order_shipped"))
    dedupe_key = models.CharField(max_length=160)  # unique: see Meta (a constraint, so no LIKE index as well)
    content = models.JSONField(_("content"), default=dict)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    hold_reason = models.CharField(_("held back because"), max_length=20, choices=HoldReason.choices, blank=True)
    planned_at = models.DateTimeField(_("planned at"))
    send_after = models.DateTimeField(_("not before"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    provider_message_id = models.CharField(max_length=80, blank=True)
    error = models.CharField(_("error"), max_length=200, blank=True)

    scope_paths = ScopePaths(group="brand__group", brand="brand",
                             region=lambda a: Q(member__memberships__store__region_id=a.region_id,
                                                member__memberships__brand=models.F("brand")),
                             store=lambda a: Q(member__memberships__store_id=a.store_id,
                                               member__memberships__brand=models.F("brand")),
                             guide=lambda a: Q(member__bindings__guide_id=a.guide_id,
                                               member__bindings__ended_at__isnull=True,
                                               member__bindings__brand=models.F("brand")), multi=True)

    class Meta:
        verbose_name = _("message delivery")
        verbose_name_plural = _("message deliveries")
        constraints = [models.UniqueConstraint(fields=["dedupe_key"], name="delivery_dedupe_key_once")]
        indexes = [
            models.Index(fields=["member", "kind", "send_after"]),
            # The dispatcher's claim: one channel's due rows in (send_after, id) order, read straight off the index.
            models.Index(fields=["channel", "send_after", "id"], condition=Q(status__in=["waiting", "queued"]),
                         name="delivery_due"),
            models.Index(fields=["source"]),
        ]

    def __str__(self) -> str:
        return f"{self.source} → {self.member_id} ({self.status})"


class Audience(models.Model):
    """A saved, named definition of which members to reach, evaluated when counted, exported or sent to.

    ``definition`` holds the conditions (brand membership, tags, RFML class, lifecycle, care stage, recency
    against the brand's cycle, behaviour, purchases, WeCom friendship, bound guide/store/region, join channel
    and date, points, coupons held); ``marketing.audiences`` validates it and turns it into one query.
    """

    group = models.ForeignKey("retail_crm.RetailGroup", on_delete=models.CASCADE, related_name="audiences")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="audiences")
    name = models.CharField(_("name"), max_length=80)
    definition = models.JSONField(_("conditions"), default=dict)
    created_by = models.ForeignKey("auth.User", on_delete=models.PROTECT, related_name="+", null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    scope_paths = ScopePaths(group="group", brand="brand")

    class Meta:
        verbose_name = _("audience")
        verbose_name_plural = _("audiences")
        constraints = [models.UniqueConstraint(fields=["brand", "name"], name="audience_name_unique_per_brand")]

    def __str__(self) -> str:
        return self.name


class WeComGroupSend(models.Model):
    """One WeCom enterprise group send (``add_msg_template``): one guide's members for one campaign step.

    WeCom asks the guide to confirm it; the members' deliveries wait as ``confirming`` until the results
    are fetched (``marketing.group_sends.wecom_results_poll``). ``recipients`` maps each external user id
    to its delivery, so every result lands on the right member. Closed when no delivery waits any more.
    """

    msgid = models.CharField(max_length=64, unique=True)
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="+")
    guide = models.ForeignKey("retail_crm.Guide", on_delete=models.PROTECT, related_name="+")
    sender = models.CharField(max_length=64)  # the guide's WeCom userid (their code) when it was created
    source = models.CharField(max_length=80)
    recipients = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    checked_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="guide__store__region",
                             store="guide__store", guide="guide")

    class Meta:
        verbose_name = _("WeCom group send")
        verbose_name_plural = _("WeCom group sends")
        indexes = [models.Index(fields=["checked_at"], condition=Q(closed_at__isnull=True), name="wecom_send_open")]

    def __str__(self) -> str:
        return f"{self.source} · {self.sender} ({self.msgid})"


# ---------------------------------------------------------------------------- campaigns

class Campaign(models.Model):
    """A message to an audience: channels in fallback order, content with variables, a schedule, a holdout.

    ``channels`` is the fallback order (e.g. ``["subscribe", "sms"]``: the subscribe message while the member
    has a consent left, else SMS). ``content`` maps each channel to ``{"template": …, "params": …}`` whose
    strings may hold ``{name}``, ``{guide}``, ``{link}`` and ``{coupon}``; with A/B variants each variant
    carries its own content instead. Each run (one for "now" and "at", one per day or week when recurring)
    reaches every member of the audience at most once. ``holdout_percent`` of the members, chosen by a hash
    of member and campaign (so the same members every run), get nothing and are recorded as the control
    group. ``coupon_template``: one coupon to every member actually sent to, issued when the message goes.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    class Schedule(models.TextChoices):
        NOW = "now", _("Now")
        AT = "at", _("At a time")
        DAILY = "daily", _("Daily")
        WEEKLY = "weekly", _("Weekly")

    group = models.ForeignKey("retail_crm.RetailGroup", on_delete=models.CASCADE, related_name="campaigns")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="campaigns")
    audience = models.ForeignKey(Audience, on_delete=models.PROTECT, related_name="campaigns")
    name = models.CharField(_("name"), max_length=80)
    channels = models.JSONField(_("channels"), default=list, help_text=_("In fallback order"))
    content = models.JSONField(_("content"), default=dict, blank=True)
    link = models.URLField(_("link"), max_length=500, blank=True,
                           help_text=_("Storefront or mini-program page the tracking link opens"))
    link_code = models.CharField(max_length=16, unique=True, null=True, blank=True,
                                 help_text=_("Tracking code of the link without a member (e.g. a group post)"))
    coupon_template = models.ForeignKey("mall.CouponTemplate", on_delete=models.PROTECT, null=True, blank=True,
                                        related_name="+")
    schedule = models.CharField(_("schedule"), max_length=10, choices=Schedule.choices, default=Schedule.NOW)
    send_at = models.DateTimeField(_("send at"), null=True, blank=True)
    recur_time = models.TimeField(_("local time of each run"), null=True, blank=True)
    recur_weekday = models.PositiveSmallIntegerField(_("weekday (0 = Monday)"), null=True, blank=True)
    ends_at = models.DateTimeField(_("no runs after"), null=True, blank=True)
    next_run_at = models.DateTimeField(_("next run at"), null=True, blank=True)
    holdout_percent = models.DecimalField(_("holdout share (percent)"), max_digits=4, decimal_places=2, default=0)
    attribution_days = models.PositiveSmallIntegerField(_("attribution window (days)"), default=7)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey("auth.User", on_delete=models.PROTECT, related_name="+", null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    launched_at = models.DateTimeField(_("launched at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)

    scope_paths = ScopePaths(group="group", brand="brand")

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        constraints = [
            models.CheckConstraint(condition=Q(holdout_percent__gte=0, holdout_percent__lte=50),
                                   name="campaign_holdout_at_most_half"),
            models.CheckConstraint(condition=Q(attribution_days__gte=1, attribution_days__lte=30),
                                   name="campaign_attribution_window_days"),
        ]
        indexes = [models.Index(fields=["status", "next_run_at"])]

    def __str__(self) -> str:
        return self.name


class CampaignVariant(models.Model):
    """One arm of an A/B test: its own content, sent to ``weight`` % of the members who are not held out."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(_("name"), max_length=20)
    weight = models.PositiveSmallIntegerField(_("share (percent)"))
    content = models.JSONField(_("content"), default=dict)

    scope_paths = ScopePaths(group="campaign__group", brand="campaign__brand")

    class Meta:
        verbose_name = _("campaign variant")
        verbose_name_plural = _("campaign variants")
        ordering = ["campaign", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "name"], name="campaign_variant_name_once"),
            models.CheckConstraint(condition=Q(weight__gte=1, weight__lte=99), name="campaign_variant_weight"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.name}"


class CampaignRun(models.Model):
    """One sending of a campaign: its audience resolved at ``started_at``, each member once.

    Resolving goes through the audience in ranges of member ids, one transaction each, and records how far
    it got (``resolved_through``), so a resolve that stopped half-way carries on where it stopped. A run
    whose audience no longer validates fails, with the reason in ``error``.
    """

    class Status(models.TextChoices):
        RESOLVING = "resolving", _("Resolving the audience")
        QUEUED = "queued", _("Messages queued")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Failed")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="runs")
    scheduled_for = models.DateTimeField(_("scheduled for"))
    started_at = models.DateTimeField(_("started at"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RESOLVING)
    members_upto = models.BigIntegerField(default=0, help_text=_("Highest member id in the audience at the start"))
    resolved_through = models.BigIntegerField(default=0, help_text=_("Member ids up to here are resolved"))
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    scope_paths = ScopePaths(group="campaign__group", brand="campaign__brand")

    class Meta:
        verbose_name = _("campaign run")
        verbose_name_plural = _("campaign runs")
        ordering = ["campaign", "scheduled_for"]
        constraints = [models.UniqueConstraint(fields=["campaign", "scheduled_for"], name="campaign_run_once")]

    def __str__(self) -> str:
        return f"{self.campaign_id}@{self.scheduled_for:%Y-%m-%d %H:%M}"

    @property
    def source(self) -> str:
        """What the run's deliveries carry as their source; their dedupe key is ``source|member id``."""
        return f"campaign:{self.campaign_id}/run:{self.pk}"


class CampaignRecipient(models.Model):
    """What one run did for one member: held out (control), held back by a rule, or sent.

    A held-out member also carries the rule outcome they would have had (``hold_reason``, ``channel``), so
    the holdout is compared with the members the rules let through. ``link_code`` is the member's own
    tracking link (``/t/<code>``) in the message.
    """

    class Outcome(models.TextChoices):
        HOLDOUT = "holdout", _("Holdout (gets nothing)")
        HELD = "held", _("Held back")
        SENT = "sent", _("Sent")

    # A run writes up to a million of these in one statement per range of members: only the indexes the reads
    # need (the unique run + member, the link code), and no database foreign-key checks on rows the resolve has
    # just read under lock (each is one more lookup per row when the range commits: with the run's key checked
    # too, the commits took a fifth of a resolve). Deleting a run or a member still cascades, through Django.
    run = models.ForeignKey(CampaignRun, on_delete=models.CASCADE, related_name="recipients", db_index=False,
                            db_constraint=False)
    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="+", db_index=False,
                               db_constraint=False)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    variant = models.ForeignKey(CampaignVariant, on_delete=models.CASCADE, null=True, blank=True, related_name="+",
                                db_index=False, db_constraint=False)
    hold_reason = models.CharField(_("held back because"), max_length=20, choices=HoldReason.choices, blank=True)
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices, blank=True)
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, null=True, blank=True, related_name="+",
                                 db_index=False, db_constraint=False)
    link_code = models.CharField(max_length=16, null=True, blank=True)  # unique: see Meta

    scope_paths = ScopePaths(group="run__campaign__group", brand="run__campaign__brand")

    class Meta:
        verbose_name = _("campaign recipient")
        verbose_name_plural = _("campaign recipients")
        constraints = [models.UniqueConstraint(fields=["run", "member"], name="campaign_recipient_once_per_run"),
                       models.UniqueConstraint(fields=["link_code"], name="campaign_recipient_link_code_once")]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.member_id}: {self.outcome}"


class LinkClick(models.Model):
    """One click on a campaign's tracking link; ``member`` is known when the link was the member's own."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="clicks")
    run = models.ForeignKey(CampaignRun, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    variant = models.ForeignKey(CampaignVariant, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    clicked_at = models.DateTimeField(_("clicked at"))

    scope_paths = ScopePaths(group="campaign__group", brand="campaign__brand")

    class Meta:
        verbose_name = _("link click")
        verbose_name_plural = _("link clicks")
        indexes = [models.Index(fields=["member", "clicked_at"]), models.Index(fields=["campaign", "run"])]

    def __str__(self) -> str:
        return f"{self.campaign_id} ← {self.member_id or '?'}"


class CampaignConversion(models.Model):
    """A paid order carried to a campaign: its buyer clicked the campaign's link within the window before
    paying (the last click wins). Reported beside store and guide sales credit, never instead of it."""

    order = models.OneToOneField("mall.Order", on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="conversions")
    run = models.ForeignKey(CampaignRun, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    variant = models.ForeignKey(CampaignVariant, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="+")
    click = models.ForeignKey(LinkClick, on_delete=models.CASCADE, related_name="+")
    paid_at = models.DateTimeField(_("paid at"))

    scope_paths = ScopePaths(group="campaign__group", brand="campaign__brand")

    class Meta:
        verbose_name = _("campaign conversion")
        verbose_name_plural = _("campaign conversions")

    def __str__(self) -> str:
        return f"{self.order_id} → {self.campaign_id}"


# ---------------------------------------------------------------------------- journeys

class Journey(models.Model):
    """A reaction to what a member does: a trigger, then steps (wait, check, act), exit on conversion.

    ``trigger_params`` depend on the trigger (validated by ``marketing.journeys.journey_trigger_params_clean``):
    product views take ``{"views": k, "days": d}``; birthday ``{"days_before": n}``; the others none (the wait
    steps carry the "after N minutes / hours"). ``reentry`` says whether a member who entered before may enter
    again: never, after ``reentry_days``, or every time the trigger fires anew. ``holdout_percent`` of the
    members entering, by a hash of member and journey, are recorded as held out and get nothing (the control
    group of the lift). A member who pays an order of the brand within ``conversion_days`` after entering
    counts as converted; with ``exit_on_conversion`` their remaining steps stop.
    """

    class Trigger(models.TextChoices):
        ORDER_UNPAID = "order_unpaid", _("Order created, still unpaid")
        CART_ABANDONED = "cart_abandoned", _("Item added to the cart, no order")
        PRODUCT_VIEWS = "product_views", _("Product viewed repeatedly, no order")
        TRY_ON = "try_on", _("Tried on in store, no order of it")
        MEMBER_JOINED = "member_joined", _("New member")
        BIRTHDAY = "birthday", _("Birthday")
        MARKETING_DAY = "marketing_day", _("Marketing day of the brand's cycle reached")
        LAPSE_POINT = "lapse_point", _("Lapse point of the brand's cycle reached")
        FAVOURITE = "favourite", _("Product favourited, no order of it")
        CLASS_ENTERED = "class_entered", _("RFML class entered (an important class or a win-back)")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")
        ENDED = "ended", _("Ended")

    class Reentry(models.TextChoices):
        ONCE = "once", _("Once ever")
        PER_PERIOD = "per_period", _("Once per period")
        EVERY_TIME = "every_time", _("Every time")

    group = models.ForeignKey("retail_crm.RetailGroup", on_delete=models.CASCADE, related_name="journeys")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="journeys",
                              verbose_name=_("brand"))
    name = models.CharField(_("name"), max_length=80)
    trigger = models.CharField(_("trigger"), max_length=20, choices=Trigger.choices)
    trigger_params = models.JSONField(_("trigger parameters"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    reentry = models.CharField(_("re-entry"), max_length=12, choices=Reentry.choices, default=Reentry.ONCE)
    reentry_days = models.PositiveSmallIntegerField(_("re-entry period (days)"), null=True, blank=True)
    holdout_percent = models.DecimalField(_("holdout share (percent)"), max_digits=4, decimal_places=2, default=0)
    exit_on_conversion = models.BooleanField(_("exit on conversion"), default=True,
                                             help_text=_("Stop when the member pays an order of the brand"))
    conversion_days = models.PositiveSmallIntegerField(_("conversion window (days)"), default=7)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    scope_paths = ScopePaths(group="group", brand="brand")

    class Meta:
        verbose_name = _("journey")
        verbose_name_plural = _("journeys")
        constraints = [
            models.UniqueConstraint(fields=["brand", "name"], name="journey_name_unique_per_brand"),
            models.CheckConstraint(condition=Q(holdout_percent__gte=0, holdout_percent__lte=50),
                                   name="journey_holdout_at_most_half"),
            models.CheckConstraint(condition=~Q(reentry="per_period") | Q(reentry_days__gte=1),
                                   name="journey_reentry_period_days"),
            models.CheckConstraint(condition=Q(conversion_days__gte=1, conversion_days__lte=60),
                                   name="journey_conversion_window_days"),
        ]
        indexes = [models.Index(fields=["brand", "trigger", "status"])]

    def __str__(self) -> str:
        return self.name


class JourneyStep(models.Model):
    """One step of a journey, run in ``position`` order; ``params`` depend on the kind.

    * wait: ``{"minutes": n}``;
    * check: ``{"condition": "paid_since_entry" | "ordered_since_entry" | "ordered_product_since_entry" |
      "in_audience" | "has_tag",
      "expect": true|false, "audience": id, "tag_value": id}``; when the answer is not ``expect`` the member
      exits;
    * send: ``{"channels": [...], "content": {channel: {...}}, "coupon_template": id?}`` (content as a
      campaign's; the coupon is issued only when the message actually goes);
    * coupon: ``{"coupon_template": id}``;
    * guide_task: ``{"reason": text, "action": text}`` (to the bound guide, else the store's manager;
      flagged for a call when the member is in an important RFML class);
    * tag_add / tag_remove: ``{"tag_value": id}``.
    """

    class Kind(models.TextChoices):
        WAIT = "wait", _("Wait")
        CHECK = "check", _("Check a condition")
        SEND = "send", _("Send a message")
        COUPON = "coupon", _("Issue a coupon")
        GUIDE_TASK = "guide_task", _("Task for the guide")
        TAG_ADD = "tag_add", _("Add a tag")
        TAG_REMOVE = "tag_remove", _("Remove a tag")

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(_("position"))
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    params = models.JSONField(_("parameters"), default=dict, blank=True)

    scope_paths = ScopePaths(group="journey__group", brand="journey__brand")

    class Meta:
        verbose_name = _("journey step")
        verbose_name_plural = _("journey steps")
        ordering = ["journey", "position"]
        constraints = [models.UniqueConstraint(fields=["journey", "position"], name="journey_step_position_once")]

    def __str__(self) -> str:
        return f"{self.journey_id}#{self.position} {self.kind}"


class JourneyEnrolment(models.Model):
    """One member's way through one journey, from one trigger (``trigger_key``: the same trigger enrols once).

    ``position`` is the step to run next (steps run in position order); ``next_run_at`` when the executor
    should look at it again (the end of a wait). ``converted_at``: the member paid an order of the brand within
    the journey's conversion window after entering (held-out members too, for the lift).
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        WAITING = "waiting", _("Waiting")
        EXITED = "exited", _("Exited")
        COMPLETED = "completed", _("Completed")
        CONVERTED = "converted", _("Converted")
        HELD_OUT = "held_out", _("Held out (gets nothing)")

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="enrolments")
    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="journey_enrolments")
    trigger_key = models.CharField(_("trigger"), max_length=80)
    entered_at = models.DateTimeField(_("entered at"))
    position = models.PositiveSmallIntegerField(_("next step position"), default=0)
    next_run_at = models.DateTimeField(_("next run at"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    exit_reason = models.CharField(_("exit reason"), max_length=40, blank=True)
    exited_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    converted_at = models.DateTimeField(_("converted at"), null=True, blank=True)

    scope_paths = ScopePaths(group="journey__group", brand="journey__brand")

    class Meta:
        verbose_name = _("journey enrolment")
        verbose_name_plural = _("journey enrolments")
        constraints = [models.UniqueConstraint(fields=["journey", "member", "trigger_key"],
                                               name="journey_enrolment_once_per_trigger")]
        indexes = [
            # The executor's claim: due enrolments in time order.
            models.Index(fields=["next_run_at", "id"], condition=Q(status__in=["active", "waiting"]),
                         name="journey_enrolment_due"),
            models.Index(fields=["member", "journey", "entered_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.journey_id}/{self.member_id} ({self.status})"


class JourneyStepLog(models.Model):
    """What one step did for one enrolment, once (a retried step finds its row and does nothing again)."""

    class Outcome(models.TextChoices):
        WAITING = "waiting", _("Waiting")
        WAITED = "waited", _("Waited")
        PASSED = "passed", _("Check passed")
        FAILED = "failed", _("Check failed: exited")
        SENT = "sent", _("Message queued")
        HELD = "held", _("Message held back")
        ISSUED = "issued", _("Coupon issued")
        TASK = "task", _("Task for the guide")
        TAGGED = "tagged", _("Tag added")
        UNTAGGED = "untagged", _("Tag removed")
        SKIPPED = "skipped", _("Nothing to do")

    enrolment = models.ForeignKey(JourneyEnrolment, on_delete=models.CASCADE, related_name="logs")
    step = models.ForeignKey(JourneyStep, on_delete=models.CASCADE, related_name="logs")
    at = models.DateTimeField(_("at"))
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    detail = models.CharField(_("detail"), max_length=200, blank=True)
    delivery = models.ForeignKey(Delivery, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    scope_paths = ScopePaths(group="enrolment__journey__group", brand="enrolment__journey__brand")

    class Meta:
        verbose_name = _("journey step log")
        verbose_name_plural = _("journey step logs")
        constraints = [models.UniqueConstraint(fields=["enrolment", "step"], name="journey_step_once_per_enrolment")]
        indexes = [models.Index(fields=["step", "outcome"])]

    def __str__(self) -> str:
        return f"{self.enrolment_id}/{self.step_id}: {self.outcome}"
