"""Payment endpoints: the member's prepay, and the provider's signed notification callback."""

from __future__ import annotations

import logging

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from mall.errors import MallErrorCode
from mall.models import Order
from mall.payments import services
from mall.payments.provider import get_payment_provider
from mall.payments.services import NotifyOutcome
from members.api.mp_views import MemberApi
from retail_crm.errors import ApplicationError

logger = logging.getLogger(__name__)


class OrderPayApi(MemberApi):
    """Prepay my pending order: the parameters to pass to ``wx.requestPayment`` (404 for another's order)."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MpOrderPay"

        class ParamsSerializer(serializers.Serializer):
            class Meta:
                ref_name = "MpRequestPaymentParams"

            appId = serializers.CharField()  # noqa: N815 - WeChat's wx.requestPayment spelling
            timeStamp = serializers.CharField()  # noqa: N815
            nonceStr = serializers.CharField()  # noqa: N815
            package = serializers.CharField(help_text="prepay_id=…")
            signType = serializers.CharField()  # noqa: N815
            paySign = serializers.CharField()  # noqa: N815

        order_no = serializers.CharField()
        out_trade_no = serializers.CharField()
        amount = serializers.DecimalField(max_digits=14, decimal_places=2)
        expires_at = serializers.DateTimeField(allow_null=True)
        params = ParamsSerializer()

    @extend_schema(request=None, responses={200: OutputSerializer})
    def post(self, request, order_no: str):
        order = Order.objects.filter(member=self.member, order_no=order_no).first()
        if order is None:
            raise ApplicationError(MallErrorCode.ORDER_NOT_FOUND, "No such order.", status=404)
        result = services.payment_prepare(order=order, member=self.member)
        return Response(self.OutputSerializer({
            "order_no": order.order_no, "out_trade_no": result.payment.out_trade_no,
            "amount": result.payment.amount, "expires_at": order.expires_at,
            "params": result.params.as_request_payment()}).data)


# Refusals the provider should hear as "do not count this delivered" (it redelivers later).
_REFUSAL_STATUS = {
    NotifyOutcome.BAD_SIGNATURE: 401,
    NotifyOutcome.MALFORMED: 400,
    NotifyOutcome.UNKNOWN_TRADE_NO: 400,
    NotifyOutcome.AMOUNT_MISMATCH: 400,
    NotifyOutcome.TRANSACTION_CONFLICT: 409,
}

_ACK = inline_serializer("PayNotifyAck", {"code": serializers.CharField(help_text="SUCCESS or FAIL"),
                                          "message": serializers.CharField(required=False)})


class PaymentNotifyApi(APIView):
    """WeChat Pay's payment notification (the provider calls this; the signature is the authentication).

    Answers ``200 {"code": "SUCCESS"}`` once the notification is handled (including
    repeats), and ``4xx/5xx {"code": "FAIL", "message": …}`` to refuse it, as WeChat Pay
    expects. Every delivery is recorded, refused ones too.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(request={"application/json": {"type": "object", "additionalProperties": True}},
                   responses={200: _ACK, 400: _ACK, 401: _ACK, 409: _ACK,
                              503: OpenApiResponse(_ACK, description="Provider not configured")},
                   auth=[])
    def post(self, request):
        body = request.body  # the exact bytes: the signature is over them, so never the parsed data
        try:
            provider = get_payment_provider()
        except Exception as exc:  # ImproperlyConfigured: refuse, WeChat redelivers once it is fixed
            logger.error("payment provider not configured: %s", exc)
            return Response({"code": "FAIL", "message": "payment provider unavailable"}, status=503)
        result = services.payment_notify(provider=provider, headers=request.headers, body=body)
        if result.acknowledged:
            return Response({"code": "SUCCESS"})
        return Response({"code": "FAIL", "message": result.outcome.value},
                        status=_REFUSAL_STATUS.get(result.outcome, 500))
