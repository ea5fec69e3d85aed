"""The one place every message to a member goes through: consent, quiet hours, the cap, the care window.

``message_send`` decides, under a lock on the member, whether a message may go, on which channel and
when, and records the decision as a ``Delivery`` (queued, waiting for the morning, or held back with the
reason); the decision is the rules core's (``marketing.rules``), the same SQL a campaign run applies to its
whole audience. ``deliveries_dispatch`` later hands due deliveries to the channel adapters (WeCom's to
``marketing.group_sends``, one group send per guide and step), checking again what may have changed since
the decision (an opt-out, a purchase: ``marketing.rules.send_time_holds``). A delivery is handed to a
provider at most once: it is marked ``sending`` and committed before the call, and a delivery found still
``sending`` after a crash is recorded as failed with an unknown outcome, never sent again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from marketing.channels import GROUP_CHANNELS, OutgoingMessage, PermanentFailure, TemporaryFailure, get_channel
from marketing.channels.addresses import dispatch_address
from marketing.coupons import sent_coupons_issue
from marketing.group_sends import group_sends_dispatch
from marketing.models import Channel, ChannelOptOut, Delivery, HoldReason, MessageKind, SubscribeConsent
from marketing.rules import MessagePlan, Rules, decide_one, next_allowed, rules_for, send_time_holds
from members.models import Member
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand
from retail_crm.rawsql import params_list, qn, table

logger = logging.getLogger(__name__)

OPT_OUT_WORDS = {"TD", "T", "N", "退订", "退", "取消"}
MAX_ATTEMPTS = 5
SENDING_STALE_AFTER = dt.timedelta(hours=1)


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

    plan = MessagePlan(kind=kind, channels=tuple(channels), at=at, rules=rules_for(brand), brand_id=brand.pk,
                       subscribe_template=(content.get(Channel.SUBSCRIBE) or {}).get("template") or "")
    decision = decide_one(plan, member_id=member.pk)
    chosen = decision.channel
    return Delivery.objects.create(
        member=member, brand=brand, kind=kind, channel=chosen, source=source[:80], dedupe_key=dedupe_key,
        content=content.get(chosen, {}) if chosen else {}, status=decision.status,
        hold_reason=decision.hold_reason, planned_at=at, send_after=decision.send_after)


@dataclass(frozen=True)
class DispatchResult:
    sent: int
    failed: int
    retried: int
    deferred: int  # due marketing messages that reached quiet hours before going out
    held: int = 0  # due messages held back at send time (opted out since, or a purchase within the care window)


CLAIM_BATCH = 500  # deliveries claimed (and marked sending) per transaction
# What sending needs (the member's whole profile, JSON preferences and all, is not loaded for a message).
CLAIMED_FIELDS = ("member_id", "brand_id", "kind", "channel", "source", "content", "status", "send_after", "attempts",
                  "member__phone", "member__openid", "member__oa_openid", "brand__group_id")


def _hold(holds: dict[int, str]) -> int:
    """Record ``holds`` (delivery id → hold reason), one UPDATE per reason; returns how many."""
    held = 0
    for reason in sorted(set(holds.values())):
        held += Delivery.objects.filter(pk__in=[pk for pk, why in holds.items() if why == reason]).update(
            status=Delivery.Status.HELD, hold_reason=reason)
    return held


def _claim(now: dt.datetime, channel: str, limit: int,
           rules: dict[int, Rules]) -> tuple[list[Delivery], int, int, int]:
    """Mark up to ``limit`` due deliveries of ``channel`` as sending; defer marketing ones that reached quiet
    hours, hold back those the rules no longer let go (``send_time_holds``: one more query, on the locked rows
    just before they are marked sending). Returns the claimed rows, how many were deferred, how many held
    and how many were due in all."""
    with transaction.atomic():
        rows = list(Delivery.objects.select_for_update(skip_locked=True)
                    .filter(channel=channel, status__in=[Delivery.Status.QUEUED, Delivery.Status.WAITING],
                            send_after__lte=now)
                    .select_related("member", "brand").order_by("send_after", "pk")
                    .only(*CLAIMED_FIELDS)[:limit])
        deferred = []
        for row in rows:
            if row.kind == MessageKind.MARKETING:
                if row.brand_id not in rules:
                    rules[row.brand_id] = rules_for(row.brand)
                allowed = next_allowed(now, rules[row.brand_id])
                if allowed > now:  # a late run must not send into the night
                    row.send_after, row.status = allowed, Delivery.Status.WAITING
                    deferred.append(row)
        if deferred:
            Delivery.objects.bulk_update(deferred, ["send_after", "status"])
        deferred_ids = {row.pk for row in deferred}
        going = [r for r in rows if r.pk not in deferred_ids]
        holds = send_time_holds(going, now=now, rules=rules)
        held = _hold(holds)
        claimed = [r for r in going if r.pk not in holds]
        Delivery.objects.filter(pk__in=[r.pk for r in claimed]).update(status=Delivery.Status.SENDING,
                                                                        attempts=F("attempts") + 1)
    for row in claimed:
        row.attempts += 1
    return claimed, len(deferred), held, len(rows)


def _consume_consent(row: Delivery) -> bool:
    """Use one subscribe consent; False when none is left (the send would fail with WeChat's 43101)."""
    return SubscribeConsent.objects.filter(member_id=row.member_id, template_id=row.content.get("template"),
                                           remaining__gt=0).update(remaining=F("remaining") - 1) == 1


def _record_sent(sent: list[tuple[Delivery, str]], now: dt.datetime, *, status: str = Delivery.Status.SENT) -> None:
    """Mark a batch of handed-over deliveries ``status`` (sent; routed to the guide for guide tasks) and issue
    their coupons, in one transaction and one UPDATE (the provider's message id per row by a ``CASE``:
    building Django's bulk_update expressions for a batch cost more than sending it)."""
    if not sent:
        return
    provider_ids = " ".join(["WHEN %s THEN %s"] * len(sent))
    params: list = [status, connection.ops.adapt_datetimefield_value(now)]
    for row, provider_id in sent:
        params += [row.pk, provider_id[:80]]
    params += [row.pk for row, _ in sent]
    column = {name: qn(Delivery._meta.get_field(name).column) for name in ("id", "status", "sent_at",
                                                                          "provider_message_id")}
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table(Delivery)} SET {column['status']} = %s, {column['sent_at']} = %s, "  # noqa: S608 - names from the model
                f"{column['provider_message_id']} = CASE {column['id']} {provider_ids} END "
                f"WHERE {column['id']} IN ({params_list(len(sent))})", params)
        sent_coupons_issue([row for row, _ in sent], at=now)


