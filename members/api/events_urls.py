from django.urls import path

from members.api.events_views import EventBatchIngestApi

urlpatterns = [
    path("", EventBatchIngestApi.as_view(), name="api-mp-events"),
]
