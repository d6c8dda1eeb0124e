"""One user's objects are invisible to another (404, never 403), and device keys."""

import coincurve
import pytest

from bank import identity
from bank.models import AuditEvent, DeviceKey
from tests.factories.api import citizen_app, merchant_app
from tests.voucher.support import ledger_size
from voucher import services
from voucher.models import MerchantMember

DEVICES = "/api/v1/devices/"


@pytest.fixture
def two_of_each(db):
    alice, bob = citizen_app(10_000), citizen_app(10_000)
    shop, other_shop = merchant_app(), merchant_app()
    payment = services.pay(wallet=alice.wallet, merchant=shop.merchant, amount=1_000, idempotency_key="p")
    request = shop.client.post("/api/v1/payment-requests/", shop.payment_request(500), format="json").json()
    return alice, bob, shop, other_shop, payment, request


def test_another_citizens_payment_is_not_found(two_of_each):
    alice, bob, _, _, payment, _ = two_of_each
    assert alice.get(f"/api/v1/wallet/payments/{payment.pk}/").status_code == 200
    response = bob.get(f"/api/v1/wallet/payments/{payment.pk}/")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    assert bob.get("/api/v1/wallet/payments/").json()["count"] == 0


def test_another_merchants_payment_and_requests_are_not_found(two_of_each):
    _, _, shop, other_shop, payment, request = two_of_each
    for path in (
        f"/api/v1/merchant/payments/{payment.pk}/",
        f"/api/v1/payment-requests/{request['id']}/",
        request["qr_png"],
        request["qr_svg"],
    ):
        assert shop.client.get(path).status_code == 200, path
        response = other_shop.client.get(path)
        assert (response.status_code, response["Content-Type"]) == (404, "application/json"), path
        assert response.json()["error"]["code"] == "not_found"
    assert other_shop.get("/api/v1/merchant/payments/").json()["count"] == 0


def test_another_merchant_cannot_refund_a_payment(two_of_each):
    _, _, _, other_shop, payment, _ = two_of_each
    before = ledger_size()
    response = other_shop.post(f"/api/v1/merchant/payments/{payment.pk}/refunds/", {"amount": 1_000})
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    assert ledger_size() == before


def test_another_users_device_is_not_found(two_of_each):
    alice, bob, *_ = two_of_each
    assert bob.get(f"/api/v1/devices/{alice.device.pk}/").status_code == 404
    assert bob.client.delete(f"/api/v1/devices/{alice.device.pk}/").status_code == 404
    assert DeviceKey.objects.get(pk=alice.device.pk).status == "active"


def test_a_clerk_acts_for_the_merchant_of_its_owner(db):
    owner = merchant_app()
    clerk = merchant_app(owner.merchant, role=MerchantMember.Role.CLERK)
    profile = clerk.get("/api/v1/merchant/").json()
    assert (profile["id"], profile["role"]) == (owner.merchant.pk, "clerk")
    # the till's device keys are the merchant's: each member sees them
    assert {d["id"] for d in clerk.get("/api/v1/devices/").json()["results"]} == {owner.device.pk, clerk.device.pk}


def _proof(app, secret: bytes, holder: str = "wallet") -> str:
    public = coincurve.PrivateKey(secret).public_key.format()
    message = identity.device_proof_message(username=app.user.get_username(), holder=holder, public_key=public)
    return identity.sign_digest(secret, identity.payload_digest(message)).hex()


def _enroll(app, secret: bytes, *, holder: str = "wallet", sign: bool = True, **extra):
    """POST /devices/ for a new key, signed by the app's existing device (as a second phone is added)."""
    public = coincurve.PrivateKey(secret).public_key
    body = {"public_key": public.format(compressed=False).hex(), "proof": _proof(app, secret, holder), **extra}
    if holder != "wallet":
        body["holder"] = holder
    return app.post(DEVICES, body, key=None, sign=sign)


