from datetime import date, timedelta

import pytest

from bank import errors as bank_errors
from tests.factories.voucher import citizen, program
from tests.voucher.support import assert_ledger_ok, ledger_size, natural
from voucher import errors, services
from voucher.clock import seoul_today
from voucher.models import Benefit, KycTier, VoucherProgram
from voucher.selectors import benefits_this_month, lots_of, wallet_balance


def test_a_grant_is_minted_from_the_funder_into_a_program_lot(db):
    relief = program(valid_days=90, face_value=300_000, budget=1_000_000)
    wallet = citizen()
    benefit = services.issue_voucher(program=relief, wallet=wallet, idempotency_key="household-1")
    assert benefit.amount == 300_000
    [lot] = lots_of(wallet)
    assert (lot.program, lot.expires_on, lot.balance) == (relief, seoul_today() + timedelta(days=90), 300_000)
    assert natural(relief.funder_account) == 700_000
    assert_ledger_ok()


def test_a_fixed_date_program_expires_on_its_date(db):
    until = seoul_today() + timedelta(days=10)
    tour = program(expires_on=until)
    wallet = citizen()
    services.issue_voucher(program=tour, wallet=wallet, amount=5_000, idempotency_key="k")
    assert lots_of(wallet)[0].expires_on == until


def test_the_same_program_and_day_share_one_lot(db):
    reward = program(kind=VoucherProgram.Kind.REWARD, valid_days=30)
    wallet = citizen()
    services.issue_voucher(program=reward, wallet=wallet, amount=1_000, idempotency_key="a")
    services.issue_voucher(program=reward, wallet=wallet, amount=2_000, idempotency_key="b")
    assert [lot.balance for lot in lots_of(wallet)] == [3_000]


def test_the_person_caps_are_never_exceeded(db):
    relief = program(per_person_total_cap=300_000, per_person_monthly_cap=300_000)
    wallet = citizen()
    services.issue_voucher(program=relief, wallet=wallet, amount=200_000, idempotency_key="a")
    before = ledger_size()
    with pytest.raises(errors.OverPersonCap) as refused:
        services.issue_voucher(program=relief, wallet=wallet, amount=100_001, idempotency_key="b")
    assert refused.value.code == "over_person_cap" and ledger_size() == before
    services.issue_voucher(program=relief, wallet=wallet, amount=100_000, idempotency_key="c")
    assert benefits_this_month(wallet, relief)["benefit_left"] == 0


def test_the_budget_is_never_exceeded(db):
    relief = program(budget=500_000)
    services.issue_voucher(program=relief, wallet=citizen(), amount=400_000, idempotency_key="a")
    before = ledger_size()
    with pytest.raises(errors.BudgetExhausted) as refused:
        services.issue_voucher(program=relief, wallet=citizen(), amount=100_001, idempotency_key="b")
    assert refused.value.code == "budget_exhausted" and ledger_size() == before
    relief.refresh_from_db()
    assert relief.issued_total == 400_000


def test_issuing_over_the_wallet_limit_is_refused(db):
    relief = program()
    wallet = citizen(kyc_tier=KycTier.ANONYMOUS)
    before = ledger_size()
    with pytest.raises(errors.OverWalletLimit):
        services.issue_voucher(program=relief, wallet=wallet, amount=500_001, idempotency_key="a")
    assert ledger_size() == before


def test_an_issue_is_idempotent_per_program(db):
    reward = program(kind=VoucherProgram.Kind.REWARD)
    wallet = citizen()
    first = services.issue_voucher(program=reward, wallet=wallet, amount=1_000, idempotency_key="report-7")
    assert services.issue_voucher(program=reward, wallet=wallet, amount=1_000, idempotency_key="report-7") == first
    with pytest.raises(bank_errors.IdempotencyConflict):
        services.issue_voucher(program=reward, wallet=citizen(), amount=1_000, idempotency_key="report-7")
    assert Benefit.objects.count() == 1 and wallet_balance(wallet) == 1_000


def test_bonus_programs_are_not_issued_by_hand(db):
    bonus = program(kind=VoucherProgram.Kind.TOPUP_BONUS, rules=[{"rate_bp": 500}])
    with pytest.raises(errors.ProgramKindMismatch):
        services.issue_voucher(program=bonus, wallet=citizen(), amount=1_000, idempotency_key="a")


def test_a_program_past_its_fixed_date_issues_nothing(db):
    old = program(expires_on=date(2020, 12, 31))
    with pytest.raises(errors.ProgramNotActive):
        services.issue_voucher(program=old, wallet=citizen(), amount=1_000, idempotency_key="a")
