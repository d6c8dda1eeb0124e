"""The rule settlement relies on, checked: every row that moves a merchant's BKRW
(a Payment to it, a Refund it gives, a MerchantPayment either way, a settlement
line) is written by a transaction that already holds the merchant's token account
locked. Settlement locks those accounts before it reads a merchant's rows, so no
row of the merchant is in flight while it reads (voucher.services.settlement says
why that makes its id ranges exact). A writer that inserts such a row calls
require_merchant_locked first; tests/voucher/test_merchant_lock.py finds every
writer and fails when one does not.

How a lock is known, without a query: the lock helpers here note the ledger
accounts they locked as an on_commit callback of the transaction, one that does
nothing when it runs. Django keeps that list per transaction and trims it as
PostgreSQL releases locks: emptied when the transaction commits or rolls back,
and what was added inside a savepoint dropped when that savepoint is rolled back
(which releases the locks taken inside it). Outside a transaction on_commit runs
at once and notes nothing: a lock taken in autocommit mode ends with its statement.
"""

from collections.abc import Iterable

from django.db import connection, transaction

from bank.models import Account
from bank.services import lock_account_rows, lock_accounts


class MerchantLockNotHeld(RuntimeError):
    """A merchant's BKRW row was about to be written without its token account's
    lock: a bug in the writer, never the caller's mistake, so no error code."""


class _Locked:
    """The note: the ids this transaction locked. Called at commit, it does nothing."""

    __slots__ = ("ids",)

    def __init__(self, ids: Iterable[int]):
        self.ids = frozenset(ids)

    def __call__(self) -> None:
        pass


def note_accounts_locked(account_ids: Iterable[int]) -> None:
    """Record that this transaction has just locked these ledger accounts (FOR
    UPDATE or FOR NO KEY UPDATE), for a caller that locks them with its own SQL.
    Outside an atomic block nothing is recorded: no lock outlives the statement."""
    if connection.in_atomic_block:
        transaction.on_commit(_Locked(account_ids))


def lock_ledger_accounts(account_ids: Iterable[int]) -> dict[int, Account]:
    """bank.services.lock_accounts, noted for require_merchant_locked."""
    locked = lock_accounts(account_ids)
    note_accounts_locked(locked)
    return locked


def lock_ledger_account_rows(account_ids: Iterable[int]) -> dict:
    """bank.services.lock_account_rows (settlement's bulk form), noted for require_merchant_locked."""
    locked = lock_account_rows(account_ids)
    note_accounts_locked(locked)
    return locked


def unlocked_accounts(account_ids: Iterable[int]) -> set[int]:
    """Which of these accounts this transaction has not noted as locked."""
    missing = set(account_ids)
    if not connection.in_atomic_block:
        return missing
    for _, note, _ in reversed(connection.run_on_commit):  # the lock is usually the latest note
        if not missing:
            break
        if isinstance(note, _Locked):
            missing -= note.ids
    return missing


def merchant_lock_held(token_account_id: int) -> bool:
    return not unlocked_accounts([token_account_id])


def require_merchant_locked(token_account_ids: Iterable[int]) -> None:
    """Refuse to go on unless this transaction holds every one of these merchants'
    token accounts locked. Call it just before inserting a row that moves their BKRW."""
    missing = unlocked_accounts(token_account_ids)
    if missing:
        raise MerchantLockNotHeld(
            f"token account {min(missing)} is not locked by this transaction: lock it "
            "(voucher.services.merchant_lock.lock_ledger_accounts) before writing its merchant's rows"
        )
