"""The back office's page of login lockouts (django-axes' failed-login counts): tellers
see who is locked out and lift a lockout, with a reason, through bank.services. The
failed logins' form data is not shown: it is nobody's business, whatever axes masks."""

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from bank import services
from bank.admin.common import ReadOnlyAdmin, RoleActionsMixin, action_with_form
from bank.services.lockouts import LIFT_PERMISSION


@admin.register(AccessAttempt)
class LoginLockoutAdmin(RoleActionsMixin, ReadOnlyAdmin):
    list_display = ["username", "ip_address", "path_info", "failures_since_start", "attempt_time", "is_locked"]
    fields = ["username", "ip_address", "path_info", "user_agent", "failures_since_start", "attempt_time"]
    readonly_fields = fields
    search_fields = ["username", "ip_address"]
    ordering = ["-attempt_time"]
    actions = ["lift_lockout"]
    action_permissions = {"lift": LIFT_PERMISSION}

    @admin.display(boolean=True, description=_("Locked out"))
    def is_locked(self, attempt):
        return attempt.failures_since_start >= settings.AXES_FAILURE_LIMIT

    @admin.action(description=_("Lift the lockout (with a reason)"), permissions=["lift"])
    def lift_lockout(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            title=_("Lift the lockout"),
            done=_("lockouts lifted"),
            call=lambda attempt, data: services.lift_login_lockout(
                actor=request.user, attempt=attempt, reason=data["reason"]
            ),
        )
