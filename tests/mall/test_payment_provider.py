"""The payment provider adapters: the deterministic fake, and the WeChat Pay v3 client against locally
generated RSA keys and a fake opener (no network): request signing, answer and notification verification,
AES-GCM decryption, query and refund requests, errors and timeouts, provider choice."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import urllib.error
import urllib.parse
from decimal import Decimal
from types import SimpleNamespace

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

from mall.payments.fake import FakeWeChatPay
from mall.payments.provider import (
    PaymentNotice,
    ProviderError,
    RefundOrder,
    SignatureInvalid,
    from_fen,
    get_payment_provider,
    to_fen,
)
from mall.payments.wechat import WeChatPay

NOW = 1_763_900_000  # fixed clock (2025-11-23)
APIV3_KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to reach the network")
    monkeypatch.setattr("urllib.request.urlopen", refuse)


def _trade(out_trade_no="P0000000001abcdef0123", amount=Decimal("437.00"), expires_at=None):
    order = SimpleNamespace(order_no="B1251123000000ABC", brand=SimpleNamespace(name="Brand"),
                            expires_at=expires_at)
    payment = SimpleNamespace(out_trade_no=out_trade_no, amount=amount)
    return order, payment


# ---------------------------------------------------------------------------- money

def test_fen_conversion_is_exact_and_refuses_sub_cent_amounts():
    assert (to_fen(Decimal("437.00")), to_fen(Decimal("0.01")), from_fen(43700)) == (43700, 1, Decimal("437.00"))
    with pytest.raises(ValueError):
        to_fen(Decimal("1.005"))


# ---------------------------------------------------------------------------- fake

def test_fake_is_deterministic_and_its_notifications_verify():
    fake = FakeWeChatPay(key="k", clock=lambda: NOW)
    order, payment = _trade()
    params = fake.create_prepay(order, payment, openid="o-1")
    assert params == fake.create_prepay(order, payment, openid="o-1")
    assert params.time_stamp == str(NOW) and params.package == f"prepay_id={params.prepay_id}"
    assert fake.query(payment.out_trade_no).trade_state == "NOTPAY"

    transaction = fake.pay(payment.out_trade_no)
    headers, body = fake.notification(transaction)
    notice = fake.parse_and_verify_notification(headers, body)
    assert notice == PaymentNotice(out_trade_no=payment.out_trade_no, transaction_id=transaction["transaction_id"],
                                   amount_fen=43700, trade_state="SUCCESS",
                                   success_time=dt.datetime.fromtimestamp(NOW, dt.UTC))
    assert fake.query(payment.out_trade_no) == notice
    lowercase = {k.lower(): v for k, v in headers.items()}
    assert fake.parse_and_verify_notification(lowercase, body) == notice


@pytest.mark.parametrize("tamper", ["key", "body", "timestamp", "stale", "missing"])
def test_fake_refuses_tampered_or_stale_notifications(tamper):
    fake = FakeWeChatPay(key="k", clock=lambda: NOW)
    order, payment = _trade()
    fake.create_prepay(order, payment)
    transaction = fake.pay(payment.out_trade_no)
    headers, body = fake.notification(transaction, key="other" if tamper == "key" else None,
                                      timestamp=NOW - 301 if tamper == "stale" else None)
    if tamper == "body":
        body = body.replace(b"43700", b"1")
    elif tamper == "timestamp":
        headers["Wechatpay-Timestamp"] = str(NOW + 1)
    elif tamper == "missing":
        del headers["Wechatpay-Signature"]
    with pytest.raises(SignatureInvalid):
        fake.parse_and_verify_notification(headers, body)


def test_fake_refunds_are_idempotent_by_refund_number_and_bounded_by_the_payment():
    fake = FakeWeChatPay(key="k", clock=lambda: NOW)
    order, payment = _trade()
    fake.create_prepay(order, payment)
    request = RefundOrder(out_refund_no="RF1", out_trade_no=payment.out_trade_no, transaction_id="",
                          refund_fen=40000, total_fen=43700)
    with pytest.raises(ProviderError):
        fake.refund(request)  # not paid yet
    fake.pay(payment.out_trade_no)
    first = fake.refund(request)
    assert fake.refund(request) == first and first.accepted
    assert fake.refunded_fen(payment.out_trade_no) == 40000
    with pytest.raises(ProviderError) as exc:
        fake.refund(RefundOrder(out_refund_no="RF2", out_trade_no=payment.out_trade_no, transaction_id="",
                                refund_fen=3701, total_fen=43700))
    assert (exc.value.code, exc.value.retryable) == ("NOT_ENOUGH", False)
    assert fake.query(payment.out_trade_no).trade_state == "REFUND"


# ---------------------------------------------------------------------------- real client

def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_private(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_public(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def keys():
    return SimpleNamespace(merchant=_key(), platform=_key(), stranger=_key())


def _platform_signed(keys, body: bytes, *, timestamp=NOW, nonce="platformnonce", key=None, serial="PUB_KEY_ID_1"):
    message = f"{timestamp}\n{nonce}\n{body.decode()}\n".encode()
    signature = (key or keys.platform).sign(message, padding.PKCS1v15(), hashes.SHA256())
    return {"Wechatpay-Timestamp": str(timestamp), "Wechatpay-Nonce": nonce, "Wechatpay-Serial": serial,
            "Wechatpay-Signature": base64.b64encode(signature).decode()}


class FakeResponse:
    def __init__(self, body: bytes, headers: dict):
        self.body, self.headers = body, headers

    def read(self):
        return self.body

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeOpener:
    """Answers each request with the next canned answer (a dict body signed by the platform, or an exception)."""

    def __init__(self, keys, *answers, sign=True):
        self.keys, self.answers, self.sign, self.calls = keys, list(answers), sign, []

    def __call__(self, request, timeout=None):
        parsed = urllib.parse.urlsplit(request.full_url)
        self.calls.append({"method": request.get_method(), "url": request.full_url,
                           "path": parsed.path + (f"?{parsed.query}" if parsed.query else ""),
                           "body": request.data.decode() if request.data else "",
                           "authorization": request.get_header("Authorization"), "timeout": timeout})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        body = json.dumps(answer).encode()
        return FakeResponse(body, _platform_signed(self.keys, body) if self.sign else {})


def _client(keys, opener, **overrides):
    options = dict(mchid="1900000001", appid="wx1234567890abcdef", serial_no="MERCHANTSERIAL01",
                   private_key_pem=_pem_private(keys.merchant), platform_public_key_pem=_pem_public(keys.platform),
                   platform_serial="PUB_KEY_ID_1", apiv3_key=APIV3_KEY, notify_url="https://mall.example/notify/",
                   timeout=4.0, opener=opener, clock=lambda: NOW, nonce=lambda: "N0NCE")
    options.update(overrides)
    return WeChatPay(**options)


def _verify_merchant(keys, message: str, signature_b64: str) -> None:
    keys.merchant.public_key().verify(base64.b64decode(signature_b64), message.encode(), padding.PKCS1v15(),
                                      hashes.SHA256())


def _auth_fields(header: str) -> dict:
    scheme, _, rest = header.partition(" ")
    assert scheme == "WECHATPAY2-SHA256-RSA2048"
    return {k: v.strip('"') for k, v in (part.split("=", 1) for part in rest.split(","))}


def test_prepay_request_is_signed_and_the_payment_params_too(keys):
    opener = FakeOpener(keys, {"prepay_id": "wx201410272009395522657a690389285100"})
    client = _client(keys, opener)
    order, payment = _trade(expires_at=dt.datetime(2025, 11, 23, 12, 30, tzinfo=dt.UTC))
    params = client.create_prepay(order, payment, openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")

    call = opener.calls[0]
    assert (call["method"], call["url"], call["timeout"]) == (
        "POST", "https://api.mch.weixin.qq.com/v3/pay/transactions/jsapi", 4.0)
    body = json.loads(call["body"])
    assert body == {"appid": "wx1234567890abcdef", "mchid": "1900000001", "description": "Brand B1251123000000ABC",
                    "out_trade_no": payment.out_trade_no, "notify_url": "https://mall.example/notify/",
                    "amount": {"total": 43700, "currency": "CNY"}, "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
                    "time_expire": "2025-11-23T20:30:00+08:00"}
    auth = _auth_fields(call["authorization"])
    assert (auth["mchid"], auth["nonce_str"], auth["timestamp"], auth["serial_no"]) == (
        "1900000001", "N0NCE", str(NOW), "MERCHANTSERIAL01")
    _verify_merchant(keys, f"POST\n/v3/pay/transactions/jsapi\n{NOW}\nN0NCE\n{call['body']}\n", auth["signature"])

    assert params.as_request_payment() == {
        "appId": "wx1234567890abcdef", "timeStamp": str(NOW), "nonceStr": "N0NCE",
        "package": "prepay_id=wx201410272009395522657a690389285100", "signType": "RSA",
        "paySign": params.pay_sign}
    _verify_merchant(keys, f"wx1234567890abcdef\n{NOW}\nN0NCE\nprepay_id=wx201410272009395522657a690389285100\n",
                     params.pay_sign)


def test_an_answer_not_signed_by_the_platform_is_not_trusted(keys):
    client = _client(keys, FakeOpener(keys, {"prepay_id": "x"}, sign=False))
    with pytest.raises(ProviderError) as exc:
        client.create_prepay(*_trade(), openid="o")
    assert exc.value.retryable


def _encrypted_notification(keys, transaction: dict, *, apiv3_key=APIV3_KEY, **signing):
    nonce, associated = "fdasflkja484", "transaction"
    ciphertext = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), json.dumps(transaction).encode(),
                                                    associated.encode())
    body = json.dumps({"id": "EV-2018022511223320873", "create_time": "2025-11-23T20:00:00+08:00",
                       "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS",
                       "summary": "支付成功", "resource": {"original_type": "transaction",
                                                        "algorithm": "AEAD_AES_256_GCM",
                                                        "ciphertext": base64.b64encode(ciphertext).decode(),
                                                        "associated_data": associated, "nonce": nonce}},
                      ensure_ascii=False).encode()
    return _platform_signed(keys, body, **signing), body


TRANSACTION = {"appid": "wx1234567890abcdef", "mchid": "1900000001", "out_trade_no": "P0000000001abcdef0123",
               "transaction_id": "4200000001201811236112345678", "trade_type": "JSAPI", "trade_state": "SUCCESS",
               "success_time": "2025-11-23T20:01:02+08:00", "payer": {"openid": "o"},
               "amount": {"total": 43700, "payer_total": 43700, "currency": "CNY", "payer_currency": "CNY"}}


def test_notification_is_verified_and_decrypted(keys):
    client = _client(keys, FakeOpener(keys))
    headers, body = _encrypted_notification(keys, TRANSACTION)
    notice = client.parse_and_verify_notification(headers, body)
    assert notice == PaymentNotice(out_trade_no="P0000000001abcdef0123",
                                   transaction_id="4200000001201811236112345678", amount_fen=43700,
                                   trade_state="SUCCESS",
                                   success_time=dt.datetime(2025, 11, 23, 12, 1, 2, tzinfo=dt.UTC))


@pytest.mark.parametrize("forgery", ["body", "stranger_key", "serial", "stale", "apiv3_key"])
def test_forged_notifications_are_refused(keys, forgery):
    client = _client(keys, FakeOpener(keys))
    signing = {"key": keys.stranger} if forgery == "stranger_key" else \
        {"serial": "OTHER"} if forgery == "serial" else {"timestamp": NOW - 400} if forgery == "stale" else {}
    headers, body = _encrypted_notification(keys, TRANSACTION,
                                            apiv3_key="x" * 32 if forgery == "apiv3_key" else APIV3_KEY, **signing)
    if forgery == "body":
        body = body.replace(b"TRANSACTION.SUCCESS", b"TRANSACTION.SUCCESS ")
    with pytest.raises(SignatureInvalid):
        client.parse_and_verify_notification(headers, body)


def test_a_signed_but_malformed_notification_is_a_value_error(keys):
    client = _client(keys, FakeOpener(keys))
    body = b'{"resource": {"algorithm": "AEAD_AES_256_GCM"}}'
    with pytest.raises(ValueError):
        client.parse_and_verify_notification(_platform_signed(keys, body), body)


def test_query_and_refund_requests(keys):
    opener = FakeOpener(keys, TRANSACTION, {"refund_id": "50000000382019052709732678859", "status": "PROCESSING"})
    client = _client(keys, opener)
    notice = client.query("P0000000001abcdef0123")
    assert (notice.trade_state, notice.amount_fen, notice.paid) == ("SUCCESS", 43700, True)
    assert (opener.calls[0]["method"], opener.calls[0]["path"], opener.calls[0]["body"]) == (
        "GET", "/v3/pay/transactions/out-trade-no/P0000000001abcdef0123?mchid=1900000001", "")
    auth = _auth_fields(opener.calls[0]["authorization"])
    _verify_merchant(keys, f"GET\n/v3/pay/transactions/out-trade-no/P0000000001abcdef0123?mchid=1900000001\n"
                           f"{NOW}\nN0NCE\n\n", auth["signature"])

    outcome = client.refund(RefundOrder(out_refund_no="RF1", out_trade_no="P0000000001abcdef0123",
                                        transaction_id="4200000001201811236112345678", refund_fen=8704,
                                        total_fen=43700, reason="退货"))
    assert (outcome.refund_id, outcome.status, outcome.accepted) == ("50000000382019052709732678859", "PROCESSING",
                                                                    True)
    assert opener.calls[1]["path"] == "/v3/refund/domestic/refunds"
    assert json.loads(opener.calls[1]["body"]) == {
        "out_refund_no": "RF1", "transaction_id": "4200000001201811236112345678", "reason": "退货",
        "amount": {"refund": 8704, "total": 43700, "currency": "CNY"}}


def _http_error(status: int, body: dict):
    return urllib.error.HTTPError("https://api.mch.weixin.qq.com/x", status, "err", {},
                                  io.BytesIO(json.dumps(body).encode()))


@pytest.mark.parametrize(("answer", "code", "retryable"), [
    (_http_error(400, {"code": "PARAM_ERROR", "message": "bad"}), "PARAM_ERROR", False),
    (_http_error(404, {"code": "ORDER_NOT_EXIST", "message": "none"}), "ORDER_NOT_EXIST", False),
    (_http_error(500, {"code": "SYSTEM_ERROR", "message": "busy"}), "SYSTEM_ERROR", True),
    (urllib.error.URLError("down"), "", True),
    (TimeoutError(), "", True),
])
def test_errors_say_whether_to_retry(keys, answer, code, retryable):
    client = _client(keys, FakeOpener(keys, answer))
    with pytest.raises(ProviderError) as exc:
        client.query("P1")
    assert (exc.value.code, exc.value.retryable) == (code, retryable)
    assert "BEGIN" not in exc.value.message and APIV3_KEY not in exc.value.message


def test_missing_configuration_is_reported_by_name(keys):
    with pytest.raises(ImproperlyConfigured) as exc:
        _client(keys, None, mchid="", apiv3_key="")
    assert str(exc.value) == "PAYMENT_PROVIDER=wechat needs WECHATPAY_MCHID, WECHATPAY_APIV3_KEY"
    with pytest.raises(ImproperlyConfigured):
        _client(keys, None, apiv3_key="short")


def test_provider_choice(settings, keys, tmp_path):
    settings.PAYMENT_PROVIDER = "fake"
    assert isinstance(get_payment_provider(), FakeWeChatPay)
    settings.PAYMENT_PROVIDER = "wechat"
    key_file = tmp_path / "apiclient_key.pem"
    key_file.write_bytes(_pem_private(keys.merchant))
    settings.WECHATPAY_MCHID, settings.WECHATPAY_APPID, settings.WECHATPAY_SERIAL_NO = "1900000001", "wx1", "S1"
    settings.WECHATPAY_PRIVATE_KEY_FILE = str(key_file)
    settings.WECHATPAY_PLATFORM_PUBLIC_KEY = _pem_public(keys.platform).decode()
    settings.WECHATPAY_APIV3_KEY, settings.WECHATPAY_NOTIFY_URL = APIV3_KEY, "https://mall.example/n/"
    assert isinstance(get_payment_provider(), WeChatPay)
    settings.PAYMENT_PROVIDER = "alipay"
    with pytest.raises(ImproperlyConfigured):
        get_payment_provider()


def test_signature_helper_really_checks(keys):
    # Guard for the helpers above: a signature by another key does not verify.
    signature = base64.b64encode(keys.stranger.sign(b"x", padding.PKCS1v15(), hashes.SHA256())).decode()
    with pytest.raises(InvalidSignature):
        _verify_merchant(keys, "x", signature)
