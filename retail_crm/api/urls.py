from django.urls import include, path

from retail_crm.api import auth, views

urlpatterns = [
    path("auth/token/", auth.StaffTokenObtainApi.as_view(), name="api-token"),
    path("me/", views.MeApi.as_view(), name="api-me"),
    path("org/brands/", views.BrandListApi.as_view(), name="api-brand-list"),
    path("org/brands/<int:pk>/", views.BrandDetailApi.as_view(), name="api-brand-detail"),
    path("org/regions/", views.RegionListApi.as_view(), name="api-region-list"),
    path("org/regions/<int:pk>/", views.RegionDetailApi.as_view(), name="api-region-detail"),
    path("org/stores/", views.StoreListApi.as_view(), name="api-store-list"),
    path("org/stores/<int:pk>/", views.StoreDetailApi.as_view(), name="api-store-detail"),
    path("org/guides/", views.GuideListApi.as_view(), name="api-guide-list"),
    path("org/guides/<int:pk>/", views.GuideDetailApi.as_view(), name="api-guide-detail"),
    path("org/guides/<int:pk>/password-reset/", auth.GuidePasswordResetApi.as_view(),
         name="api-guide-password-reset"),
    path("", include("members.api.urls")),
    path("", include("mall.api.urls")),
    path("analytics/", include("attribution.api.urls")),  # sales credits keep their /analytics/ paths
    path("", include("segments.api.urls")),
    path("", include("analytics.api.urls")),
    path("", include("livestream.api.urls")),
    path("", include("guides.api.urls")),
    path("", include("marketing.api.urls")),
]
