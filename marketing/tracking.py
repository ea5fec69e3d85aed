"""Tracking links: a short code in a message opens the campaign's page and records the click; a member's
click carries the campaign to the order they pay within the attribution window (the last click wins).

A member's own link (``CampaignRecipient.link_code``, one per member sent to in a run) knows the member,
the run and the variant; the campaign's general link (``Campaign.link_code``, for a post where the reader
is unknown) knows only the campaign. Campaign conversion is reported beside the store and guide sales
credit of ``attribution``, never instead of it: nothing here touches that credit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.db import IntegrityError, transaction
from django.utils import timezone

from mall.models import Order
from marketing.models import Campaign, CampaignConversion, CampaignRecipient, LinkClick

ATTRIBUTION_DAYS_MAX = 30  # the longest window a campaign may have (Campaign's check constraint)


def _landing(link: str, code: str) -> str:
    """The campaign's page with ``mk=<code>`` added, so the storefront can tell which message it came from."""
    parts = urlsplit(link)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=query + urlencode({"mk": code})))


def link_open(*, code: str, at: dt.datetime | None = None) -> str | None:
    """Record a click on ``code`` and return where it leads; None for an unknown code."""
    at = at or timezone.now()
    recipient = (CampaignRecipient.objects.select_related("run__campaign").filter(link_code=code)
                 .only("member_id", "variant_id", "run__id", "run__campaign__id", "run__campaign__link").first())
    if recipient is not None:
        campaign = recipient.run.campaign
        LinkClick.objects.create(campaign=campaign, run=recipient.run, variant_id=recipient.variant_id,
                                 member_id=recipient.member_id, clicked_at=at)
    else:
        campaign = Campaign.objects.filter(link_code=code).only("id", "link").first()
        if campaign is None:
            return None
        LinkClick.objects.create(campaign=campaign, clicked_at=at)
    return _landing(campaign.link, code)


@dataclass(frozen=True)
class ConversionResult:
    conversion: CampaignConversion | None
    created: bool


def order_conversion_record(*, order_id: int) -> ConversionResult:
    """Carry a paid order to the campaign whose link its buyer clicked last before paying, within that
    campaign's attribution window (``paid_at - clicked_at`` at most ``attribution_days``), same brand only.
    Idempotent: the order's conversion is written once."""
    order = Order.objects.filter(pk=order_id).only("member_id", "brand_id", "paid_at").first()
    if order is None or order.member_id is None or order.paid_at is None:
        return ConversionResult(None, False)
    existing = CampaignConversion.objects.filter(order_id=order_id).first()
    if existing is not None:
        return ConversionResult(existing, False)
    clicks = (LinkClick.objects.filter(member_id=order.member_id, campaign__brand_id=order.brand_id,
                                       clicked_at__lte=order.paid_at,
                                       clicked_at__gte=order.paid_at - dt.timedelta(days=ATTRIBUTION_DAYS_MAX))
              .select_related("campaign").order_by("-clicked_at", "-pk"))
    for click in clicks:
        if order.paid_at - click.clicked_at <= dt.timedelta(days=click.campaign.attribution_days):
            try:
                with transaction.atomic():
                    conversion = CampaignConversion.objects.create(
                        order_id=order_id, campaign_id=click.campaign_id, run_id=click.run_id,
                        variant_id=click.variant_id, member_id=order.member_id, click=click, paid_at=order.paid_at)
            except IntegrityError:  # a concurrent copy of this handler wrote it first
                return ConversionResult(CampaignConversion.objects.get(order_id=order_id), False)
            return ConversionResult(conversion, True)
    return ConversionResult(None, False)
