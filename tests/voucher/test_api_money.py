"""Top-ups, transfers and refunds through the wallet API, with their refusals."""

from datetime import date

import pytest

from tests.factories.api import citizen_app, merchant_app
from tests.factories.voucher import grant_lot, program, staff
from tests.voucher.support import assert_ledger_ok, ledger_size, natural
from voucher import services
from voucher.models import Payment, VoucherProgram, WalletLimitRule
from voucher.selectors import wallet_balance

TOP_UP = "/api/v1/wallet/top-ups/"
TRANSFER = "/api/v1/wallet/transfers/"


def _refunds(payment) -> str:
    return f"/api/v1/merchant/payments/{payment.pk}/refunds/"


def test_a_top_up_mints_tokens_from_the_deposit_with_the_active_bonus(db):
    app = citizen_app(0, extra_krw=200_000)
    program(kind=VoucherProgram.Kind.TOPUP_BONUS, rules=[{"rate_bp": 1000, "monthly_base_limit": 300_000}])
    response = app.post(TOP_UP, {"amount": 100_000})
    assert response.status_code == 201, response.content
    assert (response.json()["amount"], response.json()["bonus_amount"]) == (100_000, 10_000)
    assert wallet_balance(app.wallet) == 110_000
    assert natural(app.wallet.deposit_account) == 100_000
    assert_ledger_ok()


@pytest.mark.parametrize(
    ("arrange", "amount", "status", "code"),
    [
        (lambda app: None, 2_000_001, 409, "over_wallet_limit"),
        (lambda app: None, 300_000, 409, "insufficient_funds"),  # more than the KRW deposit holds
        (
            lambda app: services.set_wallet_status(actor=staff("o"), wallet=app.wallet, status="frozen", reason="x"),
            1_000,
            403,
            "wallet_frozen",
        ),
    ],
)
def test_a_refused_top_up_answers_its_code_and_writes_nothing(db, arrange, amount, status, code):
    app = citizen_app(0, extra_krw=200_000)
    arrange(app)
    before = ledger_size()
    response = app.post(TOP_UP, {"amount": amount})
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert ledger_size() == before


def test_an_anonymous_wallet_is_held_to_its_lower_maximum(db):
    app = citizen_app(0, extra_krw=600_000, kyc_tier="anonymous")
    before = ledger_size()
    response = app.post(TOP_UP, {"amount": 500_001})
    assert response.json()["error"]["code"] == "over_wallet_limit"
    assert ledger_size() == before


def test_a_transfer_moves_transferable_tokens_to_another_wallet(db):
    sender, receiver = citizen_app(10_000), citizen_app(0)
    grant_lot(sender.wallet, 5_000, is_transferable=False)
    response = sender.post(TRANSFER, {"to_wallet": receiver.wallet.pk, "amount": 4_000})
    assert response.status_code == 201, response.content
    assert response.json()["to_wallet"] == receiver.wallet.pk
    assert (wallet_balance(sender.wallet), wallet_balance(receiver.wallet)) == (11_000, 4_000)
    assert_ledger_ok()


def _limit_receiver(named_max):
    WalletLimitRule.objects.create(
        effective_from=date(2020, 1, 1),
        named_max_balance=named_max,
        anonymous_max_balance=500_000,
        per_payment_limit=1_000_000,
        daily_payment_limit=2_000_000,
        redeem_min_used_percent=60,
        plain_lot_valid_days=1825,
    )


@pytest.mark.parametrize(
    ("amount", "arrange", "status", "code"),
    [
        (7_000, lambda s, r: None, 409, "insufficient_transferable_balance"),  # the grant may not be sent
        (1_000, lambda s, r: _limit_receiver(10_500), 409, "over_wallet_limit"),  # the receiver holds 10,000
        (
            1_000,
            lambda s, r: services.set_wallet_status(actor=staff("o"), wallet=r.wallet, status="frozen", reason="x"),
            403,
            "wallet_frozen",
        ),
    ],
)
def test_a_refused_transfer_answers_its_code_and_writes_nothing(db, amount, arrange, status, code):
    sender, receiver = citizen_app(5_000), citizen_app(10_000)
    grant_lot(sender.wallet, 5_000, is_transferable=False)
    arrange(sender, receiver)
    before = ledger_size()
    response = sender.post(TRANSFER, {"to_wallet": receiver.wallet.pk, "amount": amount})
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert ledger_size() == before


def test_a_transfer_to_an_unknown_wallet_is_a_404_and_to_oneself_a_400(db):
    sender = citizen_app(5_000)
    assert sender.post(TRANSFER, {"to_wallet": 10**12, "amount": 1}).status_code == 404
    itself = sender.post(TRANSFER, {"to_wallet": sender.wallet.pk, "amount": 1})
    assert itself.status_code == 400
    assert itself.json()["error"]["code"] == "invalid_request"


def _paid(amount=10_000, *, role="owner"):
    customer, till = citizen_app(amount), merchant_app(role=role)
    payment = services.pay(wallet=customer.wallet, merchant=till.merchant, amount=amount, idempotency_key="p")
    return customer, till, payment


@pytest.mark.parametrize("role", ["owner", "clerk"])
def test_a_merchant_refunds_part_then_the_rest_of_a_payment(db, role):
    customer, till, payment = _paid(role=role)
    part = till.post(_refunds(payment), {"amount": 4_000})
    assert part.status_code == 201, part.content
    assert part.json()["amount"] == 4_000
    rest = till.post(_refunds(payment), {})
    assert rest.json()["amount"] == 6_000
    assert wallet_balance(customer.wallet) == 10_000
    assert natural(till.merchant.token_account) == 0
    detail = till.get(f"/api/v1/merchant/payments/{payment.pk}/").json()
    assert (detail["refunded_amount"], detail["refundable"], len(detail["refunds"])) == (10_000, 0, 2)
    assert_ledger_ok()


def test_a_refund_over_what_is_left_is_refused_and_writes_nothing(db):
    _, till, payment = _paid()
    till.post(_refunds(payment), {"amount": 9_000})
    before = ledger_size()
    response = till.post(_refunds(payment), {"amount": 1_001})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "refund_exceeds_payment"
    assert ledger_size() == before


def test_a_frozen_merchant_cannot_refund(db):
    _, till, payment = _paid()
    services.set_merchant_status(actor=staff("o"), merchant=till.merchant, status="frozen", reason="x")
    before = ledger_size()
    response = till.post(_refunds(payment), {"amount": 1_000})
    assert (response.status_code, response.json()["error"]["code"]) == (403, "merchant_frozen")
    assert ledger_size() == before


def test_a_refund_must_be_signed_by_a_merchant_device_not_the_citizens(db):
    customer, till, payment = _paid()
    before = ledger_size()
    response = till.post(_refunds(payment), {"amount": 1_000}, device_id=customer.device.pk, secret=customer.secret)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "device_key_unknown")
    refused = customer.post(_refunds(payment), {"amount": 1_000})  # a citizen login is no merchant
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "permission_denied")
    assert ledger_size() == before
    assert Payment.objects.get().refunded_amount == 0
