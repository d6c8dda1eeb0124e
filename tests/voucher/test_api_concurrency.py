"""Real races through the HTTP API on PostgreSQL: requests started together at a barrier."""

import threading
import time
from collections import Counter
from dataclasses import replace

import pytest
from django.db import connection, connections, transaction

from bank import services as bank_services
from bank.models import DeviceKey, EnrollmentCode, UsedNonce
from bank.roles import grant_role
from bank.services import set_payments_paused
from tests.factories.api import api_client, citizen_app, enroll_device, merchant_app
from tests.factories.voucher import UserFactory, staff
from tests.voucher.support import assert_ledger_ok, ledger_size, natural, race
from voucher import services
from voucher.models import Payment, PaymentRequest, Wallet
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


# --- a retry while the first request is still running (issue 13) ---------------------------------


def _in_flight_case(kind: str):
    """(app, path, body, the wallet whose row the request must lock) for one money-moving POST."""
    if kind == "payment":
        app, till = citizen_app(10_000), merchant_app()
        return app, "/api/v1/wallet/payments/", {"merchant": till.merchant.pk, "amount": 1_000}, app.wallet
    if kind == "transfer":
        app, receiver = citizen_app(10_000), citizen_app(0)
        return app, "/api/v1/wallet/transfers/", {"to_wallet": receiver.wallet.pk, "amount": 1_000}, app.wallet
    if kind == "top-up":
        app = citizen_app(0, extra_krw=50_000)
        return app, "/api/v1/wallet/top-ups/", {"amount": 1_000}, app.wallet
    customer, till = citizen_app(10_000), merchant_app()
    payment = services.pay(wallet=customer.wallet, merchant=till.merchant, amount=4_000, idempotency_key="p")
    return till, f"/api/v1/merchant/payments/{payment.pk}/refunds/", {"amount": 1_000}, customer.wallet


def _wait_for_lock_waiters(count: int) -> None:
    """Until `count` other sessions of this database wait on a lock (10 s at most)."""
    deadline = time.monotonic() + 10
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # pg_stat_activity is a per-transaction snapshot
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] >= count:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"fewer than {count} requests are waiting on a lock")
            time.sleep(0.01)


def _in_background(call):
    result = {}

    def run():
        try:
            result["response"] = call()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


@pytest.mark.parametrize("kind", ["payment", "transfer", "top-up", "refund"])
def test_a_retry_while_the_first_request_runs_gets_the_first_answer_byte_for_byte(kind):
    # given: a request held up inside its transaction (its wallet row is locked
    # here), after it consumed its nonce, and its retry, same key, body, nonce and signature
    app, path, body, wallet = _in_flight_case(kind)
    signed = {"key": f"retry-{kind}", "nonce": f"nonce-retry-{kind}", "timestamp": int(time.time())}
    before = ledger_size()
    with transaction.atomic():
        Wallet.objects.select_for_update().get(pk=wallet.pk)
        first_thread, first = _in_background(lambda: app.post(path, body, **signed))
        _wait_for_lock_waiters(1)
        retry_thread, retry = _in_background(lambda: app.post(path, body, **signed))
        _wait_for_lock_waiters(2)  # the retry now waits for the first request's nonce row
    # when: the first request goes on and commits
    first_thread.join(10)
    retry_thread.join(10)
    # then: the retry answers with the first answer's bytes, and the money moved once
    assert first["response"].status_code == 201, first["response"].content
    assert retry["response"].status_code == 201, retry["response"].content
    assert retry["response"].content == first["response"].content
    assert retry["response"]["Idempotent-Replay"] == "true"
    entries, _ = ledger_size()
    assert entries == before[0] + 1
    assert_ledger_ok()


def _first_in_flight_then(app, path, body, wallet, signed, retry_call, *, meanwhile=lambda: None):
    """Start the first request and hold it inside its transaction; start `retry_call`
    once the first waits; let the first go on (after `meanwhile`, in the holding transaction)."""
    with transaction.atomic():
        Wallet.objects.select_for_update().get(pk=wallet.pk)
        first_thread, first = _in_background(lambda: app.post(path, body, **signed))
        _wait_for_lock_waiters(1)
        retry_thread, retry = _in_background(retry_call)
        _wait_for_lock_waiters(2)
        meanwhile()
    first_thread.join(10)
    retry_thread.join(10)
    return first["response"], retry["response"]


def test_a_retry_in_flight_with_another_body_or_another_key_is_still_refused():
    app, path, body, wallet = _in_flight_case("payment")
    signed = {"key": "retry-body", "nonce": "nonce-retry-body", "timestamp": int(time.time())}
    before = ledger_size()
    first, other_body = _first_in_flight_then(
        app, path, body, wallet, signed, lambda: app.post(path, {**body, "amount": 2_000}, **signed)
    )
    assert first.status_code == 201
    assert (other_body.status_code, other_body.json()["error"]["code"]) == (409, "idempotency_key_reused")
    second = {**signed, "key": "retry-body-2", "nonce": "nonce-retry-body-2"}
    first, other_key = _first_in_flight_then(
        app, path, body, wallet, second, lambda: app.post(path, body, **{**second, "key": "a-new-key"})
    )
    assert first.status_code == 201
    assert (other_key.status_code, other_key.json()["error"]["code"]) == (409, "nonce_replayed")
    assert ledger_size()[0] == before[0] + 2
    assert wallet_balance(app.wallet) == 8_000


@pytest.mark.parametrize("kind", ["payment", "transfer"])
def test_a_first_request_refused_with_an_answer_not_kept_lets_its_retry_run_as_a_first_attempt(kind):
    # given: payments are paused while the first request waits; its 503 is not kept for the key
    pauser = grant_role(staff("incident-desk"), "pauser")
    app, path, body, wallet = _in_flight_case(kind)
    signed = {"key": f"paused-{kind}", "nonce": f"nonce-paused-{kind}", "timestamp": int(time.time())}
    before = ledger_size()
    first, retry = _first_in_flight_then(
        app,
        path,
        body,
        wallet,
        signed,
        lambda: app.post(path, body, **signed),
        meanwhile=lambda: set_payments_paused(actor=pauser, paused=True, reason="incident 7"),
    )
    # then: the first rolled back whole (its nonce too), so the retry ran, and was paused as well
    for response in (first, retry):
        assert (response.status_code, response.json()["error"]["code"]) == (503, "payments_paused")
    assert ledger_size() == before and not UsedNonce.objects.filter(nonce=signed["nonce"]).exists()
    # and once payments resume, the very same signed request goes through, once
    set_payments_paused(actor=pauser, paused=False, reason="incident 7 over")
    assert app.post(path, body, **signed).status_code == 201
    assert app.post(path, body, **signed)["Idempotent-Replay"] == "true"
    assert ledger_size()[0] == before[0] + 1
