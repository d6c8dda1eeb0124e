"""Maker-checker: one mechanism for every change that needs a second staff member.

A maker files an ApprovalRequest (kind, target, the change as JSON, reason);
staff with the approver role approve or reject it; once the kind's number of
approvals is in, the change runs exactly once, under the request's row lock.
The maker can never approve their own request, and one person never counts
twice: both are checked here, in the service, so no admin page, API call or
crafted POST gets around them. Every step, refusals included, is audited.

Apps register their kinds (ApprovalKind) at import time; the ledger's own
kinds are at the end of this module. voucher.services.controls adds the
token's, so this module never imports an app above the ledger.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from bank import errors
from bank.models import MAX_AMOUNT, Account, ApprovalRequest, ApprovalVote, Currency, JournalEntry
from bank.services.accounts import set_account_status
from bank.services.audit import record_audit
from bank.services.controls import minter_allowance_row, raise_minter_allowance, require_reason, require_role
from bank.services.posting import post_entry, reverse_entry

APPROVER_PERMISSION = "bank.approve_request"


@dataclass(frozen=True)
class ApprovalKind:
    name: str
    maker_permission: str  # who may file it
    execute: Callable[[ApprovalRequest, object], dict]  # (locked request, final approver) -> result JSON
    validate: Callable[[object, dict], None] = lambda target, payload: None  # refuse bad input at filing time
    approvals: int = 1


KINDS: dict[str, ApprovalKind] = {}


def register_kind(kind: ApprovalKind) -> ApprovalKind:
    KINDS[kind.name] = kind
    return kind


def _kind(name: str) -> ApprovalKind:
    if name not in KINDS:
        raise errors.InvalidEntry(f"Unknown approval kind {name!r}.", field="kind")
    return KINDS[name]


def request_approval(*, actor, kind: str, target, payload: dict | None = None, reason: str) -> ApprovalRequest:
    """File a request. The maker needs the kind's maker role; bad input is refused now, not at approval."""
    spec = _kind(kind)
    require_role(actor, spec.maker_permission)
    reason = require_reason(reason)
    payload = dict(payload or {})
    spec.validate(target, payload)
    with transaction.atomic():
        request = ApprovalRequest.objects.create(
            kind=kind,
            target_type=type(target).__name__,
            target_id=str(target.pk),
            payload=payload,
            reason=reason,
            maker=actor,
            required_approvals=spec.approvals,
        )
        record_audit(actor=actor, action=f"approval.request.{kind}", target=request, after=payload, reason=reason)
    return request


def _refuse(actor, request_id, error: errors.BankError, attempted: str) -> None:
    """Audit a refused decision in its own transaction, so the record survives the refusal."""
    with transaction.atomic():
        record_audit(
            actor=actor,
            action=f"approval.{attempted}_refused",
            target=ApprovalRequest(pk=request_id),
            after={"code": error.code},
            reason=str(error),
        )
    raise error


def _request_id(request) -> int:
    request_id = request.pk if isinstance(request, ApprovalRequest) else request
    if type(request_id) is not int or not ApprovalRequest.objects.filter(pk=request_id).exists():
        raise errors.InvalidEntry("No such approval request.", field="request")
    return request_id


def approve_request(*, actor, request: ApprovalRequest | int, reason: str = "") -> ApprovalRequest:
    """Add `actor`'s approval; with the last one needed, run the change once.

    A failed change (the wallet was unfrozen meanwhile, the account lacks the
    money) marks the request failed with the error code; nothing it tried is kept.
    """
    request_id = _request_id(request)
    try:
        require_role(actor, APPROVER_PERMISSION)
    except errors.RoleRequired as error:
        _refuse(actor, request_id, error, "approve")
    with transaction.atomic():
        locked = ApprovalRequest.objects.select_for_update().get(pk=request_id)
        problem = None
        if locked.maker_id == actor.pk:
            problem = errors.MakerCheckerViolation(request=request_id)
        elif locked.status != ApprovalRequest.Status.PENDING:
            problem = errors.ApprovalNotPending(request=request_id, status=locked.status)
        elif locked.votes.filter(approver=actor).exists():
            problem = errors.DuplicateApproval(request=request_id)
        if problem is None:
            ApprovalVote.objects.create(request=locked, approver=actor)
            record_audit(actor=actor, action=f"approval.approve.{locked.kind}", target=locked, reason=reason)
            if locked.votes.count() >= locked.required_approvals:
                _execute(locked, actor, reason)
    if problem is not None:
        _refuse(actor, request_id, problem, "approve")
    return locked


def _execute(request: ApprovalRequest, actor, reason: str) -> None:
    """Run the change under the request's lock. APPROVED is the 'running' state
    the gated services (unfreezes) check; it becomes EXECUTED or FAILED here."""
    request.status = ApprovalRequest.Status.APPROVED
    request.decided_by = actor
    request.decided_at = timezone.now()
    request.decision_reason = reason
    request.save()
    try:
        with transaction.atomic():
            result = _kind(request.kind).execute(request, actor)
        request.status = ApprovalRequest.Status.EXECUTED
        request.result = result or {}
    except errors.BankError as error:
        request.status = ApprovalRequest.Status.FAILED
        request.result = {"error": error.code, "message": str(error)}
    request.save()
    record_audit(
        actor=actor,
        action=f"approval.{request.status}.{request.kind}",
        target=request,
        before={"status": ApprovalRequest.Status.PENDING},
        after={"status": request.status, "result": request.result},
        reason=request.reason,
    )


