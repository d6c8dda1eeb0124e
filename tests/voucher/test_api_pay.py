"""Paying a merchant through the wallet API: every refusal answers with its code and writes nothing."""

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bank.models import StoredResponse
from tests.factories.api import citizen_app, merchant_app
from tests.factories.voucher import grant_lot, merchant, staff
from tests.voucher.support import assert_ledger_ok, ledger_size, natural
from voucher import services
from voucher.models import Payment, WalletLimitRule
from voucher.selectors import wallet_balance

PAY = "/api/v1/wallet/payments/"


def _limits(**changes):
    values = {
        "named_max_balance": 2_000_000,
        "anonymous_max_balance": 500_000,
        "per_payment_limit": 1_000_000,
        "daily_payment_limit": 2_000_000,
        "redeem_min_used_percent": 60,
        "plain_lot_valid_days": 1825,
        **changes,
    }
    WalletLimitRule.objects.create(effective_from=date(2020, 1, 1), **values)


def test_a_citizen_pays_a_merchant_by_id_from_eligible_lots(db):
    # given
    app, shop = citizen_app(10_000), merchant()
    grant_lot(app.wallet, 5_000, valid_days=30)
    # when
    response = app.post(PAY, {"merchant": shop.pk, "amount": 12_000, "reference": "table 4"})
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["amount"], body["reference"], body["merchant"]["id"]) == (12_000, "table 4", shop.pk)
    assert [lot["amount"] for lot in body["lots"]] == [5_000, 7_000]  # the grant expires first
    assert wallet_balance(app.wallet) == 3_000
    assert natural(shop.token_account) == 12_000
    assert_ledger_ok()


def test_the_answer_to_a_payment_is_what_reading_it_back_shows(db):
    app, shop = citizen_app(10_000), merchant()
    grant_lot(app.wallet, 5_000, valid_days=30)
    paid = app.post(PAY, {"merchant": shop.pk, "amount": 12_000, "reference": "table 4"})
    assert paid.status_code == 201
    read = app.get(f"{PAY}{paid.json()['id']}/")
    assert read.status_code == 200
    assert read.json() == paid.json()
    assert len(paid.json()["lots"]) == 2 and paid.json()["refunds"] == []


@pytest.mark.postgres
def test_a_signed_payment_makes_six_statements_besides_the_ledgers_own(db):
    """Pinned: the hot path's round trips (docs/BENCHMARKS.md). The posting service's
    two statements go through bank.prepared, so they are in Django's log too."""
    app, shop = citizen_app(10_000), merchant()
    app.post(PAY, {"merchant": shop.pk, "amount": 1_000})  # the first request prepares the statements
    with CaptureQueriesContext(connection) as queries:
        response = app.post(PAY, {"merchant": shop.pk, "amount": 1_000})
    assert response.status_code == 201
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    # the token with its user, wallet and signing key; the replay check with the nonce;
    # the wallet lock; the payment's reads and account locks; its rows; the stored answer;
    # and the ledger's own two: its account locks with the key's lookup, and its write
    assert len(statements) == 6 + 2, statements


@pytest.mark.parametrize("credentials", ["Token not-a-token", "Token", "Token a b", "deactivated"])
def test_a_payment_with_a_bad_login_is_refused_as_every_endpoint_refuses_it(db, credentials):
    # given a wrong token, a malformed header, or the token of a deactivated login
    app, shop = citizen_app(10_000), merchant()
    if credentials == "deactivated":
        app.user.is_active = False
        app.user.save(update_fields=["is_active"])
    else:
        app.client.credentials(HTTP_AUTHORIZATION=credentials)
    # when paying, and when asking who I am (plain DRF token authentication)
    paid = app.post(PAY, {"merchant": shop.pk, "amount": 1_000})
    me = app.client.get("/api/v1/auth/me/")
    # then both refuse alike, and nothing is paid
    assert paid.status_code == me.status_code == 401
    assert paid.json() == me.json()
    assert paid.json()["error"]["code"] == "authentication_failed"
    assert Payment.objects.count() == 0


