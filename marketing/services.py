"""The one place every message to a member goes through: consent, quiet hours, the cap, the care window.

``message_send`` decides, under a lock on the member, whether a message may go, on which channel and
when, and records the decision as a ``Delivery`` (queued, waiting for the morning, or held back with the
reason). ``deliveries_dispatch`` later hands due deliveries to the channel adapters. A delivery is handed
to a provider at most once: it is marked ``sending`` and committed before the call, and a delivery found
still ``sending`` after a crash is recorded as failed with an unknown outcome, never sent again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from mall.models import Order
from marketing.channels import (
    GROUP_CHANNELS,
    OutgoingMessage,
    PermanentFailure,
    TemporaryFailure,
    channel_available,
    get_channel,
)
from marketing.channels.addresses import channel_address, dispatch_address
from marketing.group_sends import group_sends_dispatch
from marketing.models import (
    Channel,
    ChannelOptOut,
    Delivery,
    HoldReason,
    MessageKind,
    ReachRules,
    SubscribeConsent,
)
from members.models import Member
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand

logger = logging.getLogger(__name__)

OPT_OUT_WORDS = {"TD", "T", "N", "退订", "退", "取消"}
MAX_ATTEMPTS = 5
SENDING_STALE_AFTER = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Rules:
    """The restraint in force for one brand (its own row, else the group's, else the defaults)."""

    quiet_start: dt.time = dt.time(21, 0)
    quiet_end: dt.time = dt.time(9, 0)
    cap_messages: int = 2
    cap_days: int = 7
    care_days: int = 15


def rules_for(brand: Brand) -> Rules:
    row = (ReachRules.objects.filter(Q(brand=brand) | Q(group_id=brand.group_id, brand__isnull=True))
           .order_by(F("brand_id").asc(nulls_last=True)).first())
    if row is None:
        return Rules()
    return Rules(quiet_start=row.quiet_start, quiet_end=row.quiet_end, cap_messages=row.cap_messages,
                 cap_days=row.cap_days, care_days=row.care_days)


def _in_quiet_hours(moment: dt.datetime, rules: Rules) -> bool:
    local = timezone.localtime(moment).time()
    if rules.quiet_start > rules.quiet_end:  # spans midnight, e.g. 21:00–09:00
        return local >= rules.quiet_start or local < rules.quiet_end
    return rules.quiet_start <= local < rules.quiet_end


def next_allowed(moment: dt.datetime, rules: Rules) -> dt.datetime:
    """``moment`` itself, or the end of the quiet hours it falls in (local time)."""
    if not _in_quiet_hours(moment, rules):
        return moment
    local = timezone.localtime(moment)
    end = local.replace(hour=rules.quiet_end.hour, minute=rules.quiet_end.minute, second=0, microsecond=0)
    if end <= local:
        end += dt.timedelta(days=1)
    return end


def _address(member: Member, channel: str, content: dict, brand: Brand) -> str | None:
    """Where ``channel`` reaches the member, or None when it cannot (no adapter, phone, openid or consent)."""
    if not channel_available(channel):
        return None
    if channel == Channel.SMS:
        return member.phone or None
    if channel == Channel.SUBSCRIBE:
        template = (content.get(channel) or {}).get("template")
        if not member.openid or not template:
            return None
        has_consent = SubscribeConsent.objects.filter(member=member, template_id=template, remaining__gt=0).exists()
        return member.openid if has_consent else None
    return channel_address(member=member, brand=brand, channel=channel)  # official account, WeCom, guide task


def _last_purchase(member: Member) -> dt.datetime | None:
    return Order.objects.filter(member=member, paid_at__isnull=False).aggregate(last=Max("paid_at"))["last"]


@transaction.atomic
def message_send(*, member: Member, brand: Brand, kind: str, channels: Sequence[str], source: str,
                 content: dict, at: dt.datetime | None = None) -> Delivery:
    """Decide and record one message to ``member`` from ``source``; the same source never messages twice.

    ``channels`` is the fallback order (e.g. subscribe message while a consent is left, else SMS);
    ``content`` maps each channel to ``{"template": …, "params": {…}}``. A marketing message is held back
    within the care window after a purchase and when the frequency cap would be passed (counted across
    every channel and source, over ``cap_days`` either side of its send time), and waits for the morning
    when planned in quiet hours. A service message skips those three but not an opt-out.
    """
    if kind not in MessageKind.values:
        raise ApplicationError(ErrorCode.INVALID, f"Unknown message kind {kind!r}.", fields={"kind": ["Unknown kind."]})
    unknown = [c for c in channels if c not in Channel.values]
    if not channels or unknown:
        raise ApplicationError(ErrorCode.INVALID, "Give known channels.", fields={"channels": [f"Unknown: {unknown}"]})
    at = at or timezone.now()
    # One member at a time: the cap is counted and the new row written under this lock.
    Member.objects.select_for_update().filter(pk=member.pk).first()
    dedupe_key = f"{source}|{member.pk}"
    existing = Delivery.objects.filter(dedupe_key=dedupe_key).first()
    if existing is not None:
        return existing

    rules = rules_for(brand)
    opted_out = set(ChannelOptOut.objects.filter(member=member, channel__in=channels)
                    .values_list("channel", flat=True))
    chosen, address = "", None
    for channel in channels:
        if channel in opted_out:
            continue
        address = _address(member, channel, content, brand)
        if address:
            chosen = channel
            break
    hold = ""
    if not chosen:
        hold = HoldReason.OPTED_OUT if opted_out >= set(channels) else HoldReason.NO_CONSENT
    send_after = at
    if not hold and kind == MessageKind.MARKETING:
        last = _last_purchase(member)
        if last is not None and last > at - dt.timedelta(days=rules.care_days):
            hold = HoldReason.CARE_WINDOW
        else:
            send_after = next_allowed(at, rules)
            window = dt.timedelta(days=rules.cap_days)
            counted = (Delivery.objects.filter(member=member, kind=MessageKind.MARKETING,
                                               send_after__gt=send_after - window, send_after__lt=send_after + window)
                       .exclude(status__in=[Delivery.Status.HELD, Delivery.Status.FAILED]).count())
            if counted >= rules.cap_messages:
                hold = HoldReason.FREQUENCY_CAP
    if hold:
        status = Delivery.Status.HELD
    elif send_after > at:
        status = Delivery.Status.WAITING
    else:
        status = Delivery.Status.QUEUED
    return Delivery.objects.create(
        member=member, brand=brand, kind=kind, channel=chosen, source=source[:80], dedupe_key=dedupe_key,
        content=content.get(chosen, {}) if chosen else {}, status=status, hold_reason=hold, planned_at=at,
        send_after=send_after)


@dataclass(frozen=True)
class DispatchResult:
    sent: int
    failed: int
    retried: int
    deferred: int  # due marketing messages that reached quiet hours before going out


def _claim(now: dt.datetime, channel: str, limit: int) -> tuple[list[Delivery], int]:
    with transaction.atomic():
        rows = list(Delivery.objects.select_for_update(skip_locked=True)
                    .filter(channel=channel, status__in=[Delivery.Status.QUEUED, Delivery.Status.WAITING],
                            send_after__lte=now)
                    .select_related("member", "brand").order_by("send_after", "pk")[:limit])
        deferred = []
        for row in rows:
            if row.kind == MessageKind.MARKETING:
                allowed = next_allowed(now, rules_for(row.brand))
                if allowed > now:  # a late run must not send into the night
                    row.send_after, row.status = allowed, Delivery.Status.WAITING
                    deferred.append(row)
        if deferred:
            Delivery.objects.bulk_update(deferred, ["send_after", "status"])
        claimed = [r for r in rows if r not in deferred]
        Delivery.objects.filter(pk__in=[r.pk for r in claimed]).update(status=Delivery.Status.SENDING,
                                                                        attempts=F("attempts") + 1)
    for row in claimed:
        row.attempts += 1
    return claimed, len(deferred)


def _consume_consent(row: Delivery) -> bool:
    """Use one subscribe consent; False when none is left (the send would fail with WeChat's 43101)."""
    return SubscribeConsent.objects.filter(member_id=row.member_id, template_id=row.content.get("template"),
                                           remaining__gt=0).update(remaining=F("remaining") - 1) == 1


def deliveries_dispatch(*, now: dt.datetime | None = None, limits: dict[str, int] | None = None) -> DispatchResult:
    """Send due deliveries, at most ``limits[channel]`` per channel this run (the provider's rate)."""
    now = now or timezone.now()
    limits = limits or {}
    sent = failed = retried = deferred = 0
    for channel in Channel.values:
        if channel in GROUP_CHANNELS:  # WeCom: one request per guide and step, results later (group_sends)
            group = group_sends_dispatch(channel=channel, now=now, requests=limits.get(channel, 500),
                                         allowed_at=lambda brand: next_allowed(now, rules_for(brand)),
                                         max_attempts=MAX_ATTEMPTS)
            sent, failed, retried, deferred = (sent + group.handed, failed + group.failed,
                                               retried + group.retried, deferred + group.deferred)
            continue
        claimed, late = _claim(now, channel, limits.get(channel, 500))
        deferred += late
        if not claimed:
            continue
        adapter = get_channel(channel)
        for row in claimed:
            if channel == Channel.SUBSCRIBE and not _consume_consent(row):
                Delivery.objects.filter(pk=row.pk).update(status=Delivery.Status.HELD,
                                                          hold_reason=HoldReason.NO_CONSENT)
                failed += 1
                continue
            message = OutgoingMessage(delivery_id=row.pk, channel=channel, address=dispatch_address(row),
                                      template=row.content.get("template", ""), params=row.content.get("params", {}),
                                      options=row.content)
            try:
                provider_id = adapter.send(message)
            except TemporaryFailure as exc:
                if row.attempts >= MAX_ATTEMPTS:
                    Delivery.objects.filter(pk=row.pk).update(status=Delivery.Status.FAILED, error=str(exc)[:200])
                    failed += 1
                else:
                    backoff = dt.timedelta(minutes=2 ** row.attempts)
                    Delivery.objects.filter(pk=row.pk).update(status=Delivery.Status.QUEUED, error=str(exc)[:200],
                                                              send_after=now + backoff)
                    retried += 1
            except PermanentFailure as exc:
                Delivery.objects.filter(pk=row.pk).update(status=Delivery.Status.FAILED, error=str(exc)[:200])
                failed += 1
            else:
                done = Delivery.Status.TO_GUIDE if channel == Channel.GUIDE_TASK else Delivery.Status.SENT
                Delivery.objects.filter(pk=row.pk).update(status=done, sent_at=now,
                                                          provider_message_id=provider_id[:80])
                sent += 1
    stale = Delivery.objects.filter(status=Delivery.Status.SENDING, send_after__lt=now - SENDING_STALE_AFTER)
    failed += stale.update(status=Delivery.Status.FAILED, error="outcome unknown: the sender stopped mid-send")
    return DispatchResult(sent=sent, failed=failed, retried=retried, deferred=deferred)


def delivery_receipt_record(*, provider_message_id: str, delivered: bool, at: dt.datetime,
                            error: str = "") -> int:
    """A provider's delivery receipt: mark the sent message delivered (or failed). Repeats change nothing."""
    rows = Delivery.objects.filter(provider_message_id=provider_message_id, status=Delivery.Status.SENT)
    if delivered:
        return rows.update(status=Delivery.Status.DELIVERED, delivered_at=at)
    return rows.update(status=Delivery.Status.FAILED, error=error[:200])


def sms_reply_record(*, phone: str, text: str, at: dt.datetime) -> int:
    """An inbound SMS reply; "TD", "退订" and the like opt the sender's members out of SMS. Returns how many."""
    if text.strip().upper() not in OPT_OUT_WORDS:
        return 0
    created = 0
    for member_id in Member.objects.filter(phone=phone, merged_into__isnull=True).values_list("pk", flat=True):
        _, made = ChannelOptOut.objects.get_or_create(member_id=member_id, channel=Channel.SMS,
                                                      defaults={"source": "sms_reply", "opted_out_at": at})
        created += made
    return created


SUBSCRIBE_ACCEPT = "accept"


def subscribe_results_record(*, member: Member, results: dict[str, str]) -> dict[str, int]:
    """What ``wx.requestSubscribeMessage`` answered, per template: each "accept" adds one send.

    Returns the consents left per template named. "reject", "ban" and "filter" add nothing.
    """
    left = {}
    for template_id, answer in sorted(results.items()):
        consent, _ = SubscribeConsent.objects.get_or_create(member=member, template_id=template_id[:64])
        if answer == SUBSCRIBE_ACCEPT:
            SubscribeConsent.objects.filter(pk=consent.pk).update(remaining=F("remaining") + 1)
        left[template_id] = SubscribeConsent.objects.get(pk=consent.pk).remaining
    return left
