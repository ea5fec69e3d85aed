"""Staff member API (``/api/v1/members/``): search, detail and binding transfer, scoped to the caller.

Phone numbers go out only through ``members.selectors.PhoneVisibility``: whole for
the member's bound guide and for staff holding ``members.view_full_phone``,
masked for everyone else.
"""

from __future__ import annotations

import re

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from members import selectors
from members.models import GuideBinding
from members.services import binding_transfer
from retail_crm.api.views import ScopedMixin
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand, Guide
from retail_crm.phones import InvalidPhone, normalise_phone
from retail_crm.vocabulary import Segment

_TAG_PAIR = re.compile(r"^([-a-zA-Z0-9_]{1,40}):(\S{1,60})$")


class _PhoneField(serializers.CharField):
    """Member phone in the viewer's form: filled from the PhoneVisibility in the serializer context."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "Whole (13812345678) for the bound guide and staff allowed to see "
                                       "phone numbers; otherwise masked (138****5678).")
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, member):
        return self.context["phones"].phone(member)


class MemberListApi(ScopedMixin, generics.ListAPIView):
    """Search members in the caller's scope by phone, name, tag, RFML segment, guide, store or brand."""

    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StaffMemberSearch"

        phone = serializers.CharField(required=False, max_length=40,
                                      help_text="Any written form of the number; matched exactly")
        name = serializers.CharField(required=False, max_length=50, help_text="Part of the name")
        tag = serializers.CharField(required=False, max_length=101,
                                    help_text='A tag value id, or "groupcode:valuecode"')
        segment = serializers.ChoiceField(required=False, choices=Segment.choices,
                                          help_text="RFML class (from the latest RFML tags)")
        guide = serializers.SlugField(required=False, max_length=32, help_text="Currently bound guide's code")
        store = serializers.SlugField(required=False, max_length=32,
                                      help_text="Store code: joined there or bound to one of its guides")
        brand = serializers.SlugField(required=False, max_length=32, help_text="Brand code the member joined")

        def validate_phone(self, value):
            try:
                return normalise_phone(value)
            except InvalidPhone as exc:
                raise serializers.ValidationError(str(exc)) from None

        def validate_tag(self, value):
            if value.isdigit():
                return int(value)
            match = _TAG_PAIR.match(value)
            if match is None:
                raise serializers.ValidationError('Give a tag value id or "groupcode:valuecode".')
            return match.group(1), match.group(2)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StaffMemberRow"

        id = serializers.IntegerField()
        code = serializers.CharField()
        name = serializers.CharField()
        phone = _PhoneField()
        gender = serializers.CharField()
        created_at = serializers.DateTimeField()
        brands = serializers.SerializerMethodField(help_text="Codes of the brands joined (within your scope)")
        guides = serializers.SerializerMethodField(help_text="Codes of the currently bound guides")

        def get_brands(self, member) -> list[str]:
            return [m.brand.code for m in member.visible_memberships]

        def get_guides(self, member) -> list[str]:
            return [b.guide.code for b in member.current_bindings]

    serializer_class = OutputSerializer
    filter_backends: list = []  # filters are validated by FilterSerializer and applied by the selector

    @extend_schema(parameters=[FilterSerializer])
    def get(self, request, *args, **kwargs):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        members = selectors.member_search(actor=self.actor, **filters.validated_data)
        page = self.paginate_queryset(members)
        phones = selectors.PhoneVisibility(actor=self.actor, user=request.user, members=page)
        data = self.OutputSerializer(page, many=True, context={"phones": phones}).data
        return self.get_paginated_response(data)


