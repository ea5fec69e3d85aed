"""The application's one error type. Services raise it; the API turns it into one JSON shape."""

from __future__ import annotations

from enum import Enum, StrEnum


class ErrorCode(StrEnum):
    """Codes shared by every app; each app adds its own enum for domain errors."""

    INVALID = "invalid"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    NOT_AUTHENTICATED = "not_authenticated"
    PERMISSION_DENIED = "permission_denied"
    THROTTLED = "throttled"
    LOGIN_LOCKED = "login_locked"  # too many wrong passwords: 429 with Retry-After
    # (codes, not secrets) a staff API token past STAFF_TOKEN_TTL_HOURS; a reset password not yet changed
    TOKEN_EXPIRED = "token_expired"  # noqa: S105
    PASSWORD_CHANGE_REQUIRED = "password_change_required"  # noqa: S105
    SERVER_ERROR = "server_error"


class ApplicationError(Exception):
    """A business rule said no. ``status`` is the HTTP status the API answers with.

    ``params`` carries the values behind the message (codes, ids, times), so a page can say the same thing
    in the viewer's language instead of showing the API's English ``message``.
    """

    def __init__(self, code: str | Enum, message: str, *, status: int = 400, fields: dict | None = None,
                 params: dict | None = None):
        super().__init__(message)
        self.code = code.value if isinstance(code, Enum) else code
        self.message = message
        self.status = status
        self.fields = fields or {}
        self.params = params or {}
