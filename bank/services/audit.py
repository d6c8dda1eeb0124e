"""The audit log's one writer. Every staff action calls record_audit inside the
same transaction as the change it records, so neither exists without the other."""

from django.utils import timezone

from bank.models import AuditEvent


def record_audit(*, actor, action: str, target, before=None, after=None, reason: str = "") -> AuditEvent:
    """`actor` is a user or None for a system job (then named by `action`'s caller)."""
    label = getattr(actor, "get_username", lambda: "system")() if actor is not None else "system"
    return AuditEvent.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=label,
        action=action,
        target_type=type(target).__name__,
        target_id=str(getattr(target, "pk", target)),
        reason=reason,
        before=before,
        after=after,
        at=timezone.now(),
    )
