"""Workbench pages of guides/views.py: my members, a member, the care list, my performance, live schedule."""

from django.urls import path

from guides import views

urlpatterns = [
    path("members/", views.members, name="members"),
    path("members/<int:member_id>/", views.member_page, name="member"),
    path("care/", views.care, name="care"),
    path("care/<int:item_id>/done/", views.care_done, name="care_done"),
    path("performance/", views.performance, name="performance"),
    path("live/", views.live_schedule, name="live"),
]
