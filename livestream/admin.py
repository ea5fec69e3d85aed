"""Livestream admin: a scoped, read-only view of sessions.

Sessions are planned and moved only through livestream.services (the API), so the conflict checks and
row locks always apply; the admin never writes them.
"""

from __future__ import annotations

from django.contrib import admin

from livestream.models import LiveSession
from retail_crm.admin_scoping import READ_ONLY, ScopedModelAdmin


@admin.register(LiveSession)
class LiveSessionAdmin(ScopedModelAdmin):
    """Scoped list of live sessions; read-only because scheduling must go through the service."""

    list_display = ("title", "brand", "kind", "host_store", "host_guide", "status", "planned_start", "planned_end")
    list_filter = ("brand", "kind", "status", "platform")
    search_fields = ("title", "host_store__code", "host_guide__code")
    list_select_related = ("brand", "host_store", "host_guide")
    date_hierarchy = "planned_start"
    write_roles = READ_ONLY
