"""The rules an entry must pass before anything is written: its shape and types
(check_request, no database), then, against the locked accounts, the
idempotency key, each currency summing to zero, and each account's status and
available balance (check_locked). Nothing here reads or writes the database.
"""

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from bank import errors
from bank.models import MAX_AMOUNT, Account, JournalEntry
from bank.services.posting.entries import build_entry

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


# --- the request's shape, before any database work -----------------------------------------


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


# --- against the locked accounts ---------------------------------------------------------------


def check_locked(
    requests: Sequence[CheckedRequest], accounts: dict, earlier: dict[str, JournalEntry]
) -> tuple[list[JournalEntry], list[tuple[JournalEntry, CheckedRequest]]]:
    """Check every request against the locked accounts (applying each to their
    balances in memory, so the next request sees it) and build its entry; writes nothing.

    `earlier` holds the entries already posted under the requests' keys. Returns
    the entries to answer with, in request order, and the new ones to write."""
    results: list[JournalEntry] = []
    fresh: list[tuple[JournalEntry, CheckedRequest]] = []
    in_batch: dict[str, tuple[CheckedRequest, JournalEntry]] = {}
    for request in requests:
        key = request.idempotency_key
        if key and key in earlier:
            results.append(replay(earlier[key], request))
            continue
        if key and key in in_batch:
            first_request, first_entry = in_batch[key]
            if first_request.request_hash != request.request_hash:
                raise errors.IdempotencyConflict(idempotency_key=key)
            results.append(first_entry)
            continue
        _check_and_apply_balances(request, accounts)
        entry = build_entry(request, accounts)
        fresh.append((entry, request))
        results.append(entry)
        if key:
            in_batch[key] = (request, entry)
    return results, fresh


def replay(entry: JournalEntry, request: CheckedRequest) -> JournalEntry:
    """The entry posted earlier under the request's key is the answer, if it was the same request."""
    if entry.request_hash != request.request_hash:
        raise errors.IdempotencyConflict(idempotency_key=request.idempotency_key, entry=entry.pk)
    return entry


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
        check_change(accounts[account_id], delta, request.request.allow_frozen_credit)
    for account_id, delta in deltas.items():
        accounts[account_id].balance += delta


def check_change(account, delta: int, allow_frozen_credit: bool) -> None:
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
