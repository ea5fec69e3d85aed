"""The guides app's error codes (guide tokens and shares, tasks, withdrawals).

Besides these, guides raises the shared codes of ``retail_crm.errors.ErrorCode`` (``invalid``,
``not_found``, ``invalid_transition`` for a withdrawal status change that is not allowed …).
Values are what clients branch on: never change one once released. The member names are those of the
enums the codes came from (``ShareErrorCode``, ``LibraryErrorCode``, ``WithdrawalErrorCode``). A bad guide
token raises members' codes (``MembersErrorCode.INVALID_TOKEN`` …): the token contract is members'
(``members.guide_tokens``), which guides answers.
"""

from __future__ import annotations

from enum import StrEnum


class GuidesErrorCode(StrEnum):
    # shares
    INVALID_TARGET = "invalid_share_target"  # sharing nothing, an unknown kind, or another group's item (400)
    # tasks
    TASK_NOT_OPEN = "task_not_open"  # acting on a closed task (409)
    TASK_NOT_STARTED = "task_not_started"  # sharing a task before it starts (409)
    TASK_OVERDUE = "task_overdue"  # sharing a task after its deadline (409)
    DEADLINE_PASSED = "deadline_passed"  # publishing a task whose deadline has passed (409)
    # commission withdrawals
    NO_COMMISSION_ACCOUNT = "no_commission_account"  # the guide or user owning a ledger no longer exists (404)
    INVALID_AMOUNT = "invalid_amount"  # a withdrawal amount that is missing, not positive or has over 2 decimals
    INVALID_REQUEST_KEY = "invalid_request_key"  # a withdrawal without a valid request key (400)
    REQUEST_KEY_REUSED = "request_key_reused"  # a request key already used for another amount (409)
    INSUFFICIENT_BALANCE = "insufficient_balance"  # withdrawing more than is available (409)
    NOT_APPROVER = "not_approver"  # deciding a withdrawal below store manager (403)
    OWN_WITHDRAWAL = "own_withdrawal"  # deciding one's own withdrawal (403)
