"""Who acted: pay, refund_payment and issue_voucher name their acting user in the
audit log, and a benefit records its basis, so a staff mint and a reward on a
reviewer's decision are told apart."""

import pytest
from django.db import IntegrityError, transaction
from django.test import override_settings

from bank.models import AuditEvent, MinterAllowance
from bank.roles import grant_role
from tests.factories.api import citizen_app, merchant_app
from tests.factories.voucher import citizen, merchant, program, staff, wallet_with_tokens
from voucher import errors, services
from voucher.models import Benefit, Payment, VoucherProgram

PAY = "/api/v1/wallet/payments/"


def _minted(minter: str) -> int:
    row = MinterAllowance.objects.filter(minter=minter).first()
    return row.minted_total if row else 0


def test_a_payment_through_the_api_names_the_wallets_holder(db):
    app, shop = citizen_app(10_000), merchant()
    response = app.post(PAY, {"merchant": shop.pk, "amount": 1_000})
    assert response.status_code == 201, response.content
    [event] = AuditEvent.objects.filter(action="payment.create")
    assert (event.actor, event.target_id) == (app.user, str(response.json()["id"]))


def test_a_refund_through_the_api_names_the_merchants_member(db):
    # given a payment at the shop
    till = merchant_app()
    payment = services.pay(wallet=wallet_with_tokens(10_000), merchant=till.merchant, amount=4_000, idempotency_key="p")
    # when the shop's owner refunds part of it
    response = till.post(f"/api/v1/merchant/payments/{payment.pk}/refunds/", {"amount": 1_500})
    # then
    assert response.status_code == 201, response.content
    [event] = AuditEvent.objects.filter(action="refund.create")
    assert (event.actor, event.target_type, event.target_id) == (till.user, "Refund", str(response.json()["id"]))
    assert event.after == {"payment": payment.pk, "amount": 1_500, "entry": event.after["entry"]}


def test_a_refund_by_a_system_caller_writes_no_audit_row(db):
    payment = services.pay(wallet=wallet_with_tokens(10_000), merchant=merchant(), amount=4_000, idempotency_key="p")
    services.refund_payment(payment=payment, amount=1_000, idempotency_key="r")
    assert not AuditEvent.objects.filter(action="refund.create").exists()


def test_a_staff_mint_is_a_staff_grant_by_its_maker(db):
    # given
    grant, wallet = program(kind=VoucherProgram.Kind.GRANT), citizen()
    officer = grant_role(staff("issuing-officer"), "program_manager")
    # when
    benefit = services.issue_by_staff(
        actor=officer, program=grant, wallet=wallet, amount=5_000, idempotency_key="k", reason="relief"
    )
    # then
    assert (benefit.basis, benefit.issued_by) == (Benefit.Basis.STAFF_GRANT, officer)
    assert _minted("staff_issuance") == 5_000 and _minted("program_issuance") == 0
    [event] = AuditEvent.objects.filter(action="voucher.issue")
    assert (event.actor, event.target_type, event.target_id) == (officer, "Benefit", str(benefit.pk))
    assert event.after["basis"] == "staff_grant"


@override_settings(LARGE_MINT_THRESHOLD=1_000)
def test_a_reward_on_a_reviewers_decision_names_the_reviewer_and_is_no_staff_mint(db):
    # given a reward program and a reviewer who accepted a citizen's report
    reward, wallet = program(kind=VoucherProgram.Kind.REWARD, face_value=3_000), citizen()
    reviewer = staff("report-reviewer")
    # when (above the staff mint threshold: the program's caps bound a reward, not a large-mint approval)
    benefit = services.issue_voucher(
        program=reward,
        wallet=wallet,
        idempotency_key="report-7",
        acting_user=reviewer,
        basis=Benefit.Basis.REVIEWED_REWARD,
    )
    # then
    assert (benefit.basis, benefit.issued_by, benefit.amount) == (Benefit.Basis.REVIEWED_REWARD, reviewer, 3_000)
    assert _minted("program_issuance") == 3_000 and _minted("staff_issuance") == 0
    [event] = AuditEvent.objects.filter(action="voucher.issue")
    assert (event.actor, event.after["basis"]) == (reviewer, "reviewed_reward")
    # and a replay of the same decision issues nothing more
    again = services.issue_voucher(
        program=reward, wallet=wallet, idempotency_key="report-7", acting_user=reviewer, basis="reviewed_reward"
    )
    assert again.pk == benefit.pk and AuditEvent.objects.filter(action="voucher.issue").count() == 1


def test_a_program_issue_names_no_one(db):
    benefit = services.issue_voucher(
        program=program(kind=VoucherProgram.Kind.GRANT), wallet=citizen(), amount=1_000, idempotency_key="k"
    )
    assert (benefit.basis, benefit.issued_by) == (Benefit.Basis.PROGRAM_ISSUE, None)
    assert not AuditEvent.objects.filter(action="voucher.issue").exists()


def test_cashback_is_earned(db):
    from datetime import date

    program(
        kind=VoucherProgram.Kind.CASHBACK,
        valid_days=1825,
        rules=[{"effective_from": date(2026, 1, 1), "tiers": [(1_000_000_000, 1000)]}],
    )
    payment = services.pay(wallet=wallet_with_tokens(10_000), merchant=merchant(), amount=10_000, idempotency_key="p")
    assert Benefit.objects.get(payment=payment).basis == Benefit.Basis.EARNED
    assert Payment.objects.get().cashback_amount == 1_000


@pytest.mark.parametrize(
    ("kind", "acting", "basis", "error", "field"),
    [
        ("reward", False, "reviewed_reward", errors.InvalidRequest, "acting_user"),  # a decision names its person
        ("reward", False, "staff_grant", errors.InvalidRequest, "acting_user"),
        ("reward", True, "program_issue", errors.InvalidRequest, "basis"),  # a program issue names no one
        ("reward", True, "earned", errors.InvalidRequest, "basis"),  # earned only by a top-up or payment
        ("grant", True, "reviewed_reward", errors.ProgramKindMismatch, None),  # a reviewer rewards, not grants
    ],
)
def test_an_issue_whose_basis_does_not_fit_is_refused(db, kind, acting, basis, error, field):
    issued = program(kind=kind)
    with pytest.raises(error) as refused:
        services.issue_voucher(
            program=issued,
            wallet=citizen(),
            amount=1_000,
            idempotency_key="k",
            acting_user=staff("reviewer") if acting else None,
            basis=basis,
        )
    if field:
        assert refused.value.details["field"] == field
    assert not Benefit.objects.exists()


def test_the_database_refuses_a_person_decided_benefit_without_the_person(db):
    benefit = services.issue_voucher(
        program=program(kind=VoucherProgram.Kind.GRANT), wallet=citizen(), amount=1_000, idempotency_key="k"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Benefit.objects.filter(pk=benefit.pk).update(basis=Benefit.Basis.STAFF_GRANT)
    with pytest.raises(IntegrityError), transaction.atomic():
        Benefit.objects.filter(pk=benefit.pk).update(issued_by=staff("someone"))
