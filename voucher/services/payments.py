"""Payments: a citizen paying a merchant from the lots eligible there, and a
merchant paying a supplier with the tokens it holds. One ledger entry each.

`pay` checks and locks; `_cashback` and `_record_lots` only compute and write
and must run under those locks. On PostgreSQL a payment without cashback takes
the plain-SQL path of payments_postgresql, with the same checks in the same order.
"""

from contextlib import nullcontext

from django.db import connection, transaction
from django.db.models import Sum

from bank import errors as bank_errors
from bank.models import Account
from bank.services import check_not_paused, lock_accounts, post_entry
from voucher import errors
from voucher.clock import day_bounds, seoul_today
from voucher.limits import Limits, limits_on
from voucher.models import Lot, Merchant, MerchantPayment, Payment, PaymentLot, ProgramRule, VoucherProgram, Wallet
from voucher.selectors import wallet_balance
from voucher.services.benefits import Bonus, bonus_for, record_benefit, rule_on
from voucher.services.common import (
    check_amount,
    check_key,
    check_merchant_active,
    check_wallet_active,
    ledger_key,
    lock_merchant,
    lock_programs,
    lock_wallets,
    token_accounts,
)
from voucher.services.lots import eligible_at, find_lot, live_lots, lot_for
from voucher.services.payment_entry import post_payment_entry, take_from_lots
from voucher.services.payments_postgresql import NEEDS_ORM_PATH, check_limits, pay_fast


def pay(*, wallet: Wallet, merchant: Merchant, amount: int, idempotency_key: str, reference: str = "") -> Payment:
    """Pay `amount` at `merchant` from the wallet's lots eligible there,
    soonest-expiring first, across as many lots as it takes, in one entry.

    An active cashback program that covers the merchant adds its cashback
    (by the merchant's revenue tier) on the paid-in part, in the same entry.

    Only `merchant.pk` is used (the row is read again inside), so a caller
    holding just an id may pass Merchant(pk=id); a merchant that does not exist
    raises Merchant.DoesNotExist before any other check.
    """
    check_amount(amount)
    check_key(idempotency_key)
    if not isinstance(reference, str) or len(reference) > 100:
        raise errors.InvalidRequest("reference must be text of at most 100 characters.", field="reference")
    if connection.vendor == "postgresql":
        # Inside the caller's transaction (the API's) the fast path needs no
        # savepoint, which would cost two round trips: it writes nothing before
        # its last check, so a refusal leaves that transaction as it found it.
        with nullcontext() if connection.in_atomic_block else transaction.atomic():
            payment = pay_fast(
                wallet=wallet, merchant=merchant, amount=amount, idempotency_key=idempotency_key, reference=reference
            )
        if payment is not NEEDS_ORM_PATH:
            return payment
    with transaction.atomic():
        return _pay_orm(
            wallet=wallet, merchant=merchant, amount=amount, idempotency_key=idempotency_key, reference=reference
        )


def _pay_orm(*, wallet: Wallet, merchant: Merchant, amount: int, idempotency_key: str, reference: str) -> Payment:
    """pay() through the ORM, inside its transaction: every database, and a
    payment that may earn cashback on PostgreSQL (payments_postgresql says why)."""
    wallet = lock_wallets(wallet)[wallet.pk]
    # Not locked: a hot merchant must not serialize its payments. A freeze
    # also freezes its ledger account, which the posting service checks under lock.
    merchant = Merchant.objects.get(pk=merchant.pk)
    earlier = Payment.objects.filter(wallet=wallet, idempotency_key=idempotency_key).first()
    if earlier is not None:
        if (earlier.merchant_id, earlier.amount, earlier.reference) != (merchant.pk, amount, reference):
            raise bank_errors.IdempotencyConflict(idempotency_key=idempotency_key, payment=earlier.pk)
        return earlier
    check_not_paused()  # after the replay: a retry of a finished payment still gets its answer
    check_wallet_active(wallet)
    check_merchant_active(merchant)
    day = seoul_today()
    limits = limits_on(day)
    _check_limits(wallet, amount, limits, day)

    lots = live_lots(wallet, day, eligible_at(merchant))
    offers = _cashback_offers(merchant, day)
    programs = [program for program, _ in offers]
    tokens = token_accounts() if offers else None
    cashback_lots = {p.pk: find_lot(wallet=wallet, program=p, expires_on=p.lot_expiry(day)) for p in programs}
    ids = [lot.account_id for lot in lots] + [merchant.token_account_id]
    if programs:
        ids += [tokens.reserve.pk, tokens.issuance.pk] + [p.funder_account_id for p in programs]
        ids += [lot.account_id for lot in cashback_lots.values() if lot]
    accounts = lock_accounts(ids)
    balances = {lot.account_id: accounts[lot.account_id].available for lot in lots}
    taken, lines = take_from_lots(lots, balances, amount, merchant)
    paid_in = sum(take for lot, take in taken if lot.is_paid_in)
    cashback = None
    if offers:
        room = limits.max_balance(wallet.kyc_tier) - (wallet_balance(wallet) - amount)
        cashback = _cashback(offers, wallet, merchant, paid_in, room, accounts, day)
    cashback_lot = None
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
    payment = Payment.objects.create(
        wallet=wallet,
        merchant=merchant,
        amount=amount,
        reference=reference,
        idempotency_key=idempotency_key,
        entry=entry,
        cashback_amount=cashback.amount if cashback else 0,
        cashback_lot=cashback_lot,
    )
    _record_lots(payment, taken)
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


def _check_limits(wallet: Wallet, amount: int, limits: Limits, day) -> None:
    start, end = day_bounds(day)
    today = wallet.payments.filter(created_at__gte=start, created_at__lt=end).aggregate(total=Sum("amount"))
    check_limits(amount, today["total"] or 0, limits)


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


def _record_lots(payment: Payment, taken: list[tuple[Lot, int]]) -> None:
    """Which lots the payment debited and how much, in spend order: the same
    split the entry's postings were built from, one posting per lot."""
    PaymentLot.objects.bulk_create(
        PaymentLot(payment=payment, lot=lot, amount=take, spend_order=index) for index, (lot, take) in enumerate(taken)
    )


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
        payee = Merchant.objects.get(pk=payee.pk)
        check_merchant_active(payer)
        check_merchant_active(payee)
        accounts = lock_accounts([payer.token_account_id, payee.token_account_id])
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
        return MerchantPayment.objects.create(
            payer=payer, payee=payee, amount=amount, reference=reference, idempotency_key=idempotency_key, entry=entry
        )
