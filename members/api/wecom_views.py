"""WeCom API: the callback WeCom's servers call, and the staff API to record friendships by hand.

The callback carries no login: it is authenticated by WeCom's message
signature (see :class:`members.wecom.WeComCallbackCodec`). The staff API is
scoped like every other: a guide outside the caller's scope is a 404.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from members import wecom
from members.errors import MembersErrorCode
from members.models import Member, WeComFriendship
from retail_crm.api.permissions import IsStaffMember
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Guide
from retail_crm.scoping import actor_for, scoped

logger = logging.getLogger(__name__)

_SIGNED_QUERY = [
    OpenApiParameter("msg_signature", str, required=True),
    OpenApiParameter("timestamp", str, required=True),
    OpenApiParameter("nonce", str, required=True),
]


class WeComCallbackApi(APIView):
    """WeCom's callback URL: URL verification (GET) and encrypted event pushes (POST).

    A bad signature is a 403, an undecryptable or malformed message a 400;
    events we record or deliberately ignore both answer ``success``, so WeCom
    stops redelivering them.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def _query(self, request, *names: str) -> dict[str, str]:
        values = {name: request.query_params.get(name, "") for name in names}
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise ApplicationError(ErrorCode.INVALID, "Missing callback parameters.",
                                   fields={name: ["This parameter is required."] for name in missing})
        return values

    @staticmethod
    def _rejected(exc: wecom.CallbackRejected) -> ApplicationError:
        http_status = 403 if exc.code == MembersErrorCode.BAD_SIGNATURE else 400
        return ApplicationError(exc.code, str(exc), status=http_status)

    @extend_schema(parameters=[*_SIGNED_QUERY, OpenApiParameter("echostr", str, required=True)],
                   responses={(200, "text/plain"): OpenApiTypes.STR}, auth=[])
    def get(self, request):
        query = self._query(request, "msg_signature", "timestamp", "nonce", "echostr")
        codec = wecom.WeComCallbackCodec.from_settings()
        try:
            plain = codec.verify_url(**query)
        except wecom.CallbackRejected as exc:
            raise self._rejected(exc) from None
        return HttpResponse(plain, content_type="text/plain; charset=utf-8")

    @extend_schema(parameters=_SIGNED_QUERY, request={"application/xml": OpenApiTypes.STR},
                   responses={(200, "text/plain"): OpenApiTypes.STR}, auth=[])
    def post(self, request):
        query = self._query(request, "msg_signature", "timestamp", "nonce")
        codec = wecom.WeComCallbackCodec.from_settings()
        try:
            message = codec.decrypt_post(body=request.body, **query)
            change = wecom.contact_change_from_xml(message)
        except wecom.CallbackRejected as exc:
            raise self._rejected(exc) from None
        if change is not None:
            try:
                outcome = wecom.wecom_contact_change_apply(change=change, client=wecom.wecom_client())
            except wecom.WeComApiError as exc:
                # Not "success": WeCom redelivers the event later, when its API may answer again.
                logger.warning("WeCom callback: contact look-up failed: %s", exc)
                raise ApplicationError(MembersErrorCode.API_ERROR, "WeCom API unavailable.",
                                       status=503) from None
            if outcome.result == "ignored":
                logger.info("WeCom callback %s ignored: %s", change.change_type, outcome.detail)
        return HttpResponse("success", content_type="text/plain; charset=utf-8")


# ---------------------------------------------------------------------------- staff API

class FriendshipOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "WeComFriendship"  # component name in the OpenAPI schema

    id = serializers.IntegerField()
    member_code = serializers.CharField(source="member.code")
    guide_code = serializers.CharField(source="guide.code")
    external_userid = serializers.CharField()
    added_at = serializers.DateTimeField()
    removed_at = serializers.DateTimeField(allow_null=True)
    source = serializers.CharField()


