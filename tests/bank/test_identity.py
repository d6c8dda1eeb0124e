"""Device keys and signed requests: coincurve on the hot path, cross-checked with py-ecc."""

import hashlib
import time

import coincurve
import pytest
from py_ecc.secp256k1 import secp256k1 as reference

from bank import errors, identity, services
from bank.models import DeviceKey, StoredResponse, UsedNonce
from tests.factories import PartyFactory
from tests.factories.voucher import UserFactory

SECRET = bytes.fromhex("1f" * 32)
BODY = b'{"amount":1000,"merchant":7}'


def _signed(secret=SECRET, *, body=BODY, nonce="nonce-0001", timestamp=None, path="/api/v1/pay"):
    timestamp = int(time.time()) if timestamp is None else timestamp
    payload = identity.request_payload(method="POST", path=path, body=body, nonce=nonce, timestamp=timestamp)
    return {
        "nonce": nonce,
        "timestamp": timestamp,
        "signature_hex": identity.sign_digest(secret, identity.payload_digest(payload)).hex(),
    }


def _check(device, party, *, body=BODY, path="/api/v1/pay", read=None, **signed):
    return services.check_signature(
        party=party, device_id=device.pk, method="POST", path=path, body=body, device=read, **signed
    )


@pytest.fixture
def citizen_device(db):
    party = PartyFactory()
    public = coincurve.PrivateKey(SECRET).public_key.format(compressed=False)
    return party, services.register_device_key(party=party, public_key=public, label="phone")


def _reference_sign(secret: bytes, digest: bytes) -> bytes:
    """py-ecc's signature in our wire form (r, s, recovery id), normalized to low s."""
    v, r, s = reference.ecdsa_raw_sign(digest, secret)
    recovery_id = v - 27
    if s > identity.HALF_ORDER:
        s, recovery_id = identity.SECP256K1_ORDER - s, recovery_id ^ 1
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([recovery_id])


