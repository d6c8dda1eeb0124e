"""Back-office pages of the token. Records of money movements are read-only;
programs, merchants and freezes change only through voucher.services, so the
admin gets the same maker-checker, checks and audit rows as every other caller."""

from django import forms
from django.contrib import admin, messages

from bank import services as bank_services
from bank.admin import (
    FreezeActionsMixin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    ReasonForm,
    RoleActionsMixin,
    action_with_form,
    amount_field,
)
from bank.errors import BankError
from bank.models import Account
from bank.services.api_tokens import REVOKE_PERMISSION as REVOKE_API_TOKENS
from voucher import services
from voucher.admin_devices import DeviceKeysAdminMixin
from voucher.models import (
    Benefit,
    KycTier,
    Lot,
    Merchant,
    MerchantMember,
    MerchantPayment,
    Payment,
    PaymentLot,
    PaymentRequest,
    ProgramRule,
    Redemption,
    Refund,
    RuleTier,
    TopUp,
    Transfer,
    VoucherProgram,
    Wallet,
    WalletLimitRule,
)
from voucher.services.programs import EDITABLE_FIELDS, check_program


def _run_each(modeladmin, request, queryset, verb: str, call) -> None:
    """Apply a service to each selected row; a refusal is shown with its code, the rest go on."""
    done = 0
    for obj in queryset:
        try:
            call(obj)
            done += 1
        except BankError as error:
            modeladmin.message_user(request, f"{obj}: {error.code}: {error}", messages.ERROR)
    if done:
        modeladmin.message_user(request, f"{verb}: {done}", messages.SUCCESS)


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
            self.add_error(None, f"{error.code}: {error}")


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
        _run_each(
            self, request, queryset, "submitted", lambda p: services.submit_program(actor=request.user, program=p)
        )

    @admin.action(description="Approve (not by its maker)", permissions=["approve"])
    def approve(self, request, queryset):
        _run_each(
            self, request, queryset, "approved", lambda p: services.approve_program(actor=request.user, program=p)
        )

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


class WalletLimitRuleForm(forms.ModelForm):
    """Limits are won a ledger line may carry (bank.models.MAX_AMOUNT), refused on the form above it."""

    named_max_balance = amount_field()
    anonymous_max_balance = amount_field()
    per_payment_limit = amount_field()
    daily_payment_limit = amount_field()

    class Meta:
        model = WalletLimitRule
        fields = [
            "effective_from",
            "named_max_balance",
            "anonymous_max_balance",
            "per_payment_limit",
            "daily_payment_limit",
            "redeem_min_used_percent",
            "plain_lot_valid_days",
        ]


@admin.register(WalletLimitRule)
class WalletLimitRuleAdmin(admin.ModelAdmin):
    """Dated limits: staff add a row for a change; a row already in force is never edited."""

    form = WalletLimitRuleForm

    list_display = [
        "effective_from",
        "named_max_balance",
        "anonymous_max_balance",
        "per_payment_limit",
        "daily_payment_limit",
        "redeem_min_used_percent",
        "plain_lot_valid_days",
    ]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SeizureForm(ReasonForm):
    order_reference = forms.CharField(max_length=100, help_text="The court order's reference number.")


class KycTierForm(ReasonForm):
    kyc_tier = forms.ChoiceField(choices=KycTier.choices)


@admin.register(Wallet)
class WalletAdmin(FreezeActionsMixin, ReadOnlyAdmin):
    list_display = ["id", "owner", "kyc_tier", "status", "created_at"]
    list_filter = ["kyc_tier", "status"]
    search_fields = ["owner__external_ref"]
    list_select_related = ["owner"]
    actions = ["freeze", "request_unfreeze", "request_seizure", "change_kyc_tier"]
    action_permissions = {
        "freeze": "voucher.freeze_wallet",
        "seize": "voucher.seize_wallet",
        "kyc": "voucher.change_kyc_tier",
    }

    freeze_title = "Freeze wallets"

    def freeze_one(self, request, wallet, reason: str):
        services.set_wallet_status(actor=request.user, wallet=wallet, status=Wallet.Status.FROZEN, reason=reason)

    def request_unfreeze_one(self, request, wallet, reason: str):
        services.request_unfreeze(actor=request.user, target=wallet, reason=reason)

    @admin.action(description="Request seizure under a court order (needs two approvers)", permissions=["seize"])
    def request_seizure(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            title="Request seizure",
            done="seizure requested",
            form_class=SeizureForm,
            call=lambda w, data: services.request_seizure(
                actor=request.user, wallet=w, order_reference=data["order_reference"], reason=data["reason"]
            ),
        )

    @admin.action(description="Change KYC tier", permissions=["kyc"])
    def change_kyc_tier(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            title="Change KYC tier",
            done="KYC tier changed",
            form_class=KycTierForm,
            call=lambda w, data: services.set_kyc_tier(
                actor=request.user, wallet=w, kyc_tier=data["kyc_tier"], reason=data["reason"]
            ),
        )


@admin.register(Merchant)
class MerchantAdmin(DeviceKeysAdminMixin, FreezeActionsMixin, ReadOnlyAdmin):
    list_display = ["name", "business_registration_number", "category", "district", "annual_revenue", "status"]
    list_filter = ["category", "district", "status"]
    search_fields = ["name", "business_registration_number"]
    actions = ["freeze", "request_unfreeze"]
    action_permissions = {"freeze": "voucher.freeze_merchant"}
    # The merchant's page also lists its device keys, to revoke one and to issue an enrollment code.
    change_form_template = "admin/voucher/merchant/change_form.html"
    change_url_name = "admin:voucher_merchant_change"

    freeze_title = "Freeze merchants"

    def device_party(self, merchant):
        return merchant.party

    def get_urls(self):
        return self.device_urls() + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        merchant = self.get_object(request, object_id)
        if merchant is not None and self.has_view_permission(request, merchant):
            extra_context = {**(extra_context or {}), **self.device_context(request, merchant)}
        return super().change_view(request, object_id, form_url, extra_context)

    def freeze_one(self, request, merchant, reason: str):
        services.set_merchant_status(
            actor=request.user, merchant=merchant, status=Merchant.Status.FROZEN, reason=reason
        )

    def request_unfreeze_one(self, request, merchant, reason: str):
        services.request_unfreeze(actor=request.user, target=merchant, reason=reason)


