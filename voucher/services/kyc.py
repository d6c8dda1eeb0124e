"""A customer's KYC tier, changed by a teller with a reason (audited)."""

from django.db import transaction

from bank.services import record_audit
from bank.services.controls import require_reason, require_role
from voucher import errors
from voucher.clock import seoul_today
from voucher.limits import limits_on
from voucher.models import KycTier, Lot, Wallet
from voucher.services.common import lock_wallets

PERMISSION = "voucher.change_kyc_tier"


def set_kyc_tier(*, actor, wallet: Wallet, kyc_tier: str, reason: str) -> Wallet:
    """Verify (named) or un-verify (anonymous) a customer. A wallet holding more
    than the anonymous tier's cap cannot be moved down to it."""
    require_role(actor, PERMISSION)
    reason = require_reason(reason)
    if kyc_tier not in KycTier.values:
        raise errors.InvalidRequest(f"Unknown KYC tier {kyc_tier!r}.", field="kyc_tier")
    with transaction.atomic():
        wallet = lock_wallets(wallet)[wallet.pk]
        before = wallet.kyc_tier
        if before == kyc_tier:
            return wallet
        cap = limits_on(seoul_today()).max_balance(kyc_tier)
        balance = sum(Lot.objects.filter(wallet=wallet).values_list("account__balance", flat=True))
        if balance > cap:
            raise errors.OverWalletLimit(
                f"The wallet holds {balance:,} won, over the {kyc_tier} cap of {cap:,}.", balance=balance, cap=cap
            )
        wallet.kyc_tier = kyc_tier
        wallet.save(update_fields=["kyc_tier"])
        record_audit(
            actor=actor,
            action="wallet.kyc_tier",
            target=wallet,
            before={"kyc_tier": before},
            after={"kyc_tier": kyc_tier},
            reason=reason,
        )
    return wallet