def _frozen_wallet(app, shop):
    services.set_wallet_status(actor=staff("officer"), wallet=app.wallet, status="frozen", reason="cashing out")


def _frozen_merchant(app, shop):
    services.set_merchant_status(actor=staff("officer"), merchant=shop, status="frozen", reason="fake shop")


def _per_payment_limit(app, shop):
    _limits(per_payment_limit=999)


def _daily_limit(app, shop):
    _limits(daily_payment_limit=1_500)
    services.pay(wallet=app.wallet, merchant=shop, amount=1_000, idempotency_key="earlier-today")


def _nothing_eligible(app, shop):
    services.pay(wallet=app.wallet, merchant=shop, amount=10_000, idempotency_key="spent-it-all")
    grant_lot(app.wallet, 50_000, eligible_districts=["gijang"])  # not spendable in Haeundae-gu


@pytest.mark.parametrize(
    ("arrange", "status", "code"),
    [
        (_frozen_wallet, 403, "wallet_frozen"),
        (_frozen_merchant, 403, "merchant_frozen"),
        (_per_payment_limit, 409, "over_payment_limit"),
        (_daily_limit, 409, "over_daily_limit"),
        (_nothing_eligible, 409, "insufficient_eligible_balance"),
    ],
)
def test_every_refused_payment_answers_its_code_and_writes_no_ledger_row(db, arrange, status, code):
    # given
    app, shop = citizen_app(10_000), merchant()
    arrange(app, shop)
    before, payments = ledger_size(), Payment.objects.count()
    # when
    response = app.post(PAY, {"merchant": shop.pk, "amount": 1_000})
    # then
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert ledger_size() == before and Payment.objects.count() == payments


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"key": None}, 400, "idempotency_key_required"),
        ({"key": "x" * 101}, 400, "idempotency_key_required"),
        ({"sign": False}, 401, "signature_missing"),
        ({"secret": bytes.fromhex("4d" * 32)}, 401, "signature_invalid"),
        ({"timestamp": 1_000_000_000}, 401, "timestamp_out_of_window"),
        ({"device_id": 999_999}, 401, "device_key_unknown"),
    ],
)
def test_an_unsigned_or_badly_signed_payment_is_refused_and_writes_nothing(db, change, status, code):
    app, shop = citizen_app(10_000), merchant()
    before = ledger_size()
    response = app.post(PAY, {"merchant": shop.pk, "amount": 1_000}, **change)
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert ledger_size() == before
    assert not StoredResponse.objects.exists()  # the client may fix the request and retry with its key


def test_a_payment_signed_by_another_citizens_device_is_refused(db):
    app, other, shop = citizen_app(10_000), citizen_app(10_000), merchant()
    before = ledger_size()
    response = app.post(PAY, {"merchant": shop.pk, "amount": 1_000}, device_id=other.device.pk, secret=other.secret)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "device_key_unknown"
    assert ledger_size() == before


