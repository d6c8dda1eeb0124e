"""The posting service's locks: every account an entry touches is locked in
ascending id order, the one order every writer uses, so two transfers never
wait on each other in a cycle; and deferred_balances, the one sanctioned
exception, for busy house accounts. Also the lookup of entries already posted
under a key, which on PostgreSQL shares the lock's statement.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache

import psycopg
from django.conf import settings
from django.db import OperationalError, connection

from bank import errors, prepared
from bank.models import Account, JournalEntry
from bank.prepared import int_array
from bank.services.posting.rules import check_change
from bank.services.posting.writers import write_balances


def lock_accounts(account_ids: Iterable[int]) -> dict[int, Account]:
    """Lock accounts in ascending id order, the one order every writer uses.

    Must run inside transaction.atomic. Raises AccountNotFound for a missing id.
    """
    ids = sorted(set(account_ids))
    if connection.vendor == "postgresql":
        locked = {row[0]: _ACCOUNT.build(row) for row in prepared.fetch(_LOCK_ACCOUNTS_SQL, [int_array(ids)])}
    else:
        locked = {a.pk: a for a in Account.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk")}
    _require_all(ids, locked)
    return locked


def lock_account_rows(account_ids: Iterable[int]) -> dict:
    """lock_accounts for bulk callers (settlement): the same locks in the same
    order, each account as the fields the balance rules read (pk, currency,
    status, balance, on_hold, available...) rather than a model instance, since
    building ten thousand of those costs more than locking them. Pass the result
    to post_locked."""
    if connection.vendor != "postgresql":
        return lock_accounts(account_ids)
    ids = sorted(set(account_ids))
    locked = {row[0]: LockedRow(*row) for row in prepared.fetch(_LOCK_ROWS_SQL, [int_array(ids)])}
    _require_all(ids, locked)
    return locked


def lock_and_find(account_ids: set[int], keys: list[str]) -> tuple[dict, dict[str, JournalEntry]]:
    """Lock the accounts in id order and find the entries already posted under
    `keys`: on PostgreSQL in one statement, each account as a LockedRow."""
    if connection.vendor != "postgresql":
        return lock_accounts(account_ids), entries_by_key(keys) if keys else {}
    ids = sorted(account_ids)
    few = len(ids) <= _FEW and len(keys) <= _FEW
    if not keys:
        if few:
            rows = prepared.fetch(_lock_few_sql(len(ids), 0), ids)
        else:
            rows = prepared.fetch(_LOCK_ROWS_SQL, [int_array(ids)])
        locked = {row[0]: LockedRow(*row) for row in rows}
        _require_all(ids, locked)
        return locked, {}
    if few:
        rows = prepared.fetch(_lock_few_sql(len(ids), len(keys)), [*ids, *keys])
    else:
        rows = prepared.fetch(_LOCK_ROWS_AND_FIND_SQL, [int_array(ids), keys])
    locked, posted = {}, []
    for row in rows:
        if row[-1] is None:
            locked[row[0]] = LockedRow(*row)
        else:
            posted.append(row[-1])
    _require_all(ids, locked)
    earlier = {}
    if posted:  # a retry: read back what the first attempt wrote
        for row in prepared.fetch(_BY_ID_SQL, [posted]):
            entry = _ENTRY.build(row)
            earlier[entry.idempotency_key] = entry
    return locked, earlier


def entries_by_key(keys: list[str]) -> dict[str, JournalEntry]:
    """The entries already posted under `keys`, by key."""
    if connection.vendor == "postgresql":
        entries = [_ENTRY.build(row) for row in prepared.fetch(_BY_KEY_SQL, [keys])]
    else:
        entries = JournalEntry.objects.filter(idempotency_key__in=keys)
    return {e.idempotency_key: e for e in entries}


def _require_all(ids: list[int], locked: dict) -> None:
    missing = [i for i in ids if i not in locked]
    if missing:
        raise errors.AccountNotFound(account=missing[0])


class LockedRow:
    """What the checks and the write read of an account post_entries has locked.

    A batch locks thousands of accounts, and building an Account instance for
    each costs more than checking them; the balance rules are Account's own
    properties, borrowed, so there is one definition of each.
    """

    __slots__ = ("pk", "currency", "normal_side", "status", "may_go_negative", "balance", "on_hold")
    DEBIT_NORMAL = Account.DEBIT_NORMAL
    sign = Account.sign
    natural_balance = Account.natural_balance
    available = Account.available

    def __init__(self, pk, currency, normal_side, status, may_go_negative, balance, on_hold, *_):
        self.pk = pk
        self.currency = currency
        self.normal_side = normal_side
        self.status = status
        self.may_go_negative = may_go_negative
        self.balance = balance
        self.on_hold = on_hold


# --- the house accounts' exception to the lock order ---------------------------------------


class DeferredBalances:
    """House accounts (the reserve, the issuance account, an income account) whose
    balance changes a bulk writer collects and writes last; see deferred_balances."""

    def __init__(self, accounts: Iterable[Account]):
        # Stand-ins that pass every check in memory and add up the change in `balance`
        # (currency and side never change); the real rules are checked on the
        # locked rows when the block ends.
        self.rows = {
            a.pk: LockedRow(a.pk, a.currency, a.normal_side, Account.Status.ACTIVE, True, 0, 0) for a in accounts
        }

    def apply(self) -> None:
        changes = {pk: row.balance for pk, row in self.rows.items() if row.balance}
        if not changes:
            return
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)",
                    [f"{settings.BANK_DEFERRED_LOCK_TIMEOUT_MS}ms"],
                )
                [(was, _)] = cursor.fetchall()
                try:
                    locked = lock_account_rows(changes)
                except OperationalError as error:
                    if isinstance(error.__cause__, psycopg.errors.LockNotAvailable):
                        raise errors.AccountBusy(account=min(changes)) from error
                    raise
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [was])
        else:
            locked = lock_account_rows(changes)
        for pk, change in changes.items():
            check_change(locked[pk], change, allow_frozen_credit=False)
            locked[pk].balance += change
        write_balances(list(locked.values()))


@contextmanager
def deferred_balances(accounts: Iterable[Account]) -> Iterator[DeferredBalances]:
    """Post to busy house accounts without holding their locks while the rest is written.

    Inside the block, post_locked(..., deferred=house) checks and writes every
    entry and every other account's balance, and adds up the house accounts'
    changes; when the block ends, the house accounts are locked, checked by the
    same rules (a refusal rolls the caller's transaction back) and written. So
    two settlement chunks, each holding only its own merchants' accounts, write
    side by side and queue only for the last few milliseconds.

    This takes the house accounts after accounts with higher ids, against the
    id order every other writer uses: a payment holding the reserve and
    waiting for a merchant account we hold would wait on us while we wait on
    it. So the lock is awaited at most BANK_DEFERRED_LOCK_TIMEOUT_MS (below
    PostgreSQL's deadlock_timeout, so it is always this side that gives up),
    then AccountBusy is raised: the caller rolls back, the payment goes
    through, and the caller runs again. Must run inside transaction.atomic.
    """
    house = DeferredBalances(accounts)
    yield house
    house.apply()


# --- PostgreSQL: the statements -----------------------------------------------------------
#
# Prepared once per connection (bank.prepared), so PostgreSQL does not parse and
# plan them for every transfer, and their parameters are sent in binary.

_ACCOUNT = prepared.Columns(Account)
_ENTRY = prepared.Columns(JournalEntry)
# NO KEY UPDATE: a balance change never touches the key, so rows of other
# tables that reference an account (postings, holds, lots) can still take their
# foreign-key share locks on it while it is locked, instead of queueing behind
# the transfer (and, in voucher's lock orders, deadlocking with it).
_LOCK = "FROM bank_account WHERE id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE"
_LOCK_ACCOUNTS_SQL = f"SELECT {_ACCOUNT.select('bank_account')} {_LOCK}"
_LOCK_ROWS_SQL = f"SELECT id, currency, normal_side, status, may_go_negative, balance, on_hold {_LOCK}"
# The same locks, then the ids of entries already posted under the keys. The
# lookup reads the statement's snapshot: an entry committed while we waited for
# a lock shows up instead as the unique key's IntegrityError, which post_entries
# answers with that entry, as it does for any race on a key.
_LOCK_ROWS_AND_FIND_SQL = f"""
WITH locked AS MATERIALIZED ({_LOCK_ROWS_SQL})
SELECT *, NULL::bigint FROM locked
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, id FROM bank_journalentry WHERE idempotency_key = ANY(%b::text[])
"""
# Up to this many accounts and keys (any transfer or payment), the same
# statements with plain parameters: psycopg adapts a few scalars several times
# faster than two arrays, a fair part of a transfer's client CPU. The plan is
# the same index scan, rows locked in id order.
_FEW = 6


@cache
def _lock_few_sql(accounts: int, keys: int) -> str:
    ids = ", ".join(["%b::bigint"] * accounts)
    lock = (
        "SELECT id, currency, normal_side, status, may_go_negative, balance, on_hold"
        f" FROM bank_account WHERE id IN ({ids}) ORDER BY id FOR NO KEY UPDATE"
    )
    if not keys:
        return lock
    return f"""
WITH locked AS MATERIALIZED ({lock})
SELECT *, NULL::bigint FROM locked
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, id FROM bank_journalentry
WHERE idempotency_key IN ({", ".join(["%b::text"] * keys)})
"""


_BY_KEY_SQL = (
    f"SELECT {_ENTRY.select('bank_journalentry')} FROM bank_journalentry WHERE idempotency_key = ANY(%b::text[])"
)
_BY_ID_SQL = f"SELECT {_ENTRY.select('bank_journalentry')} FROM bank_journalentry WHERE id = ANY(%b::bigint[])"