@admin.register(Lot)
class LotAdmin(ReadOnlyAdmin):
    list_display = ["id", "wallet", "program", "expires_on", "balance", "status", "expired_amount"]
    list_filter = ["status", "program"]
    list_select_related = ["wallet__owner", "program", "account"]


class PaymentLotInline(ReadOnlyInline):
    model = PaymentLot
    fields = ["lot", "amount", "refunded_amount", "spend_order"]
    readonly_fields = fields


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = ["amount", "to_funder_amount", "cashback_clawed_back", "entry", "created_at"]
    readonly_fields = fields


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["id", "wallet", "merchant", "amount", "refunded_amount", "cashback_amount", "created_at"]
    search_fields = ["reference", "idempotency_key"]
    list_select_related = ["wallet__owner", "merchant"]
    inlines = [PaymentLotInline, RefundInline]


@admin.register(TopUp)
class TopUpAdmin(ReadOnlyAdmin):
    list_display = ["id", "wallet", "amount", "bonus_amount", "created_at"]
    list_select_related = ["wallet__owner"]


@admin.register(Benefit)
class BenefitAdmin(ReadOnlyAdmin):
    list_display = ["id", "program", "wallet", "amount", "base_amount", "basis", "issued_by", "month", "created_at"]
    list_filter = ["program", "basis", "month"]
    list_select_related = ["program", "wallet__owner", "issued_by"]


for model, columns in (
    (Refund, ["id", "payment", "amount", "to_funder_amount", "cashback_clawed_back", "created_at"]),
    (Transfer, ["id", "from_wallet", "to_wallet", "amount", "created_at"]),
    (MerchantPayment, ["id", "payer", "payee", "amount", "created_at"]),
    (Redemption, ["id", "wallet", "amount", "paid_in", "created_at"]),
    (PaymentRequest, ["id", "merchant", "amount", "reference", "status", "expires_at", "payment"]),
):
    admin.site.register(model, type(f"{model.__name__}Admin", (ReadOnlyAdmin,), {"list_display": columns}))


@admin.register(MerchantMember)
class MerchantMemberAdmin(RoleActionsMixin, ReadOnlyAdmin):
    """Owners and clerks (added by the service add_merchant_member). A teller logs a
    member's API logins out (a till phone lost or a clerk gone), with a reason, audited."""

    list_display = ["user", "merchant", "role", "created_at"]
    list_select_related = ["user", "merchant"]
    action_permissions = {"revoke_tokens": REVOKE_API_TOKENS}
    actions = ["revoke_tokens"]

    @admin.action(description="Log out every API login", permissions=["revoke_tokens"])
    def revoke_tokens(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset.select_related("user"),
            title="Log out every API login of the selected members",
            done="Members logged out",
            call=lambda member, data: bank_services.revoke_api_tokens_of(
                actor=request.user, user=member.user, reason=data["reason"]
            ),
        )


# --- settlement (read-only: batches are made by voucher.services.settle_day / settle_merchant_now) ---

from voucher.models import SettlementBatch, SettlementLine  # noqa: E402
from voucher.selectors import batch_reconciliation  # noqa: E402


class SettlementLineInline(ReadOnlyInline):
    model = SettlementLine
    fields = [
        "merchant",
        "status",
        "held_reason",
        "payment_count",
        "gross",
        "refunds",
        "from_merchants",
        "to_merchants",
        "fee_rate_bp",
        "fee",
        "net",
        "entry",
    ]
    readonly_fields = fields


@admin.register(SettlementBatch)
class SettlementBatchAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "period",
        "kind",
        "status",
        "merchant_count",
        "paid_count",
        "held_count",
        "payment_count",
        "gross",
        "refunds",
        "fees",
        "net",
        "finished_at",
    ]
    list_filter = ["kind", "status"]
    date_hierarchy = "period"
    readonly_fields = ["reconciliation"]
    inlines = [SettlementLineInline]
    actions = ["resume"]

    @admin.display(description="reconciliation: net + fees == BKRW burned == KRW out of the reserve")
    def reconciliation(self, batch):
        report = batch_reconciliation(batch)
        verdict = "balanced" if report["balanced"] else "DOES NOT BALANCE"
        return (
            f"{verdict}: net {report['net']:,} + fees {report['fees']:,} = {report['net_plus_fees']:,}; "
            f"burned {report['bkrw_burned']:,}; reserve out {report['krw_out_of_reserve']:,}"
        )

    def has_run_permission(self, request):
        return request.user.has_perm("voucher.run_settlement")

    @admin.action(description="Finish the selected daily batches now (resume a stopped run)", permissions=["run"])
    def resume(self, request, queryset):
        daily = queryset.exclude(kind=SettlementBatch.Kind.INSTANT)
        _run_each(
            self,
            request,
            daily,
            "settled",
            lambda batch: services.settle_day(day=batch.period, acting_user=request.user),
        )


from voucher import admin_oversight  # noqa: E402,F401  reconciliation, customer view, fraud flags (issue 6)
