"""Payments: a citizen paying a merchant from the lots eligible there, and a
merchant paying a supplier with the tokens it holds. One ledger entry each.

`pay` reads one snapshot under the wallet's lock (payment_store, the only part
that differs per database), `_check` applies the rules to it in their one order,
and `_post_payment` writes, cashback included, under those locks.
"""

from contextlib import nullcontext

from django.db import connection, transaction

from bank import errors as bank_errors
from bank.models import Account, JournalEntry
from bank.services import check_not_paused, post_entry
from voucher import errors
from voucher.clock import seoul_today
from voucher.limits import Limits
from voucher.models import Lot, Merchant, MerchantPayment, Payment, ProgramRule, VoucherProgram, Wallet
from voucher.selectors import wallet_balance
from voucher.services.benefits import Bonus, bonus_for, record_benefit, rule_on
from voucher.services.common import (
    Lines,
    check_acting_user,
    check_amount,
    check_key,
    check_merchant_active,
    check_wallet_active,
    ledger_key,
    lock_merchant,
    lock_programs,
    token_accounts,
)
from voucher.services.lots import allocate, eligible_at, find_lot, lot_for, spend_order
from voucher.services.merchant_lock import lock_ledger_accounts, require_merchant_locked
from voucher.services.merchants import get_merchant
from voucher.services.payment_store import NewPayment, PaymentSnapshot, insert_payment, read_payment


def pay(
    *,
    wallet: Wallet,
    merchant: Merchant,
    amount: int,
    idempotency_key: str,
    reference: str = "",
    acting_user=None,
) -> Payment:
    """Pay `amount` at `merchant` from the wallet's lots eligible there,
    soonest-expiring first, across as many lots as it takes, in one entry.

    An active cashback program that covers the merchant adds its cashback
    (by the merchant's revenue tier) on the paid-in part, in the same entry.

    `acting_user` is the person who paid (the wallet's holder through the API,
    or staff): the payment's audit row names them. None for a system caller,
    which writes no audit row (the entry is its record), as settle_day does.

    Only `merchant.pk` is used (the row is read again inside), so a caller
    holding just an id may pass Merchant(pk=id); a merchant that does not exist
    is refused with merchant_not_found (404) before any other check.
    """
    check_amount(amount)
    check_key(idempotency_key)
    if not isinstance(reference, str) or len(reference) > 100:
        raise errors.InvalidRequest("reference must be text of at most 100 characters.", field="reference")
    check_acting_user(acting_user)
    # Inside the caller's transaction (the API's) no savepoint, which would cost
    # two round trips: nothing is written before the last check (the cashback
    # step, which may write earlier, takes its own), so a refusal leaves that
    # transaction as it found it.
    with nullcontext() if connection.in_atomic_block else transaction.atomic():
        day = seoul_today()
        snapshot = read_payment(wallet_id=wallet.pk, merchant_id=merchant.pk, idempotency_key=idempotency_key, day=day)
        earlier = _check(
            snapshot, merchant_id=merchant.pk, amount=amount, reference=reference, idempotency_key=idempotency_key
        )
        if earlier is not None:
            return earlier
        return _post_payment(
            snapshot,
            day=day,
            amount=amount,
            reference=reference,
            idempotency_key=idempotency_key,
            acting_user=acting_user,
        )


def _check(
    snapshot: PaymentSnapshot, *, merchant_id: int, amount: int, reference: str, idempotency_key: str
) -> Payment | None:
    """Every rule of a payment but the eligible balance (which needs the accounts'
    locks: take_from_lots), in this order; returns the earlier payment of a replay."""
    if snapshot.wallet is None:
        raise errors.InvalidRequest("No such wallet.", field="wallet")
    if snapshot.merchant is None:
        raise errors.MerchantNotFound(merchant=merchant_id)
    if snapshot.earlier_id is not None:
        earlier = Payment.objects.get(pk=snapshot.earlier_id)
        if (earlier.merchant_id, earlier.amount, earlier.reference) != (snapshot.merchant.pk, amount, reference):
            raise bank_errors.IdempotencyConflict(idempotency_key=idempotency_key, payment=earlier.pk)
        return earlier
    if snapshot.paused:  # after the replay: a retry of a finished payment still gets its answer
        raise bank_errors.PaymentsPaused()
    check_wallet_active(snapshot.wallet)
    check_merchant_active(snapshot.merchant)
    check_limits(amount, snapshot.spent_today, snapshot.limits)
    return None


