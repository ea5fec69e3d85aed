"""Marketing routes, relative to ``/api/v1/``."""

from django.urls import path

from marketing.api import audiences, campaigns, official_account, views

urlpatterns = [
    path("marketing/audiences/", audiences.AudienceListCreateApi.as_view(), name="marketing-audiences"),
    path("marketing/audiences/preview/", audiences.AudiencePreviewApi.as_view(), name="marketing-audience-preview"),
    path("marketing/audiences/<int:pk>/", audiences.AudienceDetailApi.as_view(), name="marketing-audience"),
    path("marketing/audiences/<int:pk>/size/", audiences.AudienceSizeApi.as_view(), name="marketing-audience-size"),
    path("marketing/audiences/<int:pk>/export/", audiences.AudienceExportApi.as_view(),
         name="marketing-audience-export"),
    path("marketing/deliveries/", views.DeliveryListApi.as_view(), name="marketing-deliveries"),
    path("marketing/campaigns/", campaigns.CampaignListCreateApi.as_view(), name="marketing-campaigns"),
    path("marketing/campaigns/<int:pk>/", campaigns.CampaignDetailApi.as_view(), name="marketing-campaign"),
    path("marketing/campaigns/<int:pk>/launch/", campaigns.CampaignLaunchApi.as_view(),
         name="marketing-campaign-launch"),
    path("marketing/campaigns/<int:pk>/cancel/", campaigns.CampaignCancelApi.as_view(),
         name="marketing-campaign-cancel"),
    path("marketing/campaigns/<int:pk>/results/", campaigns.CampaignResultsApi.as_view(),
         name="marketing-campaign-results"),
    path("mp/subscribe-results/", views.SubscribeResultsApi.as_view(), name="mp-subscribe-results"),
    path("marketing/sms/tencent/status/<str:token>/", views.TencentSmsCallbackApi.as_view(kind="status"),
         name="marketing-sms-status"),
    path("marketing/sms/tencent/reply/<str:token>/", views.TencentSmsCallbackApi.as_view(kind="reply"),
         name="marketing-sms-reply"),
    path("marketing/official-account/callback/", official_account.OfficialAccountCallbackApi.as_view(),
         name="marketing-official-account-callback"),
]
