from datetime import timedelta

import pytest

from bank import errors as bank_errors
from tests.factories.voucher import citizen, program, staff
from tests.voucher.support import assert_ledger_ok, ledger_size, natural
from voucher import errors, services
from voucher.clock import seoul_today
from voucher.models import Benefit, KycTier, Lot, TopUp, VoucherProgram
from voucher.selectors import benefits_this_month, lots_of, wallet_balance


def _bonus_program(**fields):
    rule = {"rate_bp": 1000, "monthly_base_limit": 500_000}
    return program(kind=VoucherProgram.Kind.TOPUP_BONUS, valid_days=1825, rules=[rule], **fields)


def test_top_up_adds_the_bonus_within_the_monthly_base_limit(db):
    # given 10% on up to 500,000 won of top-up a month
    bonus = _bonus_program()
    wallet = citizen(krw=1_000_000)
    # when
    first = services.top_up(wallet=wallet, amount=300_000, idempotency_key="a")
    second = services.top_up(wallet=wallet, amount=300_000, idempotency_key="b")
    third = services.top_up(wallet=wallet, amount=100_000, idempotency_key="c")
    # then
    assert [first.bonus_amount, second.bonus_amount, third.bonus_amount] == [30_000, 20_000, 0]
    assert wallet_balance(wallet) == 750_000
    assert natural(bonus.funder_account) == bonus.budget - 50_000
    bonus.refresh_from_db()
    assert bonus.issued_total == 50_000
    program_lot = Lot.objects.get(wallet=wallet, program=bonus)
    assert program_lot.expires_on == seoul_today() + timedelta(days=1825)
    assert benefits_this_month(wallet, bonus)["base_left"] == 0
    assert_ledger_ok()


def test_the_person_cap_trims_the_bonus(db):
    _bonus_program(per_person_monthly_cap=25_000)
    wallet = citizen(krw=1_000_000)
    assert services.top_up(wallet=wallet, amount=300_000, idempotency_key="a").bonus_amount == 25_000
    assert services.top_up(wallet=wallet, amount=100_000, idempotency_key="b").bonus_amount == 0


def test_the_bonus_stops_when_the_budget_runs_out_but_top_ups_go_on(db):
    _bonus_program(budget=40_000)
    wallets = [citizen(krw=300_000) for _ in range(3)]
    bonuses = [services.top_up(wallet=w, amount=300_000, idempotency_key="a").bonus_amount for w in wallets]
    assert bonuses == [30_000, 10_000, 0]
    assert [wallet_balance(w) for w in wallets] == [330_000, 310_000, 300_000]
    assert_ledger_ok()


def test_a_draft_or_closed_bonus_program_gives_nothing(db):
    closed = _bonus_program()
    services.close_program(actor=staff("checker"), program=closed)
    wallet = citizen(krw=100_000)
    assert services.top_up(wallet=wallet, amount=100_000, idempotency_key="a").bonus_amount == 0


def test_the_bonus_shrinks_to_the_wallet_limit_but_the_top_up_must_fit_whole(db):
    _bonus_program()
    wallet = citizen(krw=600_000, kyc_tier=KycTier.ANONYMOUS)
    topup = services.top_up(wallet=wallet, amount=480_000, idempotency_key="a")
    assert topup.bonus_amount == 20_000
    assert wallet_balance(wallet) == 500_000
    before = ledger_size()
    with pytest.raises(errors.OverWalletLimit) as refused:
        services.top_up(wallet=wallet, amount=1, idempotency_key="b")
    assert refused.value.code == "over_wallet_limit"
    assert ledger_size() == before


def test_a_frozen_wallet_cannot_top_up_and_nothing_is_written(db):
    wallet = citizen(krw=10_000)
    services.set_wallet_status(actor=staff("officer"), wallet=wallet, status="frozen", reason="fraud check")
    before = ledger_size()
    with pytest.raises(errors.WalletFrozen) as refused:
        services.top_up(wallet=wallet, amount=1_000, idempotency_key="a")
    assert refused.value.code == "wallet_frozen"
    assert ledger_size() == before and not TopUp.objects.exists()


def test_a_top_up_larger_than_the_deposit_is_refused_whole(db):
    _bonus_program()
    wallet = citizen(krw=10_000)
    before = ledger_size()
    with pytest.raises(bank_errors.InsufficientFunds):
        services.top_up(wallet=wallet, amount=10_001, idempotency_key="a")
    assert ledger_size() == before and not Benefit.objects.exists() and not Lot.objects.exists()


def test_a_retried_top_up_returns_the_first_and_a_changed_one_conflicts(db):
    wallet = citizen(krw=10_000)
    first = services.top_up(wallet=wallet, amount=1_000, idempotency_key="same")
    assert services.top_up(wallet=wallet, amount=1_000, idempotency_key="same") == first
    with pytest.raises(bank_errors.IdempotencyConflict):
        services.top_up(wallet=wallet, amount=2_000, idempotency_key="same")
    assert wallet_balance(wallet) == 1_000
    assert [lot.balance for lot in lots_of(wallet)] == [1_000]


@pytest.mark.parametrize("amount", [0, -5, 1.5, True, "100"])
def test_amounts_are_positive_whole_won(db, amount):
    with pytest.raises(bank_errors.InvalidAmount):
        services.top_up(wallet=citizen(krw=10), amount=amount, idempotency_key="a")
