"""Staff API for the organisation tree. Every queryset comes from a scoped selector."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response
from rest_framework.views import APIView

from retail_crm import selectors
from retail_crm.api.permissions import IsStaffMember
from retail_crm.models import Guide, Region, Store
from retail_crm.scoping import actor_for
from retail_crm.throttling import ip_throttle


class ScopedMixin:
    permission_classes = [IsStaffMember]

    @property
    def actor(self):
        return actor_for(self.request.user)


class BrandListApi(ScopedMixin, generics.ListAPIView):
    """Brands the caller can see."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Brand"  # component name in the OpenAPI schema

        id = serializers.IntegerField()
        code = serializers.CharField()
        name = serializers.CharField()
        category = serializers.CharField()
        is_active = serializers.BooleanField()

    serializer_class = OutputSerializer

    def get_queryset(self):
        return selectors.brand_list(actor=self.actor)


class BrandDetailApi(ScopedMixin, generics.RetrieveAPIView):
    """One brand; 404 when it is outside the caller's scope."""

    serializer_class = BrandListApi.OutputSerializer

    def get_queryset(self):
        return selectors.brand_list(actor=self.actor)


class RegionFilter(django_filters.FilterSet):
    brand = django_filters.CharFilter(field_name="brand__code")

    class Meta:
        model = Region
        fields = ["brand"]


class RegionListApi(ScopedMixin, generics.ListAPIView):
    """Regions the caller can see."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Region"  # component name in the OpenAPI schema

        id = serializers.IntegerField()
        code = serializers.CharField()
        name = serializers.CharField()
        brand = serializers.CharField(source="brand.code")

    serializer_class = OutputSerializer
    filterset_class = RegionFilter

    def get_queryset(self):
        return selectors.region_list(actor=self.actor)


class RegionDetailApi(ScopedMixin, generics.RetrieveAPIView):
    """One region; 404 outside scope."""

    serializer_class = RegionListApi.OutputSerializer

    def get_queryset(self):
        return selectors.region_list(actor=self.actor)


class StoreFilter(django_filters.FilterSet):
    brand = django_filters.CharFilter(field_name="brand__code")
    region = django_filters.CharFilter(field_name="region__code")
    kind = django_filters.ChoiceFilter(choices=Store.Kind.choices)
    city = django_filters.CharFilter()

    class Meta:
        model = Store
        fields = ["brand", "region", "kind", "city"]


class StoreListApi(ScopedMixin, generics.ListAPIView):
    """Stores the caller can see."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Store"  # component name in the OpenAPI schema

        id = serializers.IntegerField()
        code = serializers.CharField()
        name = serializers.CharField()
        kind = serializers.CharField()
        city = serializers.CharField()
        brand = serializers.CharField(source="brand.code")
        region = serializers.CharField(source="region.code")
        is_active = serializers.BooleanField()

    serializer_class = OutputSerializer
    filterset_class = StoreFilter

    def get_queryset(self):
        return selectors.store_list(actor=self.actor)


class StoreDetailApi(ScopedMixin, generics.RetrieveAPIView):
    """One store; 404 outside scope."""

    serializer_class = StoreListApi.OutputSerializer

    def get_queryset(self):
        return selectors.store_list(actor=self.actor)


class GuideFilter(django_filters.FilterSet):
    store = django_filters.CharFilter(field_name="store__code")
    brand = django_filters.CharFilter(field_name="store__brand__code")
    active = django_filters.BooleanFilter(field_name="left_at", lookup_expr="isnull")

    class Meta:
        model = Guide
        fields = ["store", "brand", "active"]


class GuideListApi(ScopedMixin, generics.ListAPIView):
    """Guides the caller can see (a guide sees only themself)."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Guide"  # component name in the OpenAPI schema

        id = serializers.IntegerField()
        code = serializers.CharField()
        name = serializers.CharField()
        role = serializers.CharField()
        store = serializers.CharField(source="store.code")
        brand = serializers.CharField(source="store.brand.code")
        hired_at = serializers.DateField(allow_null=True)
        left_at = serializers.DateField(allow_null=True)

    serializer_class = OutputSerializer
    filterset_class = GuideFilter

    def get_queryset(self):
        return selectors.guide_list(actor=self.actor)


class GuideDetailApi(ScopedMixin, generics.RetrieveAPIView):
    """One guide; 404 outside scope."""

    serializer_class = GuideListApi.OutputSerializer

    def get_queryset(self):
        return selectors.guide_list(actor=self.actor)


class TokenObtainApi(ObtainAuthToken):
    """A staff API token for a username and password. Rate-limited per IP: 429 with ``Retry-After``."""

    throttle_classes = [ip_throttle("auth_token")]


class MeApi(ScopedMixin, APIView):
    """Who the caller is: role and scope."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StaffMe"  # component name in the OpenAPI schema

        username = serializers.CharField()
        role = serializers.CharField(allow_null=True)
        level = serializers.CharField(allow_null=True)
        scope_id = serializers.IntegerField(allow_null=True)
        is_superuser = serializers.BooleanField()

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        actor = self.actor
        data = {"username": request.user.get_username(), "role": actor.role, "level": actor.level,
                "scope_id": actor.scope_id, "is_superuser": actor.is_superuser}
        return Response(self.OutputSerializer(data).data)
