"""The few figures a list of campaigns shows per campaign: sent, held back, clicked, converted.

Counted the way ``marketing.results.campaign_results`` counts them (sent = handed to the provider, delivered
ones included; held back = a delivery held for any reason; clicked and converted = distinct members), for a
whole page of campaigns in three grouped queries instead of one full result each.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count

from marketing.models import CampaignConversion, CampaignRecipient, Delivery, LinkClick

SENT = (Delivery.Status.SENT, Delivery.Status.DELIVERED)


@dataclass
class CampaignOverview:
    sent: int = 0
    held: int = 0
    clicked: int = 0
    converted: int = 0


def campaign_overviews(campaign_ids: Iterable[int]) -> dict[int, CampaignOverview]:
    """campaign id → its figures, over every run (every id given has an entry)."""
    ids = list(campaign_ids)
    out = {pk: CampaignOverview() for pk in ids}
    if not ids:
        return out
    rows = (CampaignRecipient.objects.filter(run__campaign_id__in=ids, delivery__isnull=False)
            .values("run__campaign_id", "delivery__status").annotate(n=Count("pk")))
    for row in rows:
        figures = out[row["run__campaign_id"]]
        if row["delivery__status"] in SENT:
            figures.sent += row["n"]
        elif row["delivery__status"] == Delivery.Status.HELD:
            figures.held += row["n"]
    for row in (LinkClick.objects.filter(campaign_id__in=ids, member__isnull=False).values("campaign_id")
                .annotate(n=Count("member", distinct=True))):
        out[row["campaign_id"]].clicked = row["n"]
    for row in (CampaignConversion.objects.filter(campaign_id__in=ids).values("campaign_id")
                .annotate(n=Count("member", distinct=True))):
        out[row["campaign_id"]].converted = row["n"]
    return out
