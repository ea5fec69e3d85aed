"""Analytics staff API routes, relative to ``/api/v1/``: the numbers of the HQ dashboard under
``analytics/metrics/``, for BI tools (views in analytics/api/views.py)."""

from django.urls import path

from analytics.api import views

urlpatterns = [
    path("analytics/metrics/overview/", views.OverviewApi.as_view(), name="api-metrics-overview"),
    path("analytics/metrics/brands/", views.BrandRankingApi.as_view(), name="api-metrics-brands"),
    path("analytics/metrics/regions/", views.RegionRankingApi.as_view(), name="api-metrics-regions"),
    path("analytics/metrics/stores/", views.StoreRankingApi.as_view(), name="api-metrics-stores"),
    path("analytics/metrics/store-months/", views.StoreMonthsApi.as_view(), name="api-metrics-store-months"),
    path("analytics/metrics/guides/", views.GuideKpisApi.as_view(), name="api-metrics-guides"),
    path("analytics/metrics/segments/", views.SegmentsApi.as_view(), name="api-metrics-segments"),
    path("analytics/metrics/segments/transitions/", views.SegmentTransitionsApi.as_view(),
         name="api-metrics-transitions"),
    path("analytics/metrics/livestream/", views.LivestreamApi.as_view(), name="api-metrics-livestream"),
    path("analytics/metrics/core/", views.CoreIndicatorsApi.as_view(), name="api-metrics-core"),
]
