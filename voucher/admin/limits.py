"""The wallet limits' page: dated rows, added for a change and never edited once in force."""

from django import forms
from django.contrib import admin

from bank.admin.common import amount_field
from voucher.models import WalletLimitRule


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
