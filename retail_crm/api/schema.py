"""OpenAPI post-processing: every operation documents the one error shape and the statuses it may answer.

Clients (and the schema fuzz test) can then rely on the schema for errors as
much as for successes: 400 with field messages, 401, 403, 404 (also outside
the caller's scope), 409 conflicts and 422 for a reused Idempotency-Key; 429 with
``Retry-After`` on the rate-limited operations (views with throttle classes).
The ``Error`` component's ``code`` is an enum of every app's error codes
(``retail_crm.errors.error_codes``), so a generated client can branch on them.
"""

from __future__ import annotations

import copy
import re

from retail_crm.errors import app_error_enums, error_codes

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


def error_schema() -> dict:
    """The Error component: ``ERROR_SCHEMA`` with ``code`` an enum of every code, listed by app."""
    lines = [f"- {app}: " + ", ".join(f"`{code}`" for code in sorted(enum)) for app, enum in app_error_enums().items()
             if len(enum)]
    schema = copy.deepcopy(ERROR_SCHEMA)
    schema["properties"]["error"]["properties"]["code"] = {
        "type": "string",
        "enum": list(error_codes()),
        "description": "Stable code to branch on, e.g. out_of_stock. The app each code belongs to (retail_crm's "
                       "are shared by every app):\n\n" + "\n".join(lines),
    }
    return schema


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = error_schema()
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


#: Operation groups in the docs, first matching path prefix (after /api/v1/) wins; the order is the docs' order.
TAG_PREFIXES = (
    ("auth", ("auth/", "mp/auth/", "me/")),
    ("mini-program", ("mp/",)),
    ("members", ("members/", "wecom/")),
    ("mall", ("mall/", "pos/", "pay/")),
    ("guides", ("guides/",)),
    ("livestream", ("livestream/",)),
    ("analytics", ("analytics/",)),
    ("org", ("org/",)),
    ("marketing", ("marketing/",)),
)

TAGS = [
    {"name": "auth", "description": "Logging in: staff tokens (`Authorization: Token <key>`), the mini-program's "
                                    "WeChat login (`Authorization: Member <token>`) and who is logged in."},
    {"name": "mini-program", "description": "The member's own API behind the WeChat mini-program: products, cart, "
                                            "orders and payment, coupons, points, memberships, livestreams, "
                                            "behaviour events and guide QR scans. Member token only."},
    {"name": "members", "description": "Staff: members in the caller's scope (phones masked unless the role "
                                       "allows), binding transfers, tags, and the WeCom friendship callbacks."},
    {"name": "mall", "description": "Staff: orders, shipping, refunds, coupon templates and issuing, stock; "
                                    "POS order import and the payment provider's notifications."},
    {"name": "guides", "description": "Guides' commission, withdrawals and their review, task execution."},
    {"name": "livestream", "description": "Store and HQ livestreams (1+N): scheduling, start and end, stats, "
                                          "coaching notes, phase targets and store progress."},
    {"name": "analytics", "description": "The HQ dashboard's metrics, sales credits (attribution), RFML classes "
                                         "and runs, and the guides' care lists."},
    {"name": "org", "description": "The organisation: brands, regions, stores and guides in the caller's scope."},
    {"name": "marketing", "description": "Reaching members: saved audiences (their live size and CSV export), "
                                         "every message sent or held back (deliveries), the SMS provider's "
                                         "receipt and reply callbacks, and the official account's follow "
                                         "callback."},
]


def tag_for_path(path: str) -> str:
    """The docs group of an API path (``/api/v1/mall/orders/`` → ``mall``)."""
    rest = path.split("/api/v1/", 1)[-1]
    for tag, prefixes in TAG_PREFIXES:
        if rest.startswith(prefixes):
            return tag
    return "other"


def tag_operations(result, generator, request, public):
    """drf-spectacular postprocessing hook: every operation in one group by its path (SPECTACULAR_SETTINGS)."""
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                operation["tags"] = [tag_for_path(path)]
    return result
