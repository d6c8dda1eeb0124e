"""Idempotency-Key replay, signed requests and the error shape, through HTTP against the real ledger."""

import json
import threading
import time

import coincurve
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.test import APIClient

from bank import identity, services
from bank.models import JournalEntry, Posting, StoredResponse, UsedNonce
from tests.factories import AccountFactory, PartyFactory, funded_account
from tests.factories.api import citizen_app, merchant_app
from tests.voucher.support import ledger_size
from voucher import services as voucher_services

PATH = "/api/test/transfer/"
SECRET = bytes.fromhex("3c" * 32)


@pytest.fixture(autouse=True)
def transfer_route(settings):
    settings.ROOT_URLCONF = "tests.api.transfer_view"


@pytest.fixture
def citizen(db):
    user = get_user_model().objects.create_user(username="minji", password="unused-password-1")
    party = PartyFactory(external_ref=f"user:{user.pk}")
    device = services.register_device_key(party=party, public_key=coincurve.PrivateKey(SECRET).public_key.format())
    client = APIClient()
    client.force_authenticate(user)
    return client, device, funded_account(10_000, owner=party), AccountFactory()


def _post(client, device, body: dict, *, key="key-1", nonce="nonce-00001", secret=SECRET, timestamp=None):
    raw = json.dumps(body).encode()
    timestamp = int(time.time()) if timestamp is None else timestamp
    payload = identity.request_payload(method="POST", path=PATH, body=raw, nonce=nonce, timestamp=timestamp)
    headers = {
        "HTTP_IDEMPOTENCY_KEY": key,
        "HTTP_X_DEVICE_KEY": str(device.pk),
        "HTTP_X_NONCE": nonce,
        "HTTP_X_TIMESTAMP": str(timestamp),
        "HTTP_X_SIGNATURE": identity.sign_digest(secret, identity.payload_digest(payload)).hex(),
    }
    return client.generic(
        "POST", PATH, raw, content_type="application/json", **{k: v for k, v in headers.items() if v is not None}
    )


def _rows():
    return JournalEntry.objects.count(), Posting.objects.count()


def test_a_retry_with_the_same_key_returns_the_first_response_byte_for_byte(citizen):
    client, device, payer, payee = citizen
    body = {"from_account": payer.pk, "to_account": payee.pk, "amount": 1_000}
    first = _post(client, device, body)
    rows = _rows()
    again = _post(client, device, body)  # same key, same signed bytes (same nonce)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replay"] == "true"
    assert _rows() == rows
    payer.refresh_from_db()
    assert payer.balance == 9_000


def test_the_same_key_with_another_body_is_refused_with_409(citizen):
    client, device, payer, payee = citizen
    _post(client, device, {"from_account": payer.pk, "to_account": payee.pk, "amount": 1_000})
    rows = _rows()
    other = _post(
        client, device, {"from_account": payer.pk, "to_account": payee.pk, "amount": 2_000}, nonce="nonce-00002"
    )
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert _rows() == rows


def test_a_replayed_signed_request_under_a_new_key_is_refused(citizen):
    client, device, payer, payee = citizen
    body = {"from_account": payer.pk, "to_account": payee.pk, "amount": 1_000}
    _post(client, device, body, key="key-1", nonce="nonce-same")
    rows = _rows()
    replay = _post(client, device, body, key="key-2", nonce="nonce-same")
    assert replay.status_code == 409
    assert replay.json()["error"]["code"] == "nonce_replayed"
    assert _rows() == rows


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"key": ""}, 400, "idempotency_key_required"),
        ({"secret": bytes.fromhex("4d" * 32)}, 401, "signature_invalid"),
        ({"timestamp": 1_000_000_000}, 401, "timestamp_out_of_window"),
    ],
)
def test_refused_requests_write_nothing(citizen, change, status, code):
    client, device, payer, payee = citizen
    rows = _rows()
    response = _post(client, device, {"from_account": payer.pk, "to_account": payee.pk, "amount": 1_000}, **change)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert _rows() == rows
    assert StoredResponse.objects.count() == 0


def test_a_ledger_refusal_is_an_error_body_and_is_replayed_on_retry(citizen):
    client, device, payer, payee = citizen
    body = {"from_account": payer.pk, "to_account": payee.pk, "amount": 50_000}
    first = _post(client, device, body)
    assert first.status_code == 409
    assert first.json() == {
        "error": {
            "code": "insufficient_funds",
            "message": "The available balance is too low.",
            "details": {"account": payer.pk, "available": 10_000, "requested": 50_000},
        }
    }
    assert _post(client, device, body).content == first.content


def test_invalid_fields_get_the_error_shape_with_field_details(citizen):
    client, device, payer, _ = citizen
    response = _post(client, device, {"from_account": payer.pk, "amount": "lots"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert set(error["details"]["fields"]) == {"to_account", "amount"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_key_move_money_once(citizen):
    client, device, payer, payee = citizen
    body = {"from_account": payer.pk, "to_account": payee.pk, "amount": 1_000}
    barrier = threading.Barrier(6)
    answers = []

    def retry(index):
        try:
            barrier.wait()
            answers.append(_post(client, device, body, nonce=f"nonce-race-{index}"))
        finally:
            connection.close()

    threads = [threading.Thread(target=retry, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    payer.refresh_from_db()
    assert payer.balance == 9_000
    assert JournalEntry.objects.filter(kind="transfer").count() == 1
    # Nonces differ, so the bodies' signatures differ but the request (method, path, body) is the same.
    assert {a.status_code for a in answers} == {201}
    assert len({a.content for a in answers}) == 1


# --- an oversized X-Timestamp (issue 13) ---------------------------------------------------------


def _real_signed_post(kind: str):
    """A signed money-moving POST of the wallet API of `kind`: its app and a call taking the timestamp."""
    if kind == "top-up":
        app = citizen_app(0, extra_krw=50_000)
        return lambda **signed: app.post("/api/v1/wallet/top-ups/", {"amount": 1_000}, **signed)
    if kind == "transfer":
        app, receiver = citizen_app(10_000), citizen_app(0)
        return lambda **signed: app.post(
            "/api/v1/wallet/transfers/", {"to_wallet": receiver.wallet.pk, "amount": 1_000}, **signed
        )
    customer, till = citizen_app(10_000), merchant_app()
    payment = voucher_services.pay(wallet=customer.wallet, merchant=till.merchant, amount=4_000, idempotency_key="p")
    return lambda **signed: till.post(f"/api/v1/merchant/payments/{payment.pk}/refunds/", {"amount": 1_000}, **signed)


@pytest.mark.parametrize("kind", ["top-up", "transfer", "refund"])
@pytest.mark.parametrize(
    "timestamp",
    ["9" * 400, "1" * 13, "-" + "9" * 12, "１７００００００００"],
    ids=["400-digits", "13-digits", "negative", "full-width"],
)
def test_an_oversized_timestamp_is_out_of_window_and_writes_nothing(settings, db, kind, timestamp):
    settings.ROOT_URLCONF = "config.urls"
    post = _real_signed_post(kind)
    before = ledger_size(), UsedNonce.objects.count(), StoredResponse.objects.count()
    response = post(timestamp=timestamp)
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == "timestamp_out_of_window"
    assert (ledger_size(), UsedNonce.objects.count(), StoredResponse.objects.count()) == before
    assert post().status_code == 201  # the same request with a current timestamp goes through
