"""Merkle inclusion proofs: JSON that shows one entry is in an attested block.

build_inclusion_proof reads the database; check_inclusion_proof needs only the
proof and the validators' public keys, and uses py-ecc (the reference BLS
implementation) the way a third party would.
"""

import functools
import hashlib
import re
from collections.abc import Iterable
from datetime import UTC

from py_ecc.bls import G2ProofOfPossession as reference_bls

from bank import errors
from bank.hashing import (
    ENTRY_TAG,
    GENESIS_PREV_HASH,
    block_hash,
    epoch_micros,
    merkle_path,
    root_from_path,
)
from bank.models import BlockAttestation, JournalEntry

PROOF_FORMAT = "bkrw-inclusion-proof/1"
# The sealer numbers blocks from 0 (bank/services/sealing.py); block 0 links to no block.
GENESIS_HEIGHT = 0


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


# Every refusal has a stable code (what scripts and tests match on) and a sentence
# (what a person reads). tools/bkrw_verify.py refuses with the same codes; a test
# holds the two lists equal, and docs/PROOFS.md "What a verifier refuses" lists them.
REASONS = {
    "malformed_proof": "the proof lacks a field or a field has the wrong type",
    "unknown_format": "the proof's format is not one this checker knows",
    "entry_hash_mismatch": "the entry's hash does not match its canonical contents",
    "leaf_index_out_of_range": "the leaf index is not below the block's entry count",
    "entry_count_mismatch": "the Merkle path's length is not that of a block with this entry count",
    "leaf_index_mismatch": "the Merkle path's sides are not those of the leaf at this index",
    "merkle_root_mismatch": "the Merkle path does not lead to the block's root",
    "header_hash_mismatch": "the block header does not hash to the block's hash",
    "genesis_prev_hash_not_zero": "the first block's prev_hash is not 64 zeros",
    "unproven_key": "a trusted key comes without a valid proof of possession",
    "duplicate_signer": "a signer is listed more than once",
    "untrusted_signer": "a signer is not one of the trusted validators",
    "quorum_not_met": "fewer distinct trusted validators signed than the quorum",
    "aggregate_signature_invalid": "the validators' aggregate signature does not verify",
}

_HEX64 = re.compile(r"[0-9a-f]{64}")


def expected_path_sides(leaf_index: int, entry_count: int) -> list[str]:
    """The sides merkle_path gives leaf `leaf_index` of `entry_count`: a lone last
    node is carried up a level and adds no step, so the sides fix the index."""
    sides = []
    index, width = leaf_index, entry_count
    while width > 1:
        sibling = index ^ 1
        if sibling < width:
            sides.append("left" if sibling < index else "right")
        index, width = index // 2, (width + 1) // 2
    return sides


@functools.lru_cache(maxsize=256)
def _possession_holds(public_hex: str, proof_hex: str) -> bool:
    # py-ecc takes ~0.3 s a pairing; the same registered key is checked on every proof
    try:
        return reference_bls.PopVerify(bytes.fromhex(public_hex), bytes.fromhex(proof_hex))
    except Exception:  # a malformed key or proof simply proves nothing
        return False


def _well_formed(proof) -> bool:
    try:
        entry, block, path = proof["entry"], proof["block"], proof["merkle_path"]
        integers = [proof["leaf_index"], block["height"], block["entry_count"], block["sealed_at_us"]]
        hexes = [entry["hash"], block["prev_hash"], block["merkle_root"], block["hash"]]
        hexes += [step["hash"] for step in path]
        return (
            isinstance(entry["canonical"], list)
            and all(isinstance(n, int) and not isinstance(n, bool) for n in integers)
            and all(isinstance(h, str) and _HEX64.fullmatch(h) for h in hexes)
            and all(step["side"] in ("left", "right") for step in path)
            and isinstance(block["aggregate_signature"], str)
            and isinstance(block["signers"], list)
            and all(isinstance(s, str) for s in block["signers"])
        )
    except (KeyError, TypeError, AttributeError):
        return False


def check_inclusion_proof(proof: dict, trusted_keys: Iterable[dict], quorum: int) -> list[str]:
    """Return the codes of REASONS the proof fails on (empty when it holds).

    `trusted_keys` are the validators' published keys, each a dict with
    `public_key` and `proof_of_possession` (hex), as `export_verifier_data` and
    the /ledger/ endpoint give them. A key whose proof of possession fails is
    not trusted, and counts for nothing."""
    from datetime import datetime, timedelta

    from bank.hashing import compact_json_text

    if quorum < 1:
        raise ValueError("a quorum is at least one validator")
    if not isinstance(proof, dict) or "format" not in proof:
        return ["malformed_proof"]
    block = proof.get("block")
    if proof["format"] != PROOF_FORMAT or (isinstance(block, dict) and block.get("v", 1) != 1):
        return ["unknown_format"]  # the other fields may mean something else in that format
    if not _well_formed(proof):
        return ["malformed_proof"]
    problems = []
    entry, block, path = proof["entry"], proof["block"], proof["merkle_path"]
    if hashlib.sha256(compact_json_text(entry["canonical"]).encode()).hexdigest() != entry["hash"]:
        problems.append("entry_hash_mismatch")
    index, count = proof["leaf_index"], block["entry_count"]
    if not 0 <= index < count:
        problems.append("leaf_index_out_of_range")
    else:
        sides = expected_path_sides(index, count)
        if len(sides) != len(path):
            problems.append("entry_count_mismatch")
        elif sides != [step["side"] for step in path]:
            problems.append("leaf_index_mismatch")
    if root_from_path(entry["hash"], path) != block["merkle_root"]:
        problems.append("merkle_root_mismatch")
    sealed_at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=block["sealed_at_us"])
    header_hash = block_hash(
        height=block["height"],
        prev_hash=block["prev_hash"],
        merkle_root=block["merkle_root"],
        sealed_at=sealed_at,
        entry_count=count,
    )
    if header_hash != block["hash"]:
        problems.append("header_hash_mismatch")
    if block["height"] == GENESIS_HEIGHT and block["prev_hash"] != GENESIS_PREV_HASH:
        problems.append("genesis_prev_hash_not_zero")
    proven = set()
    for key in trusted_keys:
        public, possession = key.get("public_key"), key.get("proof_of_possession")
        if isinstance(public, str) and isinstance(possession, str) and _possession_holds(public, possession):
            proven.add(public)
        else:
            problems.append("unproven_key")
    signers = block["signers"]
    if len(set(signers)) != len(signers):
        problems.append("duplicate_signer")
    if not set(signers) <= proven:
        problems.append("untrusted_signer")
    if len(set(signers) & proven) < quorum:
        problems.append("quorum_not_met")
    try:
        signed = reference_bls.FastAggregateVerify(
            [bytes.fromhex(s) for s in signers], bytes.fromhex(header_hash), bytes.fromhex(block["aggregate_signature"])
        )
    except Exception:
        signed = False
    if not signed:
        problems.append("aggregate_signature_invalid")
    return list(dict.fromkeys(problems))  # one code once, in the order found
