"""bank.bls (arkworks, the fast path) and py-ecc (the reference a third party uses) must agree
both ways: keys, signatures, aggregates, proofs of possession, and what they refuse."""

import hashlib
from datetime import UTC, datetime

import pytest
from py_ecc.bls import G2ProofOfPossession as reference

from bank import bls
from bank.hashing import GENESIS_PREV_HASH, block_hash

SECRETS = [1, 0xB05A, 2**200 + 12345, bls.CURVE_ORDER - 1]
G1_IDENTITY = bytes([0xC0]) + bytes(47)
G2_IDENTITY = bytes([0xC0]) + bytes(95)


def header_message(**changes) -> bytes:
    """What validators sign: the SHA-256 of a block header."""
    header = {
        "height": 7,
        "prev_hash": GENESIS_PREV_HASH,
        "merkle_root": "ab" * 32,
        "sealed_at": datetime(2025, 5, 1, 9, 30, 0, 123456, tzinfo=UTC),
        "entry_count": 3,
    }
    return bytes.fromhex(block_hash(**(header | changes)))


MESSAGE = header_message()
TAMPERED = header_message(entry_count=4)


@pytest.fixture(scope="module")
def keys() -> list[tuple[bytes, bytes]]:
    """(secret key bytes, public key bytes) per secret."""
    return [(bls.secret_key_bytes(secret), bls.public_key(bls.secret_key_bytes(secret))) for secret in SECRETS]


@pytest.fixture(scope="module")
def reference_signatures() -> list[bytes]:
    """py-ecc's signatures over MESSAGE (py-ecc takes ~0.1 s each, so made once)."""
    return [reference.Sign(secret, MESSAGE) for secret in SECRETS]


def test_public_keys_are_the_same_bytes_in_both(keys):
    # when / then
    for secret, (_, public) in zip(SECRETS, keys, strict=True):
        assert public == reference.SkToPk(secret)


def test_signatures_are_the_same_bytes_in_both(keys, reference_signatures):
    # when / then: BLS signing is deterministic, so one ciphersuite gives one signature
    for (secret, _), expected in zip(keys, reference_signatures, strict=True):
        assert bls.sign(secret, MESSAGE) == expected


def test_signature_by_arkworks_verifies_with_py_ecc_and_the_reverse(keys, reference_signatures):
    # given
    secret, public = keys[1]
    by_arkworks = bls.sign(secret, MESSAGE)
    by_reference = reference_signatures[1]
    # when / then
    assert reference.Verify(public, MESSAGE, by_arkworks)
    assert bls.verify(public, MESSAGE, by_reference)


def test_aggregate_by_one_verifies_with_the_other(keys, reference_signatures):
    # given
    publics = [public for _, public in keys]
    by_arkworks = bls.aggregate([bls.sign(secret, MESSAGE) for secret, _ in keys])
    by_reference = reference.Aggregate(reference_signatures)
    # when / then
    assert by_arkworks == by_reference
    assert reference.FastAggregateVerify(publics, MESSAGE, by_arkworks)
    assert bls.verify_aggregate(publics, MESSAGE, by_reference)


def test_a_tampered_header_is_refused_by_both(keys, reference_signatures):
    # given
    secret, public = keys[0]
    publics = [p for _, p in keys]
    signature = bls.sign(secret, MESSAGE)
    aggregate = reference.Aggregate(reference_signatures)
    # when / then
    assert not bls.verify(public, TAMPERED, signature)
    assert not reference.Verify(public, TAMPERED, signature)
    assert not bls.verify_aggregate(publics, TAMPERED, aggregate)
    assert not reference.FastAggregateVerify(publics, TAMPERED, aggregate)


def test_an_aggregate_missing_one_signer_is_refused_by_both(keys, reference_signatures):
    # given: three signed, but the verifier is told all four did
    publics = [p for _, p in keys]
    aggregate = bls.aggregate(reference_signatures[:3])
    # when / then
    assert not bls.verify_aggregate(publics, MESSAGE, aggregate)
    assert not reference.FastAggregateVerify(publics, MESSAGE, aggregate)


def test_proofs_of_possession_agree_both_ways(keys):
    # given
    secret_bytes, public = keys[1]
    _, other_public = keys[2]
    by_arkworks = bls.prove_possession(secret_bytes)
    by_reference = reference.PopProve(SECRETS[1])
    # when / then
    assert by_arkworks == by_reference
    assert reference.PopVerify(public, by_arkworks)
    assert bls.verify_possession(public, by_reference)
    assert not bls.verify_possession(other_public, by_reference)
    assert not reference.PopVerify(other_public, by_arkworks)


def test_a_signature_is_not_a_proof_of_possession_in_either(keys):
    # given: the same key signs with the signature tag, not the possession tag
    secret, public = keys[1]
    signature_over_key = bls.sign(secret, public)
    # when / then
    assert not bls.verify_possession(public, signature_over_key)
    assert not reference.PopVerify(public, signature_over_key)


@pytest.mark.parametrize(
    "signature",
    [
        b"",
        bytes(96),
        hashlib.sha512(b"noise").digest() + hashlib.sha256(b"noise").digest(),
        b"\xff" * 96,
        G1_IDENTITY,
        bytes(95),
        "not bytes",
    ],
    ids=["empty", "zeros", "noise", "all-ones", "a-g1-point", "short", "str"],
)
def test_malformed_signature_bytes_are_refused_without_an_exception(keys, signature):
    # given
    _, public = keys[0]
    publics = [p for _, p in keys]
    # when / then
    assert bls.verify(public, MESSAGE, signature) is False
    assert bls.verify_aggregate(publics, MESSAGE, signature) is False
    assert bls.verify_possession(public, signature) is False
    if isinstance(signature, bytes):
        assert reference.Verify(public, MESSAGE, signature) is False


@pytest.mark.parametrize(
    "public", [b"", bytes(48), b"\xff" * 48, G1_IDENTITY], ids=["empty", "zeros", "ones", "identity"]
)
def test_malformed_or_identity_public_keys_are_refused_by_both(public):
    # given: with the identity key and the identity signature the pairing equation holds trivially
    signature = G2_IDENTITY
    # when / then
    assert bls.verify(public, MESSAGE, signature) is False
    assert bls.verify_aggregate([public], MESSAGE, signature) is False
    assert reference.Verify(public, MESSAGE, signature) is False
    assert reference.FastAggregateVerify([public], MESSAGE, signature) is False


def test_an_empty_list_of_signers_is_refused_by_both():
    # when / then
    assert bls.verify_aggregate([], MESSAGE, G2_IDENTITY) is False
    assert reference.FastAggregateVerify([], MESSAGE, G2_IDENTITY) is False


def test_secret_keys_outside_the_group_order_are_refused():
    # when / then
    for secret in (0, bls.CURVE_ORDER, -1):
        with pytest.raises(ValueError):
            bls.secret_key_bytes(secret)
