"""Back-office pages of the token. Records of money movements are read-only;
programs, merchants and freezes change only through voucher.services, so the
admin gets the same maker-checker, checks and audit rows as every other caller."""

from django.contrib import admin, messages

from bank.admin import ReadOnlyAdmin, ReadOnlyInline
from bank.errors import BankError
from voucher import services
from voucher.models import (
    Benefit,
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


@admin.register(VoucherProgram)
class VoucherProgramAdmin(ReadOnlyAdmin):
    list_display = ["code", "name", "kind", "status", "budget", "issued_total", "is_transferable", "approved_by"]
    list_filter = ["kind", "status", "is_transferable"]
    search_fields = ["code", "name"]
    inlines = [ProgramRuleInline]
    actions = ["submit", "approve", "close"]

    @admin.action(description="Submit for approval")
    def submit(self, request, queryset):
        _run_each(
            self, request, queryset, "submitted", lambda p: services.submit_program(actor=request.user, program=p)
        )

    @admin.action(description="Approve (not by its maker)")
    def approve(self, request, queryset):
        _run_each(
            self, request, queryset, "approved", lambda p: services.approve_program(actor=request.user, program=p)
        )

    @admin.action(description="Close (stop issuing)")
    def close(self, request, queryset):
        _run_each(
            self,
            request,
            queryset,
            "closed",
            lambda p: services.close_program(actor=request.user, program=p, reason="closed in the back office"),
        )


@admin.register(ProgramRule)
class ProgramRuleAdmin(ReadOnlyAdmin):
    list_display = ["program", "effective_from", "rate_bp", "monthly_base_limit", "created_by"]
    list_filter = ["program"]
    inlines = [RuleTierInline]


@admin.register(WalletLimitRule)
class WalletLimitRuleAdmin(admin.ModelAdmin):
    """Dated limits: staff add a row for a change; a row already in force is never edited."""

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


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ["id", "owner", "kyc_tier", "status", "created_at"]
    list_filter = ["kyc_tier", "status"]
    search_fields = ["owner__external_ref"]
    list_select_related = ["owner"]
    actions = ["freeze", "unfreeze"]

    @admin.action(description="Freeze")
    def freeze(self, request, queryset):
        _run_each(
            self,
            request,
            queryset,
            "frozen",
            lambda w: services.set_wallet_status(actor=request.user, wallet=w, status="frozen", reason="back office"),
        )

    @admin.action(description="Unfreeze")
    def unfreeze(self, request, queryset):
        _run_each(
            self,
            request,
            queryset,
            "unfrozen",
            lambda w: services.set_wallet_status(actor=request.user, wallet=w, status="active", reason="back office"),
        )


@admin.register(Merchant)
class MerchantAdmin(ReadOnlyAdmin):
    list_display = ["name", "business_registration_number", "category", "district", "annual_revenue", "status"]
    list_filter = ["category", "district", "status"]
    search_fields = ["name", "business_registration_number"]
    actions = ["freeze", "unfreeze"]

    @admin.action(description="Freeze")
    def freeze(self, request, queryset):
        _run_each(
            self,
            request,
            queryset,
            "frozen",
            lambda m: services.set_merchant_status(
                actor=request.user, merchant=m, status="frozen", reason="back office"
            ),
        )

    @admin.action(description="Unfreeze")
    def unfreeze(self, request, queryset):
        _run_each(
            self,
            request,
            queryset,
            "unfrozen",
            lambda m: services.set_merchant_status(
                actor=request.user, merchant=m, status="active", reason="back office"
            ),
        )


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
    list_display = ["id", "program", "wallet", "amount", "base_amount", "month", "created_at"]
    list_filter = ["program", "month"]
    list_select_related = ["program", "wallet__owner"]


for model, columns in (
    (Refund, ["id", "payment", "amount", "to_funder_amount", "cashback_clawed_back", "created_at"]),
    (Transfer, ["id", "from_wallet", "to_wallet", "amount", "created_at"]),
    (MerchantPayment, ["id", "payer", "payee", "amount", "created_at"]),
    (Redemption, ["id", "wallet", "amount", "paid_in", "created_at"]),
    (MerchantMember, ["user", "merchant", "role", "created_at"]),  # added by the service add_merchant_member
    (PaymentRequest, ["id", "merchant", "amount", "reference", "status", "expires_at", "payment"]),
):
    admin.site.register(model, type(f"{model.__name__}Admin", (ReadOnlyAdmin,), {"list_display": columns}))
from voucher import admin_oversight  # noqa: E402,F401  reconciliation, customer view, fraud flags (issue 6)
