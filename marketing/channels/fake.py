"""The deterministic fake channel: records what it would send, in memory, and answers like a provider.

An address starting with ``fail:`` fails for good and one starting with ``busy:`` fails temporarily,
so the dispatcher's paths can be driven from data.
"""

from __future__ import annotations

import threading

from marketing.channels import OutgoingMessage, PermanentFailure, TemporaryFailure

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