def test_a_second_device_key_is_added_from_the_first_listed_and_revoked(db):
    app = citizen_app(1_000)
    secret = bytes.fromhex("7a" * 32)
    response = _enroll(app, secret, label="tablet")
    assert response.status_code == 201, response.content
    device = response.json()
    assert device["did"].startswith("did:key:z") and device["holder"] == "wallet"
    assert device["public_key"] == coincurve.PrivateKey(secret).public_key.format().hex()  # stored compressed
    again = _enroll(app, secret)
    assert again.json()["id"] == device["id"]
    assert app.get(DEVICES).json()["count"] == 2
    assert app.client.delete(f"{DEVICES}{device['id']}/").status_code == 204
    assert app.get(f"{DEVICES}{device['id']}/").json()["status"] == "revoked"
    assert AuditEvent.objects.filter(action="device_key.revoke").exists()


def test_a_stolen_token_alone_cannot_add_a_device_key(db):
    app = citizen_app(1_000)  # has a phone's key already
    thief = bytes.fromhex("5c" * 32)
    response = _enroll(app, thief, sign=False)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "signature_missing")
    signed_by_itself = _enroll(app, thief, sign=True, label="x")
    assert signed_by_itself.status_code == 201  # the app's own phone signed: that is the legitimate path
    assert DeviceKey.objects.filter(party=app.wallet.owner).count() == 2


def test_the_first_device_key_needs_only_the_login_and_its_proof(db):
    app = citizen_app(1_000)
    app.client.delete(f"{DEVICES}{app.device.pk}/")  # the only phone was lost
    secret = bytes.fromhex("4d" * 32)
    public = coincurve.PrivateKey(secret).public_key.format().hex()
    response = app.client.post(DEVICES, {"public_key": public, "proof": _proof(app, secret)}, format="json")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"public_key": "02" + "00" * 32, "proof": "00" * 65}, 400, "invalid_public_key"),  # not on the curve
        ({"public_key": "hello", "proof": "00" * 65}, 400, "invalid_request"),
        ({"public_key": "02" + "11" * 32}, 400, "invalid_request"),  # no proof
        ({"public_key": "02" + "11" * 32, "proof": "00" * 65, "holder": "merchant"}, 403, "permission_denied"),
    ],
)
def test_a_bad_device_key_is_refused(db, body, status, code):
    app = citizen_app(1_000)
    response = app.client.post(DEVICES, body, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


def test_a_proof_made_by_another_key_or_for_another_login_is_refused(db):
    app, other = citizen_app(1_000), citizen_app(1_000)
    app.client.delete(f"{DEVICES}{app.device.pk}/")
    secret, public = bytes.fromhex("3e" * 32), coincurve.PrivateKey(bytes.fromhex("3e" * 32)).public_key.format().hex()
    for proof in (_proof(app, bytes.fromhex("3f" * 32)), _proof(other, secret), _proof(app, secret, "merchant")):
        response = app.client.post(DEVICES, {"public_key": public, "proof": proof}, format="json")
        assert (response.status_code, response.json()["error"]["code"]) == (400, "device_proof_invalid")
    assert not DeviceKey.objects.filter(public_key=public).exists()


def test_a_merchant_login_registers_keys_for_its_merchant(db):
    till = merchant_app()
    response = _enroll(till, bytes.fromhex("6b" * 32), holder="merchant")
    assert response.json()["holder"] == "merchant"
    assert DeviceKey.objects.get(pk=response.json()["id"]).party_id == till.merchant.party_id


def test_a_revoked_device_can_no_longer_sign(db):
    app, shop = citizen_app(10_000), merchant_app()
    app.client.delete(f"/api/v1/devices/{app.device.pk}/")
    before = ledger_size()
    response = app.post("/api/v1/wallet/payments/", {"merchant": shop.merchant.pk, "amount": 1_000})
    assert (response.status_code, response.json()["error"]["code"]) == (401, "device_key_unknown")
    assert ledger_size() == before
