"""Marketing API: the staff list of deliveries, and members reporting their subscribe-message consents."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from marketing.channels.tencent_sms import inbound_reply, status_reports
from marketing.models import Channel, Delivery, HoldReason, MessageKind
from marketing.selectors import delivery_list
from marketing.services import delivery_receipt_record, sms_reply_record, subscribe_results_record
from members.api.mp_views import MemberApi
from members.selectors import PhoneVisibility
from retail_crm.api.pagination import StandardPagination
from retail_crm.api.views import ScopedMixin


class DeliveryListApi(ScopedMixin, generics.ListAPIView):
    """Every message the platform sent or held back, one row each, in your scope (newest plan first)."""

    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DeliveryFilter"

        source = serializers.CharField(required=False, max_length=80,
                                       help_text="Campaign or journey step, e.g. campaign:12/step:1")
        member = serializers.CharField(required=False, max_length=40, help_text="Member code")
        channel = serializers.ChoiceField(required=False, choices=Channel.choices)
        status = serializers.ChoiceField(required=False, choices=Delivery.Status.choices)
        kind = serializers.ChoiceField(required=False, choices=MessageKind.choices)
        date_from = serializers.DateField(required=False, help_text="Local day of the plan, from")
        date_to = serializers.DateField(required=False, help_text="Local day of the plan, to (included)")

        def validate(self, attrs):
            if attrs.get("date_from") and attrs.get("date_to") and attrs["date_to"] < attrs["date_from"]:
                raise serializers.ValidationError({"date_to": ["Must not be before date_from."]})
            return attrs

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Delivery"

        id = serializers.IntegerField()
        member = serializers.CharField(source="member.code")
        member_phone = serializers.SerializerMethodField()
        brand = serializers.CharField(source="brand.code")
        channel = serializers.ChoiceField(choices=Channel.choices, allow_blank=True,
                                          help_text="Empty when held back before a channel was chosen")
        kind = serializers.ChoiceField(choices=MessageKind.choices)
        source = serializers.CharField()
        status = serializers.ChoiceField(choices=Delivery.Status.choices)
        hold_reason = serializers.ChoiceField(choices=HoldReason.choices, allow_blank=True)
        planned_at = serializers.DateTimeField()
        send_after = serializers.DateTimeField(help_text="When it may go (the morning, for quiet hours)")
        sent_at = serializers.DateTimeField(allow_null=True)
        delivered_at = serializers.DateTimeField(allow_null=True)
        error = serializers.CharField()

        def get_member_phone(self, row) -> str:
            return self.context["phones"].phone(row.member)

    serializer_class = OutputSerializer
    pagination_class = StandardPagination
    filter_backends: list = []

    def get_queryset(self):
        query = self.FilterSerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        v = query.validated_data
        return delivery_list(actor=self.actor, source=v.get("source"), member_code=v.get("member"),
                             channel=v.get("channel"), status=v.get("status"), kind=v.get("kind"),
                             date_from=v.get("date_from"), date_to=v.get("date_to"))

    @extend_schema(tags=["marketing"], parameters=[FilterSerializer])
    def get(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        phones = PhoneVisibility(actor=self.actor, user=request.user, members=[row.member for row in page])
        return self.get_paginated_response(self.OutputSerializer(page, many=True, context={"phones": phones}).data)


class SubscribeResultsApi(MemberApi):
    """Report what ``wx.requestSubscribeMessage`` answered; each "accept" allows one later send of that template."""

    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "SubscribeResultsInput"

        results = serializers.DictField(
            child=serializers.ChoiceField(choices=["accept", "reject", "ban", "filter"]), allow_empty=False,
            help_text="Template id → the answer, as wx.requestSubscribeMessage's success callback gives it")

        def validate_results(self, value):
            if len(value) > 20 or any(not key or len(key) > 64 for key in value):
                raise serializers.ValidationError("At most 20 template ids of 1–64 characters.")
            return value

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "SubscribeConsentsLeft"

        remaining = serializers.DictField(child=serializers.IntegerField(), help_text="Template id → sends left")

    @extend_schema(tags=["marketing"], request=InputSerializer, responses=OutputSerializer)
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        left = subscribe_results_record(member=self.member, results=data.validated_data["results"])
        return Response({"remaining": left})


class TencentSmsCallbackApi(APIView):
    """Tencent SMS pushes delivery receipts (``status``) and members' replies (``reply``) here.

    The URL carries a secret token (``TENCENT_SMS_CALLBACK_TOKEN``, set as the callback address in the
    provider's console): without it, or with a wrong one, the endpoint does not exist (404). A reply of
    "TD" or "退订" opts the member out of SMS. Answers as the provider expects: ``{"result": 0}``.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]
    kind = "status"

    @extend_schema(tags=["marketing"], request=None, responses={200: dict})
    def post(self, request, token: str):
        expected = getattr(settings, "TENCENT_SMS_CALLBACK_TOKEN", "")
        if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            raise Http404
        now = timezone.now()
        if self.kind == "status":
            for serial, delivered, when, error in status_reports(request.data):
                delivery_receipt_record(provider_message_id=serial, delivered=delivered, error=error,
                                        at=timezone.make_aware(when) if when else now)
        else:
            reply = inbound_reply(request.data)
            if reply is not None:
                sms_reply_record(phone=reply[0], text=reply[1], at=now)
        return Response({"result": 0, "errmsg": "OK"})
