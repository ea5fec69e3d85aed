"""Important members are not messaged: their bound guide gets a personal task instead (DOMAIN.md).

"Good customers need people; the large base is handled by the system." A campaign that lists this
channel first routes its important members (RFML classes ``important_*`` in the brand) to their
bound guide as an item on the guide's care list for the day (the same list, the same "done" button,
the same service credit on the binding), flagged for a personal call and carrying the campaign's
words; every other member is not addressable here and falls through to the next channel. The
delivery is recorded ``to_guide`` with the care item's id.

Whether a member is addressable here is decided with every other channel in ``marketing.rules`` (from
:func:`important_members` and the open binding, through ``marketing.channels.addresses``); the channel
itself looks the bound guide up again when the task is handed over.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from marketing.channels import OutgoingMessage, PermanentFailure
from marketing.models import Delivery
from members.models import GuideBinding
from retail_crm.vocabulary import Segment
from segments.care_text import CareReason
from segments.models import CareItem, MemberRfm

IMPORTANT = [segment for segment in Segment.values if segment.startswith("important_")]
REASON_CODE = CareReason.CAMPAIGN  # the care-list rebuild keeps these items


def important_members(*, brand_id: int) -> QuerySet[MemberRfm]:
    """The brand's members of an important RFML class now (their current RFML row); narrowed by the caller."""
    return MemberRfm.objects.filter(brand_id=brand_id, segment__in=IMPORTANT)


class GuideTaskChannel:
    """Puts the member on their bound guide's care list; the "message id" is the care item's."""

    def __init__(self, *, channel: str = "guide_task"):
        self.channel = channel

    def send(self, message: OutgoingMessage) -> str:
        row = Delivery.objects.select_related("member", "brand").get(pk=message.delivery_id)
        guide_id = (GuideBinding.objects.filter(member=row.member, brand=row.brand, ended_at__isnull=True)
                    .values_list("guide_id", flat=True).first())
        if guide_id is None:
            raise PermanentFailure("guide task: the member has no bound guide any more")
        options = message.options or {}
        # On the list of the day the delivery fell due. One item per guide, member, brand and day: a member
        # already on that day's list stays there with the reason the list gave, and the delivery is routed
        # to that item.
        item, _ = CareItem.objects.get_or_create(
            day=timezone.localdate(row.send_after), guide_id=guide_id, member=row.member, brand=row.brand,
            defaults={"kind": CareItem.Kind.MARKET, "reason_code": REASON_CODE,
                      "reason_params": {"source": row.source}, "reason": str(options.get("reason", ""))[:200],
                      "suggested_action": str(options.get("action", ""))[:200], "important": True})
        return f"care-item:{item.pk}"
