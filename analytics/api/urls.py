"""Analytics staff API routes; each area keeps its own url module."""

from django.urls import include, path

urlpatterns = [
    path("analytics/", include("analytics.api.dashboard_urls")),
]
