"""Cash at the bank's counter: a teller records cash a customer pays into, or
takes out of, their KRW deposit account. The other side of each entry is the
branch vault (cash the bank holds), so the ledger always shows where the won are.

A teller may only touch customers' (people's and merchants') KRW accounts;
the bank's own accounts move by approved adjustments, never at the counter.
Large cash (above COUNTER_CASH_APPROVAL_THRESHOLD, or past the teller's
COUNTER_CASH_TELLER_DAILY_LIMIT for the Seoul day) is filed as a counter_cash
request and posted once an approver agrees. The vault never pays out more
cash than it holds.
"""

from datetime import datetime, time
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from bank import errors
from bank.models import MAX_AMOUNT, Account, ApprovalRequest, AuditEvent, JournalEntry, Party
from bank.services.accounts import open_account, open_party
from bank.services.approvals import ApprovalKind, register_kind, request_approval
from bank.services.audit import record_audit
from bank.services.controls import check_executing, require_reason, require_role
from bank.services.posting import lock_accounts, post_entry

VAULT_CODE = "bank:vault:KRW"
PERMISSION = "bank.record_cash"
CUSTOMER_KINDS = (Party.Kind.PERSON, Party.Kind.MERCHANT)
APPROVAL_KIND = "counter_cash"
COUNTER_ACTIONS = ("cash.deposit", "cash.withdrawal")  # a teller's own counter entries, not approved ones
SEOUL = ZoneInfo("Asia/Seoul")


def vault_account() -> Account:
    """The branch vault: an asset (cash on hand), so its natural balance, the
    cash it holds, is -balance in the ledger's credit-positive sign. The
    withdrawal path checks it under the vault's lock (_post_cash)."""
    vault = Account.objects.filter(code=VAULT_CODE).first()
    if vault is None:
        bank = Party.objects.filter(kind=Party.Kind.BANK).order_by("pk").first() or open_party(
            kind=Party.Kind.BANK, external_ref="bank", display_name="BNK Busan Bank"
        )
        vault = open_account(owner=bank, code=VAULT_CODE, currency="KRW", normal_side="asset", may_go_negative=True)
    return vault


def record_cash_deposit(
    *, actor, account: Account, amount: int, reference: str, idempotency_key: str
) -> JournalEntry | ApprovalRequest:
    """Cash paid in: the vault grows and so does the customer's deposit (or, for
    large cash, the counter_cash request filed for an approver)."""
    return _counter(actor, account, amount, reference, idempotency_key, paid_in=True)


def record_cash_withdrawal(
    *, actor, account: Account, amount: int, reference: str, idempotency_key: str
) -> JournalEntry | ApprovalRequest:
    """Cash taken out: never more than the deposit's available balance (the posting
    service checks it), nor more than the vault holds."""
    return _counter(actor, account, amount, reference, idempotency_key, paid_in=False)


def teller_day_total(actor) -> int:
    """Won the teller counted today (Seoul day), in and out, without an approver."""
    start = datetime.combine(timezone.now().astimezone(SEOUL).date(), time.min, tzinfo=SEOUL)
    events = AuditEvent.objects.filter(actor=actor, action__in=COUNTER_ACTIONS, at__gte=start)
    return sum(after["amount"] for after in events.values_list("after", flat=True))


def _check_amount(amount) -> int:
    if type(amount) is not int or not 0 < amount <= MAX_AMOUNT:
        raise errors.InvalidAmount(field="amount", amount=repr(amount), max_amount=MAX_AMOUNT)
    return amount


def _customer_deposit(account_id: int) -> Account:
    account = Account.objects.select_related("owner").filter(pk=account_id).first()
    if account is None or account.currency != "KRW" or account.owner.kind not in CUSTOMER_KINDS:
        raise errors.InvalidAccount("Cash moves only into or out of a customer's KRW deposit.", account=account_id)
    return account


def _counter(actor, account: Account, amount, reference, idempotency_key: str, *, paid_in: bool):
    require_role(actor, PERMISSION)
    reference = require_reason(reference)
    _check_amount(amount)
    account = _customer_deposit(account.pk)
    key = f"teller:{actor.pk}:{idempotency_key}"
    with transaction.atomic():
        # One teller's counter actions one at a time, so the day's total below is exact.
        list(get_user_model().objects.select_for_update().filter(pk=actor.pk).values_list("pk"))
        if JournalEntry.objects.filter(idempotency_key=key).exists():
            # The same form sent twice: the first one counted, and was audited.
            return _post_cash(account, amount, paid_in, reference, key, replay=True)
        filed = ApprovalRequest.objects.filter(kind=APPROVAL_KIND, maker=actor, payload__idempotency_key=key).first()
        if filed is not None:  # the same large cash sent twice: filed once
            return filed
        if (
            amount > settings.COUNTER_CASH_APPROVAL_THRESHOLD
            or teller_day_total(actor) + amount > settings.COUNTER_CASH_TELLER_DAILY_LIMIT
        ):
            payload = {"amount": amount, "paid_in": paid_in, "reference": reference, "idempotency_key": key}
            return request_approval(actor=actor, kind=APPROVAL_KIND, target=account, payload=payload, reason=reference)
        entry = _post_cash(account, amount, paid_in, reference, key)
        record_audit(
            actor=actor,
            action="cash.deposit" if paid_in else "cash.withdrawal",
            target=account,
            after={"amount": amount, "entry": entry.pk},
            reason=reference,
        )
    return entry


def _post_cash(account: Account, amount: int, paid_in: bool, reference: str, key: str, *, replay=False):
    """Post the counter entry. Runs inside the caller's transaction; the vault's
    row lock makes "cash on hand >= what is paid out" hold against every other teller."""
    vault = vault_account()
    signed = amount if paid_in else -amount  # credit-positive: paying in credits the customer
    if not paid_in and not replay:
        locked = lock_accounts([account.pk, vault.pk])
        if locked[vault.pk].available < amount:
            raise errors.VaultCashInsufficient(cash_on_hand=locked[vault.pk].available, requested=amount)
    return post_entry(
        lines=[(account.pk, signed), (vault.pk, -signed)],
        kind="cash_deposit" if paid_in else "cash_withdrawal",
        memo=f"counter: {reference}",
        reference=reference[:100],
        idempotency_key=key,
    )


# --- large cash: maker-checker ---------------------------------------------------------------------


def _validate_counter_cash(account, payload) -> None:
    if not isinstance(account, Account):
        raise errors.InvalidAccount("Counter cash moves a customer's KRW deposit.", field="target")
    _customer_deposit(account.pk)
    _check_amount(payload.get("amount"))
    if type(payload.get("paid_in")) is not bool or not isinstance(payload.get("idempotency_key"), str):
        raise errors.InvalidEntry("A counter cash request says paid_in and its key.", field="payload")


def _execute_counter_cash(request: ApprovalRequest, approver) -> dict:
    account = _customer_deposit(int(request.target_id))
    check_executing(request, kinds=(APPROVAL_KIND,), target=account)
    payload = request.payload
    entry = _post_cash(account, payload["amount"], payload["paid_in"], payload["reference"], f"approval:{request.pk}")
    record_audit(
        actor=approver,
        action="cash.deposit.approved" if payload["paid_in"] else "cash.withdrawal.approved",
        target=account,
        after={"amount": payload["amount"], "entry": entry.pk, "request": request.pk, "teller": request.maker_id},
        reason=request.reason,
    )
    return {"entry": entry.pk}


register_kind(ApprovalKind(APPROVAL_KIND, PERMISSION, _execute_counter_cash, validate=_validate_counter_cash))
