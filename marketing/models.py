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

    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="deliveries")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="deliveries")
    kind = models.CharField(_("kind"), max_length=10, choices=MessageKind.choices)
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices, blank=True)
    source = models.CharField(_("source"), max_length=80, help_text=_("e.g. campaign:12/step:1 or order_shipped"))
    dedupe_key = models.CharField(max_length=160, unique=True)
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
        indexes = [
            models.Index(fields=["member", "kind", "send_after"]),
            models.Index(fields=["send_after"], condition=Q(status__in=["waiting", "queued"]), name="delivery_due"),
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
