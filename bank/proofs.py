"""Merkle inclusion proofs: JSON that shows one entry is in an attested block.

build_inclusion_proof reads the database; check_inclusion_proof needs only the
proof and the validators' public keys, and uses py-ecc (the reference BLS
implementation) the way a third party would.
"""

import hashlib
from datetime import UTC

from py_ecc.bls import G2ProofOfPossession as reference_bls

from bank import errors
from bank.hashing import ENTRY_TAG, block_hash, epoch_micros, merkle_path, root_from_path
from bank.models import BlockAttestation, JournalEntry

PROOF_FORMAT = "bkrw-inclusion-proof/1"


def build_inclusion_proof(entry: JournalEntry) -> dict:
    if entry.block_id is None:
        raise errors.InvalidEntry("The entry is not sealed into a block yet.", entry=entry.pk)
    block = entry.block
    hashes = list(block.entries.order_by("pk").values_list("pk", "hash"))
    index = next(i for i, (pk, _) in enumerate(hashes) if pk == entry.pk)
    postings = sorted([p.account_id, p.currency, p.amount] for p in entry.postings.all())
    attestations = BlockAttestation.objects.filter(block=block).select_related("validator").order_by("validator_id")
    return {
        "format": PROOF_FORMAT,
        "entry": {
            "id": entry.pk,
            "hash": entry.hash,
            "canonical": [
                ENTRY_TAG,
                str(entry.uid),
                epoch_micros(entry.created_at),
                entry.kind,
                entry.memo,
                entry.reference,
                entry.reverses_id,
                postings,
            ],
        },
        "leaf_index": index,
        "merkle_path": merkle_path([bytes.fromhex(h) for _, h in hashes], index),
        "block": {
            "height": block.height,
            "prev_hash": block.prev_hash,
            "merkle_root": block.merkle_root,
            "sealed_at_us": epoch_micros(block.sealed_at),
            "entry_count": block.entry_count,
            "hash": block.hash,
            "aggregate_signature": block.aggregate_signature,
            "signers": [a.validator.public_key for a in attestations],
        },
    }


def check_inclusion_proof(proof: dict, trusted_public_keys: set[str], quorum: int) -> list[str]:
    """Return the reasons the proof fails (empty when it holds)."""
    from datetime import datetime, timedelta

    from bank.hashing import compact_json_text

    problems = []
    entry, block = proof["entry"], proof["block"]
    if hashlib.sha256(compact_json_text(entry["canonical"]).encode()).hexdigest() != entry["hash"]:
        problems.append("the entry's hash does not match its canonical contents")
    if root_from_path(entry["hash"], proof["merkle_path"]) != block["merkle_root"]:
        problems.append("the Merkle path does not lead to the block's root")
    sealed_at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=block["sealed_at_us"])
    header_hash = block_hash(
        height=block["height"],
        prev_hash=block["prev_hash"],
        merkle_root=block["merkle_root"],
        sealed_at=sealed_at,
        entry_count=block["entry_count"],
    )
    if header_hash != block["hash"]:
        problems.append("the block header does not hash to the block's hash")
    signers = block["signers"]
    if not set(signers) <= trusted_public_keys:
        problems.append("a signer is not one of the trusted validators")
    if len(set(signers)) < quorum:
        problems.append(f"only {len(set(signers))} validators signed; {quorum} are needed")
    try:
        signed = reference_bls.FastAggregateVerify(
            [bytes.fromhex(s) for s in signers], bytes.fromhex(header_hash), bytes.fromhex(block["aggregate_signature"])
        )
    except Exception:
        signed = False
    if not signed:
        problems.append("the validators' aggregate signature does not verify")
    return problems
