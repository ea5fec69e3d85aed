"""One error shape for the whole API.

    {"error": {"code": "invalid", "message": "…", "fields": {"phone": ["…"]}}}

``code`` is a stable string the mini-program can branch on; ``fields`` holds
per-field messages for 400s.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.staff_tokens import TokenExpired
from retail_crm.throttling import throttled_message

_CODE_BY_EXCEPTION = (
    (exceptions.ValidationError, ErrorCode.INVALID),
    (exceptions.ParseError, ErrorCode.INVALID),
    (exceptions.NotAuthenticated, ErrorCode.NOT_AUTHENTICATED),
    (TokenExpired, ErrorCode.TOKEN_EXPIRED),  # before its parent, AuthenticationFailed
    (exceptions.AuthenticationFailed, ErrorCode.NOT_AUTHENTICATED),
    (exceptions.PermissionDenied, ErrorCode.PERMISSION_DENIED),
    (exceptions.NotFound, ErrorCode.NOT_FOUND),
    (exceptions.MethodNotAllowed, ErrorCode.METHOD_NOT_ALLOWED),
    (exceptions.NotAcceptable, ErrorCode.NOT_ACCEPTABLE),
    (exceptions.UnsupportedMediaType, ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    (exceptions.Throttled, ErrorCode.THROTTLED),
)


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    body = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def _messages(value, prefix: str, out: dict[str, list[str]]) -> None:
    """Collect messages under dotted keys: {"lines": [{}, {"quantity": [...]}]} → {"lines.1.quantity": [...]}."""
    if isinstance(value, dict):
        for key, item in value.items():
            nested = prefix if key == "non_field_errors" and prefix else (f"{prefix}.{key}" if prefix else str(key))
            _messages(item, nested, out)
    elif isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        for index, item in enumerate(value):
            if item:  # list serializers report {} for the items that were fine
                _messages(item, f"{prefix}.{index}" if prefix else str(index), out)
    else:
        items = value if isinstance(value, list) else [value]
        out.setdefault(prefix or "non_field_errors", []).extend(str(item) for item in items)


def _flatten(detail) -> tuple[str, dict]:
    if isinstance(detail, dict):
        fields: dict[str, list[str]] = {}
        _messages(detail, "", fields)
        non_field = fields.get("non_field_errors")
        return (non_field[0] if non_field else "Invalid input."), fields
    if isinstance(detail, list):
        items = [str(item) for item in detail]
        return (items[0] if items else "Invalid input."), {"non_field_errors": items}
    return str(detail), {}


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = ErrorCode.SERVER_ERROR
    for exc_type, mapped in _CODE_BY_EXCEPTION:
        if isinstance(exc, exc_type):
            code = mapped
            break
    if isinstance(exc, exceptions.APIException) and code is ErrorCode.SERVER_ERROR:
        code = exc.default_code
    message, fields = _flatten(exc.detail)
    if isinstance(exc, exceptions.Throttled):
        # DRF's own text is English-only in parts; ours names the wait in the reader's language.
        message = throttled_message(exc.wait)
    if response.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        code = ErrorCode.METHOD_NOT_ALLOWED
    response.data = error_body(code.value if isinstance(code, ErrorCode) else str(code), message, fields)
    return response
