"""The members app's error codes (identity, binding, points, tags, the mini-program login, WeCom).

Besides these, members raises the shared codes of ``retail_crm.errors.ErrorCode`` (``invalid``,
``not_found`` …).
Values are what clients branch on: never change one once released. The member names are those of the
enums the codes came from (``MemberErrorCode``, ``TagErrorCode``, ``MiniProgramErrorCode``, ``WeComErrorCode``).
"""

from __future__ import annotations

from enum import StrEnum


class MembersErrorCode(StrEnum):
    # identity and merging
    INVALID_PHONE = "invalid_phone"  # not a valid mobile number (also one WeChat returned) (400)
    NO_IDENTIFIER = "no_identifier"  # a member look-up or create without phone, unionid, openid or code (400)
    IDENTITY_CONFLICT = "identity_conflict"  # the identifiers given already belong to different members (409)
    MERGE_INVALID = "merge_invalid"  # merging a member into itself, across groups, or one already merged (409)
    # guide tokens (QR codes, share links): the contract of members.guide_tokens, answered by guides; raised at
    # the mini-program's QR scan, checkout and event ingestion
    INVALID_TOKEN = "invalid_token"  # noqa: S105 - a code: a forged or unknown token or share code (400)
    REVOKED_TOKEN = "revoked_token"  # noqa: S105 - a code: a QR code replaced by a newer one (400)
    GUIDE_LEFT = "guide_left"  # scanning the QR code of a guide who has left (409)
    # guide binding
    GUIDE_INACTIVE = "guide_inactive"  # binding to, or befriending on WeCom, a guide who has left (409)
    GUIDE_WRONG_BRAND = "guide_wrong_brand"  # binding a member to a guide of another brand (400)
    TRANSFER_FORBIDDEN = "transfer_forbidden"  # a binding transfer by someone below store manager (403)
    # points
    INSUFFICIENT_POINTS = "insufficient_points"  # spending more points than the balance holds (409)
    # tags
    TAG_OTHER_GROUP = "tag_other_group"  # assigning a tag of another group (400)
    TAG_BRAND_NOT_JOINED = "tag_brand_not_joined"  # a brand's tag for a member who has not joined the brand (400)
    TAG_SOURCE_INVALID = "tag_source_invalid"  # assigning by hand with a source other than manual or import (400)
    TAG_NOT_HELD = "tag_not_held"  # removing a tag the member does not hold (404)
    TAG_COMPUTED = "tag_computed"  # removing by hand a tag that a rule or RFML recomputes (409)
    # mini-program login
    WECHAT_CODE_INVALID = "wechat_code_invalid"  # WeChat refused the login or phone code; get a new one (400)
    WECHAT_UNAVAILABLE = "wechat_unavailable"  # WeChat could not be reached (503)
    PHONE_ALREADY_BOUND = "phone_already_bound"  # the membership already has another phone number (409)
    BRAND_INACTIVE = "brand_inactive"  # joining a brand (by a guide's QR code) that takes no new members (409)
    # WeCom
    BAD_SIGNATURE = "wecom_bad_signature"  # a WeCom callback whose signature does not match (403)
    BAD_MESSAGE = "wecom_bad_message"  # a WeCom callback that cannot be decrypted or parsed (400)
    NOT_CONFIGURED = "wecom_not_configured"  # the WeCom corp id, secret, token or AES key is missing (503)
    API_ERROR = "wecom_api_error"  # WeCom's API failed while recording a friendship (503)
