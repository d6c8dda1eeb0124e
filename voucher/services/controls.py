"""The token's back-office controls: unfreezes, staff mints over the large-mint
threshold and seizures go through maker-checker (bank.services.approvals);
tellers change KYC tiers. Freezes stay immediate (set_wallet_status,
set_merchant_status). Every step is audited."""

from django.conf import settings

from bank.models import Account, ApprovalRequest, Party
from bank.services import (
    ApprovalKind,
    EntryRequest,
    lock_accounts,
    open_account,
    open_party,
    post_entries,
    record_audit,
    register_kind,
    request_approval,
    require_role,
)
from voucher import errors
from voucher.models import Benefit, Lot, Merchant, VoucherProgram, Wallet
from voucher.services.common import BANK_PARTY_REF, check_amount, check_key, lock_wallets
from voucher.services.issuance import issue_voucher
from voucher.services.merchants import get_merchant, set_merchant_status
from voucher.services.wallets import set_wallet_status

COURT_HOLDING_CODE = "voucher:court-holding:BKRW"
MAX_ORDER_REFERENCE = 100  # it goes into the ledger entry's reference


# --- unfreeze ------------------------------------------------------------------------------------


def request_unfreeze(*, actor, target: Wallet | Merchant, reason: str) -> ApprovalRequest:
    """File the unfreeze of a frozen wallet or merchant; it runs once another staff member approves."""
    if isinstance(target, Wallet):
        return request_approval(actor=actor, kind="unfreeze_wallet", target=target, reason=reason)
    if isinstance(target, Merchant):
        return request_approval(actor=actor, kind="unfreeze_merchant", target=target, reason=reason)
    raise errors.InvalidRequest("Only a wallet or a merchant is unfrozen here.", field="target")


def _must_be_frozen(target, payload) -> None:
    if not type(target).objects.filter(pk=target.pk, status="frozen").exists():  # the stored status
        raise errors.InvalidRequest(f"{target} is not frozen.", field="target")


def _unfreeze_wallet(request: ApprovalRequest, actor) -> dict:
    wallet = Wallet.objects.get(pk=int(request.target_id))
    set_wallet_status(actor=actor, wallet=wallet, status=Wallet.Status.ACTIVE, reason=request.reason, approval=request)
    return {"wallet": wallet.pk, "status": "active"}


def _unfreeze_merchant(request: ApprovalRequest, actor) -> dict:
    merchant = get_merchant(int(request.target_id))
    set_merchant_status(
        actor=actor, merchant=merchant, status=Merchant.Status.ACTIVE, reason=request.reason, approval=request
    )
    return {"merchant": merchant.pk, "status": "active"}


# --- large staff mints ---------------------------------------------------------------------------


def issue_by_staff(
    *, actor, program: VoucherProgram, wallet: Wallet, amount: int, idempotency_key: str, reason: str
) -> ApprovalRequest | object:
    """A grant or reward issued by hand: at or under LARGE_MINT_THRESHOLD it is
    issued now (returns the Benefit); above it, a large_mint request is filed."""
    require_role(actor, "voucher.issue_voucher")
    check_amount(amount)
    check_key(idempotency_key)
    if amount <= settings.LARGE_MINT_THRESHOLD:
        return issue_voucher(
            program=program, wallet=wallet, amount=amount, idempotency_key=idempotency_key, acting_user=actor
        )
    payload = {"wallet": wallet.pk, "amount": amount, "idempotency_key": idempotency_key}
    return request_approval(actor=actor, kind="large_mint", target=program, payload=payload, reason=reason)


def _validate_large_mint(program, payload) -> None:
    if not isinstance(program, VoucherProgram) or program.kind not in VoucherProgram.ISSUED_KINDS:
        raise errors.ProgramKindMismatch(program=getattr(program, "code", None))
    if not Wallet.objects.filter(pk=payload.get("wallet")).exists():
        raise errors.InvalidRequest("No such wallet.", field="wallet")


