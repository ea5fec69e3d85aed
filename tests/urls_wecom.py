"""URLs for the WeCom and member-import tests: the WeCom API and the import page mounted as the project will
mount them, plus the admin (for the page's login redirect and breadcrumbs).

Only these, not the whole project's url tree, so these tests do not depend on other areas' routes.
"""

from django.contrib import admin
from django.urls import include, path

from members.admin_import import member_import_page

urlpatterns = [
    path("api/v1/wecom/", include("members.api.wecom_urls")),
    path("admin/members/member/import/", admin.site.admin_view(member_import_page), name="test_member_import"),
    path("admin/", admin.site.urls),
]
