"""HQ marketing pages under ``/hq/marketing/``: audiences (and issuing a coupon to one), campaigns
and journeys."""

from django.urls import path

from marketing.views import audiences, campaigns, journeys

app_name = "marketing"
urlpatterns = [
    path("", audiences.audience_list_page, name="audiences"),
    path("audiences/new/", audiences.audience_new, name="audience-new"),
    path("audiences/<int:pk>/", audiences.audience_edit, name="audience"),
    path("audiences/<int:pk>/coupon/", audiences.audience_coupon, name="audience-coupon"),
    path("campaigns/", campaigns.campaign_list_page, name="campaigns"),
    path("campaigns/new/", campaigns.campaign_new, name="campaign-new"),
    path("campaigns/<int:pk>/", campaigns.campaign_page, name="campaign"),
    path("journeys/", journeys.journey_list_page, name="journeys"),
    path("journeys/new/", journeys.journey_new, name="journey-new"),
    path("journeys/<int:pk>/", journeys.journey_page, name="journey"),
    path("journeys/<int:pk>/edit/", journeys.journey_edit, name="journey-edit"),
]
