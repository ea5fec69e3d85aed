from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from retail_crm import views

# Rendered in the viewer's language (zh-hans: 零售私域运营平台).
admin.site.site_header = _("Retail private-domain operations")
admin.site.site_title = _("Retail private-domain operations")

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="registration/login.html"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("hq/", include("analytics.urls")),
    path("workbench/", include("guides.urls")),
    path("api/v1/", include("retail_crm.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("favicon.ico", RedirectView.as_view(url="/static/favicon.svg", permanent=True)),
]

handler404 = "retail_crm.views.not_found"
handler500 = "retail_crm.views.server_error"
