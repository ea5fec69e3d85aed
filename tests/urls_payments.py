"""URLs for the payment and refund tests: the project's URLs plus the payment routes mounted as the project will."""

from django.urls import include, path

from retail_crm.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path("api/v1/", include("mall.api.pay_urls")),
    *project_urlpatterns,
]

handler404 = "retail_crm.views.not_found"
handler500 = "retail_crm.views.server_error"
