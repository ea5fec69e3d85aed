"""Live data routes, relative to ``/api/v1/``: the mini-program's live list and viewer events, staff figures."""

from django.urls import path

from livestream import data_api

urlpatterns = [
    path("mp/live/sessions/", data_api.MpLiveSessionListApi.as_view(), name="mp-live-sessions"),
    path("mp/live/sessions/<int:pk>/events/", data_api.MpViewerEventBatchApi.as_view(), name="mp-live-events"),
    path("livestream/sessions/<int:pk>/stats/", data_api.SessionStatsApi.as_view(), name="live-session-stats"),
    path("livestream/summary/", data_api.LiveSummaryApi.as_view(), name="live-summary"),
]
