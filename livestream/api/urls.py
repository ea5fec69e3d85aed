"""Livestream API routes, relative to ``/api/v1/``: scheduling (api/sessions.py), the mini-program's live list
and viewer events (api/viewer_events.py), session figures (api/figures.py) and the store livestream KPIs:
phase targets, store phases and progress, coaching notes, sharing HQ resources (api/kpis.py)."""

from django.urls import path

from livestream.api import figures, kpis, sessions, viewer_events

urlpatterns = [
    path("livestream/sessions/", sessions.LiveSessionScheduleApi.as_view(), name="live-session-schedule"),
    path("livestream/stores/<str:store_code>/schedule/", sessions.StoreScheduleApi.as_view(),
         name="live-store-schedule"),
    path("livestream/brands/<str:brand_code>/week-summary/", sessions.BrandWeekSummaryApi.as_view(),
         name="live-brand-week-summary"),
    *[path(f"livestream/sessions/<int:pk>/{action}/", sessions.LiveSessionTransitionApi.as_view(transition=action),
           name=f"live-session-{action}") for action in ("start", "end", "cancel")],
    path("mp/live/sessions/", viewer_events.MpLiveSessionListApi.as_view(), name="mp-live-sessions"),
    path("mp/live/sessions/<int:pk>/events/", viewer_events.MpViewerEventBatchApi.as_view(), name="mp-live-events"),
    path("livestream/sessions/<int:pk>/stats/", figures.SessionStatsApi.as_view(), name="live-session-stats"),
    path("livestream/summary/", figures.LiveSummaryApi.as_view(), name="live-summary"),
    path("livestream/brands/<str:brand_code>/phase-targets/", kpis.BrandPhaseTargetsApi.as_view(),
         name="live-brand-phase-targets"),
    path("livestream/brands/<str:brand_code>/store-progress/", kpis.BrandStoreProgressApi.as_view(),
         name="live-brand-store-progress"),
    path("livestream/stores/<str:store_code>/phase/", kpis.StorePhaseApi.as_view(), name="live-store-phase"),
    path("livestream/stores/<str:store_code>/progress/", kpis.StoreProgressApi.as_view(),
         name="live-store-progress"),
    path("livestream/sessions/<int:pk>/coaching-notes/", kpis.SessionCoachingNotesApi.as_view(),
         name="live-session-coaching-notes"),
    path("livestream/sessions/<int:pk>/share-resources/", kpis.SessionShareResourcesApi.as_view(),
         name="live-session-share-resources"),
]
