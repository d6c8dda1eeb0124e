"""Holds (two-phase transfers): reserve now, then capture all or part, void, or let expire.

A hold lowers its account's available balance at once, so every later spend
is checked against what is really left. Lock order: the hold row first, then
its accounts in id order (lock_accounts), the same in every function here.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from bank import errors
from bank.models import MAX_AMOUNT, Account, Hold, JournalEntry
from bank.services.posting import EntryRequest, apply_locked, check_request, lock_accounts

DEFAULT_HOLD_TTL = timedelta(minutes=15)


def place_hold(
    *,
    account: Account | int,
    destination: Account | int,
    amount: int,
    kind: str,
    reference: str = "",
    idempotency_key: str | None = None,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> Hold:
    """Reserve `amount` on `account` for a later transfer to `destination`, until
    `expires_at` (default: DEFAULT_HOLD_TTL after `now`, the time it is placed at,
    by default the present)."""
    if (
        type(amount) is not int or not 0 < amount <= MAX_AMOUNT
    ):  # a negative hold would shrink another hold's reservation
        raise errors.InvalidAmount(amount=repr(amount))
    account_id = account.pk if isinstance(account, Account) else account
    destination_id = destination.pk if isinstance(destination, Account) else destination
    # Validated as the entry it will become, so a hold that could never be captured is refused now.
    checked = check_request(
        EntryRequest(lines=[(account_id, -amount), (destination_id, amount)], kind=kind, reference=reference)
    )
    now = now or timezone.now()
    expires_at = expires_at or now + DEFAULT_HOLD_TTL
    if expires_at <= now:
        raise errors.InvalidEntry("A hold must expire in the future.", field="expires_at")
    try:
        with transaction.atomic():
            accounts = lock_accounts(checked.account_ids)
            if idempotency_key:
                earlier = Hold.objects.filter(idempotency_key=idempotency_key).first()
                if earlier:
                    return _replay_hold(earlier, checked.request_hash)
            source, target = accounts[account_id], accounts[destination_id]
            if source.currency != target.currency:
                raise errors.UnbalancedEntry(sums={source.currency: -amount, target.currency: amount})
            for held in (source, target):
                if held.status != Account.Status.ACTIVE:
                    raise (errors.AccountClosed if held.status == Account.Status.CLOSED else errors.AccountFrozen)(
                        account=held.pk
                    )
            if not source.may_go_negative and source.available < amount:
                raise errors.InsufficientFunds(account=source.pk, available=source.available, requested=amount)
            source.on_hold += amount
            source.save(update_fields=["on_hold"])
            return Hold.objects.create(
                account=source,
                destination=target,
                amount=amount,
                kind=kind,
                reference=reference,
                idempotency_key=idempotency_key,
                request_hash=checked.request_hash,
                created_at=now,
                expires_at=expires_at,
            )
    except IntegrityError:
        earlier = Hold.objects.filter(idempotency_key=idempotency_key).first() if idempotency_key else None
        if earlier is None:
            raise
        return _replay_hold(earlier, checked.request_hash)


def capture_hold(*, hold: Hold | int, amount: int | None = None, memo: str = "") -> JournalEntry:
    """Move `amount` (default: all of it) of an open hold to its destination; the rest is released."""
    with transaction.atomic():
        hold = _lock_open_hold(hold)
        if hold.expires_at <= timezone.now():
            raise errors.HoldExpired(hold=hold.pk)
        amount = hold.amount if amount is None else amount
        if type(amount) is not int or not 0 < amount <= MAX_AMOUNT:
            raise errors.InvalidAmount(amount=repr(amount))
        if amount > hold.amount:
            raise errors.CaptureExceedsHold(hold=hold.pk, held=hold.amount, requested=amount)
        checked = check_request(
            EntryRequest(
                lines=[(hold.account_id, -amount), (hold.destination_id, amount)],
                kind=hold.kind,
                memo=memo,
                reference=hold.reference,
                # No idempotency key: the hold row, locked and moved out of "open"
                # in this transaction, is what makes a second capture impossible.
            )
        )
        accounts = lock_accounts(checked.account_ids)
        accounts[hold.account_id].on_hold -= hold.amount
        [entry] = apply_locked([checked], accounts)
        _close(hold, Hold.Status.CAPTURED, captured_amount=amount, capture_entry=entry)
        return entry


def void_hold(*, hold: Hold | int) -> Hold:
    """Release an open hold without moving money."""
    with transaction.atomic():
        hold = _lock_open_hold(hold)
        _release(hold, Hold.Status.VOIDED)
        return hold


def expire_holds(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Release every open hold past its expiry. Safe on several workers at once:
    each takes rows the others have not locked (SKIP LOCKED). Returns the count."""
    now = now or timezone.now()
    expired = 0
    while True:
        with transaction.atomic():
            due = list(
                Hold.objects.select_for_update(skip_locked=True)
                .filter(status=Hold.Status.OPEN, expires_at__lte=now)
                .order_by("pk")[:batch_size]
            )
            # All their accounts in one lock_accounts call, so the id order holds across the batch.
            accounts = lock_accounts({hold.account_id for hold in due})
            for hold in due:
                accounts[hold.account_id].on_hold -= hold.amount
                _close(hold, Hold.Status.EXPIRED)
            Account.objects.bulk_update(list(accounts.values()), ["on_hold"])
        expired += len(due)
        if len(due) < batch_size:
            return expired