def _large_mint(request: ApprovalRequest, actor) -> dict:
    payload = request.payload
    benefit = issue_voucher(
        program=VoucherProgram.objects.get(pk=int(request.target_id)),
        wallet=Wallet.objects.get(pk=payload["wallet"]),
        amount=payload["amount"],
        idempotency_key=payload["idempotency_key"],
        acting_user=request.maker,
        basis=Benefit.Basis.STAFF_GRANT,
        approval=request,
    )
    return {"benefit": benefit.pk, "entry": benefit.entry_id}


# --- seizure -------------------------------------------------------------------------------------


def court_holding_account() -> Account:
    """One BKRW holding account for every court order; each seizure entry carries its order's reference."""
    bank = open_party(kind=Party.Kind.BANK, external_ref=BANK_PARTY_REF, display_name="Busan Bank")
    return open_account(owner=bank, code=COURT_HOLDING_CODE, currency="BKRW", normal_side=Account.NormalSide.LIABILITY)


def request_seizure(*, actor, wallet: Wallet, order_reference: str, reason: str) -> ApprovalRequest:
    """File the seizure of a frozen wallet's whole balance under a court order; two
    approvers other than the maker must agree."""
    if not isinstance(order_reference, str) or not order_reference.strip() or len(order_reference) > 100:
        raise errors.InvalidRequest(
            f"The court order's reference (1 to {MAX_ORDER_REFERENCE} characters) is required.", field="order_reference"
        )
    return request_approval(
        actor=actor,
        kind="seizure",
        target=wallet,
        payload={"order_reference": order_reference.strip()},
        reason=reason,
    )


def _validate_seizure(wallet, payload) -> None:
    if not isinstance(wallet, Wallet):
        raise errors.InvalidRequest("A seizure takes a wallet's balance.", field="target")
    if not Wallet.objects.filter(pk=wallet.pk, status=Wallet.Status.FROZEN).exists():
        raise errors.WalletNotFrozen(wallet=wallet.pk)


def _seize(request: ApprovalRequest, actor) -> dict:
    """Move every lot's balance to the court holding account, one entry per lot,
    each with the order's reference. Only a wallet still frozen is seized."""
    wallet = lock_wallets(Wallet(pk=int(request.target_id)))[int(request.target_id)]
    if wallet.status != Wallet.Status.FROZEN:
        raise errors.WalletNotFrozen(wallet=wallet.pk)
    holding = court_holding_account()
    order = request.payload["order_reference"]
    # Balances are read from the locked ledger rows, so a refund landing meanwhile is seized too.
    lots = list(Lot.objects.filter(wallet=wallet).order_by("pk"))
    accounts = lock_accounts([lot.account_id for lot in lots] + [holding.pk])
    held = {lot.pk: accounts[lot.account_id].available for lot in lots if accounts[lot.account_id].available > 0}
    entries = post_entries(
        requests=[
            EntryRequest(
                lines=[(lot.account_id, -held[lot.pk]), (holding.pk, held[lot.pk])],
                kind="voucher_seizure",
                memo=f"court order seizure, lot #{lot.pk}",
                reference=order,
                idempotency_key=f"approval:{request.pk}:lot:{lot.pk}",
            )
            for lot in lots
            if lot.pk in held
        ]
    )
    seized = sum(held.values())
    record_audit(
        actor=actor,
        action="wallet.seize",
        target=wallet,
        before={"balance": seized},
        after={"balance": 0, "order_reference": order, "entries": [e.pk for e in entries]},
        reason=request.reason,
    )
    return {"seized": seized, "order_reference": order, "entries": [e.pk for e in entries]}


# --- KYC tier ------------------------------------------------------------------------------------


register_kind(ApprovalKind("unfreeze_wallet", "voucher.freeze_wallet", _unfreeze_wallet, validate=_must_be_frozen))
register_kind(
    ApprovalKind("unfreeze_merchant", "voucher.freeze_merchant", _unfreeze_merchant, validate=_must_be_frozen)
)
register_kind(ApprovalKind("large_mint", "voucher.issue_voucher", _large_mint, validate=_validate_large_mint))
register_kind(ApprovalKind("seizure", "voucher.seize_wallet", _seize, validate=_validate_seizure, approvals=2))
