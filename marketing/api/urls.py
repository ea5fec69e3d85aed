"""Marketing routes, relative to ``/api/v1/``."""

from django.urls import path

from marketing.api import views

urlpatterns = [
    path("marketing/deliveries/", views.DeliveryListApi.as_view(), name="marketing-deliveries"),
    path("mp/subscribe-results/", views.SubscribeResultsApi.as_view(), name="mp-subscribe-results"),
    path("marketing/sms/tencent/status/<str:token>/", views.TencentSmsCallbackApi.as_view(kind="status"),
         name="marketing-sms-status"),
    path("marketing/sms/tencent/reply/<str:token>/", views.TencentSmsCallbackApi.as_view(kind="reply"),
         name="marketing-sms-reply"),
]
