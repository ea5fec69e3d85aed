from rest_framework.permissions import BasePermission

from retail_crm.scoping import actor_for


class IsStaffMember(BasePermission):
    """Staff API: the caller must hold a staff role (or be a platform superuser)."""

    message = "This endpoint is for staff accounts."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and actor_for(request.user).is_staff_member)
