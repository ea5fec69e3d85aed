"""The mini-program's member API (``/api/v1/mp/``): one view per operation.

Every member endpoint authenticates with ``Authorization: Member <token>`` only:
a staff session or staff token never reaches them, and a member token never
reaches a staff endpoint. Login is the one open endpoint.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from members import mp_selectors, mp_services
from members.auth import MemberPrincipal, MemberTokenAuthentication, member_of
from members.models import Member
from retail_crm.api.pagination import StandardPagination
from retail_crm.phones import display_phone
from retail_crm.throttling import client_throttle, ip_throttle


class MemberTokenScheme(OpenApiAuthenticationExtension):
    """Documents the member token in the OpenAPI schema (drf-spectacular finds it by ``target_class``)."""

    target_class = "members.auth.MemberTokenAuthentication"
    name = "memberToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Member <token>`, the token returned by `POST /api/v1/mp/auth/login/`."}


class IsMember(BasePermission):
    """The caller is a mini-program member (never a staff user)."""

    message = "This endpoint is for mini-program members."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, MemberPrincipal)


class MemberApi(APIView):
    authentication_classes = [MemberTokenAuthentication]
    permission_classes = [IsMember]
    filter_backends: list = []

    @property
    def member(self) -> Member:
        return member_of(self.request)


# ---------------------------------------------------------------------------- shared shapes

class PreferenceListField(serializers.ListField):
    """Up to 10 short words; an item's error names the item ("Item 2: …") instead of a nested structure."""

    def __init__(self, **kwargs):
        super().__init__(child=serializers.CharField(max_length=20), max_length=10, required=False, **kwargs)

    def run_child_validation(self, data):
        result, errors = [], []
        for index, item in enumerate(data, start=1):
            try:
                result.append(self.child.run_validation(item))
            except serializers.ValidationError as exc:
                errors.extend(f"Item {index}: {message}" for message in exc.detail)
        if errors:
            raise serializers.ValidationError(errors)
        return result


class BrandRefSerializer(serializers.Serializer):
    class Meta:
        ref_name = "MpBrandRef"

    code = serializers.CharField()
    name = serializers.CharField()


class GuideRefSerializer(serializers.Serializer):
    """A guide as a member may see them: no phone."""

    class Meta:
        ref_name = "MpGuideRef"

    code = serializers.CharField()
    name = serializers.CharField()
    store = serializers.CharField(help_text="Store name")


# ---------------------------------------------------------------------------- auth

class LoginApi(APIView):
    """Log in with a ``wx.login`` code; the member is created on first login. Rate-limited per IP (429)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ip_throttle("mp_login")]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MpLoginInput"

        code = serializers.CharField(max_length=128, help_text="The code from wx.login()")

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MpLogin"

        token = serializers.CharField(help_text="Send as `Authorization: Member <token>`")
        member_code = serializers.CharField()
        is_new = serializers.BooleanField()
        has_phone = serializers.BooleanField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, examples=[
        OpenApiExample("Development login", request_only=True, value={"code": "alice"},
                       description="With the fake WeChat provider (DEBUG) any code logs in; the same code is the "
                                   "same member every time."),
        OpenApiExample("First login", response_only=True, value={
            "token": "Vx3kq…", "member_code": "M0020001", "is_new": True, "has_phone": False}),
    ])
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = mp_services.mp_login(code=data.validated_data["code"])
        return Response(self.OutputSerializer({
            "token": result.token, "member_code": result.member.code, "is_new": result.is_new,
            "has_phone": bool(result.member.phone)}).data)


class LogoutApi(MemberApi):
    """End this session: the token stops working."""

    @extend_schema(request=None, responses={204: OpenApiResponse(description="Logged out")})
    def post(self, request):
        mp_services.mp_logout(token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------------------- me

class ProfileApi(MemberApi):
    """My profile: read it whole (my own phone included) and change what I may."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MpProfile"

        code = serializers.CharField()
        name = serializers.CharField()
        gender = serializers.CharField(help_text="'' unknown, 'F' or 'M'")
        birthday = serializers.DateField(allow_null=True)
        phone = serializers.SerializerMethodField()
        address = serializers.CharField()
        clothing_size = serializers.CharField()
        shoe_size = serializers.CharField()
        preferred_colours = serializers.ListField(child=serializers.CharField())
        preferred_styles = serializers.ListField(child=serializers.CharField())
        preferred_materials = serializers.ListField(child=serializers.CharField())

        def get_phone(self, member) -> str:
            return display_phone(member.phone)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MpProfileInput"

        name = serializers.CharField(max_length=50, allow_blank=True, required=False)
        gender = serializers.ChoiceField(choices=Member.Gender.choices, allow_blank=True, required=False)
        birthday = serializers.DateField(allow_null=True, required=False)
        address = serializers.CharField(max_length=200, allow_blank=True, required=False)
        clothing_size = serializers.CharField(max_length=10, allow_blank=True, required=False)
        shoe_size = serializers.CharField(max_length=10, allow_blank=True, required=False)
        preferred_colours = PreferenceListField()
        preferred_styles = PreferenceListField()
        preferred_materials = PreferenceListField()

        def validate_birthday(self, value: dt.date | None) -> dt.date | None:
            if value is not None and value > timezone.localdate():
                raise serializers.ValidationError("Birthday cannot be in the future.")
            if value is not None and value < dt.date(1900, 1, 1):
                raise serializers.ValidationError("Birthday must be after 1900-01-01.")
            return value

        def validate(self, attrs):
            # Identifiers (code, phone) are not edited here: say so instead of silently ignoring them.
            unknown = sorted(set(self.initial_data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["This field cannot be changed here."] for name in unknown})
            for field in ("preferred_colours", "preferred_styles", "preferred_materials"):
                if field in attrs:
                    attrs[field] = list(dict.fromkeys(attrs[field]))  # drop repeats, keep the member's order
            return attrs

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request):
        return Response(self.OutputSerializer(self.member).data)

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def patch(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        member = mp_services.mp_profile_update(member=self.member, changes=dict(data.validated_data))
        return Response(self.OutputSerializer(member).data)


class PhoneBindApi(MemberApi):
    """Bind my phone from WeChat's ``getPhoneNumber`` code; joins me with my store membership if I have one.

    Rate-limited per member (429): a real member binds once; a script tries phone codes.
    """

    throttle_classes = [client_throttle("mp_phone_bind")]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MpPhoneBindInput"

        phone_code = serializers.CharField(max_length=128, help_text="The code from the getPhoneNumber button")

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MpPhoneBind"

        member_code = serializers.CharField(help_text="After a merge: the code of the membership I was joined to")
        phone = serializers.CharField()
        merged = serializers.BooleanField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, examples=[
        OpenApiExample("Development phone", request_only=True, value={"phone_code": "phone:13912345678"},
                       description="With the fake WeChat provider, `phone:<number>` binds that number."),
        OpenApiExample("Joined with a store membership", response_only=True, value={
            "member_code": "M0000412", "phone": "+8613912345678", "merged": True}),
    ])
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = mp_services.mp_phone_bind(member=self.member, phone_code=data.validated_data["phone_code"],
                                           session_openid=request.auth.openid)
        return Response(self.OutputSerializer({"member_code": result.member.code,
                                               "phone": display_phone(result.member.phone),
                                               "merged": result.merged}).data)


