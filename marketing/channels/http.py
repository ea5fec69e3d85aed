"""HTTPS for the WeChat and WeCom channel clients: one injectable transport, JSON in and out.

A client takes a ``Transport`` (method, URL, headers, body → status, body) so tests hand it a recorder
and nothing ever reaches the network. The real one is the standard library's, with a timeout, and it
tells apart a request that never went out (``TemporaryFailure``: try again) from one whose answer was
lost (``OutcomeUnknown``: it may have been acted on, so it is never repeated).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable

from marketing.channels import OutcomeUnknown, TemporaryFailure

Transport = Callable[[str, str, dict, bytes | None], tuple[int, bytes]]
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
TIMEOUT_SECONDS = 10


def urllib_transport(method: str, url: str, headers: dict, body: bytes | None, *,
                     timeout: float = TIMEOUT_SECONDS) -> tuple[int, bytes]:
    """One request with the standard library; every URL is a fixed https:// API host of the caller."""
    request = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310 - fixed https
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - fixed https
            return response.status, response.read()
    except urllib.error.HTTPError as exc:  # an answer, if not a happy one
        return exc.code, exc.read() or b""
    except urllib.error.URLError as exc:  # raised while connecting or sending: the request did not arrive
        raise TemporaryFailure(f"unreachable: {exc.reason}") from exc
    except OSError as exc:  # sent, then the answer was lost (a read timeout, a reset)
        raise OutcomeUnknown(f"no answer: {type(exc).__name__}") from exc


def json_body(payload: dict) -> bytes:
    """A request body as WeChat expects it: UTF-8 JSON, Chinese characters as they are."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_answer(status: int, raw: bytes, what: str) -> dict:
    """The answer as a dict; a server error or an unreadable answer is temporary."""
    if status >= 500:
        raise TemporaryFailure(f"{what}: HTTP {status}")
    try:
        answer = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise TemporaryFailure(f"{what}: unreadable answer (HTTP {status})") from exc
    if not isinstance(answer, dict):
        raise TemporaryFailure(f"{what}: unreadable answer (HTTP {status})")
    return answer
