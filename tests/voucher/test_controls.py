"""The token's controls: the global pause, minter allowances, seizures under a
court order, unfreezes through approval, large staff mints and KYC tier changes."""

import pytest
from django.db import connections, transaction
from django.test import override_settings

from bank import errors as bank_errors
from bank.models import Account, ApprovalRequest, AuditEvent, JournalEntry, MinterAllowance
from bank.roles import grant_role
from bank.services import approve_request, request_allowance_raise, set_payments_paused, use_minter_allowance
from bank.services.controls import raise_minter_allowance
from tests.factories.api import citizen_app, merchant_app
from tests.factories.voucher import citizen, grant_lot, merchant, program, staff, wallet_with_tokens
from tests.voucher.settlement_support import sale, settled_total, yesterday
from tests.voucher.support import assert_ledger_ok, ledger_size, natural, race
from voucher import errors, services
from voucher.models import Benefit, Payment, Transfer, Wallet
from voucher.selectors import wallet_balance
from voucher.services.controls import COURT_HOLDING_CODE

PAY = "/api/v1/wallet/payments/"
TRANSFER = "/api/v1/wallet/transfers/"
REQUESTS = "/api/v1/payment-requests/"


def role(username: str, name: str):
    return grant_role(staff(username), name)


def _pause(paused=True):
    set_payments_paused(actor=role("incident-desk", "pauser"), paused=paused, reason="incident 42")


# --- pause ---------------------------------------------------------------------------------------


def test_a_pause_refuses_payments_and_transfers_through_the_api_and_writes_nothing(db):
    # given
    payer, receiver, till = citizen_app(10_000), citizen_app(0), merchant_app()
    shop = till.merchant
    payload = till.client.post(REQUESTS, till.payment_request(1_000), format="json").json()["payload"]
    _pause()
    before = ledger_size()
    # when
    paid = payer.post(PAY, {"merchant": shop.pk, "amount": 1_000})
    scanned = payer.post(PAY, {"payment_request": payload})
    sent = payer.post(TRANSFER, {"to_wallet": receiver.wallet.pk, "amount": 1_000})
    # then
    for response in (paid, scanned, sent):
        assert response.status_code == 503, response.content
        assert response.json()["error"]["code"] == "payments_paused"
    assert ledger_size() == before
    assert not Payment.objects.exists() and not Transfer.objects.exists()
    assert wallet_balance(payer.wallet) == 10_000


def test_refunds_keep_working_during_a_pause_and_a_resume_restores_payments(db):
    customer, till = citizen_app(10_000), merchant_app()
    payment = services.pay(wallet=customer.wallet, merchant=till.merchant, amount=4_000, idempotency_key="p1")
    _pause()
    refund = till.post(f"/api/v1/merchant/payments/{payment.pk}/refunds/", {"amount": 4_000})
    assert refund.status_code == 201, refund.content
    assert wallet_balance(customer.wallet) == 10_000
    with pytest.raises(bank_errors.PaymentsPaused):
        services.pay_merchant(payer=till.merchant, payee=merchant(), amount=1, idempotency_key="b2b")
    _pause(paused=False)
    again = customer.post(PAY, {"merchant": till.merchant.pk, "amount": 1_000})
    assert again.status_code == 201, again.content
    assert list(AuditEvent.objects.filter(action__startswith="payments.").values_list("action", flat=True)) == [
        "payments.resume",
        "payments.pause",
    ]
    assert_ledger_ok()


def test_settlement_keeps_working_during_a_pause(db):
    # given a day of sales, then an incident pause
    shop = merchant()
    sale(shop, 7_000)
    _pause()
    # when the night's batch and an instant settlement run
    batch = services.settle_day(day=yesterday())
    # then the merchant is paid: a pause stops payments and transfers, never the payout of what was taken
    assert (batch.paid_count, batch.net) == (1, 7_000)
    assert natural(shop.settlement_account) == 7_000 and settled_total(shop) == 7_000
    assert_ledger_ok()


def test_a_payment_refused_during_a_pause_succeeds_when_retried_with_the_same_key_after_resume(db):
    payer, shop = citizen_app(10_000), merchant()
    _pause()
    assert payer.post(PAY, {"merchant": shop.pk, "amount": 1_000}, key="k-1").status_code == 503
    _pause(paused=False)
    retried = payer.post(PAY, {"merchant": shop.pk, "amount": 1_000}, key="k-1")
    assert retried.status_code == 201, retried.content
    assert wallet_balance(payer.wallet) == 9_000


def test_only_the_pauser_role_can_pause(db):
    with pytest.raises(bank_errors.RoleRequired):
        set_payments_paused(actor=role("teller-1", "teller"), paused=True, reason="not mine to pull")
    assert services.pay(wallet=wallet_with_tokens(1_000), merchant=merchant(), amount=1, idempotency_key="p")


