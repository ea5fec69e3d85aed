"""Message channels behind one small interface; ``get_channel`` picks the configured adapter.

Each adapter's ``send`` either returns the provider's message id or raises ``TemporaryFailure`` (try
again later: rate limited, provider busy) or ``PermanentFailure`` (never retried: bad number, no
consent left). Development and tests use ``fake``; production refuses to start with it (settings).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string


class TemporaryFailure(Exception):
    """The provider could not take the message now; the dispatcher tries again with back-off."""


class PermanentFailure(Exception):
    """The provider refused the message for good; the delivery is recorded as failed."""


@dataclass(frozen=True)
class OutgoingMessage:
    """What a channel needs to send one message: the address and the rendered content."""

    delivery_id: int
    channel: str
    address: str  # phone for SMS, openid for subscribe messages
    template: str  # provider template id
    params: dict


ADAPTERS = {"fake": "marketing.channels.fake.FakeChannel", "tencent": "marketing.channels.tencent_sms.TencentSms"}


def channel_available(channel: str) -> bool:
    """Whether ``channel`` has an adapter configured (``MARKETING_CHANNELS``; None or absent: unavailable)."""
    return bool(getattr(settings, "MARKETING_CHANNELS", {}).get(channel))


def get_channel(channel: str):
    """The adapter instance for ``channel`` (``MARKETING_CHANNELS`` maps channel → adapter name)."""
    name = getattr(settings, "MARKETING_CHANNELS", {}).get(channel)
    if not name:
        raise ImproperlyConfigured(f"No adapter configured for the {channel} channel")
    return import_string(ADAPTERS[name])(channel=channel)
