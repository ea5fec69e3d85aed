"""The application's one error type, the codes every app shares, and the register of every app's codes.

Services raise :class:`ApplicationError`; the API turns it into one JSON shape whose ``code`` a client
branches on. Each project app keeps its own codes in one string enum in ``<app>/errors.py``
(``mall.errors.MallErrorCode`` …); the codes below are the ones every app shares. A code's value is what
clients see, so it never changes once released; a code lives in exactly one enum (the shared one when more
than one app raises it). :func:`error_codes` collects them all for the OpenAPI ``Error`` component.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from enum import Enum, StrEnum
from pathlib import Path


class ErrorCode(StrEnum):
    """Codes shared by every app (retail_crm's enum); each app adds its own enum for domain errors."""

    INVALID = "invalid"  # the input is malformed or breaks a rule; ``fields`` says which (400)
    NOT_FOUND = "not_found"  # no such object, or it is outside the caller's scope (404)
    CONFLICT = "conflict"  # the current state forbids it (a duplicate, a race lost); retrying may help (409)
    INVALID_TRANSITION = "invalid_transition"  # the status forbids this step (an order, session, withdrawal) (409)
    NOT_AUTHENTICATED = "not_authenticated"  # no credentials, or they are wrong (401)
    # (codes, not secrets) a staff API token past STAFF_TOKEN_TTL_HOURS; a reset password not yet changed
    TOKEN_EXPIRED = "token_expired"  # noqa: S105
    PASSWORD_CHANGE_REQUIRED = "password_change_required"  # noqa: S105
    PERMISSION_DENIED = "permission_denied"  # logged in, but the role may not do this; also a failed CSRF check (403)
    METHOD_NOT_ALLOWED = "method_not_allowed"  # the path exists but not with this HTTP method (405)
    NOT_ACCEPTABLE = "not_acceptable"  # the Accept header asks for a format the API does not answer in (406)
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"  # a request body in a format the operation does not read (415)
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"  # the Idempotency-Key came with another request body (422)
    IDEMPOTENCY_IN_PROGRESS = "idempotency_in_progress"  # the first request with this Idempotency-Key still runs (409)
    THROTTLED = "throttled"  # too many requests; wait for Retry-After (429)
    LOGIN_LOCKED = "login_locked"  # too many wrong passwords: 429 with Retry-After
    SERVER_ERROR = "server_error"  # a bug or an outage on our side (500)


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


# ---------------------------------------------------------------------------- the register of every app's codes

def _project_apps():
    """The installed apps that are this project's own: a package directly in the project directory."""
    from django.apps import apps
    from django.conf import settings

    base = Path(settings.BASE_DIR).resolve()
    return [config for config in apps.get_app_configs() if Path(config.path).resolve().parent == base]


def _enum_of(module) -> type[StrEnum]:
    """The one string enum an ``errors`` module defines."""
    enums = [value for value in vars(module).values()
             if inspect.isclass(value) and issubclass(value, StrEnum) and value.__module__ == module.__name__]
    if len(enums) != 1:
        raise TypeError(f"{module.__name__} must define exactly one StrEnum of error codes, "
                        f"found {len(enums)}: {', '.join(e.__name__ for e in enums) or 'none'}")
    return enums[0]


def app_error_enums() -> dict[str, type[StrEnum]]:
    """Every project app's error-code enum by app label, in INSTALLED_APPS order (apps without ``errors.py``
    are left out; tests/test_error_codes.py insists every app has one)."""
    found: dict[str, type[StrEnum]] = {}
    for config in _project_apps():
        name = f"{config.name}.errors"
        if importlib.util.find_spec(name) is not None:
            found[config.label] = _enum_of(importlib.import_module(name))
    return found


def error_codes() -> dict[str, list[str]]:
    """Every error code any app raises, sorted, with the labels of the apps whose enum holds it."""
    owners: dict[str, list[str]] = {}
    for label, enum in app_error_enums().items():
        for member in enum:
            owners.setdefault(member.value, []).append(label)
    return dict(sorted(owners.items()))
