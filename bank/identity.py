"""secp256k1 identity keys: did:key identifiers and signed-request checks.

A money-moving request carries a recoverable ECDSA signature (65 bytes: r, s,
recovery id) over SHA-256 of its canonical payload. We recover the signer's
public key and compare it with the registered device key. coincurve (the
libsecp256k1 binding) does this in ~0.03 ms; py-ecc's ecdsa_raw_recover is the
pure-Python reference (~4 ms) that tests cross-check against. Only low-s
signatures are accepted: (r, n - s) is the same signature in another form,
and accepting both would let anyone mint a second valid copy of a request.
"""

import hashlib
import json
import re

import coincurve

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_ORDER = SECP256K1_ORDER // 2
PAYLOAD_TAG = "BKRW-REQUEST-1"
DEVICE_PROOF_TAG = "BKRW-DEVICE-KEY-1"
SIGNED_PAYLOAD_TAG = "BKRW-PAYLOAD-1"
MAX_SAFE_INTEGER = 2**53 - 1  # what a JavaScript client's numbers hold exactly
SCOPE_PATTERN = re.compile(r"[a-z][a-z0-9_.-]{0,39}")
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_SECP256K1_PUB_MULTICODEC = b"\xe7\x01"


class MalformedKey(ValueError):
    """A public key or signature that is not well formed."""


def compressed_public_key(public_key: bytes) -> bytes:
    """Normalize a 33- or 65-byte SEC1 key to its 33-byte compressed form, refusing points off the curve."""
    try:
        return coincurve.PublicKey(public_key).format(compressed=True)
    except Exception as error:
        raise MalformedKey("not a secp256k1 public key") from error


def did_key(public_key: bytes) -> str:
    """did:key identifier of a compressed secp256k1 key (multicodec 0xe7, base58btc)."""
    data = _SECP256K1_PUB_MULTICODEC + compressed_public_key(public_key)
    number = int.from_bytes(data, "big")
    digits = ""
    while number:
        number, remainder = divmod(number, 58)
        digits = _BASE58[remainder] + digits
    leading_zeros = len(data) - len(data.lstrip(b"\0"))
    return "did:key:z" + "1" * leading_zeros + digits


def request_payload(*, method: str, path: str, body: bytes, nonce: str, timestamp: int) -> bytes:
    """The bytes a client signs: one field per line, the body by its SHA-256."""
    return "\n".join(
        [PAYLOAD_TAG, method.upper(), path, hashlib.sha256(body).hexdigest(), nonce, str(timestamp)]
    ).encode()


def device_proof_message(*, username: str, holder: str, public_key: bytes) -> bytes:
    """What a new device key signs to prove the phone holds its secret: bound to
    the login and holder, so the proof cannot be replayed to enroll the key elsewhere."""
    return "\n".join([DEVICE_PROOF_TAG, username, holder, compressed_public_key(public_key).hex()]).encode()


class NotCanonical(ValueError):
    """A value that has no canonical JSON form here (a float, a non-ASCII key, ...)."""


def canonical_json(value) -> bytes:
    """The one byte form of a JSON value that devices sign (docs/SIGNING.md, section 10):
    object keys ASCII and sorted, no whitespace, UTF-8 with no escapes but the
    ones JSON requires, integers only (within +-(2**53 - 1)), true, false, null.
    That is RFC 8785 (JCS) for the values it allows: floats have no single
    spelling across languages, so a measurement is sent in whole units (0.1 C as 41)."""
    _check_canonical(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _check_canonical(value) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise NotCanonical(f"integer {value} is beyond +-(2**53 - 1)")
        return
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise NotCanonical("text with a lone surrogate has no UTF-8 form") from None
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_canonical(item)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise NotCanonical(f"object key {key!r} is not ASCII text")
            _check_canonical(item)
        return
    raise NotCanonical(f"{type(value).__name__} is not a canonical JSON value (integers, text, true, false, null)")


def signed_payload_message(
    *, scope: str, payload: bytes, nonce: str | None = None, sequence: int | None = None, timestamp: int | None = None
) -> bytes:
    """The bytes a device signs for a payload that is not an HTTP request (a gate
    scan, a sensor batch, a report upload): six lines, the payload by its SHA-256.
    The scope is signed, so a signature made for one use never passes for another."""
    if nonce is not None:
        mode, value = "nonce", nonce
    elif sequence is not None:
        mode, value = "sequence", str(sequence)
    else:
        mode, value = "none", ""
    stamp = "" if timestamp is None else str(timestamp)
    return "\n".join([SIGNED_PAYLOAD_TAG, scope, mode, value, stamp, hashlib.sha256(payload).hexdigest()]).encode()


def payload_digest(payload: bytes) -> bytes:
    return hashlib.sha256(payload).digest()


def is_low_s(signature: bytes) -> bool:
    return len(signature) == 65 and 0 < int.from_bytes(signature[32:64], "big") <= HALF_ORDER


def recover_signer(digest: bytes, signature: bytes) -> bytes:
    """The compressed public key that made `signature` over `digest`."""
    if len(signature) != 65 or signature[64] > 3:
        raise MalformedKey("a signature is 65 bytes: r, s and a recovery id 0-3")
    try:
        return coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None).format(compressed=True)
    except Exception as error:
        raise MalformedKey("the signature does not recover to a key") from error


def sign_digest(secret: bytes, digest: bytes) -> bytes:
    """Sign as a client would (low-s, recoverable). For the demo and tests; the bank never holds citizens' keys."""
    return coincurve.PrivateKey(secret).sign_recoverable(digest, hasher=None)
