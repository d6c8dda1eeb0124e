"""Pages of credentials (logins, API tokens): the superuser's only, whatever a
staff role's group holds (bank.roles refuses such permissions too)."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from bank.admin.common import ReadOnlyAdmin
from bank.models import ApiToken


class SuperuserOnlyMixin:
    """A page of credentials (logins, API tokens): no staff role opens it, whatever
    permissions its group holds (bank/roles.py refuses them too); only the superuser."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request, obj=None):
        return self.has_module_permission(request) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_module_permission(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request) and super().has_delete_permission(request, obj)


@admin.register(ApiToken)
class ApiTokenAdmin(SuperuserOnlyMixin, ReadOnlyAdmin):
    """Who is logged in to the API, until when. The token itself was shown once to its
    holder and is not stored; its digest is not shown either (it is the lookup key)."""

    list_display = ["id", "user", "masked_token", "created_at", "expires_at", "revoked_at"]
    list_filter = ["revoked_at", "expires_at"]
    search_fields = ["user__username"]
    list_select_related = ["user"]
    fields = ["user", "masked_token", "created_at", "expires_at", "revoked_at"]
    readonly_fields = fields

    @admin.display(description="token")
    def masked_token(self, token):
        return "•" * 8 + " (shown once to its holder; stored as a digest)"


class CredentialUserAdmin(SuperuserOnlyMixin, UserAdmin):
    """Logins and their password hashes: the superuser's (Django masks the hash)."""


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), CredentialUserAdmin)
