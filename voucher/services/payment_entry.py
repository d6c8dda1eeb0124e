"""The part of a payment both of its paths share (the ORM one in payments.py
and PostgreSQL's plain-SQL one in payments_postgresql.py): taking the amount
from the locked lots, and posting the entry."""

from bank import errors as bank_errors
from bank.models import JournalEntry
from bank.services import post_entry
from voucher import errors
from voucher.models import Lot, Merchant, Wallet
from voucher.services.common import Lines, ledger_key
from voucher.services.lots import allocate


def take_from_lots(
    lots: list[Lot], balances: dict[int, int], amount: int, merchant: Merchant
) -> tuple[list[tuple[Lot, int]], Lines]:
    """`amount` out of the lots in the order given (their locked accounts'
    available balances), into the merchant's token account: what each lot gives,
    and the entry's lines so far. Refused when the lots hold too little."""
    available = sum(balances[lot.account_id] for lot in lots)
    if available < amount:
        raise errors.InsufficientEligibleBalance(available=available, requested=amount)
    taken = allocate(lots, balances, amount)
    lines = Lines()
    for lot, take in taken:
        lines.add(lot.account_id, -take)
    lines.add(merchant.token_account_id, amount)
    return taken, lines


def post_payment_entry(
    lines: Lines, *, wallet: Wallet, merchant: Merchant, reference: str, idempotency_key: str
) -> JournalEntry:
    """Post the payment's entry; a frozen merchant account is the merchant's refusal."""
    try:
        return post_entry(
            lines=lines.as_list(),
            kind="voucher_payment",
            reference=reference,
            idempotency_key=ledger_key("pay", wallet.pk, idempotency_key),
        )
    except bank_errors.AccountFrozen as error:
        if error.details.get("account") == merchant.token_account_id:
            raise errors.MerchantFrozen(merchant=merchant.pk) from None
        raise
