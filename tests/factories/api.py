"""Clients of the wallet API for tests: a citizen's or a merchant's login with an
API token and a registered device key, and the signing a phone app does."""

import itertools
import json
import time
import uuid
from dataclasses import dataclass

import coincurve
from rest_framework.test import APIClient

from bank import identity
from bank import services as bank_services
from bank.models import DeviceKey
from tests.factories.voucher import UserFactory, citizen, merchant, staff, wallet_with_tokens
from voucher import payment_codes, services
from voucher.models import Merchant, MerchantMember, Wallet

_serial = itertools.count(1)


@dataclass
class AppUser:
    """A logged-in app: its HTTP client, its device key and that key's secret."""

    client: APIClient
    user: object
    device: DeviceKey
    secret: bytes
    wallet: Wallet | None = None
    merchant: Merchant | None = None

    @property
    def token_key(self) -> str:
        """The raw API token this app logs in with."""
        return self.client._credentials["HTTP_AUTHORIZATION"].split()[1]

    def get(self, path: str, **params):
        return self.client.get(path, params)

    def post(
        self,
        path: str,
        body,
        *,
        key: str | None = "auto",
        nonce: str | None = None,
        secret: bytes | None = None,
        timestamp: int | None = None,
        device_id=None,
        raw: bytes | None = None,
        sign: bool = True,
    ):
        """A signed POST with an Idempotency-Key (pass key=None to leave it out)."""
        data = raw if raw is not None else json.dumps(body).encode()
        headers = {}
        if key == "auto":
            key = f"key-{uuid.uuid4().hex}"
        if key is not None:
            headers["HTTP_IDEMPOTENCY_KEY"] = key
        if sign:
            headers.update(self.signature_headers("POST", path, data, nonce, secret, timestamp, device_id))
        return self.client.generic("POST", path, data, content_type="application/json", **headers)

    def delete(self, path: str, *, sign: bool = True, **signing):
        """A DELETE signed over the empty body (device revocation)."""
        headers = self.signature_headers("DELETE", path, b"", **signing) if sign else {}
        return self.client.generic("DELETE", path, b"", **headers)

    def signature_headers(
        self, method: str, path: str, data: bytes, nonce=None, secret=None, timestamp=None, device_id=None
    ) -> dict:
        nonce = nonce or f"nonce-{uuid.uuid4().hex}"
        timestamp = int(time.time()) if timestamp is None else timestamp
        payload = identity.request_payload(method=method, path=path, body=data, nonce=nonce, timestamp=timestamp)
        signature = identity.sign_digest(secret or self.secret, identity.payload_digest(payload))
        return {
            "HTTP_X_DEVICE_KEY": str(device_id or self.device.pk),
            "HTTP_X_NONCE": nonce,
            "HTTP_X_TIMESTAMP": str(timestamp),
            "HTTP_X_SIGNATURE": signature.hex(),
        }

    def payment_request(self, amount: int, *, reference: str = "", expires_in: int = 300, nonce: str | None = None):
        """The body of POST /payment-requests/, signed by this merchant's device."""
        expires_at = int(time.time()) + expires_in
        nonce = nonce or f"pr-{uuid.uuid4().hex[:16]}"
        message = payment_codes.request_message(
            merchant_id=self.merchant.pk, amount=amount, reference=reference, expires_at=expires_at, nonce=nonce
        )
        signature = identity.sign_digest(self.secret, payment_codes.message_digest(message))
        return {
            "amount": amount,
            "reference": reference,
            "expires_at": expires_at,
            "nonce": nonce,
            "device_key": self.device.pk,
            "signature": signature.hex(),
        }

    def payment_code(self, *, expires_in: int = 60, nonce: str | None = None, wallet_id: int | None = None) -> str:
        """A one-time payment code, as this citizen's app shows it."""
        expires_at = int(time.time()) + expires_in
        nonce = nonce or f"pc-{uuid.uuid4().hex[:16]}"
        wallet_id = wallet_id or self.wallet.pk
        message = payment_codes.code_message(wallet_id=wallet_id, expires_at=expires_at, nonce=nonce)
        signature = identity.sign_digest(self.secret, payment_codes.message_digest(message)).hex()
        return payment_codes.encode_code(
            wallet_id=wallet_id, expires_at=expires_at, nonce=nonce, device_id=self.device.pk, signature_hex=signature
        )


def api_client(user) -> APIClient:
    """An API client logged in with a new token of `user` (issued as POST /auth/token/ does)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {bank_services.issue_api_token(user=user).key}")
    return client


def _secret() -> bytes:
    return (0x5EC0 + next(_serial)).to_bytes(32, "big")


def citizen_app(tokens: int = 10_000, *, extra_krw: int = 100_000, kyc_tier: str = "named") -> AppUser:
    """A citizen with a login, a wallet holding `tokens` paid-in BKRW, KRW in the bank and a device key."""
    user = UserFactory(username=f"citizen-{next(_serial)}")
    if tokens:
        wallet = wallet_with_tokens(tokens, kyc_tier=kyc_tier, extra_krw=extra_krw)
    else:
        wallet = citizen(krw=extra_krw, kyc_tier=kyc_tier)
    wallet = services.open_wallet(owner=wallet.owner, user=user)
    secret = _secret()
    device = bank_services.register_device_key(
        party=wallet.owner, public_key=coincurve.PrivateKey(secret).public_key.format(), label="phone"
    )
    return AppUser(client=api_client(user), user=user, device=device, secret=secret, wallet=wallet)


def merchant_app(shop: Merchant | None = None, *, role: str = MerchantMember.Role.OWNER, **merchant_fields) -> AppUser:
    """A merchant's owner (or clerk) login with a device key of the merchant."""
    shop = shop or merchant(**merchant_fields)
    user = UserFactory(username=f"merchant-{next(_serial)}")
    services.add_merchant_member(actor=staff("onboarding-officer"), merchant=shop, user=user, role=role)
    secret = _secret()
    device = bank_services.register_device_key(
        party=shop.party, public_key=coincurve.PrivateKey(secret).public_key.format(), label="till"
    )
    return AppUser(client=api_client(user), user=user, device=device, secret=secret, merchant=shop)


def device_proof(app, secret: bytes, holder: str = "wallet") -> str:
    """The new key's proof of possession (identity.device_proof_message) for this login and holder."""
    public = coincurve.PrivateKey(secret).public_key.format()
    message = identity.device_proof_message(username=app.user.get_username(), holder=holder, public_key=public)
    return identity.sign_digest(secret, identity.payload_digest(message)).hex()


def enroll_device(app, secret: bytes, *, holder: str = "wallet", sign: bool = True, **extra):
    """POST /devices/ for a new key, signed by the app's existing device (as a second phone is added);
    sign=False with enrollment_code=... is the recovery path of a holder with no active key."""
    public = coincurve.PrivateKey(secret).public_key
    body = {"public_key": public.format(compressed=False).hex(), "proof": device_proof(app, secret, holder), **extra}
    if holder != "wallet":
        body["holder"] = holder
    return app.post("/api/v1/devices/", body, key=None, sign=sign)