def deliveries_dispatch(*, now: dt.datetime | None = None, limits: dict[str, int] | None = None) -> DispatchResult:
    """Send due deliveries, at most ``limits[channel]`` per channel this run (the provider's rate).

    Claimed in batches of ``CLAIM_BATCH``; each batch's successful sends are recorded together once the
    batch has been handed over (a crash before that leaves them ``sending``: failed with an unknown outcome,
    never sent again). A due message whose member opted out of its channel since, or (marketing) paid an
    order within the care window before ``now``, is held back instead, with the reason; it takes nothing of
    the channel's limit.
    """
    now = now or timezone.now()
    limits = limits or {}
    sent = failed = retried = deferred = held = 0
    rules: dict[int, Rules] = {}

    def allowed_at(brand: Brand) -> dt.datetime:
        if brand.pk not in rules:
            rules[brand.pk] = rules_for(brand)
        return next_allowed(now, rules[brand.pk])

    for channel in Channel.values:
        if channel in GROUP_CHANNELS:  # WeCom: one request per guide and step, results later (group_sends)
            group = group_sends_dispatch(channel=channel, now=now, requests=limits.get(channel, CLAIM_BATCH),
                                         allowed_at=allowed_at, max_attempts=MAX_ATTEMPTS, rules=rules)
            sent, failed, retried, deferred, held = (sent + group.handed, failed + group.failed,
                                                     retried + group.retried, deferred + group.deferred,
                                                     held + group.held)
            continue
        done_status = Delivery.Status.TO_GUIDE if channel == Channel.GUIDE_TASK else Delivery.Status.SENT
        budget = limits.get(channel, CLAIM_BATCH)
        adapter = None
        while budget > 0:
            batch = min(budget, CLAIM_BATCH)
            claimed, late, stopped, due = _claim(now, channel, batch, rules)
            deferred, held = deferred + late, held + stopped
            budget -= len(claimed)
            if claimed and adapter is None:
                adapter = get_channel(channel)
            done: list[tuple[Delivery, str]] = []
            try:
                for row in claimed:
                    if channel == Channel.SUBSCRIBE and not _consume_consent(row):
                        Delivery.objects.filter(pk=row.pk).update(status=Delivery.Status.HELD,
                                                                  hold_reason=HoldReason.NO_CONSENT)
                        failed += 1
                        continue
                    message = OutgoingMessage(delivery_id=row.pk, channel=channel, address=dispatch_address(row),
                                              template=row.content.get("template", ""),
                                              params=row.content.get("params", {}), options=row.content)
                    try:
                        provider_id = adapter.send(message)
                    except TemporaryFailure as exc:
                        if row.attempts >= MAX_ATTEMPTS:
                            Delivery.objects.filter(pk=row.pk).update(status=Delivery.Status.FAILED,
                                                                      error=str(exc)[:200])
                            failed += 1
                        else:
                            backoff = dt.timedelta(minutes=2 ** row.attempts)
                            Delivery.objects.filter(pk=row.pk).update(status=Delivery.Status.QUEUED,
                                                                      error=str(exc)[:200], send_after=now + backoff)
                            retried += 1
                    except PermanentFailure as exc:
                        Delivery.objects.filter(pk=row.pk).update(status=Delivery.Status.FAILED, error=str(exc)[:200])
                        failed += 1
                    else:
                        done.append((row, provider_id))
            finally:
                _record_sent(done, now, status=done_status)
            sent += len(done)
            if due < batch:
                break
    stale = Delivery.objects.filter(status=Delivery.Status.SENDING, send_after__lt=now - SENDING_STALE_AFTER)
    failed += stale.update(status=Delivery.Status.FAILED, error="outcome unknown: the sender stopped mid-send")
    return DispatchResult(sent=sent, failed=failed, retried=retried, deferred=deferred, held=held)


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
