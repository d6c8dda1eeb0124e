"""Real races on PostgreSQL: threads started together at a barrier, each with its own connection."""

from collections import Counter
from datetime import date

import pytest

from bank.models import JournalEntry
from tests.factories.voucher import citizen, grant_lot, merchant, program, wallet_with_tokens
from tests.voucher.support import after_days, assert_ledger_ok, natural, race
from voucher import services
from voucher.models import Benefit, Lot, Payment, VoucherProgram, WalletLimitRule
from voucher.selectors import wallet_balance

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_thirty_concurrent_payments_of_1000_from_10000_exactly_ten_succeed():
    wallet, shop = wallet_with_tokens(10_000), merchant()
    outcomes = race(
        [
            lambda i=i: services.pay(wallet=wallet, merchant=shop, amount=1_000, idempotency_key=f"p{i}")
            for i in range(30)
        ]
    )
    counts = Counter(o if isinstance(o, str) else "paid" for o in outcomes)
    assert counts == {"paid": 10, "insufficient_eligible_balance": 20}, outcomes
    assert wallet_balance(wallet) == 0 and natural(shop.token_account) == 10_000
    assert Payment.objects.count() == 10
    assert_ledger_ok()


def test_concurrent_payments_of_one_wallet_never_pass_the_daily_limit_together():
    # given a daily limit of 2,500 won and plenty of tokens
    WalletLimitRule.objects.create(
        effective_from=date(2020, 1, 1),
        named_max_balance=2_000_000,
        anonymous_max_balance=500_000,
        per_payment_limit=100_000,
        daily_payment_limit=2_500,
        redeem_min_used_percent=60,
        plain_lot_valid_days=1825,
    )
    wallet, shop = wallet_with_tokens(10_000), merchant()
    # when six payments of 1,000 race: each one alone is within the limit
    outcomes = race(
        [
            lambda i=i: services.pay(wallet=wallet, merchant=shop, amount=1_000, idempotency_key=f"p{i}")
            for i in range(6)
        ]
    )
    # then only two fit in the day: each payment counts the ones committed before it
    counts = Counter(o if isinstance(o, str) else "paid" for o in outcomes)
    assert counts == {"paid": 2, "over_daily_limit": 4}, outcomes
    assert wallet_balance(wallet) == 8_000
    assert_ledger_ok()


def test_concurrent_retries_of_one_payment_pay_once_and_all_answer_with_it():
    wallet, shop = wallet_with_tokens(10_000), merchant()
    outcomes = race(
        [lambda: services.pay(wallet=wallet, merchant=shop, amount=1_000, idempotency_key="same") for _ in range(8)]
    )
    assert {payment.pk for payment in outcomes} == {Payment.objects.get().pk}, outcomes
    assert wallet_balance(wallet) == 9_000
    assert_ledger_ok()


def test_two_concurrent_expiry_sweeps_move_each_lot_once():
    wallets = [citizen() for _ in range(6)]
    grants = [grant_lot(w, 1_000 * (i + 1), valid_days=2) for i, w in enumerate(wallets)]
    funder_total = sum(natural(g.funder_account) for g in grants)
    # Small batches, so the two sweeps interleave over several transactions.
    outcomes = race([lambda: services.expire_lots(now=after_days(5), batch_size=2) for _ in range(2)])
    assert sum(o.lots for o in outcomes) == 6, outcomes
    assert sum(o.amount for o in outcomes) == 21_000
    assert JournalEntry.objects.filter(kind="voucher_expiry").count() == 6
    assert set(Lot.objects.values_list("status", flat=True)) == {Lot.Status.EXPIRED}
    assert sum(natural(g.funder_account) for g in grants) == funder_total + 21_000
    assert_ledger_ok()


def _bonus_program(**fields):
    rule = {"rate_bp": 1000, "monthly_base_limit": 300_000}
    return program(kind=VoucherProgram.Kind.TOPUP_BONUS, valid_days=1825, rules=[rule], **fields)


