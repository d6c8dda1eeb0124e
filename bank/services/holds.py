"""Holds (two-phase transfers): reserve now, then capture all or part, void, or let expire.

A hold lowers its account's available balance at once, so every later spend
is checked against what is really left. Lock order: the hold row first, then
its accounts in id order (lock_accounts), the same in every function here.
"""

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
