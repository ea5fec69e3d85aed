"""The manager's team logins: password resets."""

from django.urls import path

from guides import views_team

urlpatterns = [
    path("team/", views_team.team, name="team"),
    path("team/<int:pk>/password-reset/", views_team.guide_password_reset, name="team_password_reset"),
    path("team/<int:pk>/unlock/", views_team.guide_unlock, name="team_unlock"),
]
