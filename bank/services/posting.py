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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from bank import errors
from bank.hashing import entry_hash, epoch_micros
from bank.models import Account, JournalEntry, Posting

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
    written with one statement each.
    """
    if not requests:
        return []
    checked = [check_request(request) for request in requests]
    all_ids = {account_id for request in checked for account_id in request.account_ids}
    try:
        with transaction.atomic():
            accounts = lock_accounts(all_ids)
            return apply_locked(checked, accounts)
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
    if JournalEntry.objects.filter(reverses=entry).exclude(idempotency_key=idempotency_key).exists():
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
    locked = {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
    missing = [i for i in ids if i not in locked]
    if missing:
        raise errors.AccountNotFound(account=missing[0])
    return locked


def apply_locked(requests: Sequence[CheckedRequest], accounts: dict[int, Account]) -> list[JournalEntry]:
    """Check every request against accounts the caller has locked, and write them.

    Must run under lock_accounts' locks; hold amounts the caller changed on the
    locked accounts are saved with the balances.
    """
    keys = [r.idempotency_key for r in requests if r.idempotency_key]
    earlier = {e.idempotency_key: e for e in JournalEntry.objects.filter(idempotency_key__in=keys)} if keys else {}

    results: list[JournalEntry | None] = []
    fresh: list[tuple[JournalEntry, EntryRequest]] = []
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

    if fresh:
        JournalEntry.objects.bulk_create([entry for entry, _ in fresh])
        Posting.objects.bulk_create(
            [
                Posting(entry=entry, account_id=account_id, currency=accounts[account_id].currency, amount=amount)
                for entry, request in fresh
                for account_id, amount in request.lines
            ]
        )
        Account.objects.bulk_update(list(accounts.values()), ["balance", "on_hold"])
    return results


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
        account = accounts[account_id]
        natural_delta = account.sign * delta
        if account.status == Account.Status.CLOSED:
            raise errors.AccountClosed(account=account_id)
        if account.status == Account.Status.FROZEN and not (request.request.allow_frozen_credit and natural_delta > 0):
            raise errors.AccountFrozen(account=account_id)
        if natural_delta < 0 and not account.may_go_negative:
            available = account.available
            if available + natural_delta < 0:
                raise errors.InsufficientFunds(account=account_id, available=available, requested=-natural_delta)
    for account_id, delta in deltas.items():
        accounts[account_id].balance += delta


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
        uid=uid,
        kind=request.kind,
        memo=request.memo,
        reference=request.reference,
        idempotency_key=request.idempotency_key,
        request_hash=checked.request_hash,
        reverses_id=reverses_id,
        created_at=created_at,
        hash=digest,
    )


def _replay(entry: JournalEntry, request: CheckedRequest) -> JournalEntry:
    if entry.request_hash != request.request_hash:
        raise errors.IdempotencyConflict(idempotency_key=request.idempotency_key, entry=entry.pk)
    return entry


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
        if isinstance(account, Account):
            account_id = account.pk
        elif type(account) is int:
            account_id = account
        else:
            raise errors.AccountNotFound("An account is given as an Account or its integer id.", line=index)
        # bool is a subclass of int, and a float or Decimal is never money here.
        if type(amount) is not int or amount == 0:
            raise errors.InvalidAmount(line=index, amount=repr(amount))
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
