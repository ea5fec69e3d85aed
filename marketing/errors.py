"""The marketing app's error codes.

Marketing raises only the shared codes of ``retail_crm.errors.ErrorCode`` so far (``invalid`` for an
unknown message kind or channel, ``not_found``); a code only marketing raises goes here.
Values are what clients branch on: never change one once released.
"""

from __future__ import annotations

from enum import StrEnum


class MarketingErrorCode(StrEnum):
    pass