def test_concurrent_top_ups_never_exceed_the_monthly_cap():
    bonus = _bonus_program(per_person_monthly_cap=25_000)
    wallet = citizen(krw=1_000_000)
    outcomes = race(
        [lambda i=i: services.top_up(wallet=wallet, amount=100_000, idempotency_key=f"t{i}") for i in range(10)]
    )
    assert all(not isinstance(o, str) for o in outcomes), outcomes
    assert sum(o.bonus_amount for o in outcomes) == 25_000
    assert sum(Benefit.objects.filter(program=bonus).values_list("amount", flat=True)) == 25_000
    assert wallet_balance(wallet) == 1_025_000
    assert_ledger_ok()


def test_concurrent_top_ups_never_exceed_the_program_budget():
    bonus = _bonus_program(budget=45_000)
    wallets = [citizen(krw=100_000) for _ in range(10)]
    outcomes = race([lambda w=w: services.top_up(wallet=w, amount=100_000, idempotency_key="t") for w in wallets])
    assert all(not isinstance(o, str) for o in outcomes), outcomes
    assert sum(o.bonus_amount for o in outcomes) == 45_000
    bonus.refresh_from_db()
    assert bonus.issued_total == 45_000 and natural(bonus.funder_account) == 0
    assert_ledger_ok()


def test_concurrent_grants_never_exceed_the_budget_or_a_persons_cap():
    relief = program(budget=50_000, per_person_monthly_cap=20_000)
    wallets = [citizen() for _ in range(4)]
    calls = [
        lambda w=w, i=i: services.issue_voucher(program=relief, wallet=w, amount=10_000, idempotency_key=f"{w.pk}-{i}")
        for w in wallets
        for i in range(3)
    ]
    outcomes = race(calls)
    issued = [o for o in outcomes if not isinstance(o, str)]
    assert len(issued) == 5, outcomes
    assert set(o for o in outcomes if isinstance(o, str)) <= {"over_person_cap", "budget_exhausted"}
    per_wallet = Counter(b.wallet_id for b in issued)
    assert max(per_wallet.values()) <= 2
    relief.refresh_from_db()
    assert relief.issued_total == 50_000
    assert_ledger_ok()


def test_concurrent_refunds_never_return_more_than_was_paid():
    wallet, shop = wallet_with_tokens(10_000), merchant()
    payment = services.pay(wallet=wallet, merchant=shop, amount=10_000, idempotency_key="p")
    outcomes = race(
        [lambda i=i: services.refund_payment(payment=payment, amount=3_000, idempotency_key=f"r{i}") for i in range(5)]
    )
    counts = Counter(o if isinstance(o, str) else "refunded" for o in outcomes)
    assert counts == {"refunded": 3, "refund_exceeds_payment": 2}, outcomes
    payment.refresh_from_db()
    assert payment.refunded_amount == 9_000 and wallet_balance(wallet) == 9_000
    assert_ledger_ok()


def test_mixed_operations_racing_on_the_same_wallets_never_deadlock():
    # given two wallets with paid-in money, a grant that is about to expire, cashback and a bonus
    cashback = program(kind=VoucherProgram.Kind.CASHBACK, valid_days=1825, rules=[{"tiers": [(None, 500)]}])
    _bonus_program()
    alice, bob = wallet_with_tokens(200_000, extra_krw=200_000), wallet_with_tokens(200_000, extra_krw=200_000)
    grant_lot(alice, 5_000, valid_days=1)
    shop = merchant()
    paid = services.pay(wallet=alice, merchant=shop, amount=50_000, idempotency_key="first")
    calls = [
        lambda: services.transfer(from_wallet=alice, to_wallet=bob, amount=1_000),
        lambda: services.transfer(from_wallet=bob, to_wallet=alice, amount=1_000),
        lambda: services.pay(wallet=alice, merchant=shop, amount=2_000, idempotency_key="a"),
        lambda: services.pay(wallet=bob, merchant=shop, amount=2_000, idempotency_key="b"),
        lambda: services.refund_payment(payment=paid, amount=10_000, idempotency_key="r"),
        lambda: services.top_up(wallet=alice, amount=10_000, idempotency_key="t"),
        lambda: services.top_up(wallet=bob, amount=10_000, idempotency_key="t"),
        lambda: services.expire_lots(now=after_days(3)),
        lambda: services.pay_merchant(payer=shop, payee=merchant(), amount=1_000, idempotency_key="m"),
    ]
    outcomes = race(calls)
    assert not [o for o in outcomes if isinstance(o, str)], outcomes
    assert cashback.benefits.exists()
    assert_ledger_ok()