def check_limits(amount: int, spent: int, limits: Limits) -> None:
    """The per-payment and daily limits, given what the wallet spent today."""
    if amount > limits.per_payment_limit:
        raise errors.OverPaymentLimit(limit=limits.per_payment_limit, requested=amount)
    if spent + amount > limits.daily_payment_limit:
        raise errors.OverDailyLimit(limit=limits.daily_payment_limit, spent_today=spent, requested=amount)


def _post_payment(
    snapshot: PaymentSnapshot, *, day, amount: int, reference: str, idempotency_key: str, acting_user
) -> Payment:
    """Take the amount from the eligible lots, add the cashback an offer earns,
    post the entry and write the Payment. Must run under the wallet's lock that
    read_payment took, after _check passed."""
    wallet, merchant = snapshot.wallet, snapshot.merchant
    lots = sorted(filter(eligible_at(merchant), snapshot.lots), key=spend_order)
    offers = _cashback_offers(merchant, day) if snapshot.cashback_active else []
    # Only the cashback step may write before the balance check (the token's
    # accounts, opened on first use), so only it needs a savepoint.
    with transaction.atomic() if offers else nullcontext():
        balances, accounts = snapshot.balances, None
        tokens, cashback_lots = None, {}
        if balances is None:
            # Programs (locked by _cashback_offers) before accounts; all accounts in one call.
            ids = [lot.account_id for lot in lots] + [merchant.token_account_id]
            if offers:
                tokens = token_accounts()
                programs = [program for program, _ in offers]
                cashback_lots = {
                    p.pk: find_lot(wallet=wallet, program=p, expires_on=p.lot_expiry(day)) for p in programs
                }
                ids += [tokens.reserve.pk, tokens.issuance.pk] + [p.funder_account_id for p in programs]
                ids += [lot.account_id for lot in cashback_lots.values() if lot]
            accounts = lock_ledger_accounts(ids)
            balances = {lot.account_id: accounts[lot.account_id].available for lot in lots}
        taken, lines = take_from_lots(lots, balances, amount, merchant)
        cashback = cashback_lot = None
        if offers:
            paid_in = sum(take for lot, take in taken if lot.is_paid_in)
            room = snapshot.limits.max_balance(wallet.kyc_tier) - (wallet_balance(wallet) - amount)
            cashback = _cashback(offers, wallet, merchant, paid_in, room, accounts, day)
        if cashback:
            cashback_lot = cashback_lots[cashback.program.pk] or lot_for(
                wallet=wallet, program=cashback.program, expires_on=cashback.program.lot_expiry(day)
            )
            lines.mint(
                tokens=tokens,
                krw_from=cashback.program.funder_account_id,
                to=cashback_lot.account_id,
                amount=cashback.amount,
            )
        entry = post_payment_entry(
            lines, wallet=wallet, merchant=merchant, reference=reference, idempotency_key=idempotency_key
        )
        payment = insert_payment(
            NewPayment(
                wallet=wallet,
                merchant=merchant,
                amount=amount,
                reference=reference,
                idempotency_key=idempotency_key,
                entry=entry,
                taken=taken,
                cashback_amount=cashback.amount if cashback else 0,
                cashback_lot=cashback_lot,
                acting_user=acting_user,
                audit_after={"wallet": wallet.pk, "merchant": merchant.pk, "amount": amount, "entry": entry.pk},
            )
        )
        if cashback:
            record_benefit(
                program=cashback.program,
                wallet=wallet,
                lot=cashback_lot,
                amount=cashback.amount,
                base=cashback.base,
                day=day,
                entry=entry,
                payment=payment,
            )
        return payment


def take_from_lots(
    lots: list[Lot], balances: dict[int, int], amount: int, merchant: Merchant
) -> tuple[list[tuple[Lot, int]], Lines]:
    """`amount` out of the lots in the order given (their locked accounts'
    available balances), into the merchant's token account: what each lot gives,
    and the entry's lines so far. Refused when the lots hold too little."""
    available = sum(balances[lot.account_id] for lot in lots)
    if available < amount:
        raise errors.InsufficientEligibleBalance(available=available, requested=amount)
    taken = allocate(lots, balances, amount)
    lines = Lines()
    for lot, take in taken:
        lines.add(lot.account_id, -take)
    lines.add(merchant.token_account_id, amount)
    return taken, lines


