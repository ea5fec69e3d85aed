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
    # the official account's server callback (WeChat's servers call it, marketing.followers)
    OFFICIAL_ACCOUNT_BAD_SIGNATURE = "official_account_bad_signature"  # 403: the signature does not match
    OFFICIAL_ACCOUNT_BAD_MESSAGE = "official_account_bad_message"  # 400: malformed XML, a DTD, or over 64 KB
    OFFICIAL_ACCOUNT_ENCRYPTED = "official_account_encrypted"  # 400: safe (AES) mode is on; plaintext is required
    OFFICIAL_ACCOUNT_NOT_CONFIGURED = "official_account_not_configured"  # 503: no token, group, app id or secret
    OFFICIAL_ACCOUNT_API_ERROR = "official_account_api_error"  # 503: user/info failed for now; WeChat retries
