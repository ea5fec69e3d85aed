from django.urls import path

from analytics import views

app_name = "hq"
urlpatterns = [path("", views.overview, name="overview")]
