"""Livestream routes, relative to ``/api/v1/``: staff scheduling here, live data and KPIs in their own modules."""

from django.urls import include, path

from livestream import api

urlpatterns = [
    path("livestream/sessions/", api.LiveSessionScheduleApi.as_view(), name="live-session-schedule"),
    path("livestream/stores/<str:store_code>/schedule/", api.StoreScheduleApi.as_view(),
         name="live-store-schedule"),
    path("livestream/brands/<str:brand_code>/week-summary/", api.BrandWeekSummaryApi.as_view(),
         name="live-brand-week-summary"),
    *[path(f"livestream/sessions/<int:pk>/{action}/", api.LiveSessionTransitionApi.as_view(transition=action),
           name=f"live-session-{action}") for action in ("start", "end", "cancel")],
    path("", include("livestream.data_urls")),
    path("", include("livestream.kpi_urls")),
]
