"""Marketing routes, relative to ``/api/v1/``."""

from django.urls import path

from marketing.api import audiences, views

urlpatterns = [
    path("marketing/audiences/", audiences.AudienceListCreateApi.as_view(), name="marketing-audiences"),
    path("marketing/audiences/preview/", audiences.AudiencePreviewApi.as_view(), name="marketing-audience-preview"),
    path("marketing/audiences/<int:pk>/", audiences.AudienceDetailApi.as_view(), name="marketing-audience"),
    path("marketing/audiences/<int:pk>/export/", audiences.AudienceExportApi.as_view(),
         name="marketing-audience-export"),
    path("marketing/deliveries/", views.DeliveryListApi.as_view(), name="marketing-deliveries"),
    path("mp/subscribe-results/", views.SubscribeResultsApi.as_view(), name="mp-subscribe-results"),
    path("marketing/sms/tencent/status/<str:token>/", views.TencentSmsCallbackApi.as_view(kind="status"),
         name="marketing-sms-status"),
    path("marketing/sms/tencent/reply/<str:token>/", views.TencentSmsCallbackApi.as_view(kind="reply"),
         name="marketing-sms-reply"),
]
