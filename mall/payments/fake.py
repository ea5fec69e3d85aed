"""A deterministic stand-in for WeChat Pay: no network, same answers for the same questions.

- Prepay ids, nonces and transaction ids are hashes of the trade number, so a
  test can predict them; the clock can be injected.
- Notifications are signed with HMAC-SHA256 over ``timestamp\\nnonce\\nbody\\n`` (the
  string WeChat signs with RSA) under ``PAYMENT_FAKE_KEY``; :meth:`FakeWeChatPay.notification`
  builds a correctly signed one, so tests (and a developer's curl) can play the provider.
- What the fake was asked (prepays, payments, refunds) is kept in the Django cache,
  shared by every instance in the process (and across processes when the cache is
  Redis), so :meth:`query` answers like the real provider after a simulated payment.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache

from mall.payments.provider import (
    MAX_CLOCK_SKEW,
    PrepayParams,
    ProviderError,
    RefundOrder,
    RefundOutcome,
    SignatureInvalid,
    TradeState,
    header,
    notice_from_transaction,
    to_fen,
)

DEFAULT_KEY = "fake-wechatpay-key-for-development-only"
FAKE_APPID = "wxfakeappid000000"
_CACHE_PREFIX = "fakepay:"
_KEEP_SECONDS = 7 * 24 * 3600
# Refund bookkeeping is read-modify-write on the cache: serialise it within the process.
_REFUND_LOCK = threading.Lock()


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


class FakeWeChatPay:
    """The fake provider. ``key`` signs notifications; ``clock`` returns Unix seconds."""

    name = "fake"

    def __init__(self, *, key: str | None = None, clock: Callable[[], float] | None = None):
        self.key = key or getattr(settings, "PAYMENT_FAKE_KEY", "") or DEFAULT_KEY
        self.clock = clock or time.time

    # -- the fake's memory

    @staticmethod
    def _load(out_trade_no: str) -> dict | None:
        return cache.get(_CACHE_PREFIX + out_trade_no)

    @staticmethod
    def _store(out_trade_no: str, trade: dict) -> None:
        cache.set(_CACHE_PREFIX + out_trade_no, trade, timeout=_KEEP_SECONDS)

    def _sign(self, message: str) -> str:
        return base64.b64encode(hmac.new(self.key.encode(), message.encode(), hashlib.sha256).digest()).decode()

    # -- provider API

    def create_prepay(self, order, payment, *, openid: str = "") -> PrepayParams:
        out_trade_no = payment.out_trade_no
        trade = self._load(out_trade_no) or {"out_trade_no": out_trade_no, "trade_state": TradeState.NOTPAY,
                                              "transaction_id": "", "refunded_fen": 0, "refunds": {}}
        trade["amount_fen"] = to_fen(payment.amount)
        trade["openid"] = openid
        self._store(out_trade_no, trade)
        prepay_id = "fakeprepay_" + _digest("prepay", out_trade_no)[:24]
        time_stamp = str(int(self.clock()))
        nonce = _digest("nonce", out_trade_no, time_stamp)[:32]
        package = f"prepay_id={prepay_id}"
        sign = self._sign(f"{FAKE_APPID}\n{time_stamp}\n{nonce}\n{package}\n")
        return PrepayParams(prepay_id=prepay_id, app_id=FAKE_APPID, time_stamp=time_stamp, nonce_str=nonce,
                            package=package, sign_type="HMAC-SHA256", pay_sign=sign)

    def pay(self, out_trade_no: str, *, amount_fen: int | None = None) -> dict:
        """Play the member paying (as WeChat's cashier would); returns the provider's transaction object."""
        trade = self._load(out_trade_no)
        if trade is None:
            raise ProviderError("ORDER_NOT_EXIST", code="ORDER_NOT_EXIST")
        trade["trade_state"] = TradeState.SUCCESS
        trade["transaction_id"] = trade["transaction_id"] or "42000" + _digest("tx", out_trade_no)[:23]
        if amount_fen is not None:
            trade["amount_fen"] = amount_fen
        trade["success_time"] = dt.datetime.fromtimestamp(int(self.clock()), dt.UTC).isoformat()
        self._store(out_trade_no, trade)
        return self._transaction(trade)

    @staticmethod
    def _transaction(trade: dict) -> dict:
        return {"appid": FAKE_APPID, "mchid": "fake-mch", "out_trade_no": trade["out_trade_no"],
                "transaction_id": trade.get("transaction_id", ""), "trade_type": "JSAPI",
                "trade_state": trade["trade_state"], "success_time": trade.get("success_time", ""),
                "payer": {"openid": trade.get("openid", "")},
                "amount": {"total": trade["amount_fen"], "payer_total": trade["amount_fen"], "currency": "CNY"}}

    def notification(self, transaction: dict, *, timestamp: int | None = None, nonce: str | None = None,
                     key: str | None = None) -> tuple[dict[str, str], bytes]:
        """A notification as the provider would POST it: (headers, body), signed with ``key`` (default: ours)."""
        body = json.dumps({"id": _digest("event", json.dumps(transaction, sort_keys=True))[:36],
                           "event_type": "TRANSACTION.SUCCESS", "resource_type": "plain-resource",
                           "summary": "支付成功", "resource": transaction},
                          ensure_ascii=False, sort_keys=True).encode()
        timestamp = int(self.clock()) if timestamp is None else timestamp
        nonce = nonce or _digest("notify-nonce", body.decode(), str(timestamp))[:32]
        signer = FakeWeChatPay(key=key, clock=self.clock) if key else self
        signature = signer._sign(f"{timestamp}\n{nonce}\n{body.decode()}\n")
        headers = {"Wechatpay-Timestamp": str(timestamp), "Wechatpay-Nonce": nonce,
                   "Wechatpay-Signature": signature, "Wechatpay-Serial": "FAKE",
                   "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048", "Content-Type": "application/json"}
        return headers, body

    def parse_and_verify_notification(self, headers, body: bytes):
        timestamp, nonce = header(headers, "Wechatpay-Timestamp"), header(headers, "Wechatpay-Nonce")
        signature = header(headers, "Wechatpay-Signature")
        if not (timestamp and nonce and signature):
            raise SignatureInvalid("signature headers missing")
        try:
            text = body.decode()
            skew = abs(int(self.clock()) - int(timestamp))
        except (UnicodeDecodeError, ValueError):
            raise SignatureInvalid("unreadable timestamp or body") from None
        if not hmac.compare_digest(self._sign(f"{timestamp}\n{nonce}\n{text}\n"), signature):
            raise SignatureInvalid("signature does not match")
        if skew > MAX_CLOCK_SKEW.total_seconds():
            raise SignatureInvalid("timestamp too far from now")
        try:
            return notice_from_transaction(json.loads(text).get("resource"))
        except (ValueError, AttributeError) as exc:
            raise ValueError(f"malformed notification: {exc}") from None

    def query(self, out_trade_no: str):
        trade = self._load(out_trade_no)
        if trade is None:
            raise ProviderError("ORDER_NOT_EXIST", code="ORDER_NOT_EXIST")
        return notice_from_transaction(self._transaction(trade))

    def refund(self, order: RefundOrder) -> RefundOutcome:
        with _REFUND_LOCK:
            return self._refund(order)

    def _refund(self, order: RefundOrder) -> RefundOutcome:
        trade = self._load(order.out_trade_no)
        if trade is None or trade["trade_state"] not in (TradeState.SUCCESS, TradeState.REFUND):
            raise ProviderError("the trade was not paid", code="RESOURCE_NOT_EXISTS")
        refund_id = "50300" + _digest("refund", order.out_refund_no)[:24]
        if order.out_refund_no in trade["refunds"]:  # a retried request: the same answer, no second payout
            return RefundOutcome(refund_id=refund_id, status="SUCCESS")
        if order.total_fen != trade["amount_fen"]:
            raise ProviderError("amount.total differs from the trade", code="PARAM_ERROR")
        if trade["refunded_fen"] + order.refund_fen > trade["amount_fen"]:
            raise ProviderError("refund exceeds the paid amount", code="NOT_ENOUGH")
        trade["refunds"][order.out_refund_no] = order.refund_fen
        trade["refunded_fen"] += order.refund_fen
        trade["trade_state"] = TradeState.REFUND
        self._store(order.out_trade_no, trade)
        return RefundOutcome(refund_id=refund_id, status="SUCCESS")

    def refunded_fen(self, out_trade_no: str) -> int:
        """How much the fake has paid back on a trade (for tests)."""
        trade = self._load(out_trade_no)
        return trade["refunded_fen"] if trade else 0
