"""Lifting a login lockout (django-axes counts the failures; see bank.lockout): a
teller, having checked who is asking, lets the pair log in again before the lockout ends."""

from axes.models import AccessAttempt
from django.db import transaction

from bank.services.audit import record_audit
from bank.services.controls import require_reason, require_role

LIFT_PERMISSION = "axes.delete_accessattempt"


def lift_login_lockout(*, actor, attempt: AccessAttempt, reason: str) -> None:
    """Forget one (username, address) pair's failed logins, audited."""
    require_role(actor, LIFT_PERMISSION)
    reason = require_reason(reason)
    with transaction.atomic():
        before = {
            "username": attempt.username,
            "ip_address": attempt.ip_address,
            "failures": attempt.failures_since_start,
        }
        AccessAttempt.objects.filter(pk=attempt.pk).delete()
        record_audit(actor=actor, action="lift_login_lockout", target=attempt, before=before, reason=reason)
