from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from livestream import views as livestream_views
from mall import views as mall_views
from marketing.views import links as marketing_links
from retail_crm import account_views, views

# Rendered in the viewer's language (zh-hans: 零售私域运营平台).
admin.site.site_header = _("Retail private-domain operations")
admin.site.site_title = _("Retail private-domain operations")

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="registration/login.html"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password-change/", account_views.StaffPasswordChangeView.as_view(), name="password_change"),
    path("accounts/password-change/done/", account_views.StaffPasswordChangeDoneView.as_view(),
         name="password_change_done"),
    path("accounts/password-reset/", account_views.EmailPasswordResetView.as_view(), name="password_reset"),
    path("accounts/password-reset/sent/", account_views.EmailPasswordResetDoneView.as_view(),
         name="password_reset_done"),
    path("accounts/password-reset/<uidb64>/<token>/", account_views.EmailPasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("accounts/password-reset/done/", account_views.EmailPasswordResetCompleteView.as_view(),
         name="password_reset_complete"),
    path("i18n/", include("django.conf.urls.i18n")),
    re_path(r"^t/(?P<code>[A-Za-z0-9_-]{8,16})$", marketing_links.link_redirect, name="marketing-link"),
    path("hq/live-schedule/", livestream_views.schedule, name="live-schedule"),
    path("hq/coupons/", mall_views.coupons, name="hq-coupons"),
    path("hq/marketing/", include("marketing.urls")),
    path("hq/", include("analytics.urls")),
    path("workbench/", include("guides.urls")),
    path("api/v1/", include("retail_crm.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script from a URL: no inline script under the CSP.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api/swagger_ui.html"),
         name="api-docs"),
    path("favicon.ico", RedirectView.as_view(url="/static/favicon.svg", permanent=True)),
]

handler403 = "retail_crm.views.permission_denied"
handler404 = "retail_crm.views.not_found"
handler500 = "retail_crm.views.server_error"
