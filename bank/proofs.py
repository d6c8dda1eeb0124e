"""Merkle inclusion proofs: JSON that shows one entry, or one notarized
document, is in an attested block.

The build_* functions read the database; the check_* functions need only the
proof and the validators' published keys, and use py-ecc (the reference BLS
implementation) the way a third party would.
"""

import functools
import hashlib
import re
from collections.abc import Iterable

from py_ecc.bls import G2ProofOfPossession as reference_bls

from bank import errors
from bank.hashing import (
    ENTRY_TAG,
    GENESIS_PREV_HASH,
    block_hash,
    block_leaf_hashes,
    document_leaf_hash,
    epoch_micros,
    header_from_proof,
    path_of_leaves,
    root_from_leaf_path,
    root_from_path,
)
from bank.models import Block, BlockAttestation, JournalEntry, NotarizedDocument

PROOF_FORMAT = "bkrw-inclusion-proof/1"
DOCUMENT_PROOF_FORMAT = "bkrw-document-proof/1"
# The sealer numbers blocks from 0 (bank/services/sealing.py); block 0 links to no block.
GENESIS_HEIGHT = 0
HEADER_VERSIONS = (1, 2)  # bank.hashing.block_header_bytes; a proof without `v` is version 1


def _block_leaves(block: Block) -> list[bytes]:
    """The block's leaves in tree order: entries by id, then documents by id."""
    entries = [bytes.fromhex(h) for h in block.entries.order_by("pk").values_list("hash", flat=True)]
    documents = [(kind, bytes(d)) for kind, d in block.documents.order_by("pk").values_list("kind", "digest")]
    return block_leaf_hashes(block.version, entries, documents)


def _block_part(block: Block) -> dict:
    """The header fields (by the block's version), hash and signatures: what a proof checks against."""
    attestations = BlockAttestation.objects.filter(block=block).select_related("validator").order_by("validator_id")
    return published_header(block, [a.validator.public_key for a in attestations])


def published_header(block: Block, signers: list[str]) -> dict:
    """A block's header as proofs and exports publish it: the fields of its version
    (docs/PROOFS.md), its hash, the aggregate signature and who signed."""
    header = {
        "v": block.version,
        "height": block.height,
        "prev_hash": block.prev_hash,
        "merkle_root": block.merkle_root,
        "sealed_at_us": epoch_micros(block.sealed_at),
        "entry_count": block.entry_count,
    }
    if block.version >= 2:
        header["document_count"] = block.document_count
    return {**header, "hash": block.hash, "aggregate_signature": block.aggregate_signature, "signers": signers}


def build_inclusion_proof(entry: JournalEntry) -> dict:
    if entry.block_id is None:
        raise errors.InvalidEntry("The entry is not sealed into a block yet.", entry=entry.pk)
    block = entry.block
    entry_ids = list(block.entries.order_by("pk").values_list("pk", flat=True))
    index = entry_ids.index(entry.pk)  # entries come first among a block's leaves
    postings = sorted([p.account_id, p.currency, p.amount] for p in entry.postings.all())
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
        "merkle_path": path_of_leaves(_block_leaves(block), index),
        "block": _block_part(block),
    }


def build_document_proof(document: NotarizedDocument) -> dict:
    """JSON that shows `document`'s digest, of its kind, is a leaf of an attested
    block. The reference is left out: no hash covers it, and it is the owner's."""
    if document.block_id is None:
        raise errors.DocumentNotSealed(document=document.pk)
    block = document.block
    return {
        "format": DOCUMENT_PROOF_FORMAT,
        "document": {"kind": document.kind, "digest": bytes(document.digest).hex()},
        "leaf_index": document.leaf_index,
        "merkle_path": path_of_leaves(_block_leaves(block), document.leaf_index),
        "block": _block_part(block),
    }


