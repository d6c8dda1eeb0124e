"""Back-office pages of the ledger's controls: maker-checker approval requests,
minter allowances and the payments pause. Changes go through bank.services."""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.utils.translation import gettext as _

from bank import services
from bank.admin.common import (
    OptionalReasonForm,
    ReadOnlyAdmin,
    ReadOnlyInline,
    ReasonForm,
    RoleActionsMixin,
    action_with_form,
    amount_field,
)
from bank.models import ApprovalRequest, ApprovalVote, ControlState, MinterAllowance


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
