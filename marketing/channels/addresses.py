"""Where each channel reaches a member, or that it cannot (so the gateway falls back to the next channel).

Whether a channel can reach a member is decided in SQL by the one rules core (``marketing.rules``), for one
member (``message_send``) and for a campaign's whole audience alike. SMS (a phone), subscribe messages (an
openid with a consent left) and the official account read the member's own row there. The channels that
reach a member through other tables answer here, as SQL conditions the rules embed:

- official account: the member's openid in the official account (``Member.oa_openid``, linked through
  the unionid by ``members.services.member_official_account_link``); unlinked members are not reachable;
- WeCom group send: the member's external user id as a WeCom contact of the guide bound to them for
  the brand (``members.wecom.bound_guide_contact_rows``); members without a bound guide, or not that
  guide's contact, are not reachable;
- guide task: a member of an important RFML class in the brand (``segments``' current row) with a bound
  guide; other members are not reachable (they are left to the system's messages).

:func:`dispatch_address` is where a claimed delivery is sent.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from marketing.channels.guide_task import important_members
from marketing.models import Channel, Delivery
from members.models import GuideBinding
from members.wecom import bound_guide_contact_rows


def _exists(rows: QuerySet) -> tuple[str, list]:
    sql, params = rows.order_by().values("pk").query.sql_with_params()
    return f"EXISTS ({sql})", list(params)


def reachable_sql(channel: str, *, brand_id: int, member_id_sql: str) -> tuple[str, list] | None:
    """SQL that is true when ``channel`` reaches the member whose id is the SQL expression ``member_id_sql``
    (a column of the caller's query) in brand ``brand_id``; None for the channels answered elsewhere."""
    member_id = RawSQL(member_id_sql, ())  # noqa: S611 - a column name of the rules' own query, no input
    if channel == Channel.WECOM:
        return _exists(bound_guide_contact_rows(brand_id=brand_id).filter(member_id=member_id))
    if channel == Channel.GUIDE_TASK:
        important_sql, important_params = _exists(important_members(brand_id=brand_id).filter(member_id=member_id))
        bound_sql, bound_params = _exists(GuideBinding.objects.filter(member_id=member_id, brand_id=brand_id,
                                                                      ended_at__isnull=True))
        return f"{important_sql} AND {bound_sql}", [*important_params, *bound_params]
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
