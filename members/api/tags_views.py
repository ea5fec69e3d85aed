"""Staff API for member tags: the tag groups a caller may use, and manual tagging of members.

Scoped like every staff read: a member or tag value outside the caller's scope
is a 404, exactly as if it did not exist. A guide sees, and may tag, only the
members currently bound to them.
"""

from __future__ import annotations

from django.db.models import F, Prefetch, Q
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from members import tags
from members.models import Member, TagGroup, TagValue
from retail_crm.api.permissions import IsStaffMember
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.scoping import actor_for, scoped


def _member_or_404(request, member_id: int) -> Member:
    member = scoped(Member.objects.filter(merged_into__isnull=True), request.user).filter(pk=member_id).first()
    if member is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such member.", status=404)
    return member


def _tag_value_or_404(request, tag_value_id: int) -> TagValue:
    value = scoped(TagValue.objects.select_related("tag_group"), request.user).filter(pk=tag_value_id).first()
    if value is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such tag.", status=404)
    return value


class TagGroupListApi(generics.ListAPIView):
    """Tag groups (with their values) the caller may see: group-wide ones and those of the caller's brand(s).

    ``?brand=CODE`` keeps that brand's groups and the group-wide ones.
    """

    permission_classes = [IsStaffMember]

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "TagGroup"  # component name in the OpenAPI schema

        class ValueSerializer(serializers.Serializer):
            class Meta:
                ref_name = "TagGroupValue"

            id = serializers.IntegerField()
            code = serializers.CharField()
            name = serializers.CharField(source="label", help_text="In the request's language")

        id = serializers.IntegerField()
        code = serializers.CharField()
        name = serializers.CharField(source="label", help_text="In the request's language")
        brand = serializers.CharField(source="brand.code", allow_null=True, default=None)
        multi_valued = serializers.BooleanField()
        values = ValueSerializer(many=True)

    serializer_class = OutputSerializer

    def get_queryset(self):
        values = scoped(TagValue.objects.all(), actor_for(self.request.user)).order_by("sort", "code")
        # Group-wide groups first on every database (PostgreSQL sorts NULLs last by default).
        queryset = scoped(TagGroup.objects.select_related("brand"), actor_for(self.request.user)) \
            .prefetch_related(Prefetch("values", queryset=values)) \
            .order_by(F("brand_id").asc(nulls_first=True), "code", "pk")
        brand = self.request.query_params.get("brand")
        if brand:
            queryset = queryset.filter(Q(brand__isnull=True) | Q(brand__code=brand))
        return queryset


class MemberTagOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "MemberTag"  # component name in the OpenAPI schema

    member = serializers.IntegerField(source="member_id")
    tag_value = serializers.IntegerField(source="tag_value_id")
    tag_value_code = serializers.CharField(source="tag_value.code")
    tag_value_name = serializers.CharField(source="tag_value.label")
    tag_group = serializers.CharField(source="tag_value.tag_group.code")
    source = serializers.CharField()
    assigned_at = serializers.DateTimeField()
    reason = serializers.CharField(source="reason_text")


class MemberTagAssignApi(APIView):
    """Give a member a tag by hand (source ``manual``), with a reason; a single-valued group's value is replaced."""

    permission_classes = [IsStaffMember]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MemberTagAssignInput"

        tag_value = serializers.IntegerField(min_value=1)
        reason = serializers.CharField(max_length=200)

    @extend_schema(request=InputSerializer, responses={201: MemberTagOutputSerializer}, examples=[
        OpenApiExample("Invite to the salon", request_only=True,
                       value={"tag_value": 42, "reason": "店长邀请参加春季沙龙"}),
    ])
    def post(self, request, member_id: int):
        member = _member_or_404(request, member_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tag_value = _tag_value_or_404(request, data.validated_data["tag_value"])
        row = tags.member_tag_assign(member=member, tag_value=tag_value, reason=data.validated_data["reason"],
                                     assigned_by=request.user)
        return Response(MemberTagOutputSerializer(row).data, status=status.HTTP_201_CREATED)


class MemberTagRemoveApi(APIView):
    """Take a manual or imported tag off a member (404 when not held, 409 for computed tags)."""

    permission_classes = [IsStaffMember]

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, member_id: int, tag_value_id: int):
        member = _member_or_404(request, member_id)
        tag_value = _tag_value_or_404(request, tag_value_id)
        tags.member_tag_remove(member=member, tag_value=tag_value, removed_by=request.user,
                               reason=request.query_params.get("reason", ""))
        return Response(status=status.HTTP_204_NO_CONTENT)
