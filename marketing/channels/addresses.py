"""Where each channel reaches a member, or that it cannot (so the gateway falls back to the next channel).

SMS and subscribe messages are answered in the gateway itself (a phone; an openid with a consent left).
The channels added since answer here:

- official account: the member's openid in the official account (``Member.oa_openid``, linked through
  the unionid by ``members.services.member_official_account_link``); unlinked members are not reachable;
- WeCom group send: the member's external user id as a WeCom contact of the guide bound to them for
  the brand; members without a bound guide, or not that guide's contact, are not reachable;
- guide task: the bound guide of a member of an important RFML class in the brand; other members are
  not reachable (they are left to the system's messages).
"""

from __future__ import annotations

from marketing.channels.guide_task import important_member_guide
from marketing.models import Channel, Delivery
from members.models import Member
from members.wecom import bound_guide_contacts
from retail_crm.models import Brand


def channel_address(*, member: Member, brand: Brand, channel: str) -> str | None:
    """The official-account, WeCom or guide-task address of ``member`` in ``brand``; None: not addressable."""
    if channel == Channel.OFFICIAL_ACCOUNT:
        return member.oa_openid or None
    if channel == Channel.WECOM:
        contact = bound_guide_contacts(brand_id=brand.pk, member_ids=[member.pk]).get(member.pk)
        return contact.external_userid if contact else None
    if channel == Channel.GUIDE_TASK:
        guide_id = important_member_guide(member=member, brand=brand)
        return f"guide:{guide_id}" if guide_id else None
    return None


def dispatch_address(row: Delivery) -> str:
    """The address a claimed one-message-a-request delivery is sent to (its member is selected with it)."""
    member = row.member
    if row.channel == Channel.SUBSCRIBE:
        return member.openid
    if row.channel == Channel.OFFICIAL_ACCOUNT:
        return member.oa_openid  # empty if unlinked since: the adapter fails it
    if row.channel == Channel.GUIDE_TASK:
        return f"member:{member.pk}"  # the adapter finds the guide bound now
    return member.phone
