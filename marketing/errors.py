"""Error codes of the marketing app (the ``code`` of an API error), for clients to branch on."""

from enum import StrEnum


class MarketingErrorCode(StrEnum):
    CAMPAIGN_NOT_LAUNCHABLE = "campaign_not_launchable"  # 409: only a draft campaign can be launched
    CAMPAIGN_NOT_CANCELLABLE = "campaign_not_cancellable"  # 409: it is cancelled already
    COUPON_NOT_ISSUABLE = "coupon_not_issuable"  # 409: the campaign's coupon template is inactive or expired
