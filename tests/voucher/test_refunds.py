from datetime import date

import pytest

from bank import errors as bank_errors
from tests.factories.voucher import grant_lot, merchant, program, staff, wallet_with_tokens
from tests.voucher.support import after_days, assert_ledger_ok, ledger_size, natural, reserve_krw
from voucher import errors, services
from voucher.models import Lot, VoucherProgram
from voucher.selectors import wallet_balance


def _balances(wallet):
    return {lot.program_id: lot.balance for lot in Lot.objects.select_related("account").filter(wallet=wallet)}


def test_a_partial_refund_refills_the_last_spent_lot_first(db):
    # given a payment of 15,000: 10,000 from a grant, 5,000 paid-in
    wallet = wallet_with_tokens(10_000)
    relief = grant_lot(wallet, 10_000, valid_days=30)
    shop = merchant()
    payment = services.pay(wallet=wallet, merchant=shop, amount=15_000, idempotency_key="p")
    # when
    services.refund_payment(payment=payment, amount=7_000, idempotency_key="r1")
    # then the paid-in lot is refilled whole first, then the grant
    assert _balances(wallet) == {None: 10_000, relief.pk: 2_000}
    # and the rest of the payment comes back too, but never more than was paid
    services.refund_payment(payment=payment, amount=8_000, idempotency_key="r2")
    assert _balances(wallet) == {None: 10_000, relief.pk: 10_000}
    before = ledger_size()
    with pytest.raises(errors.RefundExceedsPayment) as refused:
        services.refund_payment(payment=payment, amount=1, idempotency_key="r3")
    assert refused.value.code == "refund_exceeds_payment" and ledger_size() == before
    payment.refresh_from_db()
    assert payment.refunded_amount == 15_000 and natural(shop.token_account) == 0
    assert_ledger_ok()


def test_a_refund_over_what_is_left_is_refused_whole(db):
    wallet, shop = wallet_with_tokens(10_000), merchant()
    payment = services.pay(wallet=wallet, merchant=shop, amount=10_000, idempotency_key="p")
    services.refund_payment(payment=payment, amount=6_000, idempotency_key="r1")
    before = ledger_size()
    with pytest.raises(errors.RefundExceedsPayment):
        services.refund_payment(payment=payment, amount=4_001, idempotency_key="r2")
    assert ledger_size() == before and wallet_balance(wallet) == 6_000


def test_a_lot_that_expired_meanwhile_refunds_to_its_funder(db):
    # given a grant spent, then swept by expiry
    wallet = wallet_with_tokens(1_000)
    relief = grant_lot(wallet, 10_000, valid_days=5)
    shop = merchant()
    payment = services.pay(wallet=wallet, merchant=shop, amount=10_000, idempotency_key="p")
    services.expire_lots(now=after_days(10))
    funder_before, reserve_before = natural(relief.funder_account), reserve_krw()
    # when
    refund = services.refund_payment(payment=payment, amount=10_000, idempotency_key="r")
    # then tokens are burned and the KRW goes back to the city
    assert refund.to_funder_amount == 10_000
    assert natural(relief.funder_account) == funder_before + 10_000
    assert reserve_krw() == reserve_before - 10_000
    assert _balances(wallet) == {None: 1_000, relief.pk: 0}
    assert natural(shop.token_account) == 0
    assert_ledger_ok()


def test_a_refund_is_idempotent(db):
    wallet, shop = wallet_with_tokens(10_000), merchant()
    payment = services.pay(wallet=wallet, merchant=shop, amount=10_000, idempotency_key="p")
    first = services.refund_payment(payment=payment, amount=4_000, idempotency_key="r")
    assert services.refund_payment(payment=payment, amount=4_000, idempotency_key="r") == first
    with pytest.raises(bank_errors.IdempotencyConflict):
        services.refund_payment(payment=payment, amount=5_000, idempotency_key="r")
    assert wallet_balance(wallet) == 4_000


def test_a_frozen_merchant_cannot_refund(db):
    wallet, shop = wallet_with_tokens(10_000), merchant()
    payment = services.pay(wallet=wallet, merchant=shop, amount=10_000, idempotency_key="p")
    services.set_merchant_status(actor=staff("officer"), merchant=shop, status="frozen", reason="audit")
    with pytest.raises(errors.MerchantFrozen):
        services.refund_payment(payment=payment, amount=1_000, idempotency_key="r")


def _cashback_program():
    return program(
        kind=VoucherProgram.Kind.CASHBACK,
        valid_days=1825,
        rules=[{"effective_from": date(2026, 1, 1), "tiers": [(None, 1000)]}],
    )


def test_a_refund_claws_back_the_cashback_it_earned(db):
    cashback = _cashback_program()
    wallet, shop = wallet_with_tokens(100_000), merchant()
    payment = services.pay(wallet=wallet, merchant=shop, amount=100_000, idempotency_key="p")
    assert payment.cashback_amount == 10_000
    funder_before = natural(cashback.funder_account)
    refund = services.refund_payment(payment=payment, amount=50_000, idempotency_key="r1")
    assert refund.cashback_clawed_back == 5_000
    assert _balances(wallet) == {None: 50_000, cashback.pk: 5_000}
    assert natural(cashback.funder_account) == funder_before + 5_000
    assert_ledger_ok()


def test_cashback_already_spent_is_taken_from_the_refund(db):
    # given the 10,000 cashback was spent elsewhere
    cashback = _cashback_program()
    wallet, shop = wallet_with_tokens(100_000), merchant()
    payment = services.pay(wallet=wallet, merchant=shop, amount=100_000, idempotency_key="p")
    services.pay(wallet=wallet, merchant=merchant(), amount=10_000, idempotency_key="spend-cashback")
    # when the first payment is refunded in full
    refund = services.refund_payment(payment=payment, amount=100_000, idempotency_key="r")
    # then the citizen gets back what they paid less the cashback they kept
    assert refund.cashback_clawed_back == 10_000
    assert wallet_balance(wallet) == 90_000
    assert _balances(wallet)[None] == 90_000
    assert cashback.pk in _balances(wallet)
    assert_ledger_ok()


def test_a_lot_spent_and_refilled_with_cashback_in_one_payment_refunds_exactly(db):
    # given a cashback lot that expires with the paid-in lot, so it is spent first
    cashback = _cashback_program()
    wallet, shop = wallet_with_tokens(100_000), merchant()
    services.pay(wallet=wallet, merchant=shop, amount=50_000, idempotency_key="p1")
    assert _balances(wallet) == {None: 50_000, cashback.pk: 5_000}
    # when the next payment spends it and earns new cashback into the same lot
    payment = services.pay(wallet=wallet, merchant=shop, amount=20_000, idempotency_key="p2")
    # then the payment records what it took from each lot, not the net
    assert sorted((row.lot.program_id or 0, row.amount) for row in payment.lots.all()) == [
        (0, 15_000),
        (cashback.pk, 5_000),
    ]
    assert payment.cashback_amount == 1_500
    # and a full refund puts the wallet back where it was before it
    services.refund_payment(payment=payment, amount=20_000, idempotency_key="r")
    assert _balances(wallet) == {None: 50_000, cashback.pk: 5_000}
    assert_ledger_ok()
