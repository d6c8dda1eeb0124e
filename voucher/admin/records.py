"""Read-only pages of the token's records of money movements: lots, payments,
top-ups, benefits, refunds, transfers, merchant payments, redemptions, payment requests."""

from django.contrib import admin

from bank.admin.common import ReadOnlyAdmin, ReadOnlyInline
from voucher.models import (
    Benefit,
    Lot,
    MerchantPayment,
    Payment,
    PaymentLot,
    PaymentRequest,
    Redemption,
    Refund,
    TopUp,
    Transfer,
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
