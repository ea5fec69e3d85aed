from django.urls import path

from guides import views

app_name = "workbench"
urlpatterns = [path("", views.home, name="home")]
