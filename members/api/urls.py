"""Member API routes: the mini-program's (``mp/``) and the scoped staff API."""

from django.urls import include, path

urlpatterns = [
    path("mp/", include("members.api.mp_urls")),
    path("mp/events/", include("members.api.events_urls")),
    path("", include("members.api.staff_urls")),
    path("", include("members.api.tags_urls")),
    path("wecom/", include("members.api.wecom_urls")),
]
