"""The analytics app's error codes (the dashboard, its tables and exports).

Analytics raises only the shared codes of ``retail_crm.errors.ErrorCode`` so far (``invalid`` for bad
filters, limits or orderings, ``not_found`` for a brand or run outside the caller's scope); a code only
analytics raises goes here. Values are what clients branch on: never change one once released.
"""

from __future__ import annotations

from enum import StrEnum


class AnalyticsErrorCode(StrEnum):
    pass
