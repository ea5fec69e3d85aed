"""The livestream app's error codes (scheduling sessions, viewer events).

Besides these, livestream raises the shared codes of ``retail_crm.errors.ErrorCode`` (``invalid``,
``not_found``, ``invalid_transition`` for starting, ending or cancelling a session in the wrong status …).
Values are what clients branch on: never change one once released. The member names are those of the
enums the codes came from (``LiveErrorCode``, ``ViewerEventErrorCode``).
"""

from __future__ import annotations

from enum import StrEnum


class LivestreamErrorCode(StrEnum):
    # scheduling
    SCHEDULE_FORBIDDEN = "schedule_forbidden"  # scheduling or cancelling by a role other than HQ or brand operator
    STORE_BUSY = "store_busy"  # the host store already has a session overlapping that time (409)
    GUIDE_BUSY = "guide_busy"  # the host guide already hosts a session overlapping that time (409)
    # viewer events: the whole batch is refused (409) and the mini-program stops resending it
    SESSION_CANCELLED = "session_cancelled"  # events for a cancelled session
    SESSION_NOT_OPEN = "session_not_open"  # events before the session's lobby opens
    SESSION_CLOSED = "session_closed"  # events after the session's tail closed
