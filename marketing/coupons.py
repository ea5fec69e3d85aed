"""A campaign's coupon, issued to each member its message actually reached, when it reached them.

A campaign's deliveries carry ``content["coupon_template"]``. The dispatcher calls :func:`sent_coupons_issue`
for the rows it has just marked sent (or routed to the guide), and the WeCom results poll for the rows WeCom
reported sent; a row turns into one of those states once, so no member gets a campaign's coupon twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from mall.coupon_campaigns import coupons_issue_to
from mall.models import CouponTemplate
from marketing.models import Delivery
from members.models import Member
from retail_crm.errors import ApplicationError

logger = logging.getLogger(__name__)


def sent_coupons_issue(rows: Iterable[Delivery], *, at: dt.datetime) -> None:
    """Issue each row's coupon template (if any) to its member; one issue per template and source.

    An inactive or expired template is logged, not raised: the messages are gone already.
    """
    wanted: dict[tuple[int, str], list[int]] = {}
    for row in rows:
        template_id = (row.content or {}).get("coupon_template")
        if template_id:
            wanted.setdefault((template_id, row.source), []).append(row.member_id)
    for (template_id, source), member_ids in wanted.items():
        template = CouponTemplate.objects.select_related("brand").filter(pk=template_id).first()
        if template is None:
            logger.error("%s: coupon template %s is gone; not issued to %s members sent to", source, template_id,
                         len(member_ids))
            continue
        try:
            coupons_issue_to(template=template, members=Member.objects.filter(pk__in=member_ids), at=at,
                             once_per_member=False)
        except ApplicationError as exc:
            logger.error("%s: coupon template %s not issued to %s members sent to: %s", source, template_id,
                         len(member_ids), exc.message)
