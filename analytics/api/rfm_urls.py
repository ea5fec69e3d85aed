"""RFML and care-list routes under /api/v1/analytics/."""

from django.urls import path

from analytics.api import rfm_views

urlpatterns = [
    path("rfm/runs/latest/", rfm_views.RfmLatestRunApi.as_view(), name="api-rfm-latest-run"),
    path("rfm/members/", rfm_views.RfmMemberListApi.as_view(), name="api-rfm-members"),
    path("care-items/", rfm_views.CareItemListApi.as_view(), name="api-care-items"),
    path("care-items/<int:pk>/done/", rfm_views.CareItemDoneApi.as_view(), name="api-care-item-done"),
]