def _not_future(value: dt.datetime | None, field: str) -> dt.datetime:
    now = timezone.now()
    if value is None:
        return now
    # A little slack for clocks that run ahead of ours.
    if value > now + dt.timedelta(minutes=5):
        raise ApplicationError(ErrorCode.INVALID, f"{field} is in the future.",
                               fields={field: ["Must not be in the future."]})
    return value


def _guide_and_member(request, guide_code: str, member_code: str) -> tuple[Guide, Member]:
    """The guide (inside the caller's scope) and the member of that guide's group; 404 otherwise."""
    guide = (scoped(Guide.objects.select_related("store__brand"), actor_for(request.user))
             .filter(code=guide_code).first())
    if guide is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such guide.", status=404,
                               fields={"guide_code": ["No such guide in your scope."]})
    member = Member.objects.filter(group_id=guide.store.brand.group_id, code=member_code).first()
    if member is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such member.", status=404,
                               fields={"member_code": ["No such member."]})
    while member.merged_into_id is not None:  # an absorbed member's old code still reaches the survivor
        member = Member.objects.get(pk=member.merged_into_id)
    return guide, member


class FriendshipAddApi(APIView):
    """Record that a member is a guide's WeCom contact (idempotent: already friends → 200, unchanged)."""

    permission_classes = [IsStaffMember]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "WeComFriendshipAddInput"  # component name in the OpenAPI schema

        member_code = serializers.CharField(max_length=40)
        guide_code = serializers.CharField(max_length=32)
        external_userid = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
        added_at = serializers.DateTimeField(required=False, allow_null=True, default=None)

    @extend_schema(request=InputSerializer, responses={201: FriendshipOutputSerializer,
                                                       200: FriendshipOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        added_at = _not_future(values["added_at"], "added_at")
        guide, member = _guide_and_member(request, values["guide_code"], values["member_code"])
        if guide.left_at is not None:
            raise ApplicationError(MembersErrorCode.GUIDE_INACTIVE, f"Guide {guide.code} has left.", status=409)
        row, created = wecom.wecom_friend_add(member=member, guide=guide, external_userid=values["external_userid"],
                                              at=added_at, source=WeComFriendship.Source.API)
        if not created and row.removed_at is not None:
            raise ApplicationError(ErrorCode.CONFLICT,
                                   "added_at is not after the last recorded removal of this friendship.",
                                   status=409, fields={"added_at": [
                                       f"Must be after {timezone.localtime(row.removed_at).isoformat()}."]})
        return Response(FriendshipOutputSerializer(row).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class FriendshipRemoveApi(APIView):
    """Record that a WeCom contact was removed; the friendship's history is kept.

    Removing one that is already removed answers 200 with the closed row;
    a member and guide who were never friends are a 404.
    """

    permission_classes = [IsStaffMember]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "WeComFriendshipRemoveInput"  # component name in the OpenAPI schema

        member_code = serializers.CharField(max_length=40)
        guide_code = serializers.CharField(max_length=32)
        removed_at = serializers.DateTimeField(required=False, allow_null=True, default=None)

    @extend_schema(request=InputSerializer, responses={200: FriendshipOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        removed_at = _not_future(values["removed_at"], "removed_at")
        guide, member = _guide_and_member(request, values["guide_code"], values["member_code"])
        open_row = WeComFriendship.objects.filter(member=member, guide=guide, removed_at__isnull=True).first()
        if open_row is not None and removed_at < open_row.added_at:
            raise ApplicationError(ErrorCode.INVALID, "removed_at is before the friendship began.",
                                   fields={"removed_at": [
                                       f"Must not be before {timezone.localtime(open_row.added_at).isoformat()}."]})
        row = wecom.wecom_friend_remove(member=member, guide=guide, at=removed_at)
        if row is None:
            row = (WeComFriendship.objects.filter(member=member, guide=guide)
                   .order_by("-added_at", "-pk").first())
        if row is None:
            raise ApplicationError(ErrorCode.NOT_FOUND, "This member was never the guide's WeCom contact.",
                                   status=404)
        return Response(FriendshipOutputSerializer(row).data)
