"""The guide workbench at /workbench/: one URL module per area, each owned by its views module."""

from django.urls import include, path

from guides import views

app_name = "workbench"
urlpatterns = [
    path("", views.home, name="home"),
    path("", include("guides.urls_members")),
    path("", include("guides.urls_share")),
    path("", include("guides.urls_commission")),
    path("", include("guides.urls_team")),
]