class MemberDetailApi(ScopedMixin, APIView):
    """One member: profile, memberships and points, binding history, WeCom friendships, tags, activity.

    404 when the member is outside the caller's scope.
    """

    class MembershipSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StaffMemberMembership"

        brand = serializers.CharField(source="membership.brand.code")
        brand_name = serializers.CharField(source="membership.brand.name")
        joined_at = serializers.DateTimeField(source="membership.joined_at")
        join_channel = serializers.CharField(source="membership.join_channel")
        store = serializers.CharField(source="membership.store.code", allow_null=True, default=None)
        tier = serializers.CharField(source="membership.tier")
        points = serializers.IntegerField(help_text="Balance: the sum of the points ledger")

    class BindingSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StaffMemberBinding"

        brand = serializers.CharField(source="brand.code")
        guide = serializers.CharField(source="guide.code")
        guide_name = serializers.CharField(source="guide.name")
        store = serializers.CharField(source="store.code")
        started_at = serializers.DateTimeField()
        ended_at = serializers.DateTimeField(allow_null=True)
        reason = serializers.CharField()

    class FriendshipSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StaffMemberWeComFriendship"

        guide = serializers.CharField(source="guide.code")
        added_at = serializers.DateTimeField()
        removed_at = serializers.DateTimeField(allow_null=True)
        source = serializers.CharField()

    class TagSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StaffMemberTag"

        tag_value_id = serializers.IntegerField(source="tag_value.pk")
        brand = serializers.CharField(source="tag_value.tag_group.brand.code", allow_null=True, default=None,
                                      help_text="Brand of the tag group; null for group-wide tags")
        group = serializers.CharField(source="tag_value.tag_group.code")
        group_name = serializers.CharField(source="tag_value.tag_group.label")
        value = serializers.CharField(source="tag_value.code")
        value_name = serializers.CharField(source="tag_value.label")
        source = serializers.CharField()
        reason = serializers.CharField(source="reason_text")
        assigned_at = serializers.DateTimeField()

    class ActivitySerializer(serializers.Serializer):
        class Meta:
            ref_name = "StaffMemberActivity"

        since = serializers.DateField()
        days = serializers.IntegerField()
        product_views = serializers.IntegerField(source="counts.product_views")
        favourites = serializers.IntegerField(source="counts.favourites")
        shares = serializers.IntegerField(source="counts.shares")
        add_to_carts = serializers.IntegerField(source="counts.add_to_carts")
        orders_unpaid = serializers.IntegerField(source="counts.orders_unpaid")
        live_watches = serializers.IntegerField(source="counts.live_watches")
        material_views = serializers.IntegerField(source="counts.material_views")

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StaffMemberDetail"

        id = serializers.IntegerField(source="member.pk")
        code = serializers.CharField(source="member.code")
        name = serializers.CharField(source="member.name")
        phone = serializers.SerializerMethodField(help_text="Whole or masked, by the caller's role")
        gender = serializers.CharField(source="member.gender")
        birthday = serializers.DateField(source="member.birthday", allow_null=True)
        address = serializers.CharField(source="member.address")
        clothing_size = serializers.CharField(source="member.clothing_size")
        shoe_size = serializers.CharField(source="member.shoe_size")
        preferred_colours = serializers.ListField(source="member.preferred_colours", child=serializers.CharField())
        preferred_styles = serializers.ListField(source="member.preferred_styles", child=serializers.CharField())
        preferred_materials = serializers.ListField(source="member.preferred_materials",
                                                    child=serializers.CharField())
        created_at = serializers.DateTimeField(source="member.created_at")
        merged_into = serializers.CharField(source="member.merged_into.code", allow_null=True, default=None,
                                            help_text="Code of the member this record was merged into")
        memberships = serializers.SerializerMethodField()
        bindings = serializers.SerializerMethodField()
        wecom_friendships = serializers.SerializerMethodField()
        tags = serializers.SerializerMethodField()
        activity_30d = serializers.SerializerMethodField()

        def get_phone(self, detail) -> str:
            return self.context["phones"].phone(detail.member)

        def get_memberships(self, detail) -> MemberDetailApi.MembershipSerializer(many=True):
            return MemberDetailApi.MembershipSerializer(detail.memberships, many=True).data

        def get_bindings(self, detail) -> MemberDetailApi.BindingSerializer(many=True):
            return MemberDetailApi.BindingSerializer(detail.bindings, many=True).data

        def get_wecom_friendships(self, detail) -> MemberDetailApi.FriendshipSerializer(many=True):
            return MemberDetailApi.FriendshipSerializer(detail.wecom_friendships, many=True).data

        def get_tags(self, detail) -> MemberDetailApi.TagSerializer(many=True):
            return MemberDetailApi.TagSerializer(detail.tags, many=True).data

        def get_activity_30d(self, detail) -> MemberDetailApi.ActivitySerializer:
            return MemberDetailApi.ActivitySerializer(detail.activity).data

    @extend_schema(responses={200: OutputSerializer, 404: OpenApiResponse(description="Not in your scope")})
    def get(self, request, pk: int):
        detail = selectors.member_detail(actor=self.actor, member_id=pk)
        phones = selectors.PhoneVisibility(actor=self.actor, user=request.user, members=[detail.member])
        return Response(self.OutputSerializer(detail, context={"phones": phones}).data)


class BindingTransferApi(ScopedMixin, APIView):
    """Move a member to another guide of a brand (store managers and above, within their scope).

    400 bad brand or guide code; 403 the caller's role may not transfer; 404 member or
    guide outside the caller's scope; 409 the guide has left.
    """

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StaffBindingTransferInput"

        brand = serializers.SlugField(max_length=32)
        to_guide = serializers.SlugField(max_length=32)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StaffBindingTransferResult"

        member = serializers.CharField(source="member.code")
        brand = serializers.CharField(source="brand.code")
        guide = serializers.CharField(source="guide.code")
        store = serializers.CharField(source="store.code")
        started_at = serializers.DateTimeField()
        reason = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={
        200: OutputSerializer, 400: OpenApiResponse(description="Bad brand or guide code"),
        403: OpenApiResponse(description="Your role may not transfer members"),
        404: OpenApiResponse(description="Member or guide outside your scope"),
        409: OpenApiResponse(description="The guide has left, or the member was merged")})
    def post(self, request, pk: int):
        member = selectors.member_get(actor=self.actor, member_id=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if member.merged_into_id is not None:
            raise ApplicationError(ErrorCode.CONFLICT, "This member was merged into another; transfer that one.",
                                   status=409)
        brand = Brand.objects.filter(code=data.validated_data["brand"], group_id=member.group_id).first()
        if brand is None or not member.memberships.filter(brand=brand).exists():
            message = "The member has not joined this brand."
            raise ApplicationError(ErrorCode.INVALID, message, fields={"brand": [message]})
        # Existence is checked here (400); whether the guide is in the caller's scope is the service's call (404).
        to_guide = Guide.objects.select_related("store").filter(code=data.validated_data["to_guide"]).first()
        if to_guide is None:
            message = "No guide with this code."
            raise ApplicationError(ErrorCode.INVALID, message, fields={"to_guide": [message]})
        binding: GuideBinding = binding_transfer(member=member, brand=brand, to_guide=to_guide, actor=self.actor)
        return Response(self.OutputSerializer(binding).data)

