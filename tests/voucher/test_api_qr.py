"""QR payments through the API: a merchant-presented payment request (signed by the
merchant's device, paid once by a citizen) and a citizen-presented one-time code."""

import base64
import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from bank.models import AuditEvent
from tests.factories.api import citizen_app, merchant_app
from tests.factories.voucher import staff
from tests.voucher.support import assert_ledger_ok, ledger_size, natural
from voucher import payment_codes, services
from voucher.models import Payment, PaymentRequest
from voucher.selectors import wallet_balance

REQUESTS = "/api/v1/payment-requests/"
PAY = "/api/v1/wallet/payments/"
CHARGE = "/api/v1/merchant/charges/"


@pytest.fixture
def later(monkeypatch):
    """Move the server's clock forward (signed requests are then signed at that time too)."""

    def move(seconds: int):
        real_now = timezone.now
        monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=seconds))
        return int(time.time()) + seconds

    return move


def _tamper(payload: str, **changes) -> str:
    prefix, body = payload[: len(payment_codes.REQUEST_PREFIX)], payload[len(payment_codes.REQUEST_PREFIX) :]
    fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    fields.update(changes)
    return prefix + base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")


def test_a_merchant_request_round_trip_from_qr_to_payment(db):
    # given a merchant's till creates a signed request for 8,000 won
    till, customer = merchant_app(), citizen_app(10_000)
    created = till.client.post(REQUESTS, till.payment_request(8_000, reference="order-77"), format="json")
    assert created.status_code == 201, created.content
    request = created.json()
    assert (request["amount"], request["reference"], request["status"]) == (8_000, "order-77", "open")
    assert request["device_did"] == till.device.did
    # its QR images
    png = till.client.get(request["qr_png"])
    assert (png.status_code, png["Content-Type"], png.content[:8]) == (200, "image/png", b"\x89PNG\r\n\x1a\n")
    svg = till.client.get(request["qr_svg"])
    assert svg["Content-Type"] == "image/svg+xml" and b"<svg" in svg.content
    # when the citizen's app scans it, previews it and pays it
    preview = customer.get(f"{REQUESTS}preview/", payload=request["payload"]).json()
    assert (preview["merchant"]["id"], preview["amount"], preview["is_expired"]) == (till.merchant.pk, 8_000, False)
    paid = customer.post(PAY, {"payment_request": request["payload"]})
    # then
    assert paid.status_code == 201, paid.content
    assert (paid.json()["amount"], paid.json()["reference"]) == (8_000, "order-77")
    assert wallet_balance(customer.wallet) == 2_000
    assert natural(till.merchant.token_account) == 8_000
    detail = till.get(f"{REQUESTS}{request['id']}/").json()
    assert (detail["status"], detail["payment"]) == ("paid", paid.json()["id"])
    # and the payment's audit row names the citizen who paid
    [event] = AuditEvent.objects.filter(action="payment.create")
    assert (event.actor_id, event.target_id) == (customer.user.pk, str(paid.json()["id"]))
    assert_ledger_ok()


def test_a_request_is_paid_once(db):
    till, first, second = merchant_app(), citizen_app(10_000), citizen_app(10_000)
    payload = till.client.post(REQUESTS, till.payment_request(1_000), format="json").json()["payload"]
    assert first.post(PAY, {"payment_request": payload}).status_code == 201
    before = ledger_size()
    again = second.post(PAY, {"payment_request": payload})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "payment_request_used")
    same_wallet = first.post(PAY, {"payment_request": payload})  # a new request (new key) by the payer
    assert same_wallet.json()["error"]["code"] == "payment_request_used"
    assert ledger_size() == before


@pytest.mark.parametrize(
    "changes",
    [{"a": 1}, {"r": "other order"}, {"m": 999}, {"e": 2_000_000_000}, {"s": "00" * 65}, {"id": 10**9}, {"d": 10**6}],
)
def test_a_tampered_request_is_refused_and_writes_nothing(db, changes):
    till, customer = merchant_app(), citizen_app(10_000)
    payload = till.client.post(REQUESTS, till.payment_request(8_000), format="json").json()["payload"]
    before = ledger_size()
    response = customer.post(PAY, {"payment_request": _tamper(payload, **changes)})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "payment_request_invalid")
    assert customer.get(f"{REQUESTS}preview/", payload=_tamper(payload, **changes)).status_code == 400
    assert ledger_size() == before
    assert PaymentRequest.objects.get().status == "open"


