from datetime import date, timedelta

import pytest

from bank.models import AuditEvent
from tests.factories.voucher import UserFactory, citizen, city_budget, merchant, program, staff
from voucher import errors, services
from voucher.clock import seoul_today
from voucher.models import VoucherProgram
from voucher.services.benefits import rule_on

TIERS_2026 = [(1_000_000_000, 1000), (3_000_000_000, 800)]


def _draft(maker, **fields):
    return services.create_program(
        actor=maker,
        code="relief",
        name="Disaster relief",
        kind=VoucherProgram.Kind.GRANT,
        funder_account=city_budget(1_000_000),
        budget=1_000_000,
        **{"valid_days": 90, **fields},
    )


def test_the_maker_cannot_approve_and_the_refusal_is_audited(db):
    # given
    maker, checker = staff("maker"), staff("checker")
    relief = _draft(maker)
    services.submit_program(actor=maker, program=relief)
    # when
    with pytest.raises(errors.MakerCheckerViolation) as refused:
        services.approve_program(actor=maker, program=relief)
    # then
    assert refused.value.code == "maker_checker_violation"
    relief.refresh_from_db()
    assert relief.status == VoucherProgram.Status.PENDING_APPROVAL
    assert AuditEvent.objects.filter(action="voucher_program.approve_refused", actor=maker).count() == 1
    # and another staff member can
    services.approve_program(actor=checker, program=relief)
    relief.refresh_from_db()
    assert (relief.status, relief.approved_by) == (VoucherProgram.Status.ACTIVE, checker)
    assert AuditEvent.objects.filter(action="voucher_program.approve", actor=checker).count() == 1


def test_whoever_edited_a_program_cannot_approve_it(db):
    maker, editor, checker = staff("maker"), staff("editor"), staff("checker")
    relief = _draft(maker)
    services.update_program(actor=editor, program=relief, budget=900_000)
    services.submit_program(actor=maker, program=relief)
    with pytest.raises(errors.MakerCheckerViolation):
        services.approve_program(actor=editor, program=relief)
    services.approve_program(actor=checker, program=relief)
    assert AuditEvent.objects.filter(action="voucher_program.update", actor=editor).exists()


def test_only_staff_make_programs(db):
    with pytest.raises(errors.StaffOnly):
        _draft(UserFactory(username="citizen"))


def test_a_program_issues_nothing_before_approval(db):
    relief = _draft(staff("maker"))
    with pytest.raises(errors.ProgramNotActive):
        services.issue_voucher(program=relief, wallet=citizen(), amount=1_000, idempotency_key="k")


def test_an_active_program_is_not_edited_but_closed(db):
    relief = program(valid_days=90)
    with pytest.raises(errors.InvalidProgramTransition):
        services.update_program(actor=staff("maker"), program=relief, budget=5)
    services.close_program(actor=staff("checker"), program=relief, reason="over")
    with pytest.raises(errors.ProgramNotActive):
        services.issue_voucher(program=relief, wallet=citizen(), amount=1_000, idempotency_key="k")


@pytest.mark.parametrize(
    "fields",
    [
        {"eligible_categories": ["casino"]},
        {"eligible_districts": ["gangnam"]},
        {"per_person_monthly_cap": 0},
        {"valid_days": None},
        {"expires_on": date(2030, 1, 1)},
    ],
)
def test_invalid_program_settings_are_refused(db, fields):
    with pytest.raises(errors.InvalidProgram):
        _draft(staff("maker"), **fields)


def test_a_funder_that_may_go_negative_is_refused(db):
    from tests.factories import bank_source

    with pytest.raises(errors.InvalidProgram):
        services.create_program(
            actor=staff("maker"),
            code="bad",
            name="bad",
            kind="grant",
            funder_account=bank_source("KRW"),
            budget=1,
            valid_days=1,
        )


def test_tiers_pick_the_rate_by_merchant_revenue(db):
    cashback = program(
        kind=VoucherProgram.Kind.CASHBACK,
        valid_days=1825,
        rules=[{"effective_from": date(2026, 1, 1), "monthly_base_limit": 500_000, "tiers": TIERS_2026}],
    )
    rule = rule_on(cashback, date(2026, 3, 1))
    assert rule.rate_for(merchant(annual_revenue=900_000_000)) == 1000
    assert rule.rate_for(merchant(annual_revenue=1_000_000_000)) == 1000
    assert rule.rate_for(merchant(annual_revenue=2_000_000_000)) == 800
    assert rule.rate_for(merchant(annual_revenue=5_000_000_000)) == 0


def test_a_rule_change_takes_effect_from_its_date_without_rewriting_history(db):
    # given a program with the July 2023 rule and the 2026 rule
    cashback = program(
        kind=VoucherProgram.Kind.CASHBACK,
        valid_days=1825,
        rules=[
            {"effective_from": date(2023, 7, 1), "tiers": [(1_000_000_000, 700), (3_000_000_000, 500)]},
            {"effective_from": date(2026, 1, 1), "tiers": TIERS_2026},
        ],
    )
    small = merchant(annual_revenue=500_000_000)
    assert rule_on(cashback, date(2024, 5, 1)).rate_for(small) == 700
    assert rule_on(cashback, date(2026, 5, 1)).rate_for(small) == 1000
    assert rule_on(cashback, date(2023, 6, 30)) is None
    # when a live program's rule changes, only from today on
    maker = staff("maker")
    with pytest.raises(errors.InvalidProgram):
        services.add_program_rule(actor=maker, program=cashback, effective_from=seoul_today() - timedelta(days=1))
    tomorrow = seoul_today() + timedelta(days=1)
    services.add_program_rule(actor=maker, program=cashback, effective_from=tomorrow, tiers=[(None, 300)])
    # then today keeps the old rate and the past is unchanged
    assert rule_on(cashback, seoul_today()).rate_for(small) == 1000
    assert rule_on(cashback, tomorrow).rate_for(small) == 300
    assert rule_on(cashback, date(2024, 5, 1)).rate_for(small) == 700
    assert AuditEvent.objects.filter(action="voucher_program.add_rule").count() == 3


def test_a_bonus_program_needs_a_rule_before_it_is_submitted(db):
    maker = staff("maker")
    bonus = services.create_program(
        actor=maker,
        code="bonus",
        name="bonus",
        kind=VoucherProgram.Kind.TOPUP_BONUS,
        funder_account=city_budget(10),
        budget=10,
        valid_days=10,
    )
    with pytest.raises(errors.InvalidProgram):
        services.submit_program(actor=maker, program=bonus)
