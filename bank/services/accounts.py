"""Opening parties and accounts, and changing an account's status (with an audit row)."""

from django.db import transaction

from bank import errors
from bank.models import Account, Currency, Party
from bank.services.audit import record_audit
from bank.services.controls import check_executing
from bank.services.posting import lock_accounts


def open_party(*, kind: str, external_ref: str, display_name: str = "") -> Party:
    """Create a party, or return the one with this external_ref (safe to run again)."""
    party, _ = Party.objects.get_or_create(
        external_ref=external_ref, defaults={"kind": kind, "display_name": display_name}
    )
    return party


def open_account(*, owner: Party, code: str, currency: str, normal_side: str, may_go_negative: bool = False) -> Account:
    """Create an account, or return the one with this code (safe to run again).
    Customer accounts keep the default: they may not go negative."""
    if currency not in Currency.values:
        raise errors.CurrencyMismatch(f"Unknown currency {currency!r}.", currency=currency)
    if normal_side not in Account.NormalSide.values:
        raise errors.InvalidEntry(f"Unknown normal side {normal_side!r}.", field="normal_side")
    account, created = Account.objects.get_or_create(
        code=code,
        defaults={
            "owner": owner,
            "currency": currency,
            "normal_side": normal_side,
            "may_go_negative": may_go_negative,
        },
    )
    if not created and (account.owner_id, account.currency) != (owner.pk, currency):
        raise errors.InvalidEntry(f"Account {code} exists with another owner or currency.", field="code")
    return account


def set_account_status(*, actor, account: Account | int, status: str, reason: str, approval=None) -> Account:
    """Freeze, unfreeze or close an account; who did it and why goes to the audit log.
    A freeze is immediate; an unfreeze runs only as an approved request (`approval`)."""
    if status not in Account.Status.values:
        raise errors.InvalidEntry(f"Unknown status {status!r}.", field="status")
    if not isinstance(reason, str) or not reason.strip():
        raise errors.InvalidEntry("A reason is required.", field="reason")
    account_id = account.pk if isinstance(account, Account) else account
    with transaction.atomic():
        locked = lock_accounts([account_id])[account_id]
        before = locked.status
        if before == Account.Status.FROZEN and status != Account.Status.FROZEN:
            check_executing(approval, kinds=("unfreeze_account", "unfreeze_merchant"), target=None)
        if status == Account.Status.CLOSED and (locked.balance or locked.on_hold):
            raise errors.InvalidEntry("Only an empty account with no open holds can be closed.", field="status")
        locked.status = status
        locked.save(update_fields=["status"])
        record_audit(
            actor=actor,
            action=f"account.{status}",
            target=locked,
            before={"status": before},
            after={"status": status},
            reason=reason,
        )
    return locked
