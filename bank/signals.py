"""Admin changes land in the audit log too: every django.contrib.admin LogEntry
(add, change, delete made in the back office) is copied into AuditEvent."""

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.db.models.signals import post_save
from django.dispatch import receiver

from bank.models import AuditEvent

_VERBS = {ADDITION: "add", CHANGE: "change", DELETION: "delete"}


@receiver(post_save, sender=LogEntry, dispatch_uid="bank.audit_admin_log_entry")
def copy_admin_change_to_audit(sender, instance: LogEntry, created: bool, **kwargs) -> None:
    if not created:
        return
    model = instance.content_type.model_class().__name__ if instance.content_type_id else "unknown"
    user = instance.user
    AuditEvent.objects.create(
        actor=user,
        actor_label=user.get_username(),
        action=f"admin.{_VERBS.get(instance.action_flag, 'other')}",
        target_type=model,
        target_id=str(instance.object_id or "")[:64],
        before=None,
        after={"object": instance.object_repr, "change": instance.get_change_message()},
        at=instance.action_time,
    )
