"""Cash at the bank's counter: a teller records cash a customer pays into, or
takes out of, their KRW deposit account. The other side of each entry is the
branch vault (cash the bank holds), so the ledger always shows where the won are.

A teller may only touch customers' (people's and merchants') KRW accounts;
the bank's own accounts move by approved adjustments, never at the counter.
"""

from django.db import transaction

from bank import errors
from bank.models import Account, JournalEntry, Party
from bank.services.accounts import open_account, open_party
from bank.services.audit import record_audit
from bank.services.controls import require_reason, require_role
from bank.services.posting import post_entry

VAULT_CODE = "bank:vault:KRW"
PERMISSION = "bank.record_cash"
CUSTOMER_KINDS = (Party.Kind.PERSON, Party.Kind.MERCHANT)


def vault_account() -> Account:
    """The branch vault: an asset (cash on hand). It may go below zero in the
    ledger's sign convention because cash paid in makes it grow on the debit side."""
    vault = Account.objects.filter(code=VAULT_CODE).first()
    if vault is None:
        bank = Party.objects.filter(kind=Party.Kind.BANK).order_by("pk").first() or open_party(
            kind=Party.Kind.BANK, external_ref="bank", display_name="BNK Busan Bank"
        )
        vault = open_account(owner=bank, code=VAULT_CODE, currency="KRW", normal_side="asset", may_go_negative=True)
    return vault


def record_cash_deposit(*, actor, account: Account, amount: int, reference: str, idempotency_key: str) -> JournalEntry:
    """Cash paid in: the vault grows and so does the customer's deposit."""
    return _counter(actor, account, amount, reference, idempotency_key, paid_in=True)


def record_cash_withdrawal(
    *, actor, account: Account, amount: int, reference: str, idempotency_key: str
) -> JournalEntry:
    """Cash taken out: never more than the deposit's available balance (the posting service checks it)."""
    return _counter(actor, account, amount, reference, idempotency_key, paid_in=False)


def _counter(actor, account: Account, amount: int, reference, idempotency_key: str, *, paid_in: bool) -> JournalEntry:
    require_role(actor, PERMISSION)
    reference = require_reason(reference)
    if type(amount) is not int or amount <= 0:
        raise errors.InvalidAmount(amount=repr(amount))
    account = Account.objects.select_related("owner").get(pk=account.pk)
    if account.currency != "KRW" or account.owner.kind not in CUSTOMER_KINDS:
        raise errors.InvalidAccount("Cash moves only into or out of a customer's KRW deposit.", account=account.pk)
    vault = vault_account()
    signed = amount if paid_in else -amount  # credit-positive: paying in credits the customer
    key = f"teller:{actor.pk}:{idempotency_key}"
    with transaction.atomic():
        replay = JournalEntry.objects.filter(idempotency_key=key).exists()
        entry = post_entry(
            lines=[(account.pk, signed), (vault.pk, -signed)],
            kind="cash_deposit" if paid_in else "cash_withdrawal",
            memo=f"counter: {reference}",
            reference=reference[:100],
            idempotency_key=key,
        )
        if replay:  # the same form sent twice: the first one counted, and was audited
            return entry
        record_audit(
            actor=actor,
            action="cash.deposit" if paid_in else "cash.withdrawal",
            target=account,
            after={"amount": amount, "entry": entry.pk},
            reason=reference,
        )
    return entry
