"""The deterministic fake channel: records what it would send, in memory, and answers like a provider.

An address starting with ``fail:`` fails for good and one starting with ``busy:`` fails temporarily,
so the dispatcher's paths can be driven from data. WeCom group sends and the official account's follower
look-up have their own fakes below.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

from marketing.channels import (
    Follower,
    GroupMessage,
    GroupSendAccepted,
    OutgoingMessage,
    PermanentFailure,
    RecipientResult,
    TemporaryFailure,
)

_lock = threading.Lock()
SENT: list[OutgoingMessage] = []


class FakeChannel:
    def __init__(self, *, channel: str):
        self.channel = channel

    def send(self, message: OutgoingMessage) -> str:
        if message.address.startswith("fail:"):
            raise PermanentFailure("fake: address refused")
        if message.address.startswith("busy:"):
            raise TemporaryFailure("fake: provider busy")
        with _lock:
            SENT.append(message)
        return f"fake-{message.channel}-{message.delivery_id}"


def sent_messages() -> list[OutgoingMessage]:
    with _lock:
        return list(SENT)


def reset() -> None:
    with _lock:
        SENT.clear()
        GROUP_SENDS.clear()
        CANCELLED.clear()


# ---------------------------------------------------------------------------- WeCom group sends

class FakeWeComGroupSend:
    """The deterministic fake of WeCom's enterprise group send: records each send, answers like WeCom.

    A send waits for the guide until ``confirm`` (all sends, or one msgid) says the guide sent it; then
    every member counts as sent, except external ids starting with ``nofriend:`` (WeCom's status 2) and
    ``limit:`` (status 3); ids starting with ``gone:`` are refused at once (``fail_list``). A sender
    starting with ``fail:`` is refused for good, ``busy:`` temporarily. The msgid names the send's first
    delivery, so it is the same in every run and never repeats.
    """

    def __init__(self, *, channel: str = "wecom"):
        self.channel = channel

    def send_group(self, message: GroupMessage) -> GroupSendAccepted:
        if message.sender.startswith("fail:"):
            raise PermanentFailure("fake wecom: sender refused")
        if message.sender.startswith("busy:"):
            raise TemporaryFailure("fake wecom: busy")
        with _lock:
            msgid = f"fake-msg-{min(message.delivery_ids, default=len(GROUP_SENDS) + 1)}"
            GROUP_SENDS.append(FakeGroupSend(msgid=msgid, message=message))
        return GroupSendAccepted(msgid=msgid, refused=[x for x in message.external_userids if x.startswith("gone:")])

    @staticmethod
    def _find(msgid: str) -> FakeGroupSend | None:
        with _lock:
            return next((send for send in GROUP_SENDS if send.msgid == msgid), None)

    def task_status(self, msgid: str, sender: str) -> tuple[int, dt.datetime | None]:
        send = self._find(msgid)
        if send is None or send.confirmed_at is None or send.message.sender != sender:
            return 0, None
        return 2, send.confirmed_at

    def send_results(self, msgid: str, sender: str) -> list[RecipientResult]:
        send = self._find(msgid)
        if send is None or send.message.sender != sender:
            return []

        def status(external: str) -> int:
            if send.confirmed_at is None:
                return 0
            return 2 if external.startswith("nofriend:") else 3 if external.startswith("limit:") else 1
        return [RecipientResult(external_userid=x, status=status(x),
                                sent_at=send.confirmed_at if status(x) == 1 else None)
                for x in send.message.external_userids]

    def cancel(self, msgid: str) -> None:
        with _lock:
            CANCELLED.append(msgid)


@dataclass
class FakeGroupSend:
    msgid: str
    message: GroupMessage
    confirmed_at: dt.datetime | None = None


GROUP_SENDS: list[FakeGroupSend] = []
CANCELLED: list[str] = []


def confirm(*, at: dt.datetime, msgid: str | None = None) -> int:
    """The guide confirms in WeCom: the send ``msgid`` (or every unconfirmed one) goes out at ``at``."""
    with _lock:
        chosen = [s for s in GROUP_SENDS if s.confirmed_at is None and msgid in (None, s.msgid)]
        for send in chosen:
            send.confirmed_at = at
    return len(chosen)


def group_sends() -> list[FakeGroupSend]:
    with _lock:
        return list(GROUP_SENDS)


# ---------------------------------------------------------------------------- official-account followers

class FakeFollowerLookup:
    """The deterministic fake of the official account's ``user/info``: no network, nothing stored.

    Every openid follows and has the unionid ``"u-" + openid``, so a development member whose unionid is
    ``u-<openid>`` is the follower. Openids starting with ``nounion:`` have no unionid (an account not bound
    to an Open Platform), ``gone:`` do not follow (``subscribe: 0``), ``busy:`` fail temporarily and
    ``fail:`` for good.
    """

    def follower(self, openid: str) -> Follower:
        if openid.startswith("busy:"):
            raise TemporaryFailure("fake official account: busy")
        if openid.startswith("fail:"):
            raise PermanentFailure("fake official account 40003: invalid openid")
        if openid.startswith("gone:"):
            return Follower(openid=openid, following=False, unionid="")
        return Follower(openid=openid, following=True, unionid="" if openid.startswith("nounion:") else f"u-{openid}")
