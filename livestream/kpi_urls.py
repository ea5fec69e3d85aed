"""Livestream KPI routes, relative to ``/api/v1/``: phase targets, store phases and progress, coaching notes,
sharing HQ resources with store sessions."""

from django.urls import path

from livestream import kpi_api

urlpatterns = [
    path("livestream/brands/<str:brand_code>/phase-targets/", kpi_api.BrandPhaseTargetsApi.as_view(),
         name="live-brand-phase-targets"),
    path("livestream/brands/<str:brand_code>/store-progress/", kpi_api.BrandStoreProgressApi.as_view(),
         name="live-brand-store-progress"),
    path("livestream/stores/<str:store_code>/phase/", kpi_api.StorePhaseApi.as_view(), name="live-store-phase"),
    path("livestream/stores/<str:store_code>/progress/", kpi_api.StoreProgressApi.as_view(),
         name="live-store-progress"),
    path("livestream/sessions/<int:pk>/coaching-notes/", kpi_api.SessionCoachingNotesApi.as_view(),
         name="live-session-coaching-notes"),
    path("livestream/sessions/<int:pk>/share-resources/", kpi_api.SessionShareResourcesApi.as_view(),
         name="live-session-share-resources"),
]