@pytest.mark.parametrize("payload", ["", "hello", "bkrw:pr1:!!!", "bkrw:pr1:e30", "bkrw:pc1:e30"])
def test_a_payload_that_is_not_ours_is_refused(db, payload):
    customer = citizen_app(10_000)
    response = customer.post(PAY, {"payment_request": payload})
    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"payment_request_invalid", "invalid_request"}


def test_an_expired_request_is_refused_and_writes_nothing(db, later):
    till, customer = merchant_app(), citizen_app(10_000)
    payload = till.client.post(REQUESTS, till.payment_request(1_000, expires_in=60), format="json").json()["payload"]
    signed_at = later(61)
    before = ledger_size()
    response = customer.post(PAY, {"payment_request": payload}, timestamp=signed_at)
    assert (response.status_code, response.json()["error"]["code"]) == (409, "payment_request_expired")
    assert ledger_size() == before


def test_a_request_signed_by_a_revoked_device_no_longer_pays(db):
    till, customer = merchant_app(), citizen_app(10_000)
    payload = till.client.post(REQUESTS, till.payment_request(1_000), format="json").json()["payload"]
    services_revoke = till.delete(f"/api/v1/devices/{till.device.pk}/")
    assert services_revoke.status_code == 204
    response = customer.post(PAY, {"payment_request": payload})
    assert response.json()["error"]["code"] == "payment_request_invalid"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"signature": "ab" * 65}, "payment_request_invalid"),
        ({"amount": 2_000}, "payment_request_invalid"),  # not what the device signed
        ({"expires_at": 0}, "invalid_request"),
        ({"amount": 1.0}, "invalid_request"),
        ({"nonce": "short"}, "invalid_request"),
        ({"device_key": 10**9}, "payment_request_invalid"),
    ],
)
def test_creating_a_request_needs_a_valid_merchant_signature(db, change, code):
    till = merchant_app()
    response = till.client.post(REQUESTS, {**till.payment_request(1_000), **change}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == code
    assert not PaymentRequest.objects.exists()


def test_sending_the_same_signed_request_twice_creates_one_and_a_reused_nonce_conflicts(db):
    till = merchant_app()
    body = till.payment_request(1_000, nonce="till-0000001")
    first = till.client.post(REQUESTS, body, format="json")
    again = till.client.post(REQUESTS, body, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    other = till.client.post(REQUESTS, till.payment_request(2_000, nonce="till-0000001"), format="json")
    assert (other.status_code, other.json()["error"]["code"]) == (409, "idempotency_conflict")
    assert PaymentRequest.objects.count() == 1


def test_a_refused_payment_leaves_the_request_open(db):
    till, poor, rich = merchant_app(), citizen_app(500), citizen_app(10_000)
    payload = till.client.post(REQUESTS, till.payment_request(1_000), format="json").json()["payload"]
    assert poor.post(PAY, {"payment_request": payload}).json()["error"]["code"] == "insufficient_eligible_balance"
    assert rich.post(PAY, {"payment_request": payload}).status_code == 201


# --- citizen-presented codes -----------------------------------------------------------------------


def test_a_merchant_charges_a_citizen_code_once(db):
    till, customer = merchant_app(), citizen_app(10_000)
    code = customer.payment_code()
    charged = till.post(CHARGE, {"code": code, "amount": 2_500, "reference": "latte"})
    assert charged.status_code == 201, charged.content
    assert (charged.json()["amount"], charged.json()["reference"]) == (2_500, "latte")
    assert wallet_balance(customer.wallet) == 7_500
    # the payment's audit row names the merchant's member who charged it
    [event] = AuditEvent.objects.filter(action="payment.create")
    assert (event.actor_id, event.target_id) == (till.user.pk, str(charged.json()["id"]))
    before = ledger_size()
    again = till.post(CHARGE, {"code": code, "amount": 2_500})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "payment_code_used")
    assert ledger_size() == before
    assert_ledger_ok()


def test_a_charge_retried_with_its_key_returns_the_first_payment(db):
    till, customer = merchant_app(), citizen_app(10_000)
    body = {"code": customer.payment_code(), "amount": 2_500}
    first = till.post(CHARGE, body, key="charge-1", nonce="nonce-charge")
    again = till.post(CHARGE, body, key="charge-1", nonce="nonce-charge")
    assert first.content == again.content
    assert Payment.objects.count() == 1


def test_an_expired_code_is_refused(db, later):
    till, customer = merchant_app(), citizen_app(10_000)
    code = customer.payment_code(expires_in=30)
    signed_at = later(31)
    before = ledger_size()
    response = till.post(CHARGE, {"code": code, "amount": 1_000}, timestamp=signed_at)
    assert (response.status_code, response.json()["error"]["code"]) == (409, "payment_code_expired")
    assert ledger_size() == before


@pytest.mark.parametrize("make", ["long_lived", "other_wallet", "tampered", "garbage"])
def test_an_invalid_code_is_refused(db, make):
    till, customer, other = merchant_app(), citizen_app(10_000), citizen_app(10_000)
    code = {
        "long_lived": lambda: customer.payment_code(expires_in=3_600),
        "other_wallet": lambda: customer.payment_code(wallet_id=other.wallet.pk),  # signed by the wrong device
        "tampered": lambda: customer.payment_code()[:-4] + "AAAA",
        "garbage": lambda: "bkrw:pc1:nope",
    }[make]()
    before = ledger_size()
    response = till.post(CHARGE, {"code": code, "amount": 1_000})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "payment_code_invalid")
    assert ledger_size() == before


