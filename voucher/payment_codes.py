"""The two QR payloads of a payment, and the exact bytes their device keys sign.

- A merchant-presented payment request: the merchant's device signs
  (merchant, amount, reference, expiry, nonce); the server stores it and the
  payload adds the request's id, so a citizen's app can show it, check it
  against the merchant's key offline, and pay it once.
- A citizen-presented payment code: the citizen's device signs (wallet,
  expiry, nonce) offline; the merchant scans it and charges an amount. It is
  short-lived and used once.

The signed message is a compact JSON array (unambiguous whatever the reference
holds); the device signs SHA-256 of it with a low-s recoverable secp256k1
signature, as for signed requests (bank.identity). A payload is a prefix and
base64url (unpadded) JSON. Pure functions: no database, no clock.
"""

import base64
import binascii
import hashlib
import json

REQUEST_TAG = "BKRW-PAYMENT-REQUEST-1"
CODE_TAG = "BKRW-PAYMENT-CODE-1"
REQUEST_PREFIX = "bkrw:pr1:"
CODE_PREFIX = "bkrw:pc1:"
MAX_PAYLOAD_LENGTH = 1000


class MalformedPayload(ValueError):
    """Not a payload of ours: bad prefix, encoding or fields."""


def _canonical(values: list) -> bytes:
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()


def request_message(*, merchant_id: int, amount: int, reference: str, expires_at: int, nonce: str) -> bytes:
    """What a merchant's device signs for a payment request (expires_at: Unix seconds)."""
    return _canonical([REQUEST_TAG, merchant_id, amount, reference, expires_at, nonce])


def code_message(*, wallet_id: int, expires_at: int, nonce: str) -> bytes:
    """What a citizen's device signs for a one-time payment code (expires_at: Unix seconds)."""
    return _canonical([CODE_TAG, wallet_id, expires_at, nonce])


def message_digest(message: bytes) -> bytes:
    return hashlib.sha256(message).digest()


def _encode(prefix: str, fields: dict) -> str:
    raw = json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()
    return prefix + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(prefix: str, payload, shape: dict) -> dict:
    if not isinstance(payload, str) or not payload.startswith(prefix) or len(payload) > MAX_PAYLOAD_LENGTH:
        raise MalformedPayload("unknown payload")
    body = payload[len(prefix) :]
    try:
        fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise MalformedPayload("not base64url JSON")
    if not isinstance(fields, dict) or set(fields) != set(shape):
        raise MalformedPayload("wrong fields")
    for name, kind in shape.items():
        if type(fields[name]) is not kind:  # bool is not an int here, nor a float
            raise MalformedPayload(f"{name} must be {kind.__name__}")
    return fields


_REQUEST_SHAPE = {"id": int, "m": int, "a": int, "r": str, "e": int, "n": str, "d": int, "s": str}
_CODE_SHAPE = {"w": int, "e": int, "n": str, "d": int, "s": str}


def encode_request(
    *,
    request_id: int,
    merchant_id: int,
    amount: int,
    reference: str,
    expires_at: int,
    nonce: str,
    device_id: int,
    signature_hex: str,
) -> str:
    return _encode(
        REQUEST_PREFIX,
        {
            "id": request_id,
            "m": merchant_id,
            "a": amount,
            "r": reference,
            "e": expires_at,
            "n": nonce,
            "d": device_id,
            "s": signature_hex,
        },
    )


def decode_request(payload) -> dict:
    """The fields of a payment-request payload: id, m (merchant), a (amount), r (reference),
    e (expiry, Unix seconds), n (nonce), d (device key id), s (signature hex)."""
    return _decode(REQUEST_PREFIX, payload, _REQUEST_SHAPE)


def encode_code(*, wallet_id: int, expires_at: int, nonce: str, device_id: int, signature_hex: str) -> str:
    return _encode(CODE_PREFIX, {"w": wallet_id, "e": expires_at, "n": nonce, "d": device_id, "s": signature_hex})


def decode_code(payload) -> dict:
    """The fields of a payment-code payload: w (wallet), e (expiry), n (nonce), d (device key id), s (signature)."""
    return _decode(CODE_PREFIX, payload, _CODE_SHAPE)
