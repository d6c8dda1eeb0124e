"""The test vectors of docs/SIGNING.md, checked against the code, against py-ecc
(an independent pure-Python secp256k1) and against the document's own text, so
the recipe the mobile team follows cannot drift from what the server checks."""

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import coincurve
import pytest
from django.utils import timezone
from py_ecc.secp256k1 import secp256k1 as reference

from bank import errors, identity, services
from tests.factories import PartyFactory

DOC = (Path(__file__).resolve().parents[2] / "docs" / "SIGNING.md").read_text()
SECRET = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
PUBLIC = "024e3b81af9c2234cad09d679ce6035ed1392347ce64ce405f5dcd36228a25de6e"
DID = "did:key:zQ3shSgBBghWP9W7bv7fJ4vDpw7QXGvHcCgWCaJ1ivYkPxp8d"

# (method, path, body, nonce, timestamp, expected payload, its SHA-256, signature)
REQUESTS = [
    (
        "POST",
        "/api/v1/wallet/payments/",
        b'{"merchant":12,"amount":5000}',
        "3f1c9a7e5b2d4c6a",
        1767225600,
        b"BKRW-REQUEST-1\nPOST\n/api/v1/wallet/payments/\n"
        b"db24c094fb2e79b2daf1c238716893b713e90d6de903950e50de609455e56070\n3f1c9a7e5b2d4c6a\n1767225600",
        "54788c7ffe6c04f1bc29539f6849ffaef984fcd32a4a38d84ed8942ece246511",
        "5f14589596a24de905545be612073b52575e28199b682f0974dd9fb18750f28a"
        "1ae4e1efd233ad18ac01411a2461937da2cb7a75e84f8e1f23b455de34f4833300",
    ),
    (
        "POST",
        "/api/v1/merchant/payments/7/refunds/?till=2",
        b'{"amount":1000}',
        "refund-0001",
        1767225660,
        b"BKRW-REQUEST-1\nPOST\n/api/v1/merchant/payments/7/refunds/?till=2\n"
        b"612612d208fb618eb2b007d2a7f8d7a1cfb511532389298f1cc33322c3094bcc\nrefund-0001\n1767225660",
        "f3dfd11bda38c4e9eb55b548ee537718c0a2af3dbcb8ceac3f56ea907d1a3591",
        "522ade1df227b1efdb7b35d3345a65944362cd2b01f10028527288794c76257f"
        "7b6701b02079991ca142f96c3d0efe1183eb64479ff852c37bbcb8c70ce919f300",
    ),
    (
        "DELETE",
        "/api/v1/devices/42/",
        b"",
        "revoke-0001",
        1767225720,
        b"BKRW-REQUEST-1\nDELETE\n/api/v1/devices/42/\n"
        b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nrevoke-0001\n1767225720",
        "716f2b3d5599522199a4da36e72f174bd14598c3aaca4e5ca42883f8f89f8c7c",
        "bc9b3adf332ec22e061fc08d4769bb5cfcc9b5bbea824ba05b8de118f47a7373"
        "41aad43a0d6dd7954e438b3ccd4e4b16574d02e44bba8090e45d7a46439f23e601",
    ),
]
PROOF_MESSAGE = b"BKRW-DEVICE-KEY-1\ncitizen01\nwallet\n" + PUBLIC.encode()
PROOF_DIGEST = "4ec00095a9ac8e025d53484818e1520940e2ec1ff67e5fcd050e8348f0e7aed7"
PROOF = (
    "c5518d2c88c290ad376829d209dfac30b6958f0906a21c2e707bc32a0c5f55da"
    "4a011ba669952ba2309e60675106ff39e173d30c194233e279539282a8af307c00"
)


def _py_ecc_sign(digest: bytes) -> str:
    """py-ecc's RFC 6979 signature in the wire form: low s, recovery id 0-3 (not 27/28)."""
    v, r, s = reference.ecdsa_raw_sign(digest, SECRET)
    recovery_id = v - 27
    if s > identity.HALF_ORDER:
        s, recovery_id = identity.SECP256K1_ORDER - s, recovery_id ^ 1
    return (r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([recovery_id])).hex()


