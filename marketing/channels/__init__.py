"""Message channels behind one small interface; ``get_channel`` picks the configured adapter.

Each adapter's ``send`` either returns the provider's message id or raises ``TemporaryFailure`` (try
again later: rate limited, provider busy) or ``PermanentFailure`` (never retried: bad number, no
consent left). Development and tests use ``fake``; production refuses to start with it (settings).

WeCom's enterprise group send is the one channel that is not a request per message: one request
carries a guide's members for a campaign step and WeCom answers later, once the guide confirmed it.
Its adapters (``GROUP_ADAPTERS``) have ``send_group``, ``task_status``, ``send_results`` and ``cancel``
instead of ``send``; ``marketing.group_sends`` drives them.

Beside the channels, ``get_follower_lookup`` gives the official account's follower look-up (``user/info``, who
an openid is), chosen by ``OFFICIAL_ACCOUNT_PROVIDER`` like the official-account channel; ``marketing.followers``
uses it to link the people who follow the account.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string


class TemporaryFailure(Exception):
    """The provider could not take the message now; the dispatcher tries again with back-off."""


class PermanentFailure(Exception):
    """The provider refused the message for good; the delivery is recorded as failed."""


class OutcomeUnknown(PermanentFailure):
    """The request went out and no answer came back: it may have been sent. Failed, never retried (no twice)."""


@dataclass(frozen=True)
class OutgoingMessage:
    """What a channel needs to send one message: the address and the rendered content."""

    delivery_id: int
    channel: str
    address: str  # phone for SMS, openid for subscribe and official-account messages
    template: str  # provider template id
    params: dict
    options: dict = field(default_factory=dict)  # the delivery's whole content: links, mini-program page, …


@dataclass(frozen=True)
class GroupMessage:
    """One WeCom group send: the guide who sends it, the members' external user ids and the content."""

    sender: str  # the guide's WeCom userid
    external_userids: list[str]
    content: dict  # {"text": …, "miniprogram": {…}} and/or {"link": {…}}
    delivery_ids: tuple[int, ...] = ()  # the deliveries it carries (our records; WeCom never sees them)


@dataclass(frozen=True)
class GroupSendAccepted:
    """WeCom took the group send: its id, and the external user ids it refused at once (``fail_list``)."""

    msgid: str
    refused: list[str]


@dataclass(frozen=True)
class RecipientResult:
    """What happened to one member of a group send (``get_groupmsg_send_result``)."""

    external_userid: str
    status: int  # 0 not sent yet, 1 sent, 2 not the guide's contact, 3 the member's group-message limit reached
    sent_at: dt.datetime | None


@dataclass(frozen=True)
class Follower:
    """What the official account's ``user/info`` says about one of its openids."""

    openid: str
    following: bool  # ``subscribe``: 0 when the person does not (or no longer) follow the account
    unionid: str  # empty unless the account is bound to a WeChat Open Platform account


ADAPTERS = {
    "fake": "marketing.channels.fake.FakeChannel",
    "tencent": "marketing.channels.tencent_sms.TencentSms",
    "wechat": "marketing.channels.official_account.OfficialAccountTemplates",
    "guides": "marketing.channels.guide_task.GuideTaskChannel",
}
# Channels that send one request for many members; keyed by the WECOM_CLIENT setting's values.
GROUP_CHANNELS = frozenset({"wecom"})
GROUP_ADAPTERS = {
    "fake": "marketing.channels.fake.FakeWeComGroupSend",
    "api": "marketing.channels.wecom_group_send.WeComGroupSendClient",
}


# The follower look-up, keyed by OFFICIAL_ACCOUNT_PROVIDER's values (the start-up and deploy checks refuse "fake"
# with DEBUG off, as they do for the channel).
FOLLOWER_ADAPTERS = {
    "fake": "marketing.channels.fake.FakeFollowerLookup",
    "wechat": "marketing.channels.official_account.OfficialAccountFollowers",
}


def channel_available(channel: str) -> bool:
    """Whether ``channel`` has an adapter configured (``MARKETING_CHANNELS``; None or absent: unavailable)."""
    return bool(getattr(settings, "MARKETING_CHANNELS", {}).get(channel))


def get_channel(channel: str):
    """The adapter instance for ``channel`` (``MARKETING_CHANNELS`` maps channel → adapter name)."""
    name = getattr(settings, "MARKETING_CHANNELS", {}).get(channel)
    if not name:
        raise ImproperlyConfigured(f"No adapter configured for the {channel} channel")
    registry = GROUP_ADAPTERS if channel in GROUP_CHANNELS else ADAPTERS
    if name not in registry:
        raise ImproperlyConfigured(f"Unknown adapter {name!r} for the {channel} channel")
    return import_string(registry[name])(channel=channel)


def get_follower_lookup():
    """The official account's follower look-up that ``OFFICIAL_ACCOUNT_PROVIDER`` names (``follower(openid)``)."""
    name = getattr(settings, "OFFICIAL_ACCOUNT_PROVIDER", "")
    if name not in FOLLOWER_ADAPTERS:
        raise ImproperlyConfigured(f"Unknown follower look-up {name!r} (OFFICIAL_ACCOUNT_PROVIDER)")
    return import_string(FOLLOWER_ADAPTERS[name])()
