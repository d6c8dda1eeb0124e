"""Payment requests made in the merchant portal.

A payment request must be signed by a device key of the merchant. In the
portal the bank's server is that device: its secp256k1 key is derived from
settings.PORTAL_SIGNING_SECRET and the merchant's id (HMAC-SHA256), so no
private key is ever stored, and it is registered as one of the merchant's
device keys labelled "merchant portal". Revoking that key (staff, a lost
secret) stops the portal from making requests for the merchant; a merchant's
own app keeps its own keys.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

import coincurve
from django.conf import settings
from django.utils import timezone

from bank import identity
from bank.services import register_device_key
from voucher import errors, payment_codes
from voucher.models import MerchantMember, PaymentRequest
from voucher.services.common import check_amount
from voucher.services.qr_payments import MAX_REQUEST_SECONDS, check_reference, create_payment_request

PORTAL_DEVICE_LABEL = "merchant portal"


def _portal_secret(merchant_id: int) -> bytes:
    message = f"bkrw-portal-device:{merchant_id}".encode()
    return hmac.new(settings.PORTAL_SIGNING_SECRET.encode(), message, hashlib.sha256).digest()


def create_portal_payment_request(
    *, member: MerchantMember, amount: int, reference: str, valid_minutes: int | None = None
) -> PaymentRequest:
    """A merchant-presented payment request for `amount`, made by an owner or clerk
    in the portal and signed by the portal's device key of their merchant."""
    check_amount(amount)
    check_reference(reference)
    minutes = settings.PORTAL_PAYMENT_REQUEST_MINUTES if valid_minutes is None else valid_minutes
    if type(minutes) is not int or not 0 < minutes * 60 <= MAX_REQUEST_SECONDS:
        raise errors.InvalidRequest("valid_minutes must be 1 to 1440.", field="valid_minutes")
    merchant = member.merchant
    secret = _portal_secret(merchant.pk)
    public_key = coincurve.PrivateKey(secret).public_key.format(compressed=True)
    device = register_device_key(party=merchant.party, public_key=public_key, label=PORTAL_DEVICE_LABEL)
    expires_at = int((timezone.now() + timedelta(minutes=minutes)).timestamp())
    nonce = "portal-" + secrets.token_hex(12)
    message = payment_codes.request_message(
        merchant_id=merchant.pk, amount=amount, reference=reference, expires_at=expires_at, nonce=nonce
    )
    signature = identity.sign_digest(secret, payment_codes.message_digest(message))
    request, _ = create_payment_request(
        merchant=merchant,
        device_id=device.pk,
        amount=amount,
        reference=reference,
        expires_at=expires_at,
        nonce=nonce,
        signature_hex=signature.hex(),
        created_by=member.user,
    )
    return request
