"""The posting service: the only code that writes postings and account balances.

Every entry is checked whole before anything is written: amounts are non-zero
ints, accounts exist and are active, each currency sums to zero, no guarded
account's available balance (posted less holds) drops below zero. Accounts
are locked in id order, so two transfers can never wait on each other in a
cycle (no deadlocks), and a retried idempotency key returns the first entry.
"""

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

import psycopg
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from bank import errors
from bank.hashing import entry_hash, epoch_micros
from bank.models import MAX_AMOUNT, Account, JournalEntry, Posting
from bank.prepared import int_array

MAX_LINES = 100


@dataclass(frozen=True)
class EntryRequest:
    """One entry to post: lines are (account or account id, signed amount), credit positive."""

    lines: Sequence[tuple[Account | int, int]]
    kind: str
    memo: str = ""
    reference: str = ""
    idempotency_key: str | None = None
    reverses: JournalEntry | None = None
    allow_frozen_credit: bool = False


@dataclass(frozen=True)
class CheckedRequest:
    """A request that passed validation: lines as (account id, amount), and its digest."""

    request: EntryRequest
    lines: tuple[tuple[int, int], ...]
    account_ids: tuple[int, ...]
    request_hash: str

    @property
    def idempotency_key(self) -> str | None:
        return self.request.idempotency_key


def post_entry(
    *,
    lines: Sequence[tuple[Account | int, int]],
    kind: str,
    memo: str = "",
    reference: str = "",
    idempotency_key: str | None = None,
    reverses: JournalEntry | None = None,
    allow_frozen_credit: bool = False,
) -> JournalEntry:
    """Post one balanced entry. `allow_frozen_credit` lets a frozen account
    receive (refunds to a frozen wallet); it never lets one pay."""
    request = EntryRequest(
        lines=lines,
        kind=kind,
        memo=memo,
        reference=reference,
        idempotency_key=idempotency_key,
        reverses=reverses,
        allow_frozen_credit=allow_frozen_credit,
    )
    return post_entries(requests=[request])[0]


def post_entries(*, requests: Sequence[EntryRequest]) -> list[JournalEntry]:
    """Post many entries in one database transaction, all or nothing.

    The batch path for bulk work (settlement, expiry, imports): the accounts of
    the whole batch are locked once, and entries, postings and balances are
    written with one statement (on PostgreSQL, from _COPY_FROM_POSTINGS postings
    on, with COPY).
    """
    if not requests:
        return []
    checked = [check_request(request) for request in requests]
    all_ids = {account_id for request in checked for account_id in request.account_ids}
    keys = [r.idempotency_key for r in checked if r.idempotency_key]
    try:
        if connection.vendor == "postgresql" and _outermost():
            return _post_pipelined(checked, all_ids, keys)
        with transaction.atomic():
            if connection.vendor == "postgresql":
                accounts, earlier = _lock_and_find_postgresql(all_ids, keys)
            else:
                accounts = lock_accounts(all_ids)
                earlier = _entries_by_key(keys) if keys else {}
            return _apply_locked(checked, accounts, earlier)
    except IntegrityError:
        # Another transaction committed the same idempotency key between our
        # check and our insert; its entry is the answer (or a conflict).
        keys = [r.idempotency_key for r in checked]
        if None in keys:
            raise
        existing = {e.idempotency_key: e for e in JournalEntry.objects.filter(idempotency_key__in=keys)}
        if len(existing) < len(set(keys)):
            raise
        return [_replay(existing[r.idempotency_key], r) for r in checked]


def reverse_entry(*, entry: JournalEntry, memo: str = "", idempotency_key: str | None = None) -> JournalEntry:
    """Correct a mistake: a new entry with every posting negated, pointing at the original."""
    earlier = JournalEntry.objects.filter(reverses=entry)
    if idempotency_key is not None:  # exclude(idempotency_key=None) would hide a keyless reversal
        earlier = earlier.exclude(idempotency_key=idempotency_key)
    if earlier.exists():
        raise errors.AlreadyReversed(entry=entry.pk)
    lines = [(p.account_id, -p.amount) for p in entry.postings.all()]
    try:
        return post_entry(
            lines=lines,
            kind="reversal",
            memo=memo or f"reversal of #{entry.pk}",
            reference=entry.reference,
            idempotency_key=idempotency_key,
            reverses=entry,
        )
    except IntegrityError:
        raise errors.AlreadyReversed(entry=entry.pk) from None


