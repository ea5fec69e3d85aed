"""WeChat Pay API v3 client (JSAPI, for the mini-program), written to WeChat Pay's documented contract.

- Requests carry ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",
  signature="…",timestamp="…",serial_no="…"``; the signature is RSA-SHA256 (PKCS#1 v1.5)
  with the merchant private key over ``METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n`` (URL = path
  and query).
- Answers and notifications are verified with the platform public key over
  ``Wechatpay-Timestamp\\nWechatpay-Nonce\\nBODY\\n`` (``Wechatpay-Signature``, base64);
  a notification's ``resource.ciphertext`` is AEAD_AES_256_GCM under the APIv3 key with
  ``resource.nonce`` and ``resource.associated_data``.
- ``POST /v3/pay/transactions/jsapi`` (prepay), ``GET /v3/pay/transactions/out-trade-no/{no}?mchid=``
  (query), ``POST /v3/refund/domestic/refunds`` (refund). Amounts in fen.
- The mini-program's ``wx.requestPayment`` parameters are signed RSA over
  ``appId\\ntimeStamp\\nnonceStr\\npackage\\n``.

Standard library (urllib, with a timeout on every call) plus ``cryptography``. Secrets
never appear in logs or error messages.

Settings for ``PAYMENT_PROVIDER=wechat``: ``WECHATPAY_MCHID``, ``WECHATPAY_APPID`` (falls back to
``WECHAT_APPID``), ``WECHATPAY_SERIAL_NO`` (merchant certificate serial), ``WECHATPAY_PRIVATE_KEY``
(PEM text, or ``WECHATPAY_PRIVATE_KEY_FILE``), ``WECHATPAY_PLATFORM_PUBLIC_KEY`` (PEM, or
``WECHATPAY_PLATFORM_PUBLIC_KEY_FILE``), ``WECHATPAY_PLATFORM_SERIAL`` (the platform key or
certificate id that ``Wechatpay-Serial`` must name; optional), ``WECHATPAY_APIV3_KEY`` (32 bytes),
``WECHATPAY_NOTIFY_URL``, ``WECHATPAY_TIMEOUT`` (seconds, default 5).
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from mall.payments.provider import (
    MAX_CLOCK_SKEW,
    PaymentNotice,
    PrepayParams,
    ProviderError,
    RefundOrder,
    RefundOutcome,
    SignatureInvalid,
    header,
    notice_from_transaction,
    to_fen,
)

logger = logging.getLogger(__name__)

API_BASE = "https://api.mch.weixin.qq.com"
Opener = Callable[..., object]  # urllib.request.urlopen's shape


class WeChatPay:
    """The real provider. ``opener``, ``clock`` and ``nonce`` are injectable so tests need no network."""

    name = "wechat"

    def __init__(self, *, mchid: str, appid: str, serial_no: str, private_key_pem: bytes | str,
                 platform_public_key_pem: bytes | str, apiv3_key: str, notify_url: str,
                 platform_serial: str = "", timeout: float = 5.0, opener: Opener | None = None,
                 clock: Callable[[], float] | None = None, nonce: Callable[[], str] | None = None):
        missing = [name for name, value in (("WECHATPAY_MCHID", mchid), ("WECHATPAY_APPID", appid),
                                            ("WECHATPAY_SERIAL_NO", serial_no),
                                            ("WECHATPAY_PRIVATE_KEY", private_key_pem),
                                            ("WECHATPAY_PLATFORM_PUBLIC_KEY", platform_public_key_pem),
                                            ("WECHATPAY_APIV3_KEY", apiv3_key),
                                            ("WECHATPAY_NOTIFY_URL", notify_url)) if not value]
        if missing:
            raise ImproperlyConfigured(f"PAYMENT_PROVIDER=wechat needs {', '.join(missing)}")
        if len(apiv3_key.encode()) != 32:
            raise ImproperlyConfigured("WECHATPAY_APIV3_KEY must be 32 bytes")
        self.mchid, self.appid, self.serial_no = mchid, appid, serial_no
        self.platform_serial = platform_serial
        self.notify_url = notify_url
        self.timeout = timeout
        self._apiv3_key = apiv3_key.encode()
        self._private_key = serialization.load_pem_private_key(_bytes(private_key_pem), password=None)
        self._platform_key = serialization.load_pem_public_key(_bytes(platform_public_key_pem))
        if not isinstance(self._private_key, rsa.RSAPrivateKey) or not isinstance(self._platform_key,
                                                                                 rsa.RSAPublicKey):
            raise ImproperlyConfigured("WeChat Pay keys must be RSA keys")
        self._open = opener or urllib.request.urlopen
        self._clock = clock or time.time
        self._nonce = nonce or (lambda: secrets.token_hex(16))

    # -- signatures

    def _rsa_sign(self, message: str) -> str:
        signature = self._private_key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode()

    def authorization(self, method: str, url: str, body: str) -> str:
        """The ``Authorization`` header for one request (``url``: path and query)."""
        timestamp, nonce = str(int(self._clock())), self._nonce()
        signature = self._rsa_sign(f"{method}\n{url}\n{timestamp}\n{nonce}\n{body}\n")
        return (f'WECHATPAY2-SHA256-RSA2048 mchid="{self.mchid}",nonce_str="{nonce}",'
                f'signature="{signature}",timestamp="{timestamp}",serial_no="{self.serial_no}"')

    def _verify(self, headers, body: bytes) -> None:
        timestamp, nonce = header(headers, "Wechatpay-Timestamp"), header(headers, "Wechatpay-Nonce")
        signature, serial = header(headers, "Wechatpay-Signature"), header(headers, "Wechatpay-Serial")
        if not (timestamp and nonce and signature):
            raise SignatureInvalid("signature headers missing")
        if self.platform_serial and serial != self.platform_serial:
            raise SignatureInvalid("signed with an unknown platform key")
        try:
            skew = abs(int(self._clock()) - int(timestamp))
            message = f"{timestamp}\n{nonce}\n{body.decode()}\n".encode()
            self._platform_key.verify(base64.b64decode(signature, validate=True), message, padding.PKCS1v15(),
                                      hashes.SHA256())
        except (InvalidSignature, ValueError, UnicodeDecodeError):
            raise SignatureInvalid("signature does not match") from None
        if skew > MAX_CLOCK_SKEW.total_seconds():
            raise SignatureInvalid("timestamp too far from now")

    # -- transport

    def _call(self, what: str, method: str, path: str, body: dict | None = None) -> dict:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":")) if body is not None else ""
        request = urllib.request.Request(  # noqa: S310 - always https://api.mch.weixin.qq.com (API_BASE)
            API_BASE + path, data=text.encode() if body is not None else None, method=method,
            headers={"Authorization": self.authorization(method, path, text), "Accept": "application/json",
                     "Content-Type": "application/json", "User-Agent": "retail-crm-wechatpay/1"})
        try:
            with self._open(request, timeout=self.timeout) as response:
                raw, response_headers = response.read(), response.headers
        except urllib.error.HTTPError as exc:
            raw = exc.read() if hasattr(exc, "read") else b""
            try:
                detail = json.loads(raw) if raw else {}
            except ValueError:
                detail = {}
            code = str(detail.get("code") or exc.code)
            logger.info("WeChat Pay %s refused: HTTP %s %s", what, exc.code, code)
            raise ProviderError(str(detail.get("message") or f"WeChat Pay {what} failed"), code=code,
                                retryable=exc.code >= 500 or exc.code == 429) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            logger.warning("WeChat Pay %s unreachable: %s", what, type(exc).__name__)
            raise ProviderError(f"WeChat Pay {what} is unreachable", retryable=True) from None
        try:
            self._verify(response_headers, raw)
        except SignatureInvalid as exc:
            # An answer we cannot trust is treated as no answer: the caller may retry or reconcile.
            logger.warning("WeChat Pay %s answer failed verification: %s", what, exc)
            raise ProviderError(f"WeChat Pay {what} answer failed verification", retryable=True) from None
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            raise ProviderError(f"WeChat Pay {what} answered with something that is not JSON",
                                retryable=True) from None
        if not isinstance(data, dict):
            raise ProviderError(f"WeChat Pay {what} answered with something that is not an object", retryable=True)
        return data

    # -- provider API

    def create_prepay(self, order, payment, *, openid: str) -> PrepayParams:
        body = {"appid": self.appid, "mchid": self.mchid, "description": f"{order.brand.name} {order.order_no}"[:127],
                "out_trade_no": payment.out_trade_no, "notify_url": self.notify_url,
                "amount": {"total": to_fen(payment.amount), "currency": "CNY"}, "payer": {"openid": openid}}
        if order.expires_at is not None:
            # WeChat stops taking the money when the order expires, so late payments are rare.
            body["time_expire"] = timezone.localtime(order.expires_at).isoformat(timespec="seconds")
        data = self._call("prepay", "POST", "/v3/pay/transactions/jsapi", body)
        prepay_id = data.get("prepay_id") or ""
        if not prepay_id:
            raise ProviderError("WeChat Pay prepay returned no prepay_id", retryable=True)
        return self.request_payment_params(prepay_id)

    def request_payment_params(self, prepay_id: str) -> PrepayParams:
        """The signed ``wx.requestPayment`` parameters for a prepay id."""
        time_stamp, nonce, package = str(int(self._clock())), self._nonce(), f"prepay_id={prepay_id}"
        return PrepayParams(prepay_id=prepay_id, app_id=self.appid, time_stamp=time_stamp, nonce_str=nonce,
                            package=package, sign_type="RSA",
                            pay_sign=self._rsa_sign(f"{self.appid}\n{time_stamp}\n{nonce}\n{package}\n"))

    def parse_and_verify_notification(self, headers, body: bytes) -> PaymentNotice:
        self._verify(headers, body)
        try:
            envelope = json.loads(body)
            resource = envelope["resource"]
            if resource.get("algorithm") != "AEAD_AES_256_GCM":
                raise ValueError("unknown resource algorithm")
            plaintext = AESGCM(self._apiv3_key).decrypt(
                resource["nonce"].encode(), base64.b64decode(resource["ciphertext"]),
                (resource.get("associated_data") or "").encode())
            return notice_from_transaction(json.loads(plaintext))
        except InvalidTag:
            # Signed by WeChat but not decryptable with our key: another merchant's or a wrong APIv3 key.
            raise SignatureInvalid("resource does not decrypt with the APIv3 key") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed notification: {exc}") from None

    def query(self, out_trade_no: str) -> PaymentNotice:
        path = (f"/v3/pay/transactions/out-trade-no/{urllib.parse.quote(out_trade_no, safe='')}"
                f"?{urllib.parse.urlencode({'mchid': self.mchid})}")
        data = self._call("query", "GET", path)
        try:
            return notice_from_transaction(data)
        except ValueError as exc:
            raise ProviderError(f"WeChat Pay query answer is malformed: {exc}", retryable=True) from None

    def refund(self, order: RefundOrder) -> RefundOutcome:
        body = {"out_refund_no": order.out_refund_no,
                "amount": {"refund": order.refund_fen, "total": order.total_fen, "currency": "CNY"}}
        if order.transaction_id:
            body["transaction_id"] = order.transaction_id
        else:
            body["out_trade_no"] = order.out_trade_no
        if order.reason:
            body["reason"] = order.reason[:80]
        data = self._call("refund", "POST", "/v3/refund/domestic/refunds", body)
        refund_id, status = data.get("refund_id") or "", data.get("status") or ""
        if not refund_id or not status:
            raise ProviderError("WeChat Pay refund answer has no refund_id or status", retryable=True)
        return RefundOutcome(refund_id=refund_id, status=status)


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _setting_or_file(name: str) -> str:
    value = getattr(settings, name, "") or ""
    path = getattr(settings, f"{name}_FILE", "") or ""
    if not value and path:
        try:
            with open(path, encoding="ascii") as handle:
                return handle.read()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE cannot be read: {exc.strerror}") from None
    return value


def wechat_pay_from_settings() -> WeChatPay:
    return WeChatPay(mchid=getattr(settings, "WECHATPAY_MCHID", ""),
                     appid=getattr(settings, "WECHATPAY_APPID", "") or getattr(settings, "WECHAT_APPID", ""),
                     serial_no=getattr(settings, "WECHATPAY_SERIAL_NO", ""),
                     private_key_pem=_setting_or_file("WECHATPAY_PRIVATE_KEY"),
                     platform_public_key_pem=_setting_or_file("WECHATPAY_PLATFORM_PUBLIC_KEY"),
                     platform_serial=getattr(settings, "WECHATPAY_PLATFORM_SERIAL", ""),
                     apiv3_key=getattr(settings, "WECHATPAY_APIV3_KEY", ""),
                     notify_url=getattr(settings, "WECHATPAY_NOTIFY_URL", ""),
                     timeout=float(getattr(settings, "WECHATPAY_TIMEOUT", 5)))