def _lock_open_hold(hold: Hold | int) -> Hold:
    hold_id = hold.pk if isinstance(hold, Hold) else hold
    locked = Hold.objects.select_for_update().filter(pk=hold_id).first()
    if locked is None:
        raise errors.InvalidEntry("No such hold.", hold=hold_id)
    if locked.status == Hold.Status.EXPIRED:  # the same answer before and after expire_holds ran
        raise errors.HoldExpired(hold=hold_id)
    if locked.status != Hold.Status.OPEN:
        raise errors.HoldNotOpen(hold=hold_id, status=locked.status)
    return locked


def _release(hold: Hold, status: str) -> None:
    accounts = lock_accounts([hold.account_id])
    account = accounts[hold.account_id]
    account.on_hold -= hold.amount
    account.save(update_fields=["on_hold"])
    _close(hold, status)


def _close(hold: Hold, status: str, **changes) -> None:
    hold.status = status
    hold.closed_at = timezone.now()
    for name, value in changes.items():
        setattr(hold, name, value)
    hold.save(update_fields=["status", "closed_at", *changes])


def _replay_hold(hold: Hold, request_hash: str) -> Hold:
    if hold.request_hash != request_hash:
        raise errors.IdempotencyConflict(hold=hold.pk)
    return hold


def release_holds(
    *,
    holds: Iterable[Hold | int],
    status: str,
    captured_amounts: dict[int, int] | None = None,
    lock_also: Iterable[int] = (),
    now: datetime | None = None,
) -> dict[int, Account]:
    """Close several holds at once for a caller that moves the money itself, in
    the caller's transaction (must run inside transaction.atomic).

    For a reservation spread over several accounts whose capture is one entry
    of the caller's own (voucher's wallet holds: a payment, with the rows
    settlement reads), not capture_hold's entry per hold. Locks the holds by
    id, then their accounts and `lock_also` (the other accounts the caller's
    entry will post to) in one lock_accounts call, so the caller's entry,
    posted next, finds its accounts already locked in id order. Each
    account's on_hold is lowered and saved; returns the locked accounts.

    CAPTURED: every hold must be open and unexpired (HoldExpired, HoldNotOpen);
    `captured_amounts` (hold id -> won) is what of each the caller's entry
    moves, and a hold it takes nothing from is closed as VOIDED. Its
    capture_entry stays empty: the caller's entry, not yet posted, records it.
    VOIDED, EXPIRED: a hold already closed (expire_holds got there first) is
    left as it is, so a sweep and a void never fail on each other.
    """
    if status not in (Hold.Status.CAPTURED, Hold.Status.VOIDED, Hold.Status.EXPIRED):
        raise errors.InvalidEntry("Holds close as captured, voided or expired.", status=status)
    ids = sorted({hold.pk if isinstance(hold, Hold) else hold for hold in holds})
    locked = list(Hold.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    if len(locked) != len(ids):
        raise errors.InvalidEntry("No such hold.", hold=min(set(ids) - {h.pk for h in locked}))
    now = now or timezone.now()
    if status == Hold.Status.CAPTURED:
        for hold in locked:
            if hold.status == Hold.Status.EXPIRED or (hold.status == Hold.Status.OPEN and hold.expires_at <= now):
                raise errors.HoldExpired(hold=hold.pk)
            if hold.status != Hold.Status.OPEN:
                raise errors.HoldNotOpen(hold=hold.pk, status=hold.status)
            taken = (captured_amounts or {}).get(hold.pk, 0)
            if type(taken) is not int or not 0 <= taken <= hold.amount:
                raise errors.CaptureExceedsHold(hold=hold.pk, held=hold.amount, requested=repr(taken))
    still_open = [hold for hold in locked if hold.status == Hold.Status.OPEN]
    accounts = lock_accounts({hold.account_id for hold in still_open} | set(lock_also))
    for hold in still_open:
        accounts[hold.account_id].on_hold -= hold.amount
        taken = (captured_amounts or {}).get(hold.pk, 0) if status == Hold.Status.CAPTURED else 0
        if taken:
            _close(hold, Hold.Status.CAPTURED, captured_amount=taken)
        else:
            _close(hold, Hold.Status.VOIDED if status == Hold.Status.CAPTURED else status)
    changed = {hold.account_id for hold in still_open}
    Account.objects.bulk_update([accounts[pk] for pk in sorted(changed)], ["on_hold"])
    return accounts
