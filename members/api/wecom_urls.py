"""WeCom routes, mounted at /api/v1/wecom/."""

from django.urls import path

from members.api import wecom_views

urlpatterns = [
    path("callback/", wecom_views.WeComCallbackApi.as_view(), name="api-wecom-callback"),
    path("friendships/", wecom_views.FriendshipAddApi.as_view(), name="api-wecom-friendship-add"),
    path("friendships/remove/", wecom_views.FriendshipRemoveApi.as_view(), name="api-wecom-friendship-remove"),
]
