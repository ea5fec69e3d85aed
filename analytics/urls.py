from django.urls import include, path

from analytics import views

app_name = "hq"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("", include("analytics.dashboard_urls")),
]
