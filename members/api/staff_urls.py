"""Staff member API routes, mounted at /api/v1/."""

from django.urls import path

from members.api import staff_views

urlpatterns = [
    path("members/", staff_views.MemberListApi.as_view(), name="api-member-list"),
    path("members/<int:pk>/", staff_views.MemberDetailApi.as_view(), name="api-member-detail"),
    path("members/<int:pk>/binding-transfer/", staff_views.BindingTransferApi.as_view(),
         name="api-member-binding-transfer"),
]