def test_a_high_s_signature_is_refused_as_malleable(db):
    import json
    import time

    from bank import identity
    from bank.identity import SECP256K1_ORDER

    app, shop = citizen_app(10_000), merchant()
    raw = json.dumps({"merchant": shop.pk, "amount": 1_000}).encode()
    now = int(time.time())
    digest = identity.payload_digest(
        identity.request_payload(method="POST", path=PAY, body=raw, nonce="n" * 8, timestamp=now)
    )
    low = identity.sign_digest(app.secret, digest)
    high_s = (SECP256K1_ORDER - int.from_bytes(low[32:64], "big")).to_bytes(32, "big")
    malleated = low[:32] + high_s + bytes([low[64] ^ 1])
    before = ledger_size()
    response = app.client.generic(
        "POST",
        PAY,
        raw,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k1",
        HTTP_X_DEVICE_KEY=str(app.device.pk),
        HTTP_X_NONCE="n" * 8,
        HTTP_X_TIMESTAMP=str(now),
        HTTP_X_SIGNATURE=malleated.hex(),
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "signature_malleable"
    assert ledger_size() == before


def test_a_replayed_signed_payment_under_a_new_key_is_refused(db):
    app, shop = citizen_app(10_000), merchant()
    body = {"merchant": shop.pk, "amount": 1_000}
    assert app.post(PAY, body, key="key-1", nonce="nonce-same").status_code == 201
    before = ledger_size()
    replay = app.post(PAY, body, key="key-2", nonce="nonce-same")
    assert replay.status_code == 409
    assert replay.json()["error"]["code"] == "nonce_replayed"
    assert ledger_size() == before
    assert wallet_balance(app.wallet) == 9_000


def test_an_idempotent_retry_returns_the_same_bytes_and_pays_once(db):
    app, shop = citizen_app(10_000), merchant()
    body = {"merchant": shop.pk, "amount": 1_000}
    first = app.post(PAY, body, key="retry-me", nonce="nonce-first")
    before = ledger_size()
    again = app.post(PAY, body, key="retry-me", nonce="nonce-first")  # the very same signed request, resent
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replay"] == "true"
    assert ledger_size() == before
    assert wallet_balance(app.wallet) == 9_000


def test_a_refusal_is_replayed_too_and_a_changed_body_under_the_key_is_409(db):
    app, shop = citizen_app(1_000), merchant()
    refused = app.post(PAY, {"merchant": shop.pk, "amount": 5_000}, key="k", nonce="nonce-0001")
    assert refused.json()["error"]["code"] == "insufficient_eligible_balance"
    assert app.post(PAY, {"merchant": shop.pk, "amount": 5_000}, key="k", nonce="nonce-0001").content == refused.content
    before = ledger_size()
    changed = app.post(PAY, {"merchant": shop.pk, "amount": 500}, key="k")
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "idempotency_key_reused"
    assert ledger_size() == before


def test_a_long_idempotency_key_still_pays_once(db):
    app, shop = citizen_app(10_000), merchant()
    key = "k" * 100  # the user-scoped service key is hashed to fit the services' 64 characters
    assert app.post(PAY, {"merchant": shop.pk, "amount": 1_000}, key=key).status_code == 201
    payment = Payment.objects.get()
    assert payment.idempotency_key.startswith("api#") and len(payment.idempotency_key) == 64


@pytest.mark.parametrize("amount", [1_000.0, 1.5, "1000", True, None, 0, -1, 10**13, [1_000], {"won": 1_000}])
def test_an_amount_that_is_not_a_positive_json_integer_is_a_400(db, amount):
    app, shop = citizen_app(10_000), merchant()
    before = ledger_size()
    response = app.post(PAY, {"merchant": shop.pk, "amount": amount})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_request"
    assert "amount" in response.json()["error"]["details"]["fields"]
    assert ledger_size() == before


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", "malformed_request"),
        (b'{"merchant": 1, "amount": 1e400}', "invalid_request"),
        (b'{"merchant": 1, "amount": NaN}', "malformed_request"),
        (b"[]", "invalid_request"),
    ],
)
def test_malformed_bodies_are_4xx_never_5xx(db, raw, code):
    app = citizen_app(10_000)
    response = app.post(PAY, None, raw=raw)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_paying_with_both_or_neither_of_merchant_and_request_is_a_400(db):
    app, shop = citizen_app(10_000), merchant()
    assert app.post(PAY, {"amount": 1_000}).json()["error"]["code"] == "invalid_request"
    both = app.post(PAY, {"merchant": shop.pk, "amount": 1_000, "payment_request": "bkrw:pr1:x"})
    assert both.status_code == 400


def test_an_unknown_merchant_is_a_404_and_a_merchant_login_cannot_pay(db):
    app = citizen_app(10_000)
    assert app.post(PAY, {"merchant": 987_654, "amount": 1_000}).status_code == 404
    till = merchant_app()
    response = till.post(PAY, {"merchant": till.merchant.pk, "amount": 1_000})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_paying_needs_a_token(db):
    app, shop = citizen_app(10_000), merchant()
    app.client.credentials()
    response = app.post(PAY, {"merchant": shop.pk, "amount": 1_000})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
