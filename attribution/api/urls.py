"""Sales-credit routes; retail_crm/api/urls.py mounts them under /api/v1/analytics/, where they have always been."""

from django.urls import path

from attribution.api import views

urlpatterns = [
    path("credits/", views.CreditListApi.as_view(), name="api-credit-list"),
    path("orders/<int:order_id>/credits/", views.OrderCreditsApi.as_view(), name="api-order-credits"),
    path("guides/<int:guide_id>/credits/", views.GuideCreditsApi.as_view(), name="api-guide-credits"),
]
