"""The bank's income account for settlement fees. The tiers and rates are
voucher.rules.fees, which the portal's estimate reads too."""

from bank.models import Account, Party
from bank.services import open_account, open_party
from voucher.rules.accounts import BANK_PARTY_REF
from voucher.rules.fees import fee_for, fee_rate_bp

__all__ = ["FEE_INCOME_CODE", "fee_for", "fee_income_account", "fee_rate_bp"]

FEE_INCOME_CODE = "voucher:settlement-fees:KRW"


def fee_income_account() -> Account:
    """The bank's KRW income account for settlement fees, opened on first use."""
    account = Account.objects.filter(code=FEE_INCOME_CODE).first()
    if account is None:
        bank = open_party(kind=Party.Kind.BANK, external_ref=BANK_PARTY_REF, display_name="Busan Bank")
        account = open_account(owner=bank, code=FEE_INCOME_CODE, currency="KRW", normal_side=Account.NormalSide.INCOME)
    return account
