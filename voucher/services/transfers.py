"""Person-to-person transfers of transferable lots. Each lot moves with its
program and expiry, so purpose-bound money stays bound at the receiver."""

from django.db import transaction

from bank import errors as bank_errors
from bank.services import check_not_paused, lock_accounts, post_entry
from voucher import errors
from voucher.clock import seoul_today
from voucher.limits import limits_on
from voucher.models import Transfer, Wallet
from voucher.selectors import wallet_balance
from voucher.services.common import Lines, check_amount, check_key, check_wallet_active, ledger_key, lock_wallets
from voucher.services.lots import allocate, find_lot, is_transferable, live_lots, lot_for


def transfer(*, from_wallet: Wallet, to_wallet: Wallet, amount: int, idempotency_key: str | None = None) -> Transfer:
    """Send `amount` from one wallet to another, soonest-expiring transferable lots first."""
    check_amount(amount)
    if idempotency_key is not None:
        check_key(idempotency_key)
    if from_wallet.pk == to_wallet.pk:
        raise errors.InvalidRequest("A wallet cannot send to itself.", field="to_wallet")
    with transaction.atomic():
        wallets = lock_wallets(from_wallet, to_wallet)
        sender, receiver = wallets[from_wallet.pk], wallets[to_wallet.pk]
        if idempotency_key is not None:
            earlier = Transfer.objects.filter(from_wallet=sender, idempotency_key=idempotency_key).first()
            if earlier is not None:
                if (earlier.to_wallet_id, earlier.amount) != (receiver.pk, amount):
                    raise bank_errors.IdempotencyConflict(idempotency_key=idempotency_key, transfer=earlier.pk)
                return earlier
        check_not_paused()
        check_wallet_active(sender)
        check_wallet_active(receiver)
        day = seoul_today()
        limits = limits_on(day)
        held = wallet_balance(receiver)
        if held + amount > limits.max_balance(receiver.kyc_tier):
            raise errors.OverWalletLimit(limit=limits.max_balance(receiver.kyc_tier), balance=held, requested=amount)

        # The sender's lots only change under the sender's wallet lock, which we
        # hold, so choosing on these balances is final; the locks below confirm it.
        lots = live_lots(sender, day, is_transferable)
        balances = {lot.account_id: lot.balance for lot in lots}
        if sum(balances.values()) < amount:
            raise errors.InsufficientTransferableBalance(available=sum(balances.values()), requested=amount)
        taken = allocate(lots, balances, amount)
        targets = [find_lot(wallet=receiver, program=lot.program, expires_on=lot.expires_on) for lot, _ in taken]
        # A new receiving lot points at its funder (the program's, or the receiver's
        # deposit), so those are locked now, in order, before the lot is inserted.
        funders = [lot.program.funder_account_id if lot.program else receiver.deposit_account_id for lot, _ in taken]
        accounts = lock_accounts([lot.account_id for lot, _ in taken] + [t.account_id for t in targets if t] + funders)
        lines = Lines()
        for lot, take in taken:
            if accounts[lot.account_id].available < take:
                raise errors.InsufficientTransferableBalance(available=accounts[lot.account_id].available, lot=lot.pk)
            target = lot_for(wallet=receiver, program=lot.program, expires_on=lot.expires_on)
            lines.add(lot.account_id, -take)
            lines.add(target.account_id, take)
        entry = post_entry(
            lines=lines.as_list(),
            kind="voucher_transfer",
            idempotency_key=ledger_key("p2p", sender.pk, idempotency_key) if idempotency_key else None,
        )
        return Transfer.objects.create(
            from_wallet=sender, to_wallet=receiver, amount=amount, idempotency_key=idempotency_key or "", entry=entry
        )
