"""The attribution app's error codes.

It raises only the shared codes of ``retail_crm.errors.ErrorCode`` today (``invalid``, ``not_found``);
a code of its own goes here. Values are what clients branch on: never change one once released.
"""

from __future__ import annotations

from enum import StrEnum


class AttributionErrorCode(StrEnum):
    pass
