"""Back-office pages of the ledger: parties, accounts (freeze, counter cash),
entries (reversal requests), holds, blocks and validator keys. Read-only; every
change goes through bank.services."""

import uuid

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext as _

from bank import services
from bank.admin.common import (
    FreezeActionsMixin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    RoleActionsMixin,
    action_with_form,
    amount_field,
)
from bank.models import (
    Account,
    ApprovalRequest,
    Block,
    BlockAttestation,
    Hold,
    JournalEntry,
    Party,
    Posting,
    ValidatorKey,
)


class CashForm(forms.Form):
    amount = amount_field(help_text="Won counted at the counter.")
    reason = forms.CharField(
        label="Slip reference", max_length=300, help_text="The counter slip's number and anything worth noting."
    )
    form_key = forms.CharField(widget=forms.HiddenInput, initial=lambda: uuid.uuid4().hex, max_length=64)


@admin.register(Party)
class PartyAdmin(ReadOnlyAdmin):
    list_display = ["external_ref", "kind", "display_name", "created_at"]
    list_filter = ["kind"]
    search_fields = ["external_ref", "display_name"]


@admin.register(Account)
class AccountAdmin(FreezeActionsMixin, ReadOnlyAdmin):
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
    actions = ["freeze", "request_unfreeze", "cash_deposit", "cash_withdrawal"]
    action_permissions = {"freeze": "bank.freeze_account", "cash": "bank.record_cash"}

    @admin.action(description="Cash paid in at the counter", permissions=["cash"])
    def cash_deposit(self, request, queryset):
        return self._cash(request, queryset, services.record_cash_deposit, "Cash paid in", "paid in")

    @admin.action(description="Cash paid out at the counter", permissions=["cash"])
    def cash_withdrawal(self, request, queryset):
        return self._cash(request, queryset, services.record_cash_withdrawal, "Cash paid out", "paid out")

    def _cash(self, request, queryset, service, title: str, done: str):
        def call(account, data):
            result = service(
                actor=request.user,
                account=account,
                amount=data["amount"],
                reference=data["reason"],
                # one key per form shown, per account: sending the form twice counts the cash once
                idempotency_key=f"{data['form_key']}:{account.pk}",
            )
            if isinstance(result, ApprovalRequest):  # large cash: posted once an approver agrees
                self.message_user(
                    request,
                    _("%(account)s: %(amount)s won needs an approver: approval request #%(request)s.")
                    % {"account": account, "amount": f"{data['amount']:,}", "request": result.pk},
                    messages.WARNING,
                )
                return False
            return True

        return action_with_form(self, request, queryset, title=title, done=done, form_class=CashForm, call=call)

    freeze_title = "Freeze accounts"

    def freeze_one(self, request, account, reason: str):
        services.set_account_status(actor=request.user, account=account, status=Account.Status.FROZEN, reason=reason)

    def request_unfreeze_one(self, request, account, reason: str):
        services.request_approval(actor=request.user, kind="unfreeze_account", target=account, reason=reason)


class PostingInline(ReadOnlyInline):
    model = Posting
    fields = ["account", "currency", "amount"]
    readonly_fields = fields
    raw_id_fields = ["account"]


@admin.register(JournalEntry)
class JournalEntryAdmin(RoleActionsMixin, ReadOnlyAdmin):
    list_display = ["id", "kind", "reference", "created_at", "block", "short_hash"]
    list_filter = ["kind"]
    search_fields = ["reference", "idempotency_key", "hash"]
    inlines = [PostingInline]
    list_select_related = ["block"]
    actions = ["request_reversal"]
    action_permissions = {"adjust": "bank.adjust_ledger"}

    @admin.display(description="hash")
    def short_hash(self, entry):
        return entry.hash[:16] + "…"

    @admin.action(description="Request a reversing entry (needs an approver)", permissions=["adjust"])
    def request_reversal(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            title="Request reversal",
            done="reversal requested",
            call=lambda entry, data: services.request_approval(
                actor=request.user,
                kind="manual_adjustment",
                target=entry,
                payload={"mode": "reverse"},
                reason=data["reason"],
            ),
        )


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
    list_display = ["height", "version", "entry_count", "document_count", "sealed_at", "hash", "merkle_root"]
    inlines = [AttestationInline]


@admin.register(ValidatorKey)
class ValidatorKeyAdmin(ReadOnlyAdmin):
    """Public keys only: the secret keys are files on the validators' nodes."""

    list_display = ["name", "party", "is_active", "public_key"]