def reject_request(*, actor, request: ApprovalRequest | int, reason: str) -> ApprovalRequest:
    """Turn a pending request down (an approver), or withdraw it (its maker)."""
    request_id = _request_id(request)
    reason = require_reason(reason)
    with transaction.atomic():
        locked = ApprovalRequest.objects.select_for_update().get(pk=request_id)
        problem = None
        if locked.maker_id != getattr(actor, "pk", None):
            try:
                require_role(actor, APPROVER_PERMISSION)
            except errors.RoleRequired as error:
                problem = error
        if problem is None and locked.status != ApprovalRequest.Status.PENDING:
            problem = errors.ApprovalNotPending(request=request_id, status=locked.status)
        if problem is None:
            locked.status = ApprovalRequest.Status.REJECTED
            locked.decided_by = actor
            locked.decided_at = timezone.now()
            locked.decision_reason = reason
            locked.save()
            record_audit(
                actor=actor,
                action=f"approval.reject.{locked.kind}",
                target=locked,
                before={"status": ApprovalRequest.Status.PENDING},
                after={"status": locked.status},
                reason=reason,
            )
    if problem is not None:
        _refuse(actor, request_id, problem, "reject")
    return locked


# --- the ledger's own kinds ----------------------------------------------------------------------


def _validate_unfreeze_account(target, payload) -> None:
    if not isinstance(target, Account) or not Account.objects.filter(pk=target.pk, status="frozen").exists():
        raise errors.InvalidEntry("Only a frozen account can be unfrozen.", field="target")


def _unfreeze_account(request: ApprovalRequest, actor) -> dict:
    account = set_account_status(
        actor=actor,
        account=int(request.target_id),
        status=Account.Status.ACTIVE,
        reason=request.reason,
        approval=request,
    )
    return {"account": account.pk, "status": account.status}


def _adjustment_lines(payload: dict) -> list[tuple[int, int]]:
    lines = payload.get("lines")
    if not isinstance(lines, list) or len(lines) < 2:
        raise errors.InvalidEntry("An adjustment needs two or more lines [account id, amount].", field="lines")
    parsed = []
    for line in lines:
        if not isinstance(line, list | tuple) or len(line) != 2 or type(line[0]) is not int:
            raise errors.InvalidEntry("Each line is [account id, amount].", field="lines")
        if type(line[1]) is not int or line[1] == 0 or abs(line[1]) > MAX_AMOUNT:
            raise errors.InvalidAmount(field="lines", amount=repr(line[1]))
        parsed.append((line[0], line[1]))
    currencies = dict(Account.objects.filter(pk__in=[a for a, _ in parsed]).values_list("pk", "currency"))
    if len(currencies) != len({a for a, _ in parsed}):
        raise errors.AccountNotFound(accounts=sorted({a for a, _ in parsed} - set(currencies)))
    for currency in Currency.values:
        if sum(amount for account, amount in parsed if currencies[account] == currency):
            raise errors.UnbalancedEntry(currency=currency)
    return parsed


def _validate_adjustment(target, payload) -> None:
    if not isinstance(target, JournalEntry):
        raise errors.InvalidEntry("An adjustment corrects a journal entry.", field="target")
    mode = payload.get("mode")
    if mode == "reverse":
        if JournalEntry.objects.filter(reverses=target).exists():
            raise errors.AlreadyReversed(entry=target.pk)
    elif mode == "adjust":
        _adjustment_lines(payload)
    else:
        raise errors.InvalidEntry("mode is 'reverse' or 'adjust'.", field="mode")


def _adjust(request: ApprovalRequest, actor) -> dict:
    """Never an edit: a reversing entry, or an adjusting entry that names the original in its reference."""
    original = JournalEntry.objects.get(pk=int(request.target_id))
    key = f"approval:{request.pk}"
    if request.payload["mode"] == "reverse":
        entry = reverse_entry(entry=original, memo=request.reason[:200], idempotency_key=key)
    else:
        entry = post_entry(
            lines=_adjustment_lines(request.payload),
            kind="manual_adjustment",
            memo=request.reason[:200],
            reference=f"adjusts #{original.pk}",
            idempotency_key=key,
        )
    return {"entry": entry.pk}


def _validate_allowance(target, payload) -> None:
    amount = payload.get("amount")
    if type(amount) is not int or not 0 < amount <= MAX_AMOUNT:
        raise errors.InvalidAmount(field="amount", amount=repr(amount))


def _raise_allowance(request: ApprovalRequest, actor) -> dict:
    row = raise_minter_allowance(
        actor=actor,
        minter=request.payload["minter"],
        amount=request.payload["amount"],
        reason=request.reason,
        approval=request,
    )
    return {"minter": row.minter, "allowance": row.allowance}


register_kind(
    ApprovalKind("unfreeze_account", "bank.freeze_account", _unfreeze_account, validate=_validate_unfreeze_account)
)
register_kind(ApprovalKind("manual_adjustment", "bank.adjust_ledger", _adjust, validate=_validate_adjustment))
register_kind(ApprovalKind("allowance_raise", "bank.raise_allowance", _raise_allowance, validate=_validate_allowance))


def request_allowance_raise(*, actor, minter: str, amount: int, reason: str) -> ApprovalRequest:
    """File a raise of `minter`'s allowance by `amount` (executed once an approver agrees)."""
    if not isinstance(minter, str) or not minter.strip() or len(minter) > 40:
        raise errors.InvalidEntry("minter must be a name of 1 to 40 characters.", field="minter")
    require_role(actor, "bank.raise_allowance")
    with transaction.atomic():
        row = minter_allowance_row(minter)
    return request_approval(
        actor=actor, kind="allowance_raise", target=row, payload={"minter": minter, "amount": amount}, reason=reason
    )
