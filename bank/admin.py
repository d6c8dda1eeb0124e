"""Back-office views of the ledger. Read-only: money moves only through bank.services."""

from django.contrib import admin

from bank.models import Account, AuditEvent, Block, BlockAttestation, Hold, JournalEntry, Party, Posting, ValidatorKey


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Party)
class PartyAdmin(ReadOnlyAdmin):
    list_display = ["external_ref", "kind", "display_name", "created_at"]
    list_filter = ["kind"]
    search_fields = ["external_ref", "display_name"]


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = [
        "code",
        "owner",
        "currency",
        "normal_side",
        "status",
        "natural_balance",
        "on_hold",
        "may_go_negative",
    ]
    list_filter = ["currency", "normal_side", "status"]
    search_fields = ["code", "owner__external_ref"]
    list_select_related = ["owner"]


class PostingInline(ReadOnlyInline):
    model = Posting
    fields = ["account", "currency", "amount"]
    readonly_fields = fields
    raw_id_fields = ["account"]


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "reference", "created_at", "block", "short_hash"]
    list_filter = ["kind"]
    search_fields = ["reference", "idempotency_key", "hash"]
    inlines = [PostingInline]
    list_select_related = ["block"]

    @admin.display(description="hash")
    def short_hash(self, entry):
        return entry.hash[:16] + "…"


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = ["id", "account", "destination", "amount", "captured_amount", "status", "expires_at"]
    list_filter = ["status", "kind"]
    list_select_related = ["account", "destination"]


class AttestationInline(ReadOnlyInline):
    model = BlockAttestation
    fields = ["validator", "signature"]
    readonly_fields = fields


@admin.register(Block)
class BlockAdmin(ReadOnlyAdmin):
    list_display = ["height", "entry_count", "sealed_at", "hash", "merkle_root"]
    inlines = [AttestationInline]


@admin.register(ValidatorKey)
class ValidatorKeyAdmin(ReadOnlyAdmin):
    list_display = ["name", "party", "is_active", "public_key"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor_label", "action", "target_type", "target_id", "reason"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor_label", "target_id", "reason"]
    date_hierarchy = "at"


from bank import admin_verification  # noqa: E402,F401  back-office verification page (issue 6)
