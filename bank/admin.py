"""Back-office views of the ledger and its controls. Read-only: money moves and
controls change only through bank.services, so the admin gets the same
maker-checker, role checks and audit rows as every other caller. Staff actions
ask for a reason on an intermediate page, and show a refusal with its code."""

import csv
import uuid
from datetime import datetime

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from bank import services
from bank.errors import BankError
from bank.models import (
    MAX_AMOUNT,
    Account,
    ApiToken,
    ApprovalRequest,
    ApprovalVote,
    AuditEvent,
    Block,
    BlockAttestation,
    ControlState,
    Hold,
    JournalEntry,
    MinterAllowance,
    Party,
    Posting,
    ValidatorKey,
)


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


# --- staff actions with a reason -----------------------------------------------------------------


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=300, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


class OptionalReasonForm(forms.Form):
    reason = forms.CharField(max_length=300, required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


def form_refusal(form: forms.Form) -> str:
    """A form's errors as one admin message, with the code a service's refusal would carry."""
    fields = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
    return _("Nothing done: invalid_request (%(fields)s)") % {"fields": fields}


def action_with_form(modeladmin, request, queryset, *, title: str, done: str, call, form_class=ReasonForm):
    """An admin action that first shows `form_class` (a reason and any other
    fields), then runs `call(obj, cleaned_data)` per selected row through a
    service. A refusal is shown with its error code; the other rows go on. A
    call that returns False was not done (it showed its own message)."""
    form = form_class(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        count = 0
        for obj in queryset:
            try:
                if call(obj, form.cleaned_data) is not False:
                    count += 1
            except BankError as error:
                modeladmin.message_user(request, f"{obj}: {error.code}: {error}", messages.ERROR)
        if count:
            modeladmin.message_user(request, f"{done}: {count}", messages.SUCCESS)
        return None  # back to the list, with the messages
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "queryset": queryset,
        "action": request.POST.get("action", ""),
        "opts": modeladmin.model._meta,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/bank/action_form.html", context)


def amount_field(**kwargs) -> forms.IntegerField:
    """Whole won, bounded to what a ledger line may carry (bank.models.MAX_AMOUNT)."""
    return forms.IntegerField(min_value=1, max_value=MAX_AMOUNT, **kwargs)


class CashForm(forms.Form):
    amount = amount_field(help_text="Won counted at the counter.")
    reason = forms.CharField(
        label="Slip reference", max_length=300, help_text="The counter slip's number and anything worth noting."
    )
    form_key = forms.CharField(widget=forms.HiddenInput, initial=lambda: uuid.uuid4().hex, max_length=64)


class RoleActionsMixin:
    """`@admin.action(permissions=["x"])` asks has_x_permission; each maps to one role permission."""

    action_permissions: dict[str, str] = {}

    def changelist_view(self, request, extra_context=None):
        # Django would 500 on a crafted selection that is not a list of ids; answer it plainly instead.
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME) if request.method == "POST" else []
        # ASCII digits within a bigint: "²" passes isdigit() and 10**30 overflows the id column.
        if any(not (value.isascii() and value.isdigit() and len(value) <= 18) for value in selected):
            self.message_user(
                request, "Nothing done: invalid_selection (the selected rows must be ids).", messages.ERROR
            )
            return HttpResponseRedirect(request.get_full_path())
        return super().changelist_view(request, extra_context)

    def __getattr__(self, name):
        if name.startswith("has_") and name.endswith("_permission"):
            key = name[len("has_") : -len("_permission")]
            if key in self.action_permissions:
                return lambda request, obj=None: request.user.has_perm(self.action_permissions[key])
        raise AttributeError(name)


class FreezeActionsMixin(RoleActionsMixin):
    """Freeze at once with a reason; unfreeze only by a request an approver signs off.
    Subclasses say how for their kind of row; `action_permissions` maps "freeze"."""

    freeze_title = "Freeze"

    def freeze_one(self, request, obj, reason: str):
        raise NotImplementedError

    def request_unfreeze_one(self, request, obj, reason: str):
        raise NotImplementedError

    @admin.action(description="Freeze (now, with a reason)", permissions=["freeze"])
    def freeze(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            title=self.freeze_title,
            done="frozen",
            call=lambda obj, data: self.freeze_one(request, obj, data["reason"]),
        )

    @admin.action(description="Request unfreeze (needs an approver)", permissions=["freeze"])
    def request_unfreeze(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            title="Request unfreeze",
            done="unfreeze requested",
            call=lambda obj, data: self.request_unfreeze_one(request, obj, data["reason"]),
        )


# --- the ledger ----------------------------------------------------------------------------------


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
    list_display = ["height", "entry_count", "sealed_at", "hash", "merkle_root"]
    inlines = [AttestationInline]


@admin.register(ValidatorKey)
class ValidatorKeyAdmin(ReadOnlyAdmin):
    """Public keys only: the secret keys are files on the validators' nodes."""

    list_display = ["name", "party", "is_active", "public_key"]


# --- credentials: the superuser's only ------------------------------------------------------------


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


# --- controls ------------------------------------------------------------------------------------


class VoteInline(ReadOnlyInline):
    model = ApprovalVote
    fields = ["approver", "at"]
    readonly_fields = fields


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(RoleActionsMixin, ReadOnlyAdmin):
    """The checker's queue. Approve and reject call the service, which refuses a
    maker approving their own request however the POST was made."""

    list_display = ["id", "kind", "target_type", "target_id", "maker", "status", "reason", "created_at", "decided_by"]
    list_filter = ["status", "kind"]
    search_fields = ["reason", "target_id", "maker__username"]
    list_select_related = ["maker", "decided_by"]
    readonly_fields = [
        "kind",
        "target_type",
        "target_id",
        "payload",
        "reason",
        "maker",
        "required_approvals",
        "status",
        "decided_by",
        "decision_reason",
        "result",
        "created_at",
        "decided_at",
    ]
    inlines = [VoteInline]
    actions = ["approve", "reject"]
    action_permissions = {"approve": "bank.approve_request"}

    def changelist_view(self, request, extra_context=None):
        # Django drops an action the user may not run before any of our code sees it;
        # a POST that tries one anyway (a crafted form) is a bypass attempt worth a record.
        attempted = request.POST.get("action") if request.method == "POST" else None
        if attempted in ("approve", "reject") and not request.user.has_perm("bank.approve_request"):
            selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)[:100]
            # Only ids are worth a record (and storable); the rest is refused below as invalid_selection.
            for target_id in (value for value in selected if value.isascii() and value.isdigit()):
                services.record_audit(
                    actor=request.user,
                    action=f"approval.{attempted}_refused",
                    target=ApprovalRequest(pk=str(target_id)[:64]),
                    after={"code": "role_required", "via": "admin"},
                    reason="admin action without the approver role",
                )
        return super().changelist_view(request, extra_context)

    @admin.action(description="Approve (never your own request)", permissions=["approve"])
    def approve(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            title="Approve requests",
            done="approved",
            form_class=OptionalReasonForm,
            call=lambda req, data: self._approve_one(request, req, data["reason"]),
        )

    def _approve_one(self, request, approval, reason: str):
        decided = services.approve_request(actor=request.user, request=approval, reason=reason)
        if decided.status == ApprovalRequest.Status.FAILED:  # approved, but the change itself was refused
            error = decided.result or {}
            self.message_user(
                request,
                _("#%(request)s approved, but it failed: %(code)s: %(message)s")
                % {"request": decided.pk, "code": error.get("error"), "message": error.get("message")},
                messages.ERROR,
            )
            return False
        return True

    @admin.action(description="Reject", permissions=["approve"])
    def reject(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            title="Reject requests",
            done="rejected",
            call=lambda req, data: services.reject_request(actor=request.user, request=req, reason=data["reason"]),
        )