def _reference_recover(digest: bytes, signature: bytes) -> bytes:
    x, y = reference.ecdsa_raw_recover(
        digest, (signature[64] + 27, int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"))
    )
    return bytes([2 + (y & 1)]) + x.to_bytes(32, "big")


def test_registered_key_is_stored_compressed_with_its_did(citizen_device):
    _, device = citizen_device
    assert device.public_key == coincurve.PrivateKey(SECRET).public_key.format().hex()
    assert device.did.startswith("did:key:zQ3s")  # the did:key prefix of every secp256k1 key


def test_invalid_public_key_is_refused_and_nothing_is_stored(db):
    with pytest.raises(errors.InvalidPublicKey):
        services.register_device_key(party=PartyFactory(), public_key=b"\x02" + b"\xff" * 32)
    assert DeviceKey.objects.count() == 0


def test_a_correctly_signed_request_is_accepted(citizen_device):
    party, device = citizen_device
    assert _check(device, party, **_signed()) == device


@pytest.mark.parametrize(
    "tamper",
    ["body", "path", "nonce", "other key"],
)
def test_a_tampered_request_is_refused(citizen_device, tamper):
    party, device = citizen_device
    signed = _signed(secret=bytes.fromhex("2e" * 32) if tamper == "other key" else SECRET)
    kwargs = {"body": BODY, "path": "/api/v1/pay"}
    if tamper == "body":
        kwargs["body"] = BODY.replace(b"1000", b"9000")
    if tamper == "path":
        kwargs["path"] = "/api/v1/transfer"
    if tamper == "nonce":
        signed["nonce"] = "nonce-0002"
    with pytest.raises(errors.SignatureInvalid):
        _check(device, party, **kwargs, **signed)


def test_high_s_form_of_a_valid_signature_is_refused_as_malleable(citizen_device):
    party, device = citizen_device
    signed = _signed()
    raw = bytes.fromhex(signed["signature_hex"])
    s = int.from_bytes(raw[32:64], "big")
    high_s = raw[:32] + (identity.SECP256K1_ORDER - s).to_bytes(32, "big") + bytes([raw[64] ^ 1])
    # The high-s twin is mathematically valid: it recovers the same key ...
    digest = identity.payload_digest(
        identity.request_payload(
            method="POST", path="/api/v1/pay", body=BODY, nonce=signed["nonce"], timestamp=signed["timestamp"]
        )
    )
    assert _reference_recover(digest, high_s).hex() == device.public_key
    # ... and is still refused.
    with pytest.raises(errors.SignatureMalleable):
        _check(device, party, **{**signed, "signature_hex": high_s.hex()})


def test_stale_timestamp_is_refused(citizen_device, settings):
    party, device = citizen_device
    with pytest.raises(errors.TimestampOutOfWindow):
        _check(device, party, **_signed(timestamp=int(time.time()) - settings.SIGNED_REQUEST_WINDOW_SECONDS - 5))


def test_another_partys_device_or_a_revoked_one_cannot_sign(citizen_device):
    party, device = citizen_device
    with pytest.raises(errors.DeviceKeyUnknown):
        _check(device, PartyFactory(), **_signed())
    services.revoke_device_key(actor=None, device=device, reason="phone lost")
    with pytest.raises(errors.DeviceKeyUnknown):
        _check(device, party, **_signed())


def test_a_nonce_is_consumed_once(citizen_device):
    _, device = citizen_device
    services.consume_nonce(device=device, nonce="nonce-0001")
    with pytest.raises(errors.NonceReplayed):
        services.consume_nonce(device=device, nonce="nonce-0001")
    assert UsedNonce.objects.count() == 1


def test_a_device_read_beforehand_signs_only_for_its_own_party_while_active(citizen_device):
    party, device = citizen_device
    other = services.register_device_key(
        party=PartyFactory(), public_key=coincurve.PrivateKey(bytes.fromhex("2e" * 32)).public_key.format()
    )
    # given the party's own active key, read by the caller: accepted
    assert _check(device, party, read=device, **_signed()) == device
    # another party's key handed in for this party's id is not trusted: the party's key is looked up
    assert _check(device, party, read=other, **_signed(nonce="nonce-0002")) == device
    # a key handed in for another party is refused, as the lookup would refuse it
    with pytest.raises(errors.DeviceKeyUnknown):
        _check(device, PartyFactory(), read=device, **_signed(nonce="nonce-0003"))
    # a revoked key, as read now, signs nothing
    services.revoke_device_key(actor=None, device=device, reason="phone lost")
    with pytest.raises(errors.DeviceKeyUnknown):
        _check(device, party, read=DeviceKey.objects.get(pk=device.pk), **_signed(nonce="nonce-0004"))


def test_a_stored_answer_is_found_without_using_the_nonce_and_a_new_key_uses_it_once(citizen_device):
    _, device = citizen_device
    user = UserFactory()
    # a new key: nothing stored, the nonce is consumed
    assert services.stored_response_or_consume_nonce(user=user, key="k1", device=device, nonce="nonce-0001") is None
    assert UsedNonce.objects.filter(device=device, nonce="nonce-0001").count() == 1
    StoredResponse.objects.create(
        user=user, key="k1", fingerprint="f" * 64, status_code=201, content_type="application/json", body=b"{}"
    )
    # the retry under the key finds the answer, and its (used) nonce is no obstacle
    stored = services.stored_response_or_consume_nonce(user=user, key="k1", device=device, nonce="nonce-0001")
    assert (stored.status_code, bytes(stored.body), stored.fingerprint) == (201, b"{}", "f" * 64)
    # the same signed request under a new key is a replay
    with pytest.raises(errors.NonceReplayed):
        services.stored_response_or_consume_nonce(user=user, key="k2", device=device, nonce="nonce-0001")
    assert UsedNonce.objects.count() == 1


@pytest.mark.parametrize("message", [b"", b"pay 1000 won", "부산 어묵".encode()])
def test_coincurve_and_py_ecc_agree_both_ways(message):
    digest = hashlib.sha256(message).digest()
    public = coincurve.PrivateKey(SECRET).public_key.format()
    by_coincurve = identity.sign_digest(SECRET, digest)
    by_reference = _reference_sign(SECRET, digest)
    assert identity.is_low_s(by_coincurve) and identity.is_low_s(by_reference)
    assert _reference_recover(digest, by_coincurve) == public
    assert identity.recover_signer(digest, by_reference) == public
    tampered = hashlib.sha256(message + b"!").digest()
    assert _reference_recover(tampered, by_coincurve) != public
    assert identity.recover_signer(tampered, by_reference) != public