def test_a_refused_charge_leaves_the_code_usable(db):
    till, customer = merchant_app(), citizen_app(1_000)
    code = customer.payment_code()
    assert till.post(CHARGE, {"code": code, "amount": 5_000}).json()["error"]["code"] == "insufficient_eligible_balance"
    assert till.post(CHARGE, {"code": code, "amount": 1_000}).status_code == 201


def test_a_frozen_wallet_cannot_be_charged(db):
    till, customer = merchant_app(), citizen_app(10_000)
    services.set_wallet_status(actor=staff("o"), wallet=customer.wallet, status="frozen", reason="x")
    before = ledger_size()
    response = till.post(CHARGE, {"code": customer.payment_code(), "amount": 1_000})
    assert (response.status_code, response.json()["error"]["code"]) == (403, "wallet_frozen")
    assert ledger_size() == before


def test_a_cancelled_request_can_no_longer_be_paid(db):
    # given an open request, cancelled by a clerk at the till
    till, customer = merchant_app(role="clerk"), citizen_app(10_000)
    request = till.client.post(REQUESTS, till.payment_request(3_000), format="json").json()
    cancelled = till.client.post(f"{REQUESTS}{request['id']}/cancel/")
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["status"] == "cancelled"
    assert till.client.post(f"{REQUESTS}{request['id']}/cancel/").json()["status"] == "cancelled"  # again: same
    # when the citizen scans it anyway
    before = ledger_size()
    paid = customer.post(PAY, {"payment_request": request["payload"]})
    # then it is refused and nothing moves
    assert (paid.status_code, paid.json()["error"]["code"]) == (409, "payment_request_cancelled")
    assert ledger_size() == before and wallet_balance(customer.wallet) == 10_000
    assert AuditEvent.objects.filter(action="payment_request.cancel").count() == 1


def test_a_paid_request_cannot_be_cancelled_and_another_merchants_is_not_found(db):
    till, customer, other = merchant_app(), citizen_app(10_000), merchant_app()
    request = till.client.post(REQUESTS, till.payment_request(1_000), format="json").json()
    assert other.client.post(f"{REQUESTS}{request['id']}/cancel/").status_code == 404
    assert customer.post(PAY, {"payment_request": request["payload"]}).status_code == 201
    refused = till.client.post(f"{REQUESTS}{request['id']}/cancel/")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "payment_request_used")
    assert PaymentRequest.objects.get(pk=request["id"]).status == "paid"
