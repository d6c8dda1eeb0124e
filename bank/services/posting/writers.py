"""The posting service's writers: entries, their postings and the locked
accounts' new balances, written after every rule passed (bank.services.posting.rules)
and under the accounts' locks (locks). The ORM on other databases; on
PostgreSQL one prepared statement, or binary COPY for big batches. Writers
check nothing: what reaches them is already decided.
"""

from functools import cache
from typing import TYPE_CHECKING

from django.db import connection

from bank import prepared
from bank.models import Account, JournalEntry, Posting
from bank.prepared import int_array
from bank.services.posting.entries import (
    ENTRY_COLUMNS,
    ENTRY_NAMES,
    ENTRY_TYPES,
    POSTING_NAMES,
    POSTING_TYPES,
    entry_values,
)

if TYPE_CHECKING:
    from bank.services.posting.rules import CheckedRequest

Fresh = list[tuple[JournalEntry, "CheckedRequest"]]  # the new entries to write, each with its request


def write(fresh: Fresh, accounts: dict, deferred=frozenset()) -> None:
    """Write the new entries (with their requests' lines) and every locked account's
    balance and holds, but for the `deferred` accounts, which their deferred_balances block writes."""
    if connection.vendor != "postgresql":
        _write_generic(fresh, accounts, deferred)
    elif _by_copy(fresh):
        _copy_postgresql(fresh, accounts, deferred)
    else:
        sql, params = _write_statement(fresh, accounts, deferred)
        _assign_ids(fresh, prepared.fetch(sql, params))


def write_balances(locked: list) -> None:
    """Save the balances and holds of locked accounts (lock_accounts' or lock_account_rows')."""
    if connection.vendor != "postgresql":
        Account.objects.bulk_update(locked, ["balance", "on_hold"])
        return
    prepared.execute(_UPDATE_BALANCES_SQL, _balance_arrays(locked))


def _write_generic(fresh: Fresh, accounts: dict[int, Account], deferred=frozenset()) -> None:
    JournalEntry.objects.bulk_create([entry for entry, _ in fresh])
    Posting.objects.bulk_create(
        [
            Posting(entry=entry, account_id=account_id, currency=accounts[account_id].currency, amount=amount)
            for entry, request in fresh
            for account_id, amount in request.lines
        ]
    )
    write_balances([a for a in accounts.values() if a.pk not in deferred])


def _balance_arrays(locked: list) -> list[str]:
    return [
        int_array([a.pk for a in locked]),
        int_array([a.balance for a in locked]),
        int_array([a.on_hold for a in locked]),
    ]


# --- PostgreSQL: one statement -----------------------------------------------------------------
#
# A transfer inside its caller's transaction is one statement that locks its
# accounts and finds its key (locks.lock_and_find), then this one, which writes
# the entry, its postings and the new balances; COMMIT runs the deferred
# sum-to-zero and foreign-key checks.

_ENTRY_INSERT = f"INSERT INTO bank_journalentry ({ENTRY_NAMES})"
# Many entries: arrays, so one statement text serves every batch size. Each
# posting finds its entry's new id by uid; postings go in in request order.
_WRITE_MANY_SQL = f"""
WITH entry AS (
    {_ENTRY_INSERT}
    SELECT * FROM unnest({", ".join(f"%b::{pg_type}[]" for pg_type in ENTRY_TYPES)})
    RETURNING uid, id
), posting AS (
    INSERT INTO bank_posting ({POSTING_NAMES})
    SELECT entry.id, line.account_id, line.currency, line.amount
    FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bigint[]) WITH ORDINALITY
         AS line(uid, account_id, currency, amount, n)
    JOIN entry ON entry.uid = line.uid
    ORDER BY line.n
), account AS (
    UPDATE bank_account SET balance = new.balance, on_hold = new.on_hold
    FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS new(id, balance, on_hold)
    WHERE bank_account.id = new.id
)
SELECT uid, id FROM entry
"""


@cache
def _write_one_sql(lines: int, accounts: int) -> str:
    """One entry: plain parameters, several times cheaper to adapt than a set of arrays."""
    postings = ", ".join(f"(%b::bigint, %b::text, %b::bigint, {n})" for n in range(lines))
    balances = ", ".join("(%b::bigint, %b::bigint, %b::bigint)" for _ in range(accounts))
    return f"""
WITH entry AS (
    {_ENTRY_INSERT}
    VALUES ({", ".join(f"%b::{pg_type}" for pg_type in ENTRY_TYPES)})
    RETURNING id
), posting AS (
    INSERT INTO bank_posting ({POSTING_NAMES})
    SELECT entry.id, line.account_id, line.currency, line.amount
    FROM entry, (VALUES {postings}) AS line(account_id, currency, amount, n)
    ORDER BY line.n
), account AS (
    UPDATE bank_account SET balance = new.balance, on_hold = new.on_hold
    FROM (VALUES {balances}) AS new(id, balance, on_hold)
    WHERE bank_account.id = new.id
)
SELECT id FROM entry
"""


