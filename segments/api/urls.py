"""RFML and care-list routes. They keep the paths they were published under, /api/v1/analytics/…"""

from django.urls import path

from segments.api import views

urlpatterns = [
    path("analytics/rfm/runs/latest/", views.RfmLatestRunApi.as_view(), name="api-rfm-latest-run"),
    path("analytics/rfm/members/", views.RfmMemberListApi.as_view(), name="api-rfm-members"),
    path("analytics/care-items/", views.CareItemListApi.as_view(), name="api-care-items"),
    path("analytics/care-items/<int:pk>/done/", views.CareItemDoneApi.as_view(), name="api-care-item-done"),
]
