"""Opening wallets and freezing them (a staff action, audited)."""

from django.db import transaction

from bank.models import Account, Currency, Party
from bank.services import check_executing, open_account, record_audit
from voucher import errors
from voucher.models import KycTier, Wallet
from voucher.services.common import lock_wallets, require_staff


def open_wallet(*, owner: Party, kyc_tier: str = KycTier.NAMED, deposit_account: Account | None = None, user=None):
    """The owner's wallet, opened with its KRW deposit account if it has none.
    Safe to run again: an owner has one wallet, which is returned as it is
    (given a `user`, a wallet with no login yet gets that one)."""
    if owner.kind != Party.Kind.PERSON:
        raise errors.InvalidRequest("Only a person holds a wallet; merchants hold a token account.", field="owner")
    if kyc_tier not in KycTier.values:
        raise errors.InvalidRequest(f"Unknown KYC tier {kyc_tier!r}.", field="kyc_tier")
    existing = Wallet.objects.filter(owner=owner).first()
    if existing is not None:
        if user is not None and existing.user_id != user.pk:
            if existing.user_id is not None:
                raise errors.InvalidRequest("The wallet already belongs to another login.", field="user")
            Wallet.objects.filter(pk=existing.pk, user=None).update(user=user)
            existing.refresh_from_db()
        return existing
    if deposit_account is None:
        deposit_account = open_account(
            owner=owner, code=f"krw:deposit:p{owner.pk}", currency="KRW", normal_side=Account.NormalSide.LIABILITY
        )
    if (deposit_account.owner_id, deposit_account.currency, deposit_account.sign) != (owner.pk, Currency.KRW, 1):
        raise errors.InvalidRequest("The deposit account must be the owner's credit-normal KRW account.")
    with transaction.atomic():
        wallet, _ = Wallet.objects.get_or_create(
            owner=owner, defaults={"deposit_account": deposit_account, "kyc_tier": kyc_tier, "user": user}
        )
    return wallet


def set_wallet_status(*, actor, wallet: Wallet, status: str, reason: str, approval=None) -> Wallet:
    """Freeze or unfreeze a wallet. A frozen wallet cannot pay, send, top up or
    cash out; refunds still reach it. A freeze is immediate; an unfreeze runs
    only as an approved request (`approval`, see voucher.services.controls)."""
    require_staff(actor)
    if status not in Wallet.Status.values:
        raise errors.InvalidRequest(f"Unknown status {status!r}.", field="status")
    if not isinstance(reason, str) or not reason.strip():
        raise errors.InvalidRequest("A reason is required.", field="reason")
    with transaction.atomic():
        wallet = lock_wallets(wallet)[wallet.pk]
        before = wallet.status
        if before == Wallet.Status.FROZEN and status != Wallet.Status.FROZEN:
            check_executing(approval, kinds=("unfreeze_wallet",), target=wallet)
        wallet.status = status
        wallet.save(update_fields=["status"])
        record_audit(
            actor=actor,
            action=f"wallet.{status}",
            target=wallet,
            before={"status": before},
            after={"status": status},
            reason=reason,
        )
    return wallet