def lock_accounts(account_ids: Iterable[int]) -> dict[int, Account]:
    """Lock accounts in ascending id order, the one order every writer uses.

    Must run inside transaction.atomic. Raises AccountNotFound for a missing id.
    """
    ids = sorted(set(account_ids))
    if connection.vendor == "postgresql":
        alias = connection.alias
        rows = _fetch(_LOCK_ACCOUNTS_SQL, [int_array(ids)])
        locked = {row[0]: Account.from_db(alias, _ACCOUNT_ATTNAMES, row) for row in rows}
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
    locked = {row[0]: _LockedRow(*row) for row in _fetch(_LOCK_ROWS_SQL, [int_array(ids)])}
    _require_all(ids, locked)
    return locked


def post_locked(
    requests: Sequence[EntryRequest], accounts: dict, deferred: "DeferredBalances | None" = None
) -> list[JournalEntry]:
    """post_entries for a caller that already holds the locks of every account
    the requests name (from lock_accounts or lock_account_rows, in this
    transaction), except the house accounts of `deferred`, whose changes are
    checked and written when its deferred_balances block ends."""
    checked = [check_request(request) for request in requests]
    later = deferred.rows if deferred is not None else {}
    unlocked = {a for request in checked for a in request.account_ids} - accounts.keys() - later.keys()
    if unlocked:
        raise errors.InvalidEntry("Every account of a post_locked entry must be locked first.", account=min(unlocked))
    return apply_locked(checked, {**accounts, **later} if later else accounts, later.keys())


