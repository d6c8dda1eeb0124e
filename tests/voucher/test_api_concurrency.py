"""Real races through the HTTP API on PostgreSQL: requests started together at a barrier."""

from collections import Counter
from dataclasses import replace

import pytest

from bank import services as bank_services
from bank.models import DeviceKey, EnrollmentCode
from bank.roles import grant_role
from tests.factories.api import api_client, citizen_app, enroll_device, merchant_app
from tests.factories.voucher import UserFactory
from tests.voucher.support import assert_ledger_ok, natural, race
from voucher import services
from voucher.models import Payment, PaymentRequest
from voucher.selectors import wallet_balance

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _outcome(response) -> str:
    return "created" if response.status_code == 201 else response.json()["error"]["code"]


def test_thirty_concurrent_signed_payments_of_1000_from_10000_exactly_ten_succeed():
    app, till = citizen_app(10_000), merchant_app()
    body = {"merchant": till.merchant.pk, "amount": 1_000}
    outcomes = race([lambda: _outcome(app.post("/api/v1/wallet/payments/", body)) for _ in range(30)])
    assert Counter(outcomes) == {"created": 10, "insufficient_eligible_balance": 20}, outcomes
    assert wallet_balance(app.wallet) == 0 and natural(till.merchant.token_account) == 10_000
    assert_ledger_ok()


def test_six_citizens_scanning_one_payment_request_at_once_pay_it_once():
    till, citizens = merchant_app(), [citizen_app(10_000) for _ in range(6)]
    signed = till.payment_request(4_000)
    request, _ = services.create_payment_request(
        merchant=till.merchant,
        device_id=signed["device_key"],
        amount=4_000,
        reference="",
        expires_at=signed["expires_at"],
        nonce=signed["nonce"],
        signature_hex=signed["signature"],
    )
    payload = services.request_payload(request)
    outcomes = race(
        [
            lambda app=app: _outcome(app.post("/api/v1/wallet/payments/", {"payment_request": payload}))
            for app in citizens
        ]
    )
    assert Counter(outcomes) == {"created": 1, "payment_request_used": 5}, outcomes
    assert PaymentRequest.objects.get().payment.amount == 4_000
    assert natural(till.merchant.token_account) == 4_000
    assert_ledger_ok()


def test_one_citizen_code_charged_by_four_tills_at_once_is_charged_once():
    customer, tills = citizen_app(10_000), [merchant_app() for _ in range(4)]
    code = customer.payment_code()
    outcomes = race(
        [
            lambda till=till: _outcome(till.post("/api/v1/merchant/charges/", {"code": code, "amount": 1_000}))
            for till in tills
        ]
    )
    assert Counter(outcomes) == {"created": 1, "payment_code_used": 3}, outcomes
    assert Payment.objects.count() == 1 and wallet_balance(customer.wallet) == 9_000
    assert_ledger_ok()


def test_four_phones_enrolling_with_one_enrollment_code_at_once_enroll_one_key():
    app = citizen_app(1_000)
    bank_services.revoke_device_key(actor=None, device=app.device, reason="phone lost")
    teller = grant_role(UserFactory(), "teller")
    _, code = bank_services.issue_enrollment_code(actor=teller, party=app.wallet.owner, reason="ID card checked")
    phones = [replace(app, client=api_client(app.user)) for _ in range(4)]
    outcomes = race(
        [
            lambda phone=phone, n=n: _outcome(
                enroll_device(phone, bytes([0x40 + n]) * 32, sign=False, enrollment_code=code)
            )
            for n, phone in enumerate(phones)
        ]
    )
    assert Counter(outcomes) == {"created": 1, "enrollment_code_invalid": 3}, outcomes
    assert DeviceKey.objects.filter(party=app.wallet.owner, status="active").count() == 1
    assert EnrollmentCode.objects.get().status == "used"
