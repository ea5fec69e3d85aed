"""WeCom enterprise group sends: one per guide per campaign step, confirmed by the guide, results fetched later.

The gateway (``marketing.services.message_send``) decides per member as for every channel; a member is
addressable on WeCom only as a contact of their bound guide. ``group_sends_dispatch`` (called by the
dispatcher each minute) then takes a campaign step's due WeCom deliveries whole, groups them by brand,
guide and content, and creates one group send per group (``add_msg_template``): the deliveries wait as
``confirming`` while WeCom asks the guide to send it. ``wecom_results_poll`` (a task every ten minutes)
asks WeCom what became of each open send and records each member's outcome: ``sent`` with WeCom's time
(a campaign's coupon is issued then), or ``failed`` with the reason (not the guide's contact; WeCom's
group-message limit for the member; the guide did not send it in time, after which the send is cancelled
in WeCom).

Never twice: rows are marked ``sending`` and committed before the request; a temporary refusal (WeCom
said so) puts them back with back-off, anything else fails them, and an unanswered request is failed as
"outcome unknown" (``OutcomeUnknown``) rather than repeated.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Min
from django.utils import timezone

from marketing.channels import GroupMessage, PermanentFailure, TemporaryFailure, get_channel
from marketing.coupons import sent_coupons_issue
from marketing.models import Channel, Delivery, MessageKind, WeComGroupSend
from marketing.rules import Rules, send_time_holds
from members.wecom import bound_guide_contacts
from retail_crm.models import Brand

logger = logging.getLogger(__name__)

MAX_RECIPIENTS = 10_000  # WeCom takes at most 10,000 external user ids in one group send
NOT_ADDRESSABLE = "wecom: not a WeCom contact of the member's bound guide any more"
REFUSED = "wecom: WeCom refused this contact (fail_list)"
RESULT_ERRORS = {
    2: "wecom 2: not a WeCom contact of the guide",
    3: "wecom 3: the member already received as many group messages as WeCom allows",
}


@dataclass(frozen=True)
class GroupDispatchResult:
    handed: int  # deliveries now waiting for their guide's confirmation
    failed: int
    retried: int
    deferred: int  # due marketing deliveries that reached quiet hours before going out
    requests: int  # group sends created
    held: int = 0  # due deliveries held back at send time (opted out since, or a purchase in the care window)


@dataclass
class _Group:
    brand_id: int
    guide_id: int
    sender: str
    content: dict
    source: str
    rows: list[tuple[int, str, int]]  # (delivery id, external user id, attempts)


def _defer_quiet_hours(due, now: dt.datetime, allowed_at: Callable[[Brand], dt.datetime]) -> int:
    """Due marketing rows of brands now in quiet hours wait for the morning (a late run must not send at night)."""
    deferred = 0
    for brand in Brand.objects.filter(pk__in=due.filter(kind=MessageKind.MARKETING).values("brand_id")):
        allowed = allowed_at(brand)
        if allowed > now:
            deferred += due.filter(brand=brand, kind=MessageKind.MARKETING).update(
                send_after=allowed, status=Delivery.Status.WAITING)
    return deferred


def _claim_groups(rows_of_source, *, budget: int, now: dt.datetime,
                  rules: dict[int, Rules]) -> tuple[list[_Group], int, int]:
    """Lock one source's due rows, hold back those the rules no longer let go (``send_time_holds``), fail those
    no guide can reach, claim up to ``budget`` whole groups. Returns the groups, how many failed and held."""
    with transaction.atomic():
        rows = list(rows_of_source.select_for_update(skip_locked=True)
                    .only("pk", "member_id", "brand_id", "kind", "channel", "content", "attempts", "source")
                    .order_by("pk"))
        holds = send_time_holds(rows, now=now, rules=rules)
        held = 0
        for reason in sorted(set(holds.values())):
            held += Delivery.objects.filter(pk__in=[pk for pk, why in holds.items() if why == reason]).update(
                status=Delivery.Status.HELD, hold_reason=reason)
        rows = [row for row in rows if row.pk not in holds]
        groups: dict[tuple, _Group] = {}
        unreachable = []
        by_brand = defaultdict(list)
        for row in rows:
            by_brand[row.brand_id].append(row)
        for brand_id, brand_rows in by_brand.items():
            contacts = bound_guide_contacts(brand_id=brand_id, member_ids=[row.member_id for row in brand_rows])
            for row in brand_rows:
                contact = contacts.get(row.member_id)
                if contact is None:
                    unreachable.append(row.pk)
                    continue
                key = (brand_id, contact.guide_id, json.dumps(row.content, sort_keys=True))
                group = groups.setdefault(key, _Group(brand_id=brand_id, guide_id=contact.guide_id,
                                                      sender=contact.sender, content=row.content,
                                                      source=row.source, rows=[]))
                group.rows.append((row.pk, contact.external_userid, row.attempts + 1))
        failed = Delivery.objects.filter(pk__in=unreachable).update(status=Delivery.Status.FAILED,
                                                                      error=NOT_ADDRESSABLE)
        chosen = []
        for group in groups.values():  # in the order of their first delivery
            for start in range(0, len(group.rows), MAX_RECIPIENTS):
                if len(chosen) >= budget:
                    break
                chosen.append(_Group(**{**group.__dict__, "rows": group.rows[start:start + MAX_RECIPIENTS]}))
        Delivery.objects.filter(pk__in=[pk for group in chosen for pk, _, _ in group.rows]).update(
            status=Delivery.Status.SENDING, attempts=F("attempts") + 1)
    return chosen, failed, held


def _retry_or_fail(group: _Group, *, error: str, now: dt.datetime, max_attempts: int) -> tuple[int, int]:
    """A temporary refusal: back to the queue after 2, 4, 8… minutes, or failed after ``max_attempts``."""
    failed = retried = 0
    by_attempts = defaultdict(list)
    for pk, _, attempts in group.rows:
        by_attempts[attempts].append(pk)
    for attempts, ids in by_attempts.items():
        rows = Delivery.objects.filter(pk__in=ids, status=Delivery.Status.SENDING)
        if attempts >= max_attempts:
            failed += rows.update(status=Delivery.Status.FAILED, error=error[:200])
        else:
            retried += rows.update(status=Delivery.Status.QUEUED, error=error[:200],
                                   send_after=now + dt.timedelta(minutes=2 ** attempts))
    return failed, retried


def _send(adapter, group: _Group, *, now: dt.datetime, max_attempts: int) -> tuple[int, int, int]:
    """Create one group send; returns (handed, failed, retried)."""
    ids = [pk for pk, _, _ in group.rows]
    sending = Delivery.objects.filter(pk__in=ids, status=Delivery.Status.SENDING)
    message = GroupMessage(sender=group.sender, external_userids=[external for _, external, _ in group.rows],
                           content=group.content, delivery_ids=tuple(ids))
    try:
        accepted = adapter.send_group(message)
    except TemporaryFailure as exc:
        failed, retried = _retry_or_fail(group, error=str(exc), now=now, max_attempts=max_attempts)
        return 0, failed, retried
    except PermanentFailure as exc:
        return 0, sending.update(status=Delivery.Status.FAILED, error=str(exc)[:200]), 0
    refused = set(accepted.refused)
    recipients = {external: pk for pk, external, _ in group.rows if external not in refused}
    reached = list(recipients.values())
    with transaction.atomic():
        WeComGroupSend.objects.create(msgid=accepted.msgid[:64], brand_id=group.brand_id, guide_id=group.guide_id,
                                      sender=group.sender, source=group.source[:80], recipients=recipients,
                                      created_at=now, closed_at=None if recipients else now)
        failed = sending.exclude(pk__in=reached).update(status=Delivery.Status.FAILED, error=REFUSED)
        handed = sending.filter(pk__in=reached).update(status=Delivery.Status.CONFIRMING,
                                                      provider_message_id=accepted.msgid[:80])
    return handed, failed, 0


def group_sends_dispatch(*, channel: str, now: dt.datetime, requests: int,
                         allowed_at: Callable[[Brand], dt.datetime], max_attempts: int,
                         rules: dict[int, Rules] | None = None) -> GroupDispatchResult:
    """Create at most ``requests`` group sends from due deliveries of ``channel``, whole groups at a time.

    ``allowed_at(brand)`` is when marketing may go out for the brand (now, or the end of quiet hours);
    ``rules`` the dispatcher's cache of each brand's rules (due rows whose member opted out or bought since
    are held back, as for every channel).
    A campaign step's due rows are taken together so each guide gets one send for the step, not one per
    dispatch run; steps are served in the order they fell due.
    """
    due = Delivery.objects.filter(channel=channel, status__in=[Delivery.Status.QUEUED, Delivery.Status.WAITING],
                                  send_after__lte=now)
    deferred = _defer_quiet_hours(due, now, allowed_at)
    handed = failed = retried = created = held = 0
    rules = {} if rules is None else rules
    adapter = None
    sources = (due.values("source").annotate(first=Min("send_after")).order_by("first", "source")
               .values_list("source", flat=True))
    for source in list(sources[:requests]):
        if created >= requests:
            break
        groups, unreachable, stopped = _claim_groups(due.filter(source=source), budget=requests - created, now=now,
                                                     rules=rules)
        failed, held = failed + unreachable, held + stopped
        for group in groups:
            adapter = adapter or get_channel(channel)
            sent, lost, again = _send(adapter, group, now=now, max_attempts=max_attempts)
            handed, failed, retried, created = handed + sent, failed + lost, retried + again, created + 1
    return GroupDispatchResult(handed=handed, failed=failed, retried=retried, deferred=deferred, requests=created,
                               held=held)


# ---------------------------------------------------------------------------- results

@dataclass(frozen=True)
class PollResult:
    sent: int
    failed: int
    closed: int  # group sends with no member left waiting


def _record_results(send: WeComGroupSend, results, *, fallback_at: dt.datetime) -> tuple[int, int]:
    sent_at: dict[dt.datetime, list[int]] = defaultdict(list)
    failed: dict[int, list[int]] = defaultdict(list)
    for result in results:
        pk = send.recipients.get(result.external_userid)
        if pk is None:
            continue
        if result.status == 1:
            sent_at[result.sent_at or fallback_at].append(pk)
        elif result.status in RESULT_ERRORS:
            failed[result.status].append(pk)
    waiting = Delivery.objects.filter(channel=Channel.WECOM, status=Delivery.Status.CONFIRMING)
    sent = 0
    for when, ids in sent_at.items():
        # The rows that turn sent now, locked, so a campaign's coupon goes to each of them once (at the send).
        reached = list(waiting.filter(pk__in=ids).select_for_update().only("pk", "member_id", "content", "source"))
        sent += waiting.filter(pk__in=[row.pk for row in reached]).update(status=Delivery.Status.SENT, sent_at=when)
        sent_coupons_issue(reached, at=when)
    lost = sum(waiting.filter(pk__in=ids).update(status=Delivery.Status.FAILED, error=RESULT_ERRORS[status])
               for status, ids in failed.items())
    return sent, lost


def _poll_one(adapter, send: WeComGroupSend, *, now: dt.datetime, deadline: dt.timedelta) -> tuple[int, int, bool]:
    """Fetch and record one send's results; returns (sent, failed, closed)."""
    status, sent_when = adapter.task_status(send.msgid, send.sender)
    sent = failed = 0
    if status != 0:  # the guide sent it: each member's result
        with transaction.atomic():
            sent, failed = _record_results(send, adapter.send_results(send.msgid, send.sender),
                                           fallback_at=sent_when or now)
    waiting = Delivery.objects.filter(pk__in=list(send.recipients.values()), status=Delivery.Status.CONFIRMING)
    if waiting.exists() and now >= send.created_at + deadline:
        try:
            adapter.cancel(send.msgid)  # so a late confirmation cannot reach members recorded as failed
        except PermanentFailure as exc:  # already sent or gone: nothing left to stop
            logger.info("WeCom send %s not cancelled: %s", send.msgid, exc)
        hours = int(deadline.total_seconds() // 3600)
        failed += waiting.update(status=Delivery.Status.FAILED,
                                 error=f"wecom: the guide did not send it within {hours} hours")
    closed = not waiting.exists()
    WeComGroupSend.objects.filter(pk=send.pk).update(checked_at=now, closed_at=now if closed else None)
    return sent, failed, closed


def wecom_results_poll(*, now: dt.datetime | None = None, limit: int = 200) -> PollResult:
    """Record the results of open WeCom group sends, the longest unchecked first (at most ``limit`` sends)."""
    now = now or timezone.now()
    deadline = dt.timedelta(hours=getattr(settings, "MARKETING_WECOM_CONFIRM_HOURS", 72))
    sends = list(WeComGroupSend.objects.filter(closed_at__isnull=True)
                 .order_by(F("checked_at").asc(nulls_first=True), "pk")[:limit])
    sent = failed = closed = 0
    adapter = get_channel(Channel.WECOM) if sends else None
    for send in sends:
        try:
            done, lost, over = _poll_one(adapter, send, now=now, deadline=deadline)
        except (TemporaryFailure, PermanentFailure) as exc:  # WeCom is unwell: this send waits for the next poll
            logger.warning("WeCom results of %s not fetched: %s", send.msgid, exc)
            WeComGroupSend.objects.filter(pk=send.pk).update(checked_at=now)
            continue
        sent, failed, closed = sent + done, failed + lost, closed + over
    return PollResult(sent=sent, failed=failed, closed=closed)