def _write_statement(fresh: Fresh, accounts: dict, deferred=frozenset()) -> tuple[str, list]:
    """The one statement that writes the entries, their postings and every locked account's balance."""
    locked = [a for a in accounts.values() if a.pk not in deferred]
    if len(fresh) == 1:
        [(entry, request)] = fresh
        params = list(entry_values(entry))
        for account_id, amount in request.lines:
            params += (account_id, accounts[account_id].currency, amount)
        for account in locked:
            params += (account.pk, account.balance, account.on_hold)
        return _write_one_sql(len(request.lines), len(locked)), params
    columns: tuple[list, ...] = tuple([] for _ in ENTRY_COLUMNS)
    line_uid, line_account, line_currency, line_amount = [], [], [], []
    for entry, request in fresh:
        for column, value in zip(columns, entry_values(entry), strict=True):
            column.append(value)
        for account_id, amount in request.lines:
            line_uid.append(entry.uid)
            line_account.append(account_id)
            line_currency.append(accounts[account_id].currency)
            line_amount.append(amount)
    return _WRITE_MANY_SQL, [*columns, line_uid, line_account, line_currency, line_amount, *_balance_arrays(locked)]


def _assign_ids(fresh: Fresh, rows: list[tuple]) -> None:
    """Give the written entries the ids the write statement returned, and mark them saved."""
    if len(fresh) == 1:
        [(entry, _)] = fresh
        [(entry.pk,)] = rows
    else:
        ids = dict(rows)
        for entry, _ in fresh:
            entry.pk = ids[entry.uid]
    _mark_saved(fresh)


def _mark_saved(fresh: Fresh) -> None:
    alias = connection.alias
    for entry, _ in fresh:
        entry._state.adding = False
        entry._state.db = alias


# --- PostgreSQL: binary COPY for big batches ----------------------------------------------

# From this many postings a write goes by COPY (below it, by one statement, fewer
# round trips; settlement writes a few entries of a hundred postings each): psycopg formats binary COPY rows in C, several times faster than
# it builds the write statement's arrays, and PostgreSQL inserts COPY's rows
# into the table a page at a time. The entries' ids
# are drawn from their sequence first, so each posting row carries its entry's.
_COPY_FROM_POSTINGS = 128


def _by_copy(fresh: Fresh) -> bool:
    return sum(len(request.lines) for _, request in fresh) >= _COPY_FROM_POSTINGS


_NEXT_ENTRY_IDS_SQL = """
WITH sequence AS MATERIALIZED (SELECT pg_get_serial_sequence('bank_journalentry', 'id')::regclass AS name)
SELECT nextval(sequence.name) FROM sequence, generate_series(1, %b::integer)
"""
_COPY_ENTRIES_SQL = f"COPY bank_journalentry (id, {ENTRY_NAMES}) FROM STDIN (FORMAT BINARY)"
_COPY_ENTRY_TYPES = ["bigint", *ENTRY_TYPES]
_COPY_POSTINGS_SQL = f"COPY bank_posting ({POSTING_NAMES}) FROM STDIN (FORMAT BINARY)"
# The arrays go in through a sub-select so that the planner, not knowing their
# length, looks each account up by key. Told there are 2,000 of them, it hashed
# them and scanned the whole account table instead: 2-3x slower on a table
# that balance updates have left larger than its live rows.
_UPDATE_BALANCES_SQL = """
UPDATE bank_account SET balance = new.balance, on_hold = new.on_hold
FROM (SELECT * FROM unnest((SELECT %s::bigint[]), (SELECT %s::bigint[]), (SELECT %s::bigint[])))
     AS new(id, balance, on_hold)
WHERE bank_account.id = new.id
"""


def _copy_postgresql(fresh: Fresh, accounts: dict, deferred=frozenset()) -> None:
    """Write many entries, their postings (in request order) and every locked account's balance."""
    for (entry, _), (pk,) in zip(fresh, prepared.fetch(_NEXT_ENTRY_IDS_SQL, [len(fresh)]), strict=True):
        entry.pk = pk
    prepared.copy_in(_COPY_ENTRIES_SQL, _COPY_ENTRY_TYPES, ((entry.pk, *entry_values(entry)) for entry, _ in fresh))
    prepared.copy_in(
        _COPY_POSTINGS_SQL,
        POSTING_TYPES,
        (
            (entry.pk, account_id, accounts[account_id].currency, amount)
            for entry, request in fresh
            for account_id, amount in request.lines
        ),
    )
    write_balances([a for a in accounts.values() if a.pk not in deferred])
    _mark_saved(fresh)
