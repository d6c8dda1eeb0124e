"""The audit log's page: append-only for everyone, exported as CSV by the roles
that hold bank.export_audit."""

import csv
from datetime import datetime

from django.contrib import admin
from django.http import HttpResponse
from django.utils import timezone

from bank.admin.common import ReadOnlyAdmin, RoleActionsMixin
from bank.models import AuditEvent

AUDIT_CSV_COLUMNS = ["at", "actor_label", "action", "target_type", "target_id", "reason", "before", "after"]


def audit_csv(events) -> HttpResponse:
    """UTF-8 with a BOM, so Excel opens Korean text correctly."""
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(AUDIT_CSV_COLUMNS)
    for event in events.iterator():
        writer.writerow(
            [
                timezone.localtime(event.at).isoformat() if isinstance(event.at, datetime) else event.at,
                event.actor_label,
                event.action,
                event.target_type,
                event.target_id,
                event.reason,
                "" if event.before is None else event.before,
                "" if event.after is None else event.after,
            ]
        )
    return response


@admin.register(AuditEvent)
class AuditEventAdmin(RoleActionsMixin, ReadOnlyAdmin):
    """Append-only: no add, change or delete for anyone, superusers included."""

    list_display = ["at", "actor_label", "action", "target_type", "target_id", "reason"]
    list_filter = ["action", "target_type", ("actor", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["actor_label", "target_id", "reason", "action"]
    date_hierarchy = "at"
    actions = ["export_csv"]
    action_permissions = {"export": "bank.export_audit"}

    @admin.action(description="Export selected as CSV", permissions=["export"])
    def export_csv(self, request, queryset):
        return audit_csv(queryset.order_by("at", "id"))
