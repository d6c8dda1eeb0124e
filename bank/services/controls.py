"""Regulated-issuer controls kept in the ledger app: the role check every
control service starts with, the global pause of payments and transfers, and
minter allowances (every mint uses its minter's allowance up under a row lock)."""

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bank import errors
from bank.models import MAX_AMOUNT, ApprovalRequest, ControlState, MinterAllowance
from bank.services.audit import record_audit


def require_role(actor, permission: str) -> None:
    """Staff with `permission` ("app_label.codename") may go on; anyone else is refused."""
    if (
        actor is None
        or not getattr(actor, "is_active", False)
        or not getattr(actor, "is_staff", False)
        or not actor.has_perm(permission)
    ):
        raise errors.RoleRequired(permission=permission)


def require_reason(reason) -> str:
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 300:
        raise errors.InvalidEntry("A reason of 1 to 300 characters is required.", field="reason")
    return reason.strip()


def check_executing(approval, *, kinds: tuple[str, ...], target) -> None:
    """A gated service (an unfreeze) runs only inside the execution of an approved
    request of one of `kinds` for this very target; anything else is refused."""
    matches = isinstance(approval, ApprovalRequest) and approval.kind in kinds
    if matches and target is not None:
        matches = (approval.target_type, approval.target_id) == (type(target).__name__, str(target.pk))
    # The stored status, not the object's: only _execute sets APPROVED, under the request's lock.
    if (
        not matches
        or not ApprovalRequest.objects.filter(pk=approval.pk, status=ApprovalRequest.Status.APPROVED).exists()
    ):
        raise errors.ApprovalRequired(kinds=list(kinds))


# --- pause ---------------------------------------------------------------------------------------


def payments_paused() -> bool:
    """Lock-free: one indexed read on the hot path, never a wait."""
    return ControlState.objects.filter(pk=1, payments_paused=True).exists()


def check_not_paused() -> None:
    if payments_paused():
        raise errors.PaymentsPaused()


def set_payments_paused(*, actor, paused: bool, reason: str) -> ControlState:
    """Pause or resume payments and transfers (the pauser role). Refunds,
    settlement, freezes and role changes keep working while paused."""
    require_role(actor, "bank.pause_payments")
    reason = require_reason(reason)
    if type(paused) is not bool:
        raise errors.InvalidEntry("paused must be true or false.", field="paused")
    with transaction.atomic():
        state, _ = ControlState.objects.select_for_update().get_or_create(pk=1)
        before = state.payments_paused
        state.payments_paused = paused
        state.reason = reason
        state.changed_by = actor
        state.changed_at = timezone.now()
        state.save()
        record_audit(
            actor=actor,
            action="payments.pause" if paused else "payments.resume",
            target=state,
            before={"payments_paused": before},
            after={"payments_paused": paused},
            reason=reason,
        )
    return state


# --- minter allowances ---------------------------------------------------------------------------


def minter_allowance_row(minter: str) -> MinterAllowance:
    """The minter's row, locked. A minter seen for the first time starts with
    settings.MINTER_INITIAL_ALLOWANCE (0 in production unless configured)."""
    MinterAllowance.objects.get_or_create(minter=minter, defaults={"allowance": settings.MINTER_INITIAL_ALLOWANCE})
    return MinterAllowance.objects.select_for_update().get(minter=minter)


def use_minter_allowance(*, minter: str, amount: int) -> MinterAllowance:
    """Use `amount` of the minter's allowance. Call inside the mint's transaction,
    after the mint's other locks (the allowance row is the last lock taken), so a
    refused mint rolls back whole and two mints can never overspend."""
    if type(amount) is not int or not 0 < amount <= MAX_AMOUNT:
        raise errors.InvalidAmount(field="amount", amount=repr(amount))
    if not transaction.get_connection().in_atomic_block:
        raise errors.InvalidEntry("A mint uses its allowance inside its own transaction.", field="minter")
    row = minter_allowance_row(minter)
    if amount > row.allowance:
        raise errors.MinterAllowanceExceeded(minter=minter, allowance=row.allowance, requested=amount)
    row.allowance -= amount
    row.minted_total += amount
    row.save(update_fields=["allowance", "minted_total", "updated_at"])
    return row


def raise_minter_allowance(*, actor, minter: str, amount: int, reason: str, approval=None) -> MinterAllowance:
    """Add `amount` to a minter's allowance. Runs only as an approved
    allowance_raise request (`approval`), so every raise had a maker and a checker."""
    if type(amount) is not int or not 0 < amount <= MAX_AMOUNT:
        raise errors.InvalidAmount(field="amount", amount=repr(amount))
    with transaction.atomic():
        row = minter_allowance_row(minter)
        check_executing(approval, kinds=("allowance_raise",), target=row)
        before = row.allowance
        row.allowance += amount
        row.save(update_fields=["allowance", "updated_at"])
        record_audit(
            actor=actor,
            action="minter.allowance_raise",
            target=row,
            before={"allowance": before},
            after={"allowance": row.allowance},
            reason=reason,
        )
    return row
