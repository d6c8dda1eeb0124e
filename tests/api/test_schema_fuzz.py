"""schemathesis against our own /api/schema/: no 5xx, every response as the schema says.

Bounded examples per operation so the suite stays fast. Each app's endpoints
join this run by being in the schema; the fixtures give them data to find. It
runs twice, as a citizen (a wallet with tokens and a device key) and as a
merchant's owner (with its device key). Money-moving POSTs are signed with the
login's real device key over the generated body, and about half of the ids in
paths are swapped for ids of that login's own objects, so the fuzzing reaches
the services and not only the signature check and the 404s.
"""

import json
import time
import uuid
from dataclasses import dataclass

import coincurve
import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from bank import identity
from bank import services as bank_services
from config.wsgi import application
from tests.factories import AccountFactory, funded_account
from tests.factories.api import AppUser, citizen_app, merchant_app
from tests.factories.voucher import grant_lot
from voucher import services
from voucher.models import Payment, PaymentRequest


@pytest.fixture
def api_schema(db, validators):
    payer = funded_account(50_000)
    bank_services.post_entry(lines=[(payer, -1_000), (AccountFactory(), 1_000)], kind="transfer")
    bank_services.seal_pending_entries()
    # Calls go straight to the WSGI app; like Django's test client, keep the test's
    # transaction open across them instead of closing the connection after each request.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/schema/", application)
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@dataclass
class World:
    citizen: AppUser
    merchant: AppUser
    ids: dict[str, dict[str, list[int]]]  # role -> path parameter or body field -> ids that role may use


@pytest.fixture
def world(db) -> World:
    citizen, friend, till = citizen_app(500_000, extra_krw=1_000_000), citizen_app(0), merchant_app()
    grant_lot(citizen.wallet, 30_000)
    payments = [
        services.pay(wallet=citizen.wallet, merchant=till.merchant, amount=amount, idempotency_key=f"fuzz-{amount}")
        for amount in (1_000, 2_500, 4_000)
    ]
    # Through the service, not the test client: a test client request reconnects close_old_connections.
    signed = till.payment_request(3_000)
    services.create_payment_request(
        merchant=till.merchant,
        device_id=signed["device_key"],
        amount=signed["amount"],
        reference=signed["reference"],
        expires_at=signed["expires_at"],
        nonce=signed["nonce"],
        signature_hex=signed["signature"],
    )
    # Paths with a device id get a spare key, so DELETE never revokes the key that signs the fuzzing.
    spare = {
        role: bank_services.register_device_key(
            party=party, public_key=coincurve.PrivateKey(bytes([index]) * 32).public_key.format(), label="spare"
        )
        for index, (role, party) in enumerate((("citizen", citizen.wallet.owner), ("merchant", till.merchant.party)), 1)
    }
    cache.clear()  # throttles start at zero
    requests = list(PaymentRequest.objects.values_list("pk", flat=True))
    shared = {"merchant_id": [till.merchant.pk], "merchant": [till.merchant.pk], "height": [1]}
    ids = {
        "citizen": {
            "payment_id": [p.pk for p in payments],
            "to_wallet": [friend.wallet.pk],
            "device_id": [spare["citizen"].pk],
            **shared,
        },
        "merchant": {
            "payment_id": list(Payment.objects.filter(merchant=till.merchant).values_list("pk", flat=True)),
            "request_id": requests,
            "device_id": [spare["merchant"].pk],
            **shared,
        },
    }
    return World(citizen=citizen, merchant=till, ids=ids)


def _call(case, actor: AppUser, ids: dict[str, list[int]]):
    for params in (case.path_parameters, case.body):
        if not isinstance(params, dict):
            continue
        for name, value in params.items():
            if name in ids and type(value) is int and value % 2 == 0:
                params[name] = ids[name][value % len(ids[name])]
    cache.delete(f"throttle_user_{actor.user.pk}")  # hundreds of calls a minute: fuzz the API, not the throttle
    headers = {"Authorization": f"Token {actor.token_key}"}
    extra = {}
    # Sign only well-formed requests that carry every signing header: a negative case (a header
    # left out or of the wrong type) must reach the server as schemathesis made it.
    signed = {"Idempotency-Key", "X-Device-Key", "X-Nonce", "X-Timestamp", "X-Signature"}
    if case.meta.generation.mode.is_positive and signed <= set(case.headers or {}):
        try:
            raw = json.dumps(case.body).encode()
        except (TypeError, ValueError):
            raw = None
        if raw is not None:
            nonce, now = uuid.uuid4().hex, int(time.time())
            payload = identity.request_payload(
                method="POST", path=case.formatted_path, body=raw, nonce=nonce, timestamp=now
            )
            headers.update(
                {
                    "Idempotency-Key": uuid.uuid4().hex,
                    "X-Device-Key": str(actor.device.pk),
                    "X-Nonce": nonce,
                    "X-Timestamp": str(now),
                    "X-Signature": identity.sign_digest(actor.secret, identity.payload_digest(payload)).hex(),
                }
            )
            extra["data"] = raw
    # Not positive_data_acceptance: a schema-valid body may still be refused with 400 by a rule
    # the schema cannot state (a forged QR payload, paying oneself, wrong login), by design.
    response = case.call(headers=headers, **extra)
    # A 414 (query_too_long, in the schema) refuses a negative case too; that check does not count it.
    excluded = [positive_data_acceptance] + ([negative_data_rejection] if response.status_code == 414 else [])
    case.validate_response(response, excluded_checks=excluded, headers=headers)
    if case.meta.generation.mode.is_positive and response.status_code == 400:
        # But never for a field's format: the schema states each (pattern, format, lengths).
        fields = response.json()["error"]["details"].get("fields", {})
        refused = {str(m) for name, errors in fields.items() if name != "non_field_errors" for m in errors}
        assert refused <= CROSS_FIELD_RULES, f"a schema-valid request refused for its format: {fields}"
    return response


# Field errors that depend on another field (a schema without oneOf cannot say them).
CROSS_FIELD_RULES = {"Required when paying a merchant by id."}


schema = schemathesis.pytest.from_fixture("api_schema")

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


@schema.parametrize()
@FUZZ
def test_api_conforms_to_its_schema_and_never_answers_5xx_for_a_citizen(case, world):
    _call(case, world.citizen, world.ids["citizen"])


@schema.parametrize()
@FUZZ
def test_api_conforms_to_its_schema_and_never_answers_5xx_for_a_merchant(case, world):
    _call(case, world.merchant, world.ids["merchant"])