def post_payment_entry(
    lines: Lines, *, wallet: Wallet, merchant: Merchant, reference: str, idempotency_key: str
) -> JournalEntry:
    """Post the payment's entry; a frozen merchant account is the merchant's refusal."""
    try:
        return post_entry(
            lines=lines.as_list(),
            kind="voucher_payment",
            reference=reference,
            idempotency_key=ledger_key("pay", wallet.pk, idempotency_key),
        )
    except bank_errors.AccountFrozen as error:
        if error.details.get("account") == merchant.token_account_id:
            raise errors.MerchantFrozen(merchant=merchant.pk) from None
        raise


def _cashback_offers(merchant: Merchant, day) -> list[tuple[VoucherProgram, ProgramRule]]:
    """The one cashback program that pays at this merchant today, locked, with
    its rule of the day; or none. One at most, so a payment never earns two
    cashbacks on the same won."""
    candidates = VoucherProgram.objects.filter(kind=VoucherProgram.Kind.CASHBACK, status=VoucherProgram.Status.ACTIVE)
    for program in candidates.order_by("pk"):
        rule = rule_on(program, day)
        if program.is_eligible_at(merchant) and rule and rule.rate_for(merchant) > 0 and program.lot_expiry(day) >= day:
            locked = lock_programs([program.pk])
            return [(p, rule) for p in locked if p.status == VoucherProgram.Status.ACTIVE]
    return []


def _cashback(
    offers: list[tuple[VoucherProgram, ProgramRule]],
    wallet: Wallet,
    merchant: Merchant,
    paid_in: int,
    room: int,
    accounts: dict[int, Account],
    day,
) -> Bonus | None:
    """Cashback on the paid-in part of a payment (never a bonus on bonus money),
    within what the funder holds and the wallet may hold. Runs under the locks of `pay`."""
    for program, rule in offers:
        bonus = bonus_for(program=program, rule=rule, wallet=wallet, base=paid_in, merchant=merchant, day=day)
        value = min(bonus.amount, room, accounts[program.funder_account_id].available)
        if value > 0:
            return Bonus(program, value, bonus.base)
    return None


def pay_merchant(
    *, payer: Merchant, payee: Merchant, amount: int, idempotency_key: str, reference: str = ""
) -> MerchantPayment:
    """A merchant pays another (a supplier) with BKRW it received, instead of settling it."""
    check_amount(amount)
    check_key(idempotency_key)
    if payer.pk == payee.pk:
        raise errors.InvalidRequest("A merchant cannot pay itself.", field="payee")
    with transaction.atomic():
        payer = lock_merchant(payer)
        earlier = MerchantPayment.objects.filter(payer=payer, idempotency_key=idempotency_key).first()
        if earlier is not None:
            if (earlier.payee_id, earlier.amount, earlier.reference) != (payee.pk, amount, reference):
                raise bank_errors.IdempotencyConflict(idempotency_key=idempotency_key, merchant_payment=earlier.pk)
            return earlier
        check_not_paused()
        payee = get_merchant(payee.pk)
        check_merchant_active(payer)
        check_merchant_active(payee)
        accounts = lock_ledger_accounts([payer.token_account_id, payee.token_account_id])
        held = accounts[payer.token_account_id].available
        if held < amount:
            raise errors.InsufficientEligibleBalance(available=held, requested=amount)
        try:
            entry = post_entry(
                lines=[(payer.token_account_id, -amount), (payee.token_account_id, amount)],
                kind="voucher_merchant_payment",
                reference=reference,
                idempotency_key=ledger_key("b2b", payer.pk, idempotency_key),
            )
        except bank_errors.AccountFrozen as error:
            raise errors.MerchantFrozen(account=error.details.get("account"))
        require_merchant_locked([payer.token_account_id, payee.token_account_id])
        return MerchantPayment.objects.create(
            payer=payer, payee=payee, amount=amount, reference=reference, idempotency_key=idempotency_key, entry=entry
        )
