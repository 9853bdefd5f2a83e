"""Who may do what through the API; declared on views as permission classes."""
from rest_framework.permissions import BasePermission


def requires(*perms: str) -> type[BasePermission]:
    """A permission class that lets in staff users holding every one of ``perms``."""

    class HasImagegenPermissions(BasePermission):
        message = "You need the permission(s): " + ", ".join(perms) + "."

        def has_permission(self, request, view) -> bool:
            user = request.user
            return bool(user and user.is_authenticated and user.is_staff and user.has_perms(perms))

    HasImagegenPermissions.__name__ = "Requires_" + "_".join(p.split(".")[-1] for p in perms)
    return HasImagegenPermissions


class CanSeeJob(BasePermission):
    """Staff see the jobs they started; other people's jobs need ``imagegen.view_job``."""

    message = "You may see your own jobs; other people's jobs need the permission imagegen.view_job."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)

    def has_object_permission(self, request, view, obj) -> bool:
        return obj.requested_by_id == request.user.pk or request.user.has_perm("imagegen.view_job")