# --- minter allowances ---------------------------------------------------------------------------


def _allowance(minter: str, amount: int) -> None:
    MinterAllowance.objects.update_or_create(minter=minter, defaults={"allowance": amount, "minted_total": 0})


def test_a_top_up_uses_the_minter_allowance_and_is_refused_beyond_it(db):
    wallet = citizen(krw=50_000)
    _allowance("wallet_topup", 30_000)
    services.top_up(wallet=wallet, amount=20_000, idempotency_key="t1")
    before = ledger_size()
    with pytest.raises(bank_errors.MinterAllowanceExceeded) as refused:
        services.top_up(wallet=wallet, amount=20_000, idempotency_key="t2")
    assert refused.value.code == "minter_allowance_exceeded"
    assert ledger_size() == before
    row = MinterAllowance.objects.get(minter="wallet_topup")
    assert (row.allowance, row.minted_total, wallet_balance(wallet)) == (10_000, 20_000, 20_000)


def test_an_allowance_is_raised_only_by_an_approved_request(db):
    wallet = citizen(krw=50_000)
    _allowance("wallet_topup", 0)
    maker, checker = role("treasury", "approver"), role("checker-1", "approver")
    raise_request = request_allowance_raise(actor=maker, minter="wallet_topup", amount=25_000, reason="Q4 top-ups")
    assert MinterAllowance.objects.get(minter="wallet_topup").allowance == 0  # nothing until approved
    with pytest.raises(bank_errors.MakerCheckerViolation):
        approve_request(actor=maker, request=raise_request)
    with pytest.raises(bank_errors.ApprovalRequired):
        raise_minter_allowance(actor=maker, minter="wallet_topup", amount=25_000, reason="direct")
    approve_request(actor=checker, request=raise_request)
    services.top_up(wallet=wallet, amount=25_000, idempotency_key="t")
    assert MinterAllowance.objects.get(minter="wallet_topup").allowance == 0


def test_a_grant_uses_the_program_issuance_allowance(db):
    grant = program()
    _allowance("program_issuance", 5_000)
    wallet = citizen()
    with pytest.raises(bank_errors.MinterAllowanceExceeded):
        services.issue_voucher(program=grant, wallet=wallet, amount=6_000, idempotency_key="g")
    services.issue_voucher(program=grant, wallet=wallet, amount=5_000, idempotency_key="g")
    assert wallet_balance(wallet) == 5_000


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_top_ups_never_mint_past_the_allowance():
    # given: eight wallets each able to top up 10,000, an allowance for five of them
    wallets = [citizen(krw=10_000) for _ in range(8)]
    _allowance("wallet_topup", 50_000)
    connections.close_all()
    # when: all eight at once
    outcomes = race(
        [lambda w=w: services.top_up(wallet=w, amount=10_000, idempotency_key=f"race-{w.pk}").amount for w in wallets]
    )
    # then: exactly five minted, the rest refused with the code, the books balance
    assert sorted(outcomes, key=str) == [10_000] * 5 + ["minter_allowance_exceeded"] * 3, outcomes
    row = MinterAllowance.objects.get(minter="wallet_topup")
    assert (row.allowance, row.minted_total) == (0, 50_000)
    assert sum(wallet_balance(w) for w in wallets) == 50_000
    assert_ledger_ok()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_mints_on_one_allowance_never_lose_an_update():
    # Top-ups also queue on the reserve account's lock; here nothing else
    # serializes the mints, so only the allowance row's own lock keeps the count.
    _allowance("treasury", 50_000)

    def mint():
        with transaction.atomic():
            return use_minter_allowance(minter="treasury", amount=10_000).allowance

    outcomes = race([mint for _ in range(8)])
    assert sorted(outcomes, key=str) == [0, 10_000, 20_000, 30_000, 40_000] + ["minter_allowance_exceeded"] * 3
    row = MinterAllowance.objects.get(minter="treasury")
    assert (row.allowance, row.minted_total) == (0, 50_000)


# --- seizure -------------------------------------------------------------------------------------


def _frozen_wallet_with(tokens: int, granted: int) -> Wallet:
    wallet = wallet_with_tokens(tokens)
    grant_lot(wallet, granted)
    services.set_wallet_status(actor=staff("officer"), wallet=wallet, status="frozen", reason="court order")
    return wallet


