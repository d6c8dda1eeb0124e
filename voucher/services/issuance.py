"""Issuing grants and rewards: BKRW minted into a program lot, backed by KRW
from the program's funder, never past the budget or the person's caps."""

from django.conf import settings
from django.db import transaction

from bank import errors as bank_errors
from bank.services import check_executing, lock_accounts, post_entry, record_audit, use_minter_allowance
from voucher import errors
from voucher.clock import seoul_today
from voucher.limits import limits_on
from voucher.models import Benefit, VoucherProgram, Wallet
from voucher.selectors import wallet_balance
from voucher.services.benefits import person_room, record_benefit, usage
from voucher.services.common import (
    Lines,
    check_acting_user,
    check_amount,
    check_key,
    check_wallet_active,
    ledger_key,
    lock_programs,
    lock_wallets,
    token_accounts,
)
from voucher.services.lots import find_lot, lot_for


def issue_voucher(
    *,
    program: VoucherProgram,
    wallet: Wallet,
    amount: int | None = None,
    idempotency_key: str,
    acting_user=None,
    basis: str | None = None,
    approval=None,
) -> Benefit:
    """Issue a grant or reward of `amount` (default: the program's face value) to `wallet`.

    `basis` (Benefit.Basis) is the ground it is issued on, and `acting_user` the
    person who decided it, named on the Benefit and in the audit log:
    - staff_grant (the default with an acting user): staff minted it by hand.
      Above LARGE_MINT_THRESHOLD it runs only as an approved large_mint request
      (`approval`), and it uses the staff_issuance minter's allowance;
    - reviewed_reward: a reward program's reward on a reviewer's decision (an
      accepted report); the reviewer is the acting user, the program's own
      caps bound it and it uses the program_issuance allowance;
    - program_issue (the default without one): the program's own process, no person.

    The idempotency key is the program's: a safety report accepted twice, or a
    staff click sent twice, issues once.
    """
    if amount is None:
        amount = program.face_value
    check_amount(amount)
    check_key(idempotency_key)
    check_acting_user(acting_user)
    if basis is None:
        basis = Benefit.Basis.STAFF_GRANT if acting_user is not None else Benefit.Basis.PROGRAM_ISSUE
    if basis not in (Benefit.Basis.PROGRAM_ISSUE, *Benefit.DECIDED_BY_A_PERSON):
        raise errors.InvalidRequest("basis must be staff_grant, reviewed_reward or program_issue.", field="basis")
    if basis in Benefit.DECIDED_BY_A_PERSON and acting_user is None:
        raise errors.InvalidRequest(f"A {basis} names the person who decided it (acting_user).", field="acting_user")
    if basis == Benefit.Basis.PROGRAM_ISSUE and acting_user is not None:
        raise errors.InvalidRequest("A program_issue is decided by no person: pass no acting_user.", field="basis")
    staff_grant = basis == Benefit.Basis.STAFF_GRANT
    with transaction.atomic():
        wallet = lock_wallets(wallet)[wallet.pk]
        [program] = lock_programs([program.pk])
        earlier = Benefit.objects.filter(program=program, idempotency_key=idempotency_key).first()
        if earlier is not None:
            if (earlier.wallet_id, earlier.amount) != (wallet.pk, amount):
                raise bank_errors.IdempotencyConflict(idempotency_key=idempotency_key, benefit=earlier.pk)
            return earlier
        if program.kind not in VoucherProgram.ISSUED_KINDS or (
            basis == Benefit.Basis.REVIEWED_REWARD and program.kind != VoucherProgram.Kind.REWARD
        ):
            raise errors.ProgramKindMismatch(program=program.code, kind=program.kind)
        day = seoul_today()
        expires_on = program.lot_expiry(day)
        if program.status != VoucherProgram.Status.ACTIVE or expires_on < day:
            raise errors.ProgramNotActive(program=program.code, status=program.status)
        check_wallet_active(wallet)
        if staff_grant and amount > settings.LARGE_MINT_THRESHOLD:
            check_executing(approval, kinds=("large_mint",), target=program)
        room = person_room(program, usage(program, wallet, day))
        if room is not None and amount > room:
            raise errors.OverPersonCap(program=program.code, left=room, requested=amount)
        if amount > program.budget_left:
            raise errors.BudgetExhausted(program=program.code, left=program.budget_left, requested=amount)
        limits = limits_on(day)
        balance = wallet_balance(wallet)
        if balance + amount > limits.max_balance(wallet.kyc_tier):
            raise errors.OverWalletLimit(limit=limits.max_balance(wallet.kyc_tier), balance=balance, requested=amount)

        tokens = token_accounts()
        existing = find_lot(wallet=wallet, program=program, expires_on=expires_on)
        lock_accounts(
            [program.funder_account_id, tokens.reserve.pk, tokens.issuance.pk]
            + ([existing.account_id] if existing else [])
        )
        lot = existing or lot_for(wallet=wallet, program=program, expires_on=expires_on)
        lines = Lines()
        lines.mint(tokens=tokens, krw_from=program.funder_account_id, to=lot.account_id, amount=amount)
        use_minter_allowance(minter="staff_issuance" if staff_grant else "program_issuance", amount=amount)
        entry = post_entry(
            lines=lines.as_list(),
            kind=f"voucher_{program.kind}",
            idempotency_key=ledger_key("issue", program.pk, idempotency_key),
        )
        benefit = record_benefit(
            program=program,
            wallet=wallet,
            lot=lot,
            amount=amount,
            base=0,
            day=day,
            entry=entry,
            idempotency_key=idempotency_key,
            basis=basis,
            issued_by=acting_user,
        )
        if acting_user is not None:
            after = {"program": program.pk, "wallet": wallet.pk, "amount": amount, "basis": basis, "entry": entry.pk}
            if approval is not None:
                after["approval"] = approval.pk
            record_audit(actor=acting_user, action="voucher.issue", target=benefit, after=after)
        return benefit
