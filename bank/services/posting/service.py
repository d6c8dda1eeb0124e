"""The posting service's public functions: check every request (rules), lock
its accounts (locks), check it against them (rules) and write it (writers),
all in one transaction; a retried idempotency key returns the first entry.
"""

from collections.abc import Sequence

from django.db import IntegrityError, transaction

from bank import errors
from bank.models import Account, JournalEntry
from bank.services.posting.locks import DeferredBalances, entries_by_key, lock_and_find
from bank.services.posting.rules import CheckedRequest, EntryRequest, check_locked, check_request, replay
from bank.services.posting.writers import write


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
    written with one statement (on PostgreSQL, from writers._COPY_FROM_POSTINGS
    postings on, with COPY). Inside a caller's atomic block (every request that
    moves money) it runs in a savepoint of the caller's transaction.
    """
    if not requests:
        return []
    checked = [check_request(request) for request in requests]
    all_ids = {account_id for request in checked for account_id in request.account_ids}
    keys = [r.idempotency_key for r in checked if r.idempotency_key]
    try:
        with transaction.atomic():
            accounts, earlier = lock_and_find(all_ids, keys)
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
        return [replay(existing[r.idempotency_key], r) for r in checked]


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


def post_locked(
    requests: Sequence[EntryRequest], accounts: dict, deferred: DeferredBalances | None = None
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


def apply_locked(
    requests: Sequence[CheckedRequest], accounts: dict[int, Account], deferred=frozenset()
) -> list[JournalEntry]:
    """Check every request against accounts the caller has locked, and write them.

    Must run under lock_accounts' locks; hold amounts the caller changed on the
    locked accounts are saved with the balances (but for the `deferred` ones,
    which their deferred_balances block writes).
    """
    keys = [r.idempotency_key for r in requests if r.idempotency_key]
    return _apply_locked(requests, accounts, entries_by_key(keys) if keys else {}, deferred)


def _apply_locked(
    requests: Sequence[CheckedRequest], accounts: dict, earlier: dict[str, JournalEntry], deferred=frozenset()
) -> list[JournalEntry]:
    """apply_locked, given the entries already posted under the requests' keys;
    the balances of the `deferred` accounts are left for their deferred_balances block."""
    results, fresh = check_locked(requests, accounts, earlier)
    if fresh:
        write(fresh, accounts, deferred)
    return results
