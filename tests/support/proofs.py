"""Building and forging proofs in tests: a few transfers to seal, the validators' keys
as they are published, and a header re-hashed and re-signed the way a forger with the
validators' keys would."""

from bank import bls, services
from bank.hashing import block_hash, header_from_proof
from bank.models import JournalEntry
from tests.factories import AccountFactory, funded_account


def post_transfers(count: int) -> list[JournalEntry]:
    payer = funded_account(100_000)
    payee = AccountFactory()
    return [
        services.post_entry(lines=[(payer, -(i + 1)), (payee, i + 1)], kind="transfer", reference=f"t-{i}")
        for i in range(count)
    ]


def trusted_keys(validators) -> list[dict]:
    """The validators' keys as they are published: each with its proof of possession."""
    return [{"public_key": v.public_key, "proof_of_possession": v.proof_of_possession} for v in validators]


def rehash(header: dict) -> None:
    header["hash"] = block_hash(**header_from_proof(header))


def resign(header: dict, validator_key_material) -> None:
    """Sign the header again with every validator's secret key: what a consortium
    that wanted a forged header to pass would do."""
    _, material = validator_key_material
    header["aggregate_signature"] = bls.aggregate(
        [bls.sign(secret, bytes.fromhex(header["hash"])) for _, secret, _, _ in material]
    ).hex()
    header["signers"] = [public.hex() for _, _, public, _ in material]
