"""Django admin, scoped by the same helper as every other read.

A staff user sees in the admin exactly the rows ``retail_crm.scoping`` gives
them; foreign-key choices are scoped too, so nobody can attach a row to a
brand or store they cannot see. Which roles may write is declared per admin.
"""

from __future__ import annotations

from django.contrib import admin

from retail_crm.scoping import actor_for, in_scope, scoped

READ_ONLY: frozenset[str] = frozenset()


class ScopedModelAdmin(admin.ModelAdmin):
    """Admin whose rows, choices and permissions follow the viewer's scope."""

    #: roles that may add/change/delete rows of this model (inside their scope)
    write_roles: frozenset[str] = frozenset({"hq"})

    def get_queryset(self, request):
        return scoped(super().get_queryset(request), request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        if getattr(related, "scope_paths", None) is not None and not request.user.is_superuser:
            kwargs["queryset"] = scoped(related._default_manager.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _actor(self, request):
        return actor_for(request.user)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff and self._actor(request).is_staff_member

    def has_view_permission(self, request, obj=None):
        if not self.has_module_permission(request):
            return False
        return obj is None or request.user.is_superuser or in_scope(obj, request.user)

    def _may_write(self, request, obj=None) -> bool:
        if not self.has_module_permission(request):
            return False
        if request.user.is_superuser:
            return True
        if self._actor(request).role not in self.write_roles:
            return False
        return obj is None or in_scope(obj, request.user)

    def has_add_permission(self, request):
        return self._may_write(request)

    def has_change_permission(self, request, obj=None):
        return self._may_write(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._may_write(request, obj)
