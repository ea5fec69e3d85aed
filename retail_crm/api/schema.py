"""OpenAPI post-processing: every operation documents the one error shape and the statuses it may answer.

Clients (and the schema fuzz test) can then rely on the schema for errors as
much as for successes: 400 with field messages, 401, 403, 404 (also outside
the caller's scope), 409 conflicts and 422 for a reused Idempotency-Key; 429 with
``Retry-After`` on the rate-limited operations (views with throttle classes).
"""

from __future__ import annotations

import re

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Stable code to branch on, e.g. out_of_stock"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                           "description": "Per-field messages (400)"},
            },
        },
    },
}

ERROR_STATUSES = {
    "400": "Invalid input; `fields` holds a message per field",
    "401": "Not authenticated",
    "403": "Authenticated, but this role may not do this",
    "404": "No such object, or outside the caller's scope",
    "405": "Method not allowed",
    "409": "Conflicts with the current state (stock, status, identity)",
    "415": "Unsupported media type",
    "422": "The Idempotency-Key was used with another request",
    "503": "A provider (WeChat, WeCom, payment) is unreachable or not configured; retry later",
}


THROTTLED = {
    "description": "Too many requests from this client; retry after `Retry-After` seconds",
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}},
}


def _shape(path: str) -> str:
    """A path without its parameter names (the schema may call ``{pk}`` ``{id}``)."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def _throttled_operations(generator) -> set[tuple[str, str]]:
    """(path, method) of every operation whose view has throttle classes."""
    found = set()
    for path, _regex, method, callback in getattr(generator, "endpoints", None) or ():
        view_class = getattr(callback, "cls", None)
        if view_class is not None and getattr(view_class, "throttle_classes", None):
            found.add((_shape(path), method.lower()))
    return found


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    throttled = _throttled_operations(generator)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_STATUSES.items():
                responses.setdefault(status, {"description": description, "content": reference})
            if (_shape(path), method) in throttled:
                responses.setdefault("429", {**THROTTLED, "content": reference})
    return result
