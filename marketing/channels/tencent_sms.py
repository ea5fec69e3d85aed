"""Tencent Cloud SMS (API 3.0, ``SendSms`` version 2021-01-11) signed with TC3-HMAC-SHA256.

Written to the provider's documented contract: a POST of a JSON body to ``sms.tencentcloudapi.com`` with
the action, version, region and timestamp in ``X-TC-*`` headers and an ``Authorization`` header built in
four steps (canonical request → string to sign → a key derived from the secret by date, service and
``tc3_request`` → the HMAC). The per-number answer (``SendStatusSet[].Code``) decides: ``Ok`` is sent,
rate and provider trouble are temporary, anything else (a bad number, a template not approved, the
account's credentials) is permanent. The tests check the signature against the documentation's worked
example and the request against its recorded shape; nothing here is ever called on the network in tests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
import urllib.request
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from marketing.channels import OutgoingMessage, PermanentFailure, TemporaryFailure

HOST = "sms.tencentcloudapi.com"
SERVICE = "sms"
VERSION = "2021-01-11"
ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"
SIGNED_HEADERS = "content-type;host"
# Codes worth trying again later: the provider's or the number's rate, or the provider itself.
TEMPORARY_PREFIXES = ("LimitExceeded", "RequestLimitExceeded", "InternalError", "FailedOperation.ServiceUnavailable")

Transport = Callable[[str, dict, bytes], tuple[int, bytes]]


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def canonical_request(*, payload: bytes, host: str = HOST, content_type: str = CONTENT_TYPE) -> str:
    """Step 1: method, URI, query, the signed headers and the payload's hash, one per line."""
    return "\n".join(["POST", "/", "", f"content-type:{content_type}\nhost:{host}\n", SIGNED_HEADERS,
                      _sha256_hex(payload)])


def string_to_sign(*, timestamp: int, service: str, canonical: str) -> str:
    """Step 2: the algorithm, the timestamp, the credential scope (UTC date/service/tc3_request), the hash."""
    day = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).strftime("%Y-%m-%d")
    return "\n".join([ALGORITHM, str(timestamp), f"{day}/{service}/tc3_request",
                      _sha256_hex(canonical.encode("utf-8"))])


def tc3_signature(*, secret_key: str, timestamp: int, service: str, canonical: str) -> str:
    """Steps 3 and 4: derive the signing key from the secret by date, service and "tc3_request", then sign."""
    day = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).strftime("%Y-%m-%d")
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), day), service), "tc3_request")
    to_sign = string_to_sign(timestamp=timestamp, service=service, canonical=canonical)
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def _urllib_transport(url: str, headers: dict, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - fixed https
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - a fixed https URL
            return response.status, response.read()
    except OSError as exc:  # network trouble: the message may go later
        raise TemporaryFailure(f"tencent sms: {exc}") from exc


class TencentSms:
    """The SMS channel through Tencent Cloud; configured by the ``TENCENT_SMS_*`` settings."""

    def __init__(self, *, channel: str = "sms", secret_id: str | None = None, secret_key: str | None = None,
                 sdk_app_id: str | None = None, sign_name: str | None = None, region: str | None = None,
                 transport: Transport | None = None, clock: Callable[[], float] = time.time):
        self.channel = channel
        self.secret_id = secret_id or getattr(settings, "TENCENT_SMS_SECRET_ID", "")
        self.secret_key = secret_key or getattr(settings, "TENCENT_SMS_SECRET_KEY", "")
        self.sdk_app_id = sdk_app_id or getattr(settings, "TENCENT_SMS_SDK_APP_ID", "")
        self.sign_name = sign_name or getattr(settings, "TENCENT_SMS_SIGN_NAME", "")
        self.region = region or getattr(settings, "TENCENT_SMS_REGION", "ap-guangzhou")
        missing = [name for name, value in (("TENCENT_SMS_SECRET_ID", self.secret_id),
                                            ("TENCENT_SMS_SECRET_KEY", self.secret_key),
                                            ("TENCENT_SMS_SDK_APP_ID", self.sdk_app_id),
                                            ("TENCENT_SMS_SIGN_NAME", self.sign_name)) if not value]
        if missing:
            raise ImproperlyConfigured(f"Tencent SMS needs {', '.join(missing)}")
        self.transport = transport or _urllib_transport
        self.clock = clock

    def request_for(self, message: OutgoingMessage) -> tuple[str, dict, bytes]:
        """The signed HTTP request (URL, headers, body) that sends ``message``."""
        params = message.params
        ordered = params if isinstance(params, list) else [params[key] for key in sorted(params)]
        payload = {
            "PhoneNumberSet": [message.address],
            "SmsSdkAppId": self.sdk_app_id,
            "SignName": self.sign_name,
            "TemplateId": message.template,
            "TemplateParamSet": [str(value) for value in ordered],
            "SessionContext": str(message.delivery_id),
        }
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        timestamp = int(self.clock())
        signature = tc3_signature(secret_key=self.secret_key, timestamp=timestamp, service=SERVICE,
                                  canonical=canonical_request(payload=body))
        day = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).strftime("%Y-%m-%d")
        headers = {
            "Authorization": (f"{ALGORITHM} Credential={self.secret_id}/{day}/{SERVICE}/tc3_request, "
                              f"SignedHeaders={SIGNED_HEADERS}, Signature={signature}"),
            "Content-Type": CONTENT_TYPE,
            "Host": HOST,
            "X-TC-Action": "SendSms",
            "X-TC-Version": VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self.region,
        }
        return f"https://{HOST}/", headers, body

    def send(self, message: OutgoingMessage) -> str:
        """Send one SMS; the provider's serial number on success (delivery receipts name it)."""
        status, raw = self.transport(*self.request_for(message))
        if status >= 500:
            raise TemporaryFailure(f"tencent sms: HTTP {status}")
        try:
            answer = json.loads(raw)["Response"]
        except (ValueError, KeyError, TypeError) as exc:
            raise TemporaryFailure("tencent sms: unreadable answer") from exc
        error = answer.get("Error")
        if error:
            return self._refused(error.get("Code", ""), error.get("Message", ""))
        statuses = answer.get("SendStatusSet") or []
        if not statuses:
            raise TemporaryFailure("tencent sms: no send status")
        first = statuses[0]
        if first.get("Code") != "Ok":
            return self._refused(first.get("Code", ""), first.get("Message", ""))
        return first.get("SerialNo", "")

    @staticmethod
    def _refused(code: str, text: str) -> str:
        reason = f"tencent sms {code}: {text}"[:200]
        if code.startswith(TEMPORARY_PREFIXES):
            raise TemporaryFailure(reason)
        raise PermanentFailure(reason)


def status_reports(body: list) -> list[tuple[str, bool, dt.datetime | None, str]]:
    """Delivery receipts as Tencent pushes them: (serial number, delivered?, when, error text) each."""
    reports = []
    for item in body if isinstance(body, list) else []:
        if not isinstance(item, dict) or not item.get("sid"):
            continue
        when = None
        try:
            when = dt.datetime.strptime(str(item.get("user_receive_time", "")), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            pass
        reports.append((str(item["sid"]), item.get("report_status") == "SUCCESS", when,
                        f"{item.get('errmsg', '')} {item.get('description', '')}".strip()))
    return reports


def inbound_reply(body: dict) -> tuple[str, str] | None:
    """An inbound reply as Tencent pushes it: (+countrycode phone, text), or None when unreadable."""
    if not isinstance(body, dict) or not body.get("mobile"):
        return None
    return f"+{body.get('nationcode') or '86'}{body['mobile']}", str(body.get("text", ""))
