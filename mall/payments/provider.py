"""What the mall needs from a payment provider, and the typed values that cross that boundary.

The services only ever talk to a :class:`PaymentProvider`; :mod:`mall.payments.fake`
is the deterministic one for development and tests, :mod:`mall.payments.wechat` the
real WeChat Pay API v3 client. Amounts cross the boundary in fen (integer cents),
as WeChat Pay counts them, so no float or rounding ever touches money here.

Settings (read with defaults, so a missing line never breaks start-up):
``PAYMENT_PROVIDER`` ("fake" or "wechat"; "fake" by default only when DEBUG is on),
``PAYMENT_FAKE_KEY`` (the fake's signing key) and the ``WECHATPAY_*`` settings the
real client lists.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from mall.models import Order, Payment

# A notification whose timestamp is further than this from our clock is refused (replay protection).
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)


class TradeState:
    """WeChat Pay's ``trade_state`` values the mall acts on."""

    SUCCESS = "SUCCESS"
    NOTPAY = "NOTPAY"
    CLOSED = "CLOSED"
    REFUND = "REFUND"  # paid, then (partly) refunded: still a payment that happened


class SignatureInvalid(Exception):
    """A notification whose signature, certificate serial or timestamp does not check out."""


class ProviderError(Exception):
    """The provider refused a request (``code`` from its answer) or could not be reached.

    ``retryable`` is true when the fault is the network's or the provider's (try again later),
    false when the request itself was refused and repeating it cannot help.
    """

    def __init__(self, message: str, *, code: str = "", retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable


def to_fen(amount: Decimal) -> int:
    """Yuan (two decimals) to integer fen; refuses sub-cent amounts instead of rounding them away."""
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of fen")
    return int(fen)


def from_fen(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class PrepayParams:
    """What the mini-program passes to ``wx.requestPayment`` (field names as WeChat spells them)."""

    prepay_id: str
    app_id: str
    time_stamp: str
    nonce_str: str
    package: str
    sign_type: str
    pay_sign: str

    def as_request_payment(self) -> dict[str, str]:
        return {"appId": self.app_id, "timeStamp": self.time_stamp, "nonceStr": self.nonce_str,
                "package": self.package, "signType": self.sign_type, "paySign": self.pay_sign}


@dataclass(frozen=True)
class PaymentNotice:
    """A verified statement from the provider about one trade (from a notification or a query)."""

    out_trade_no: str
    transaction_id: str
    amount_fen: int
    trade_state: str
    success_time: dt.datetime | None = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def paid(self) -> bool:
        return self.trade_state in (TradeState.SUCCESS, TradeState.REFUND) and bool(self.transaction_id)


@dataclass(frozen=True)
class RefundOrder:
    """One refund to ask the provider for. ``out_refund_no`` makes a retried request safe."""

    out_refund_no: str
    out_trade_no: str
    transaction_id: str
    refund_fen: int
    total_fen: int
    reason: str = ""


@dataclass(frozen=True)
class RefundOutcome:
    """The provider's answer to a refund: its id and status (SUCCESS, PROCESSING, …)."""

    refund_id: str
    status: str

    @property
    def accepted(self) -> bool:
        # PROCESSING: WeChat has taken the refund and pays it out asynchronously; it does not fail
        # afterwards except for an ABNORMAL account, which operations handle by hand.
        return self.status in ("SUCCESS", "PROCESSING")


class PaymentProvider(Protocol):
    """A WeChat-Pay-shaped payment provider."""

    name: str

    def create_prepay(self, order: Order, payment: Payment, *, openid: str) -> PrepayParams: ...

    def parse_and_verify_notification(self, headers, body: bytes) -> PaymentNotice: ...

    def query(self, out_trade_no: str) -> PaymentNotice: ...

    def refund(self, order: RefundOrder) -> RefundOutcome: ...


def parse_rfc3339(value: str | None) -> dt.datetime | None:
    """WeChat's ``2018-06-08T10:34:56+08:00``; None for an empty or unreadable value."""
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def notice_from_transaction(data: dict) -> PaymentNotice:
    """Build a notice from WeChat's transaction object (decrypted notification resource or query answer)."""
    if not isinstance(data, dict):
        raise ValueError("transaction is not an object")
    amount = data.get("amount") or {}
    total = amount.get("total") if isinstance(amount, dict) else None
    out_trade_no = data.get("out_trade_no")
    if not isinstance(out_trade_no, str) or not out_trade_no:
        raise ValueError("transaction has no out_trade_no")
    if total is not None and (not isinstance(total, int) or isinstance(total, bool)):
        raise ValueError("amount.total is not an integer")
    return PaymentNotice(out_trade_no=out_trade_no, transaction_id=str(data.get("transaction_id") or ""),
                         amount_fen=total if total is not None else 0,
                         trade_state=str(data.get("trade_state") or ""),
                         success_time=parse_rfc3339(data.get("success_time")), raw=data)


def header(headers, name: str) -> str:
    """A header from a case-insensitive mapping (Django's request.headers) or a plain dict."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return str(candidate)
        return ""
    return str(value)


def get_payment_provider() -> PaymentProvider:
    """The configured provider: the fake unless ``PAYMENT_PROVIDER`` is "wechat" (the default when DEBUG is off)."""
    name = getattr(settings, "PAYMENT_PROVIDER", None) or ("fake" if settings.DEBUG else "wechat")
    if name == "fake":
        from mall.payments.fake import FakeWeChatPay

        return FakeWeChatPay()
    if name == "wechat":
        from mall.payments.wechat import wechat_pay_from_settings

        return wechat_pay_from_settings()
    raise ImproperlyConfigured(f"PAYMENT_PROVIDER must be 'fake' or 'wechat', not {name!r}")
