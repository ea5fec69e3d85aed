"""Tracking links: a short code in a message opens the campaign's page and records the click; a member's
click carries the campaign to the order they pay within the attribution window (the last click wins).

A member's own link (``CampaignRecipient.link_code``, one per member sent to in a run) knows the member,
the run and the variant; the campaign's general link (``Campaign.link_code``, for a post where the reader
is unknown) knows only the campaign. Campaign conversion is reported beside the store and guide sales
credit of ``attribution``, never instead of it: nothing here touches that credit.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
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
    click = _attributed_click(order.paid_at, clicks)
    if click is None:
        return ConversionResult(None, False)
    try:
        with transaction.atomic():
            conversion = CampaignConversion.objects.create(
                order_id=order_id, campaign_id=click.campaign_id, run_id=click.run_id,
                variant_id=click.variant_id, member_id=order.member_id, click=click, paid_at=order.paid_at)
    except IntegrityError:  # a concurrent copy of this handler wrote it first
        return ConversionResult(CampaignConversion.objects.get(order_id=order_id), False)
    return ConversionResult(conversion, True)


def _attributed_click(paid_at: dt.datetime, clicks: Iterable[LinkClick]) -> LinkClick | None:
    """The first of ``clicks`` (the member's clicks on the order's brand's campaigns, newest first) made at or
    before ``paid_at`` and within its campaign's attribution window of it."""
    for click in clicks:
        window = dt.timedelta(days=click.campaign.attribution_days)
        if click.clicked_at <= paid_at and paid_at - click.clicked_at <= window:
            return click
    return None


CONVERSION_BATCH = 2000


def orders_conversions_record(*, order_ids: Iterable[int]) -> int:
    """Carry many paid orders to their campaigns at once (orders written in bulk, as an import or the demo
    writes them, raise no ``order_paid`` event each): the rule of :func:`order_conversion_record`, a few
    queries per 2,000 orders. Orders already carried keep their conversion. Returns how many were written."""
    ids = sorted(set(order_ids))
    written = 0
    for start in range(0, len(ids), CONVERSION_BATCH):
        chunk = ids[start:start + CONVERSION_BATCH]
        orders = list(Order.objects.filter(pk__in=chunk, member__isnull=False, paid_at__isnull=False)
                      .exclude(pk__in=CampaignConversion.objects.filter(order_id__in=chunk).values("order_id"))
                      .values_list("pk", "member_id", "brand_id", "paid_at"))
        if not orders:
            continue
        earliest = min(paid_at for *_, paid_at in orders) - dt.timedelta(days=ATTRIBUTION_DAYS_MAX)
        latest = max(paid_at for *_, paid_at in orders)
        clicks: dict[tuple[int, int], list[LinkClick]] = defaultdict(list)
        for click in (LinkClick.objects.filter(member_id__in={member_id for _, member_id, _, _ in orders},
                                               clicked_at__gte=earliest, clicked_at__lte=latest)
                      .select_related("campaign")
                      .only("campaign", "campaign__brand_id", "campaign__attribution_days", "run_id", "variant_id",
                            "member_id", "clicked_at")
                      .order_by("-clicked_at", "-pk")):
            clicks[(click.member_id, click.campaign.brand_id)].append(click)
        rows = []
        for pk, member_id, brand_id, paid_at in orders:
            click = _attributed_click(paid_at, clicks.get((member_id, brand_id), ()))
            if click is not None:
                rows.append(CampaignConversion(order_id=pk, campaign_id=click.campaign_id, run_id=click.run_id,
                                               variant_id=click.variant_id, member_id=member_id, click=click,
                                               paid_at=paid_at))
        CampaignConversion.objects.bulk_create(rows, ignore_conflicts=True)
        written += len(rows)
    return written