def _in_doc(payload: bytes) -> str:
    return payload.decode().replace("\n", "\\n")


def test_the_vector_key_is_the_documented_one():
    public = coincurve.PrivateKey(SECRET).public_key.format()
    assert public.hex() == PUBLIC and identity.did_key(public) == DID
    assert all(value in DOC for value in (SECRET.hex(), PUBLIC, DID))


@pytest.mark.parametrize(("method", "path", "body", "nonce", "timestamp", "payload", "digest", "signature"), REQUESTS)
def test_each_request_vector_matches_the_code_py_ecc_and_the_doc(
    method, path, body, nonce, timestamp, payload, digest, signature
):
    made = identity.request_payload(method=method, path=path, body=body, nonce=nonce, timestamp=timestamp)
    assert made == payload
    assert identity.payload_digest(made).hex() == digest == hashlib.sha256(payload).hexdigest()
    assert identity.sign_digest(SECRET, bytes.fromhex(digest)).hex() == signature
    assert _py_ecc_sign(bytes.fromhex(digest)) == signature
    raw = bytes.fromhex(signature)
    assert identity.is_low_s(raw) and raw[64] in (0, 1, 2, 3)
    assert identity.recover_signer(bytes.fromhex(digest), raw).hex() == PUBLIC
    for value in (_in_doc(payload), digest, signature, hashlib.sha256(body).hexdigest()):
        assert value in DOC


def test_the_enrollment_proof_vector_matches_the_code_py_ecc_and_the_doc():
    message = identity.device_proof_message(username="citizen01", holder="wallet", public_key=bytes.fromhex(PUBLIC))
    assert message == PROOF_MESSAGE
    assert identity.payload_digest(message).hex() == PROOF_DIGEST
    assert (
        identity.sign_digest(SECRET, bytes.fromhex(PROOF_DIGEST)).hex()
        == PROOF
        == _py_ecc_sign(bytes.fromhex(PROOF_DIGEST))
    )
    services.check_possession(public_key=bytes.fromhex(PUBLIC), message=message, proof_hex=PROOF)
    assert all(value in DOC for value in (_in_doc(PROOF_MESSAGE), PROOF_DIGEST, PROOF))


def test_the_server_accepts_the_first_vector_at_its_time_and_refuses_it_with_a_recovery_id_of_27(db, monkeypatch):
    method, path, body, nonce, timestamp, _, _, signature = REQUESTS[0]
    party = PartyFactory()
    device = services.register_device_key(party=party, public_key=bytes.fromhex(PUBLIC))
    monkeypatch.setattr(timezone, "now", lambda: datetime.fromtimestamp(timestamp + 10, tz=UTC))
    signed = {"device_id": device.pk, "method": method, "path": path, "body": body, "nonce": nonce}
    assert services.check_signature(party=party, timestamp=str(timestamp), signature_hex=signature, **signed) == device
    ethereum_v = signature[:-2] + f"{int(signature[-2:], 16) + 27:02x}"
    with pytest.raises(errors.SignatureInvalid):
        services.check_signature(party=party, timestamp=str(timestamp), signature_hex=ethereum_v, **signed)


def test_the_python_client_example_of_the_doc_signs_the_vectors():
    example = DOC.split("```python\n", 1)[1].split("```", 1)[0]
    namespace = {"secret": SECRET}
    exec(example, namespace)  # the document's own code, as a mobile engineer would paste it
    for method, path, body, nonce, timestamp, _, _, signature in REQUESTS:
        assert namespace["sign"](SECRET, method, path, body, nonce, timestamp) == signature
    headers = namespace["headers"]
    assert set(headers) == {"Idempotency-Key", "X-Device-Key", "X-Nonce", "X-Timestamp", "X-Signature"}
    assert namespace["body"] == REQUESTS[0][2]
