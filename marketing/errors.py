"""The marketing app's error codes.

Besides these, marketing raises the shared codes of ``retail_crm.errors.ErrorCode`` (``invalid`` for an
unknown message kind or channel or an invalid campaign, ``not_found``); a code only marketing raises goes here.
Values are what clients branch on: never change one once released.
"""

from __future__ import annotations

from enum import StrEnum


class MarketingErrorCode(StrEnum):
    CAMPAIGN_NOT_CANCELLABLE = "campaign_not_cancellable"  # 409: it is cancelled already
    CAMPAIGN_NOT_LAUNCHABLE = "campaign_not_launchable"  # 409: only a draft campaign can be launched
    COUPON_NOT_ISSUABLE = "coupon_not_issuable"  # 409: the campaign's coupon template is inactive or expired