class DeferredBalances:
    """House accounts (the reserve, the issuance account, an income account) whose
    balance changes a bulk writer collects and writes last; see deferred_balances."""

    def __init__(self, accounts: Iterable[Account]):
        # Stand-ins that pass every check in memory and add up the change in `balance`
        # (currency and side never change); the real rules are checked on the
        # locked rows when the block ends.
        self.rows = {
            a.pk: _LockedRow(a.pk, a.currency, a.normal_side, Account.Status.ACTIVE, True, 0, 0) for a in accounts
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
            _check_change(locked[pk], change, allow_frozen_credit=False)
            locked[pk].balance += change
        _write_balances(list(locked.values()))


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


def apply_locked(
    requests: Sequence[CheckedRequest], accounts: dict[int, Account], deferred=frozenset()
) -> list[JournalEntry]:
    """Check every request against accounts the caller has locked, and write them.

    Must run under lock_accounts' locks; hold amounts the caller changed on the
    locked accounts are saved with the balances (but for the `deferred` ones,
    which their deferred_balances block writes).
    """
    keys = [r.idempotency_key for r in requests if r.idempotency_key]
    return _apply_locked(requests, accounts, _entries_by_key(keys) if keys else {}, deferred)


def _apply_locked(
    requests: Sequence[CheckedRequest], accounts: dict, earlier: dict[str, JournalEntry], deferred=frozenset()
) -> list[JournalEntry]:
    """apply_locked, given the entries already posted under the requests' keys;
    the balances of the `deferred` accounts are left for their deferred_balances block."""
    results, fresh = _check_locked(requests, accounts, earlier)
    if fresh:
        if connection.vendor == "postgresql":
            _write_postgresql(fresh, accounts, deferred)
        else:
            _write_generic(fresh, accounts, deferred)
    return results


def _check_locked(
    requests: Sequence[CheckedRequest], accounts: dict, earlier: dict[str, JournalEntry]
) -> tuple[list[JournalEntry], list[tuple[JournalEntry, CheckedRequest]]]:
    """Check every request against the locked accounts and build its entry; writes nothing.

    Returns the entries to answer with, in request order, and the new ones to write."""
    results: list[JournalEntry] = []
    fresh: list[tuple[JournalEntry, CheckedRequest]] = []
    in_batch: dict[str, tuple[CheckedRequest, JournalEntry]] = {}
    for request in requests:
        key = request.idempotency_key
        if key and key in earlier:
            results.append(_replay(earlier[key], request))
            continue
        if key and key in in_batch:
            first_request, first_entry = in_batch[key]
            if first_request.request_hash != request.request_hash:
                raise errors.IdempotencyConflict(idempotency_key=key)
            results.append(first_entry)
            continue
        _check_and_apply_balances(request, accounts)
        entry = _build_entry(request, accounts)
        fresh.append((entry, request))
        results.append(entry)
        if key:
            in_batch[key] = (request, entry)
    return results, fresh


def _require_all(ids: list[int], locked: dict) -> None:
    missing = [i for i in ids if i not in locked]
    if missing:
        raise errors.AccountNotFound(account=missing[0])


def _check_and_apply_balances(request: CheckedRequest, accounts: dict[int, Account]) -> None:
    """Check one request against the accounts' current state and apply it in memory."""
    sums: dict[str, int] = defaultdict(int)
    deltas: dict[int, int] = defaultdict(int)
    for account_id, amount in request.lines:
        sums[accounts[account_id].currency] += amount
        deltas[account_id] += amount
    unbalanced = {currency: total for currency, total in sums.items() if total}
    if unbalanced:
        raise errors.UnbalancedEntry(sums=unbalanced)

    for account_id, delta in deltas.items():
        _check_change(accounts[account_id], delta, request.request.allow_frozen_credit)
    for account_id, delta in deltas.items():
        accounts[account_id].balance += delta


def _check_change(account, delta: int, allow_frozen_credit: bool) -> None:
    """May this locked account's balance change by `delta` (credit positive)?"""
    natural_delta = account.sign * delta
    if account.status != Account.Status.ACTIVE:
        if account.status == Account.Status.CLOSED:
            raise errors.AccountClosed(account=account.pk)
        if not (allow_frozen_credit and natural_delta > 0):
            raise errors.AccountFrozen(account=account.pk)
    if natural_delta < 0 and not account.may_go_negative:
        available = account.available
        if available + natural_delta < 0:
            raise errors.InsufficientFunds(account=account.pk, available=available, requested=-natural_delta)


# JournalEntry's fields in the order Model.__init__ takes them positionally,
# which skips the per-field keyword matching (a batch builds thousands).
_ENTRY_FIELD_ORDER = (
    "id",
    "uid",
    "kind",
    "memo",
    "reference",
    "idempotency_key",
    "request_hash",
    "reverses_id",
    "created_at",
    "hash",
    "block_id",
)
if tuple(f.attname for f in JournalEntry._meta.concrete_fields) != _ENTRY_FIELD_ORDER:
    raise ImproperlyConfigured("JournalEntry's fields changed: update _ENTRY_FIELD_ORDER and _build_entry.")


def _build_entry(checked: CheckedRequest, accounts: dict[int, Account]) -> JournalEntry:
    request = checked.request
    uid = uuid.uuid4()
    created_at = timezone.now()
    reverses_id = request.reverses.pk if request.reverses else None
    digest = entry_hash(
        uid=str(uid),
        created_at_us=epoch_micros(created_at),
        kind=request.kind,
        memo=request.memo,
        reference=request.reference,
        reverses_id=reverses_id,
        postings=[(a, accounts[a].currency, n) for a, n in checked.lines],
    )
    return JournalEntry(
        None,
        uid,
        request.kind,
        request.memo,
        request.reference,
        request.idempotency_key,
        checked.request_hash,
        reverses_id,
        created_at,
        digest,
        None,
    )


def _replay(entry: JournalEntry, request: CheckedRequest) -> JournalEntry:
    if entry.request_hash != request.request_hash:
        raise errors.IdempotencyConflict(idempotency_key=request.idempotency_key, entry=entry.pk)
    return entry


def _entries_by_key(keys: list[str]) -> dict[str, JournalEntry]:
    if connection.vendor == "postgresql":
        alias = connection.alias
        entries = [JournalEntry.from_db(alias, _ENTRY_ATTNAMES, row) for row in _fetch(_BY_KEY_SQL, [keys])]
    else:
        entries = JournalEntry.objects.filter(idempotency_key__in=keys)
    return {e.idempotency_key: e for e in entries}


def _write_generic(
    fresh: list[tuple[JournalEntry, CheckedRequest]], accounts: dict[int, Account], deferred=frozenset()
) -> None:
    JournalEntry.objects.bulk_create([entry for entry, _ in fresh])
    Posting.objects.bulk_create(
        [
            Posting(entry=entry, account_id=account_id, currency=accounts[account_id].currency, amount=amount)
            for entry, request in fresh
            for account_id, amount in request.lines
        ]
    )
    _write_balances([a for a in accounts.values() if a.pk not in deferred])


def _write_balances(locked: list) -> None:
    """Save the balances and holds of locked accounts (lock_accounts' or lock_account_rows')."""
    if connection.vendor != "postgresql":
        Account.objects.bulk_update(locked, ["balance", "on_hold"])
        return
    with connection.wrap_database_errors, psycopg.Cursor(_connection()) as cursor:
        cursor.execute(_UPDATE_BALANCES_SQL, _balance_arrays(locked), prepare=True)


def _balance_arrays(locked: list) -> list[str]:
    return [
        int_array([a.pk for a in locked]),
        int_array([a.balance for a in locked]),
        int_array([a.on_hold for a in locked]),
    ]


# --- PostgreSQL: the hot path in plain SQL --------------------------------------------------
#
# Building queries with the ORM costs more than running them here, so on
# PostgreSQL this path is plain SQL on Django's connection. A transfer is
# BEGIN; one statement that locks its accounts in id order and finds any entry
# already posted under its idempotency key; one statement that writes the
# entry, its postings and the new balances; COMMIT: four round trips inside a
# caller's atomic block, two when post_entries is the outermost transaction
# (_post_pipelined). The statements
# are prepared once per connection, so PostgreSQL does not parse and plan them
# for every transfer (behind PgBouncer in transaction mode that needs
# PgBouncer 1.21+ with max_prepared_statements), and their parameters are sent
# in binary, which psycopg adapts several times faster than text arrays.


def _model_columns(model) -> tuple[list[str], str]:
    fields = model._meta.concrete_fields
    return [f.attname for f in fields], ", ".join(f.column for f in fields)


_ACCOUNT_ATTNAMES, _ACCOUNT_COLUMNS = _model_columns(Account)
_ENTRY_ATTNAMES, _ENTRY_COLUMNS = _model_columns(JournalEntry)
# NO KEY UPDATE: a balance change never touches the key, so rows of other
# tables that reference an account (postings, holds, lots) can still take their
# foreign-key share locks on it while it is locked, instead of queueing behind
# the transfer (and, in voucher's lock orders, deadlocking with it).
_LOCK = "FROM bank_account WHERE id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE"
_LOCK_ACCOUNTS_SQL = f"SELECT {_ACCOUNT_COLUMNS} {_LOCK}"
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


_BY_KEY_SQL = f"SELECT {_ENTRY_COLUMNS} FROM bank_journalentry WHERE idempotency_key = ANY(%b::text[])"
_BY_ID_SQL = f"SELECT {_ENTRY_COLUMNS} FROM bank_journalentry WHERE id = ANY(%b::bigint[])"
_ENTRY_INSERT = (
    "INSERT INTO bank_journalentry"
    " (uid, kind, memo, reference, idempotency_key, request_hash, reverses_id, created_at, hash)"
)
# Many entries: arrays, so one statement text serves every batch size. Each
# posting finds its entry's new id by uid; postings go in in request order.
_WRITE_MANY_SQL = f"""
WITH entry AS (
    {_ENTRY_INSERT}
    SELECT * FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                         %b::bigint[], %b::timestamptz[], %b::text[])
    RETURNING uid, id
), posting AS (
    INSERT INTO bank_posting (entry_id, account_id, currency, amount)
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
    VALUES (%b::uuid, %b::text, %b::text, %b::text, %b::text, %b::text, %b::bigint, %b::timestamptz, %b::text)
    RETURNING id
), posting AS (
    INSERT INTO bank_posting (entry_id, account_id, currency, amount)
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


class _LockedRow:
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


_NEVER_BY_ITSELF = 2**62


def _connection() -> psycopg.Connection:
    """Django's psycopg connection, ready for prepared statements."""
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    pg = connection.connection
    if pg.prepare_threshold is None:
        # Django switches psycopg's automatic preparing off, which also refuses
        # prepare=True. Allow the explicit kind; the ORM's statements are not
        # affected (its client-side-binding cursors never prepare).
        pg.prepare_threshold = _NEVER_BY_ITSELF
    return pg


def _fetch(sql: str, params: list, cursor: psycopg.Cursor | None = None) -> list[tuple]:
    """Run one prepared statement on Django's connection (on `cursor`, if given),
    raising Django's error classes."""
    if cursor is not None:
        with connection.wrap_database_errors:
            return cursor.execute(sql, params, prepare=True).fetchall()
    pg = _connection()
    with connection.wrap_database_errors, psycopg.Cursor(pg) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchall()


def _lock_and_find_postgresql(
    account_ids: set[int], keys: list[str], cursor: psycopg.Cursor | None = None
) -> tuple[dict, dict[str, JournalEntry]]:
    """Lock the accounts in id order and find the entries already posted under
    `keys`, in one statement."""
    ids = sorted(account_ids)
    few = len(ids) <= _FEW and len(keys) <= _FEW
    if not keys:
        if few:
            rows = _fetch(_lock_few_sql(len(ids), 0), ids, cursor)
        else:
            rows = _fetch(_LOCK_ROWS_SQL, [int_array(ids)], cursor)
        locked = {row[0]: _LockedRow(*row) for row in rows}
        _require_all(ids, locked)
        return locked, {}
    if few:
        rows = _fetch(_lock_few_sql(len(ids), len(keys)), [*ids, *keys], cursor)
    else:
        rows = _fetch(_LOCK_ROWS_AND_FIND_SQL, [int_array(ids), keys], cursor)
    locked, posted = {}, []
    for row in rows:
        if row[-1] is None:
            locked[row[0]] = _LockedRow(*row)
        else:
            posted.append(row[-1])
    _require_all(ids, locked)
    earlier = {}
    if posted:  # a retry: read back what the first attempt wrote
        alias = connection.alias
        for row in _fetch(_BY_ID_SQL, [posted]):
            entry = JournalEntry.from_db(alias, _ENTRY_ATTNAMES, row)
            earlier[entry.idempotency_key] = entry
    return locked, earlier


def _write_postgresql(fresh: list[tuple[JournalEntry, CheckedRequest]], accounts: dict, deferred=frozenset()) -> None:
    if _by_copy(fresh):
        _copy_postgresql(fresh, accounts, deferred)
        return
    sql, params = _write_statement(fresh, accounts, deferred)
    _assign_ids(fresh, _fetch(sql, params))


# From this many postings a write goes by COPY (below it, by one statement, fewer
# round trips; settlement writes a few entries of a hundred postings each): psycopg formats binary COPY rows in C, several times faster than
# it builds the write statement's arrays, and PostgreSQL inserts COPY's rows
# into the table a page at a time. The entries' ids
# are drawn from their sequence first, so each posting row carries its entry's.
_COPY_FROM_POSTINGS = 128


def _by_copy(fresh: list[tuple[JournalEntry, CheckedRequest]]) -> bool:
    return sum(len(request.lines) for _, request in fresh) >= _COPY_FROM_POSTINGS


_NEXT_ENTRY_IDS_SQL = """
WITH sequence AS MATERIALIZED (SELECT pg_get_serial_sequence('bank_journalentry', 'id')::regclass AS name)
SELECT nextval(sequence.name) FROM sequence, generate_series(1, %b::integer)
"""
_COPY_ENTRIES_SQL = (
    "COPY bank_journalentry"
    " (id, uid, kind, memo, reference, idempotency_key, request_hash, reverses_id, created_at, hash)"
    " FROM STDIN (FORMAT BINARY)"
)
_COPY_ENTRY_TYPES = ["int8", "uuid", "text", "text", "text", "text", "text", "int8", "timestamptz", "text"]
_COPY_POSTINGS_SQL = "COPY bank_posting (entry_id, account_id, currency, amount) FROM STDIN (FORMAT BINARY)"
_COPY_POSTING_TYPES = ["int8", "int8", "text", "int8"]
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


def _copy_postgresql(fresh: list[tuple[JournalEntry, CheckedRequest]], accounts: dict, deferred=frozenset()) -> None:
    """Write many entries, their postings (in request order) and every locked account's balance."""
    pg = _connection()
    locked = [a for a in accounts.values() if a.pk not in deferred]
    with connection.wrap_database_errors, psycopg.Cursor(pg) as cursor:
        cursor.execute(_NEXT_ENTRY_IDS_SQL, [len(fresh)], prepare=True)
        for (entry, _), (pk,) in zip(fresh, cursor.fetchall(), strict=True):
            entry.pk = pk
        with cursor.copy(_COPY_ENTRIES_SQL) as copy:
            copy.set_types(_COPY_ENTRY_TYPES)
            write = copy.write_row
            for entry, _ in fresh:
                write((entry.pk, *_entry_values(entry)))
        with cursor.copy(_COPY_POSTINGS_SQL) as copy:
            copy.set_types(_COPY_POSTING_TYPES)
            write = copy.write_row
            for entry, request in fresh:
                entry_id = entry.pk
                for account_id, amount in request.lines:
                    write((entry_id, account_id, accounts[account_id].currency, amount))
        cursor.execute(_UPDATE_BALANCES_SQL, _balance_arrays(locked), prepare=True)
    alias = connection.alias
    for entry, _ in fresh:
        entry._state.adding = False
        entry._state.db = alias


def _entry_values(entry: JournalEntry) -> tuple:
    """An entry's columns as every write takes them: those of _ENTRY_INSERT, in its order."""
    return (
        entry.uid,
        entry.kind,
        entry.memo,
        entry.reference,
        entry.idempotency_key,
        entry.request_hash,
        entry.reverses_id,
        entry.created_at,
        entry.hash,
    )


def _write_statement(
    fresh: list[tuple[JournalEntry, CheckedRequest]], accounts: dict, deferred=frozenset()
) -> tuple[str, list]:
    """The one statement that writes the entries, their postings and every locked account's balance."""
    locked = [a for a in accounts.values() if a.pk not in deferred]
    if len(fresh) == 1:
        [(entry, request)] = fresh
        params = list(_entry_values(entry))
        for account_id, amount in request.lines:
            params += (account_id, accounts[account_id].currency, amount)
        for account in locked:
            params += (account.pk, account.balance, account.on_hold)
        return _write_one_sql(len(request.lines), len(locked)), params
    columns: tuple[list, ...] = ([], [], [], [], [], [], [], [], [])
    line_uid, line_account, line_currency, line_amount = [], [], [], []
    for entry, request in fresh:
        for column, value in zip(columns, _entry_values(entry), strict=True):
            column.append(value)
        for account_id, amount in request.lines:
            line_uid.append(entry.uid)
            line_account.append(account_id)
            line_currency.append(accounts[account_id].currency)
            line_amount.append(amount)
    return _WRITE_MANY_SQL, [*columns, line_uid, line_account, line_currency, line_amount, *_balance_arrays(locked)]


def _assign_ids(fresh: list[tuple[JournalEntry, CheckedRequest]], rows: list[tuple]) -> None:
    """Give the written entries the ids the write statement returned, and mark them saved."""
    if len(fresh) == 1:
        [(entry, _)] = fresh
        [(entry.pk,)] = rows
    else:
        ids = dict(rows)
        for entry, _ in fresh:
            entry.pk = ids[entry.uid]
    alias = connection.alias
    for entry, _ in fresh:
        entry._state.adding = False
        entry._state.db = alias


# --- PostgreSQL: the outermost transaction in two round trips -----------------------------
#
# When post_entries is not inside a caller's transaction it manages its own,
# in psycopg's pipeline mode on Django's connection (which stays in autocommit
# mode, as Django left it): BEGIN travels with the lock-and-find statement in
# one round trip, the write with COMMIT in a second, where
# transaction.atomic() takes four. That saves the server work per transfer
# (fewer messages, fewer wake-ups) and shortens the time the accounts stay
# locked; the client's CPU stays about the same, since psycopg's pipeline polls
# and sends after every queued statement. Inside a caller's atomic block,
# post_entries runs in that transaction as before.


def _outermost() -> bool:
    """Is post_entries managing its own transaction (no atomic block, autocommit on,
    no transaction begun behind Django's back)?"""
    return (
        not connection.in_atomic_block
        and connection.get_autocommit()
        and connection.connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        and psycopg.Pipeline.is_supported()
    )


def _post_pipelined(checked: list[CheckedRequest], all_ids: set[int], keys: list[str]) -> list[JournalEntry]:
    """post_entries' transaction, begun and committed here. On any error it is
    rolled back before the error propagates, so Django's connection is back in
    autocommit mode with no transaction open, as if atomic() had run."""
    pg = _connection()
    try:
        with connection.wrap_database_errors, psycopg.Cursor(pg) as control, psycopg.Cursor(pg) as writer:
            with pg.pipeline():
                control.execute(b"BEGIN", prepare=False)
                # Fetching the lock statement's rows flushes the pipeline: BEGIN goes with it.
                accounts, earlier = _lock_and_find_postgresql(all_ids, keys, control)
                results, fresh = _check_locked(checked, accounts, earlier)
                by_copy = _by_copy(fresh)
                if not by_copy:
                    if fresh:
                        writer.execute(*_write_statement(fresh, accounts), prepare=True)
                    control.execute(b"COMMIT", prepare=False)
                    # Nothing may raise between queueing COMMIT and leaving the
                    # pipeline, whose Sync sends the write and COMMIT together.
            if by_copy:  # COPY cannot run in pipeline mode; a batch this big barely notices two more round trips
                _copy_postgresql(fresh, accounts)
                control.execute(b"COMMIT", prepare=False)
            elif fresh:
                _assign_ids(fresh, writer.fetchall())
    except BaseException:
        _end_failed_transaction(pg)
        raise
    return results


def _end_failed_transaction(pg: psycopg.Connection) -> None:
    """Roll back what _post_pipelined began; close the connection if even that fails,
    so Django opens a fresh one instead of reusing one in an unknown state."""
    try:
        if not pg.closed and pg.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            pg.rollback()
    except Exception:
        connection.close()


# --- validation, before any database work -------------------------------------------------


def check_request(request: EntryRequest) -> CheckedRequest:
    """Validate a request's shape and types; touches no database."""
    _check_text("kind", request.kind, 40, required=True)
    _check_text("memo", request.memo, 200)
    _check_text("reference", request.reference, 100)
    if request.idempotency_key is not None:
        _check_text("idempotency_key", request.idempotency_key, 100, required=True)
    lines = request.lines
    if not isinstance(lines, (list, tuple)) or len(lines) < 2:
        raise errors.InvalidEntry("An entry needs at least two postings.", field="lines")
    if len(lines) > MAX_LINES:
        raise errors.InvalidEntry(f"An entry may have at most {MAX_LINES} postings.", field="lines")
    normalized = []
    for index, line in enumerate(lines):
        if not isinstance(line, (list, tuple)) or len(line) != 2:
            raise errors.InvalidEntry("Each line is (account, amount).", line=index)
        account, amount = line
        if isinstance(account, Account) and account.pk is not None:
            account_id = account.pk
        elif type(account) is int:
            account_id = account
        else:
            raise errors.AccountNotFound("An account is given as an Account or its integer id.", line=index)
        # bool is a subclass of int, and a float or Decimal is never money here.
        if type(amount) is not int or amount == 0 or abs(amount) > MAX_AMOUNT:
            raise errors.InvalidAmount(line=index, amount=repr(amount), max_amount=MAX_AMOUNT)
        normalized.append((account_id, amount))
    if request.reverses is not None and not isinstance(request.reverses, JournalEntry):
        raise errors.InvalidEntry("reverses must be a JournalEntry.", field="reverses")
    lines_tuple = tuple(normalized)
    return CheckedRequest(
        request=request,
        lines=lines_tuple,
        account_ids=tuple(sorted({a for a, _ in normalized})),
        request_hash=_request_hash(request, lines_tuple),
    )


def _check_text(name: str, value, max_length: int, required: bool = False) -> None:
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > max_length:
        raise errors.InvalidEntry(f"{name} must be text of at most {max_length} characters.", field=name)


def _request_hash(request: EntryRequest, lines: tuple[tuple[int, int], ...]) -> str:
    payload = repr(
        (
            request.kind,
            request.memo,
            request.reference,
            request.reverses.pk if request.reverses else None,
            sorted(lines),
        )
    )
    return hashlib.sha256(payload.encode()).hexdigest()
