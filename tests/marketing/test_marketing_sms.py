"""The Tencent Cloud SMS client: TC3-HMAC-SHA256 against the documentation's worked example, the SendSms
request against its documented shape, answers mapped to sent / temporary / permanent, and the callbacks.

No network: the client takes a transport, and the tests hand it one that records and answers.
"""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ImproperlyConfigured

from marketing.channels import OutgoingMessage, PermanentFailure, TemporaryFailure
from marketing.channels.tencent_sms import TencentSms, canonical_request, string_to_sign, tc3_signature
from marketing.models import ChannelOptOut, Delivery
from marketing.services import message_send
from tests.factories import BrandFactory, MemberFactory

SH = ZoneInfo("Asia/Shanghai")
# The worked example of Tencent Cloud's "Signature v3" page (CVM DescribeInstances, 2019-02-25).
DOC_SECRET_KEY = "Gu5t9xGARNpq86cd98joQYCN3*******"
DOC_TIMESTAMP = 1551113065
DOC_PAYLOAD = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'


def test_tc3_signature_matches_the_documented_example():
    canonical = canonical_request(payload=DOC_PAYLOAD, host="cvm.tencentcloudapi.com")
    assert canonical.endswith("35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064")
    assert string_to_sign(timestamp=DOC_TIMESTAMP, service="cvm", canonical=canonical) == (
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031")
    assert tc3_signature(secret_key=DOC_SECRET_KEY, timestamp=DOC_TIMESTAMP, service="cvm", canonical=canonical) \
        == "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"


class Recorder:
    def __init__(self, status=200, answer=None):
        self.calls = []
        self.status = status
        self.answer = answer or {"Response": {"SendStatusSet": [{
            "SerialNo": "5000:1045710669157053657849499619", "PhoneNumber": "+8613800000001", "Fee": 1,
            "SessionContext": "42", "Code": "Ok", "Message": "send success", "IsoCode": "CN"}],
            "RequestId": "a0aabda6-cf91-4f3e-a81f-9198114a2279"}}

    def __call__(self, url, headers, body):
        self.calls.append((url, headers, body))
        return self.status, json.dumps(self.answer).encode()


def client(recorder):
    return TencentSms(secret_id="AKIDlocal0000000000000000000000000000", secret_key="local-test-key-0123456789",
                      sdk_app_id="1400006666", sign_name="雅致女装", transport=recorder, clock=lambda: 1893456000)


MESSAGE = OutgoingMessage(delivery_id=42, channel="sms", address="+8613800000001", template="1110",
                          params=["王丽", "满200减30"])


def test_send_sms_request_has_the_documented_shape_and_a_valid_signature():
    recorder = Recorder()
    assert client(recorder).send(MESSAGE) == "5000:1045710669157053657849499619"
    (url, headers, body), = recorder.calls
    assert url == "https://sms.tencentcloudapi.com/"
    assert json.loads(body) == {"PhoneNumberSet": ["+8613800000001"], "SmsSdkAppId": "1400006666",
                                "SignName": "雅致女装", "TemplateId": "1110", "TemplateParamSet": ["王丽", "满200减30"],
                                "SessionContext": "42"}
    assert {k: v for k, v in headers.items() if k != "Authorization"} == {
        "Content-Type": "application/json; charset=utf-8", "Host": "sms.tencentcloudapi.com",
        "X-TC-Action": "SendSms", "X-TC-Version": "2021-01-11", "X-TC-Timestamp": "1893456000",
        "X-TC-Region": "ap-guangzhou"}
    expected = tc3_signature(secret_key="local-test-key-0123456789", timestamp=1893456000, service="sms",
                             canonical=canonical_request(payload=body))
    assert headers["Authorization"] == (
        "TC3-HMAC-SHA256 Credential=AKIDlocal0000000000000000000000000000/2030-01-01/sms/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={expected}")


@pytest.mark.parametrize(("answer", "status", "raised", "text"), [
    ({"Response": {"SendStatusSet": [{"Code": "LimitExceeded.PhoneNumberThirtySecondLimit", "Message": "30s"}]}},
     200, TemporaryFailure, "tencent sms LimitExceeded.PhoneNumberThirtySecondLimit: 30s"),
    ({"Response": {"SendStatusSet": [{"Code": "InvalidParameterValue.IncorrectPhoneNumber", "Message": "bad"}]}},
     200, PermanentFailure, "tencent sms InvalidParameterValue.IncorrectPhoneNumber: bad"),
    ({"Response": {"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}}}, 200, TemporaryFailure,
     "tencent sms RequestLimitExceeded: slow down"),
    ({"Response": {"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "sig"}}}, 200, PermanentFailure,
     "tencent sms AuthFailure.SignatureFailure: sig"),
    ({"Response": {}}, 502, TemporaryFailure, "tencent sms: HTTP 502"),
])
def test_answers_map_to_temporary_or_permanent_failures(answer, status, raised, text):
    with pytest.raises(raised) as exc_info:
        client(Recorder(status=status, answer=answer)).send(MESSAGE)
    assert str(exc_info.value) == text


def test_missing_credentials_refuse_to_build_a_client(settings):
    settings.TENCENT_SMS_SECRET_ID = ""
    with pytest.raises(ImproperlyConfigured, match="TENCENT_SMS_SECRET_ID"):
        TencentSms(secret_key="k", sdk_app_id="1", sign_name="s")


@pytest.mark.django_db
def test_callbacks_record_receipts_and_td_replies_and_need_the_token(api_client, settings):
    settings.TENCENT_SMS_CALLBACK_TOKEN = "cb-secret-7"
    brand = BrandFactory()
    member = MemberFactory(group=brand.group, phone="+8613800000001")
    delivery = message_send(member=member, brand=brand, kind="service", channels=["sms"], source="order_shipped:1",
                            content={"sms": {"template": "1110", "params": []}})
    Delivery.objects.filter(pk=delivery.pk).update(status="sent", provider_message_id="5000:99")
    receipt = [{"user_receive_time": "2030-03-04 10:00:05", "nationcode": "86", "mobile": "13800000001",
                "report_status": "SUCCESS", "errmsg": "DELIVRD", "description": "用户短信送达成功", "sid": "5000:99"}]

    wrong = api_client.post("/api/v1/marketing/sms/tencent/status/nope/", receipt, format="json")
    ok = api_client.post("/api/v1/marketing/sms/tencent/status/cb-secret-7/", receipt, format="json")
    again = api_client.post("/api/v1/marketing/sms/tencent/status/cb-secret-7/", receipt, format="json")
    reply = api_client.post("/api/v1/marketing/sms/tencent/reply/cb-secret-7/",
                            {"extend": "", "mobile": "13800000001", "nationcode": "86", "sign": "雅致女装",
                             "text": "退订", "time": 1893456000}, format="json")

    assert wrong.status_code == 404
    assert (ok.status_code, ok.json(), again.status_code) == (200, {"result": 0, "errmsg": "OK"}, 200)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.delivered_at) == ("delivered", dt.datetime(2030, 3, 4, 10, 0, 5, tzinfo=SH))
    assert reply.status_code == 200
    assert list(ChannelOptOut.objects.values_list("member_id", "channel")) == [(member.pk, "sms")]