def test_a_seizure_moves_exactly_the_frozen_wallets_balance_with_the_order_reference(db):
    # given
    wallet = _frozen_wallet_with(7_000, 3_000)
    maker = role("compliance", "approver")
    first, second = role("checker-a", "approver"), role("checker-b", "approver")
    # when
    seizure = services.request_seizure(actor=maker, wallet=wallet, order_reference="2026-KA-1234", reason="court")
    approve_request(actor=first, request=seizure)
    assert wallet_balance(wallet) == 10_000  # one approval is not enough
    approve_request(actor=second, request=seizure)
    # then
    seizure.refresh_from_db()
    assert seizure.status == ApprovalRequest.Status.EXECUTED
    assert wallet_balance(wallet) == 0
    holding = Account.objects.get(code=COURT_HOLDING_CODE)
    assert natural(holding) == 10_000
    entries = JournalEntry.objects.filter(kind="voucher_seizure")
    assert sorted(e.postings.get(account=holding).amount for e in entries) == [3_000, 7_000]  # one entry per lot
    assert set(entries.values_list("reference", flat=True)) == {"2026-KA-1234"}
    assert AuditEvent.objects.filter(action="wallet.seize", target_id=str(wallet.pk)).exists()
    assert_ledger_ok()


def test_a_seizure_of_an_active_wallet_is_refused(db):
    wallet = wallet_with_tokens(5_000)
    with pytest.raises(errors.WalletNotFrozen):
        services.request_seizure(actor=role("compliance", "approver"), wallet=wallet, order_reference="X-1", reason="r")
    assert not ApprovalRequest.objects.exists()


def test_a_seizure_fails_and_moves_nothing_if_the_wallet_was_unfrozen_before_the_last_approval(db):
    wallet = _frozen_wallet_with(5_000, 1_000)
    maker, a, b = role("compliance", "approver"), role("checker-a", "approver"), role("checker-b", "approver")
    seizure = services.request_seizure(actor=maker, wallet=wallet, order_reference="X-2", reason="court")
    unfreeze = services.request_unfreeze(actor=maker, target=wallet, reason="order lifted")
    approve_request(actor=a, request=unfreeze)
    approve_request(actor=a, request=seizure)
    approve_request(actor=b, request=seizure)
    seizure.refresh_from_db()
    assert (seizure.status, seizure.result["error"]) == ("failed", "wallet_not_frozen")
    assert wallet_balance(wallet) == 6_000


# --- unfreeze, large mints, KYC ------------------------------------------------------------------


def test_a_frozen_wallet_is_unfrozen_only_through_an_approved_request(db):
    wallet = _frozen_wallet_with(1_000, 500)
    teller, checker = role("teller-1", "teller"), role("checker-1", "approver")
    with pytest.raises(bank_errors.ApprovalRequired):
        services.set_wallet_status(actor=checker, wallet=wallet, status="active", reason="direct")
    unfreeze = services.request_unfreeze(actor=teller, target=wallet, reason="cleared")
    wallet.refresh_from_db()
    assert wallet.status == "frozen"
    approve_request(actor=checker, request=unfreeze)
    wallet.refresh_from_db()
    assert wallet.status == "active"


@override_settings(LARGE_MINT_THRESHOLD=100_000)
def test_a_staff_mint_over_the_threshold_waits_for_an_approver(db):
    grant, wallet = program(), citizen()
    manager, checker = role("pm-1", "program_manager"), role("checker-1", "approver")
    small = services.issue_by_staff(
        actor=manager, program=grant, wallet=wallet, amount=100_000, idempotency_key="s", reason="relief"
    )
    assert isinstance(small, Benefit)
    large = services.issue_by_staff(
        actor=manager, program=grant, wallet=wallet, amount=400_000, idempotency_key="l", reason="relief"
    )
    assert isinstance(large, ApprovalRequest) and wallet_balance(wallet) == 100_000
    with pytest.raises(bank_errors.ApprovalRequired):  # the service itself refuses a bypass
        services.issue_voucher(program=grant, wallet=wallet, amount=400_000, idempotency_key="x", acting_user=manager)
    approve_request(actor=checker, request=large)
    assert wallet_balance(wallet) == 500_000
    assert MinterAllowance.objects.get(minter="staff_issuance").minted_total == 500_000


def test_a_teller_changes_a_kyc_tier_with_a_reason_and_an_auditor_cannot(db):
    wallet = citizen()
    services.set_kyc_tier(actor=role("teller-1", "teller"), wallet=wallet, kyc_tier="anonymous", reason="ID expired")
    with pytest.raises(bank_errors.RoleRequired):
        services.set_kyc_tier(actor=role("auditor-1", "auditor"), wallet=wallet, kyc_tier="named", reason="no")
    wallet.refresh_from_db()
    assert wallet.kyc_tier == "anonymous"
    event = AuditEvent.objects.get(action="wallet.kyc_tier")
    assert (event.before, event.after, event.reason) == ({"kyc_tier": "named"}, {"kyc_tier": "anonymous"}, "ID expired")