class MembershipListApi(MemberApi):
    """My brands: when and how I joined, tier, points and my guide."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MpMembership"

        brand = BrandRefSerializer()
        joined_at = serializers.DateTimeField()
        join_channel = serializers.CharField()
        tier = serializers.CharField()
        points = serializers.IntegerField(help_text="Balance from the points ledger")
        guide = GuideRefSerializer(allow_null=True, help_text="My bound guide for the brand, if any")

    @extend_schema(responses={200: OutputSerializer(many=True)})
    def get(self, request):
        rows = mp_selectors.membership_list_for_member(member=self.member)
        return Response(self.OutputSerializer(rows, many=True).data)


class PointsPagination(StandardPagination):
    """Pages of the ledger plus the member's whole balance in the brand."""

    balance = 0

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data["balance"] = self.balance
        return response

    def get_paginated_response_schema(self, schema):
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"]["balance"] = {"type": "integer", "example": 1200,
                                              "description": "Points balance in the brand (all pages)"}
        paginated["required"] = [*paginated.get("required", []), "balance"]
        return paginated


class PointsLedgerApi(MemberApi, generics.ListAPIView):
    """My points in one brand, newest first, with the balance after each entry."""

    pagination_class = PointsPagination

    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MpPointsFilter"

        brand = serializers.CharField(max_length=32, help_text="Brand code")

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MpPointsEntry"

        id = serializers.IntegerField()
        created_at = serializers.DateTimeField()
        delta = serializers.IntegerField()
        reason = serializers.CharField()
        note = serializers.CharField()
        balance_after = serializers.IntegerField()

    serializer_class = OutputSerializer

    @extend_schema(parameters=[FilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = self.FilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        brand = mp_selectors.brand_for_member(member=self.member, code=params.validated_data["brand"])
        self.paginator.balance = mp_selectors.points_total_for_member(member=self.member, brand=brand)
        return mp_selectors.points_ledger_for_member(member=self.member, brand=brand)


# ---------------------------------------------------------------------------- guide QR

class GuideScanApi(MemberApi):
    """I scanned a guide's exclusive QR code: join the brand and get a guide (the brand's rules decide which)."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MpGuideScanInput"

        token = serializers.CharField(max_length=100, help_text="The token in the guide's QR code")

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MpGuideScan"

        brand = BrandRefSerializer()
        joined = serializers.BooleanField(help_text="True if this scan made me a member of the brand")
        bound_guide = GuideRefSerializer(help_text="My guide for the brand after the scan")
        binding_rule = serializers.ChoiceField(choices=["new", "same_guide", "protected", "lapsed", "unprotected"],
                                               help_text="Why that guide: new binding, already theirs, the "
                                                         "first guide is protected, the old one lapsed, or "
                                                         "the brand does not protect bindings")

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = mp_services.mp_guide_scan(member=self.member, token=data.validated_data["token"])
        guide = result.binding.guide
        return Response(self.OutputSerializer({
            "brand": result.brand, "joined": result.joined,
            "bound_guide": {"code": guide.code, "name": guide.name, "store": guide.store.name},
            "binding_rule": result.rule}).data)
