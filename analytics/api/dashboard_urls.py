"""Dashboard metric routes under /api/v1/analytics/metrics/ (the numbers of the HQ dashboard, for BI tools)."""

from django.urls import path

from analytics.api import dashboard_views as views

urlpatterns = [
    path("metrics/overview/", views.OverviewApi.as_view(), name="api-metrics-overview"),
    path("metrics/brands/", views.BrandRankingApi.as_view(), name="api-metrics-brands"),
    path("metrics/regions/", views.RegionRankingApi.as_view(), name="api-metrics-regions"),
    path("metrics/stores/", views.StoreRankingApi.as_view(), name="api-metrics-stores"),
    path("metrics/store-months/", views.StoreMonthsApi.as_view(), name="api-metrics-store-months"),
    path("metrics/guides/", views.GuideKpisApi.as_view(), name="api-metrics-guides"),
    path("metrics/segments/", views.SegmentsApi.as_view(), name="api-metrics-segments"),
    path("metrics/segments/transitions/", views.SegmentTransitionsApi.as_view(), name="api-metrics-transitions"),
    path("metrics/livestream/", views.LivestreamApi.as_view(), name="api-metrics-livestream"),
    path("metrics/core/", views.CoreIndicatorsApi.as_view(), name="api-metrics-core"),
]
