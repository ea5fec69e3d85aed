"""Sales-credit routes, mounted under /api/v1/analytics/."""

from django.urls import path

from analytics.api import attribution_views as views

urlpatterns = [
    path("credits/", views.CreditListApi.as_view(), name="api-credit-list"),
    path("orders/<int:order_id>/credits/", views.OrderCreditsApi.as_view(), name="api-order-credits"),
    path("guides/<int:guide_id>/credits/", views.GuideCreditsApi.as_view(), name="api-guide-credits"),
]
