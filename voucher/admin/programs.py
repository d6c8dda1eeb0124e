"""Back-office pages of voucher programs and their rules: program managers make and
edit drafts through the program services; an approver (never the maker) approves."""

from django import forms
from django.contrib import admin

from bank.admin.common import ReadOnlyAdmin, ReadOnlyInline, RoleActionsMixin, action_with_form, run_each
from bank.errors import BankError
from bank.http.render import error_message
from bank.models import Account
from voucher import services
from voucher.models import ProgramRule, RuleTier, VoucherProgram
from voucher.services.programs import EDITABLE_FIELDS, check_program


class RuleTierInline(ReadOnlyInline):
    model = RuleTier
    fields = ["max_annual_revenue", "rate_bp"]
    readonly_fields = fields


class ProgramRuleInline(ReadOnlyInline):
    model = ProgramRule
    fields = ["effective_from", "rate_bp", "monthly_base_limit", "created_by", "created_at"]
    readonly_fields = fields
    show_change_link = True


class VoucherProgramForm(forms.ModelForm):
    """The fields a program manager may set; the service's own checks run in clean(),
    so a bad program is a form error on the page, never a 500."""

    class Meta:
        model = VoucherProgram
        fields = ["code", "name", "kind", *EDITABLE_FIELDS]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "funder_account" in self.fields:
            self.fields["funder_account"].queryset = Account.objects.filter(currency="KRW", normal_side="liability")

    def _post_clean(self):
        super()._post_clean()
        if self.instance.funder_account_id is None or self.errors:
            return
        try:
            check_program(self.instance)
        except BankError as error:
            self.add_error(None, error_message(error))


@admin.register(VoucherProgram)
class VoucherProgramAdmin(RoleActionsMixin, ReadOnlyAdmin):
    """Program managers create and edit drafts here through the program services;
    an approver (never the maker or an editor) approves."""

    form = VoucherProgramForm
    list_display = ["code", "name", "kind", "status", "budget", "issued_total", "is_transferable", "approved_by"]
    list_filter = ["kind", "status", "is_transferable"]
    search_fields = ["code", "name"]
    inlines = [ProgramRuleInline]
    actions = ["submit", "approve", "close"]
    action_permissions = {
        "submit": "voucher.submit_voucherprogram",
        "approve": "voucher.approve_voucherprogram",
        "close": "voucher.close_voucherprogram",
    }

    def has_add_permission(self, request, obj=None):
        return request.user.has_perm("voucher.add_voucherprogram")

    def has_change_permission(self, request, obj=None):
        editable = obj is None or obj.status in (VoucherProgram.Status.DRAFT, VoucherProgram.Status.PENDING_APPROVAL)
        return editable and request.user.has_perm("voucher.change_voucherprogram")

    def get_readonly_fields(self, request, obj=None):
        return ["code", "kind"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        changes = {field: form.cleaned_data[field] for field in EDITABLE_FIELDS if field in form.cleaned_data}
        if change:
            services.update_program(actor=request.user, program=obj, **changes)
            return
        budget = changes.pop("budget")
        funder = changes.pop("funder_account")
        made = services.create_program(
            actor=request.user,
            code=obj.code,
            name=changes.pop("name"),
            kind=obj.kind,
            funder_account=funder,
            budget=budget,
            **changes,
        )
        obj.pk, obj._state.adding = made.pk, False  # the admin logs and redirects to the row the service made

    @admin.action(description="Submit for approval", permissions=["submit"])
    def submit(self, request, queryset):
        run_each(self, request, queryset, "submitted", lambda p: services.submit_program(actor=request.user, program=p))

    @admin.action(description="Approve (not by its maker)", permissions=["approve"])
    def approve(self, request, queryset):
        run_each(self, request, queryset, "approved", lambda p: services.approve_program(actor=request.user, program=p))

    @admin.action(description="Close (stop issuing)", permissions=["close"])
    def close(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            title="Close programs",
            done="closed",
            call=lambda p, data: services.close_program(actor=request.user, program=p, reason=data["reason"]),
        )


@admin.register(ProgramRule)
class ProgramRuleAdmin(ReadOnlyAdmin):
    list_display = ["program", "effective_from", "rate_bp", "monthly_base_limit", "created_by"]
    list_filter = ["program"]
    inlines = [RuleTierInline]
