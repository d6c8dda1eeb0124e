"""BLS12-381 signatures for block attestations, IETF ciphersuite
BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_ (minimal-pubkey-size, proof of possession).

The hot paths (sealing, verify_ledger) use milagro-bls-binding, about 50x
faster than py-ecc. py-ecc implements the same ciphersuite in pure Python:
it is the reference a third party uses, and tests cross-check the two.
Keys and signatures cross this module's boundary as bytes.
"""

import milagro_bls_binding as fast
from py_ecc.bls import G2ProofOfPossession as reference

CURVE_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001


def secret_key_bytes(secret: int) -> bytes:
    if not 0 < secret < CURVE_ORDER:
        raise ValueError("a BLS secret key lies in 1..r-1")
    return secret.to_bytes(32, "big")


def public_key(secret: bytes) -> bytes:
    return fast.SkToPk(secret)


def sign(secret: bytes, message: bytes) -> bytes:
    return fast.Sign(secret, message)


def aggregate(signatures: list[bytes]) -> bytes:
    return fast.Aggregate(signatures)


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    try:
        return bool(fast.Verify(public, message, signature))
    except Exception:  # a malformed point is simply not a valid signature
        return False


def verify_aggregate(publics: list[bytes], message: bytes, signature: bytes) -> bool:
    """All `publics` signed the same `message`. Safe against rogue keys because
    every validator key is registered with a proof of possession."""
    if not publics:
        return False
    try:
        return bool(fast.FastAggregateVerify(publics, message, signature))
    except Exception:
        return False


def prove_possession(secret: bytes) -> bytes:
    return reference.PopProve(int.from_bytes(secret, "big"))


def verify_possession(public: bytes, proof: bytes) -> bool:
    try:
        return bool(reference.PopVerify(public, proof))
    except Exception:
        return False
