"""Holding and spending limits in force on a day: the latest WalletLimitRule
row, or the legal defaults when staff have not dated any."""

from dataclasses import dataclass
from datetime import date

from voucher.models import KycTier, WalletLimitRule


@dataclass(frozen=True)
class Limits:
    named_max_balance: int
    anonymous_max_balance: int
    per_payment_limit: int
    daily_payment_limit: int
    redeem_min_used_percent: int
    plain_lot_valid_days: int

    def max_balance(self, kyc_tier: str) -> int:
        return self.named_max_balance if kyc_tier == KycTier.NAMED else self.anonymous_max_balance


# Electronic Financial Transactions Act caps for prepaid instruments; 60% used
# before cash-out (Busan's ordinance allows 60-80%); vouchers valid 5 years.
DEFAULT_LIMITS = Limits(
    named_max_balance=2_000_000,
    anonymous_max_balance=500_000,
    per_payment_limit=1_000_000,
    daily_payment_limit=2_000_000,
    redeem_min_used_percent=60,
    plain_lot_valid_days=5 * 365,
)

_FIELDS = tuple(Limits.__dataclass_fields__)


def limits_on(day: date) -> Limits:
    row = WalletLimitRule.objects.filter(effective_from__lte=day).order_by("-effective_from").values(*_FIELDS).first()
    return Limits(**row) if row else DEFAULT_LIMITS
