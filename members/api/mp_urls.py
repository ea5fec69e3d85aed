"""Mini-program (member) routes under ``/api/v1/mp/``."""

from django.urls import path

from members.api import mp_views

urlpatterns = [
    path("auth/login/", mp_views.LoginApi.as_view(), name="mp-login"),
    path("auth/logout/", mp_views.LogoutApi.as_view(), name="mp-logout"),
    path("me/", mp_views.ProfileApi.as_view(), name="mp-me"),
    path("me/phone/", mp_views.PhoneBindApi.as_view(), name="mp-phone-bind"),
    path("me/memberships/", mp_views.MembershipListApi.as_view(), name="mp-memberships"),
    path("me/points/", mp_views.PointsLedgerApi.as_view(), name="mp-points"),
    path("guide-scan/", mp_views.GuideScanApi.as_view(), name="mp-guide-scan"),
]