# Every refusal has a stable code (what scripts and tests match on) and a sentence
# (what a person reads). tools/bkrw_verify.py refuses with the same codes; a test
# holds the two lists equal, and docs/PROOFS.md "What a verifier refuses" lists them.
REASONS = {
    "malformed_proof": "the proof lacks a field or a field has the wrong type",
    "unknown_format": "the proof's format is not one this checker knows",
    "entry_hash_mismatch": "the entry's hash does not match its canonical contents",
    "leaf_index_out_of_range": "the leaf index is not the place of a leaf of this kind in the block",
    "entry_count_mismatch": "the Merkle path's length is not that of a block with these counts",
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


def _well_formed(proof, leaf: str = "entry") -> bool:
    try:
        entry, block, path = proof[leaf], proof["block"], proof["merkle_path"]
        integers = [proof["leaf_index"], block["height"], block["entry_count"], block["sealed_at_us"]]
        integers += [block.get("document_count", 0)]
        hexes = [
            entry["hash" if leaf == "entry" else "digest"],
            block["prev_hash"],
            block["merkle_root"],
            block["hash"],
        ]
        hexes += [step["hash"] for step in path]
        return (
            (leaf != "entry" or isinstance(entry["canonical"], list))
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
    from bank.hashing import compact_json_text

    refused = _refused_format(proof, PROOF_FORMAT, "entry", quorum)
    if refused:
        return refused
    entry, block = proof["entry"], proof["block"]
    problems = []
    if hashlib.sha256(compact_json_text(entry["canonical"]).encode()).hexdigest() != entry["hash"]:
        problems.append("entry_hash_mismatch")
    # Entries come first among a block's leaves.
    problems += _place_problems(proof, first=0, end=block["entry_count"])
    if root_from_path(entry["hash"], proof["merkle_path"], block.get("v", 1)) != block["merkle_root"]:
        problems.append("merkle_root_mismatch")
    problems += _block_problems(block, trusted_keys, quorum)
    return list(dict.fromkeys(problems))  # one code once, in the order found


def check_document_proof(proof: dict, trusted_keys: Iterable[dict], quorum: int) -> list[str]:
    """The same checks for a notarized document's proof (a version 2 block's leaf
    after its entries), with the same codes; the caller hashes the document itself
    and compares the digest."""
    refused = _refused_format(proof, DOCUMENT_PROOF_FORMAT, "document", quorum)
    if refused:
        return refused
    document, block = proof["document"], proof["block"]
    if block.get("v", 1) < 2:
        return ["unknown_format"]  # a version 1 block holds no documents
    try:
        leaf = document_leaf_hash(document["kind"], bytes.fromhex(document["digest"]))
    except (ValueError, TypeError, UnicodeEncodeError):
        return ["malformed_proof"]
    problems = _place_problems(proof, first=block["entry_count"], end=block["entry_count"] + block["document_count"])
    if root_from_leaf_path(leaf, proof["merkle_path"]) != block["merkle_root"]:
        problems.append("merkle_root_mismatch")
    problems += _block_problems(block, trusted_keys, quorum)
    return list(dict.fromkeys(problems))


def _refused_format(proof, expected_format: str, leaf: str, quorum: int) -> list[str]:
    if quorum < 1:
        raise ValueError("a quorum is at least one validator")
    if not isinstance(proof, dict) or "format" not in proof:
        return ["malformed_proof"]
    block = proof.get("block")
    if proof["format"] != expected_format or (isinstance(block, dict) and block.get("v", 1) not in HEADER_VERSIONS):
        return ["unknown_format"]  # the other fields may mean something else in that format
    if not _well_formed(proof, leaf):
        return ["malformed_proof"]
    return []


def _place_problems(proof: dict, *, first: int, end: int) -> list[str]:
    """The leaf index must be one of [first, end) and the path's length and sides
    exactly those of that leaf among all the block's leaves."""
    block, path, index = proof["block"], proof["merkle_path"], proof["leaf_index"]
    if not first <= index < end:
        return ["leaf_index_out_of_range"]
    sides = expected_path_sides(index, block["entry_count"] + block.get("document_count", 0))
    if len(sides) != len(path):
        return ["entry_count_mismatch"]
    if sides != [step["side"] for step in path]:
        return ["leaf_index_mismatch"]
    return []


def _block_problems(block: dict, trusted_keys: Iterable[dict], quorum: int) -> list[str]:
    """The header's hash and link, and the signature of a quorum of distinct trusted, proven keys."""
    problems = []
    header_hash = block_hash(**header_from_proof(block))
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
    return problems