class AllowanceRaiseForm(ReasonForm):
    amount = amount_field(help_text="Won to add to the allowance.")


@admin.register(MinterAllowance)
class MinterAllowanceAdmin(RoleActionsMixin, ReadOnlyAdmin):
    list_display = ["minter", "allowance", "minted_total", "updated_at"]
    actions = ["request_raise"]
    action_permissions = {"raise": "bank.raise_allowance"}

    @admin.action(description="Request an allowance raise (needs an approver)", permissions=["raise"])
    def request_raise(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            title="Request allowance raise",
            done="raise requested",
            form_class=AllowanceRaiseForm,
            call=lambda row, data: services.request_allowance_raise(
                actor=request.user, minter=row.minter, amount=data["amount"], reason=data["reason"]
            ),
        )


@admin.register(ControlState)
class ControlStateAdmin(RoleActionsMixin, ReadOnlyAdmin):
    """The pause switch: pause stops payments and transfers; refunds, settlement and freezes go on."""

    list_display = ["__str__", "payments_paused", "reason", "changed_by", "changed_at"]
    actions = ["pause", "resume"]
    action_permissions = {"pause": "bank.pause_payments"}

    def get_queryset(self, request):
        ControlState.objects.get_or_create(pk=1)  # the switch is always there to flip
        return super().get_queryset(request)

    @admin.action(description="Pause payments and transfers", permissions=["pause"])
    def pause(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            title="Pause payments and transfers",
            done="paused",
            call=lambda state, data: services.set_payments_paused(
                actor=request.user, paused=True, reason=data["reason"]
            ),
        )

    @admin.action(description="Resume payments and transfers", permissions=["pause"])
    def resume(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            title="Resume payments and transfers",
            done="resumed",
            call=lambda state, data: services.set_payments_paused(
                actor=request.user, paused=False, reason=data["reason"]
            ),
        )


# --- the audit log -------------------------------------------------------------------------------

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


# Pages in their own modules, registered here (they import this module's helpers).
from bank import admin_lockout, admin_verification  # noqa: E402,F401  login lockouts (issue 13), verification (issue 6)
