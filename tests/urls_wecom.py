"""URLs for the WeCom and member-import tests: the WeCom API and an admin whose MemberAdmin carries the
"Import members" page, mounted as the project will mount them once the hook lines are in (see the report).

Only these, not the whole project's url tree, so these tests do not depend on other areas' routes.
"""

from django.contrib import admin
from django.urls import include, path

from members.admin.importing import member_import_urls
from members.admin.members import MemberAdmin
from members.models import Member


class MemberAdminWithImport(MemberAdmin):
    """MemberAdmin with the one line it needs in get_urls (members/admin.py is owned elsewhere)."""

    def get_urls(self):
        return member_import_urls(self) + super().get_urls()


site = admin.AdminSite(name="admin")
site.register(Member, MemberAdminWithImport)

urlpatterns = [
    path("api/v1/wecom/", include("members.api.wecom_urls")),
    path("admin/", site.urls),
]
