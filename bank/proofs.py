"""Merkle inclusion proofs: JSON that shows one entry, or one notarized
document, is in an attested block.

The build_* functions read the database; the check_* functions need only the
proof and the validators' public keys, and use py-ecc (the reference BLS
implementation) the way a third party would.
"""

import hashlib

from py_ecc.bls import G2ProofOfPossession as reference_bls

from bank import errors
from bank.hashing import (
    ENTRY_TAG,
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


def _block_leaves(block: Block) -> list[bytes]:
    """The block's leaves in tree order: entries by id, then documents by id."""
    entries = [bytes.fromhex(h) for h in block.entries.order_by("pk").values_list("hash", flat=True)]
    documents = [(kind, bytes(d)) for kind, d in block.documents.order_by("pk").values_list("kind", "digest")]
    return block_leaf_hashes(block.version, entries, documents)


def _block_part(block: Block) -> dict:
    """The header fields (by the block's version), hash and signatures: what a proof checks against."""
    attestations = BlockAttestation.objects.filter(block=block).select_related("validator").order_by("validator_id")
    part = {
        "v": block.version,
        "height": block.height,
        "prev_hash": block.prev_hash,
        "merkle_root": block.merkle_root,
        "sealed_at_us": epoch_micros(block.sealed_at),
        "entry_count": block.entry_count,
    }
    if block.version >= 2:
        part["document_count"] = block.document_count
    part["hash"] = block.hash
    part["aggregate_signature"] = block.aggregate_signature
    part["signers"] = [a.validator.public_key for a in attestations]
    return part


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


def check_document_proof(proof: dict, trusted_public_keys: set[str], quorum: int) -> list[str]:
    """Return the reasons a document proof fails (empty when it holds)."""
    if proof.get("format") != DOCUMENT_PROOF_FORMAT:
        return [f"unknown proof format {proof.get('format')!r}"]
    document, block = proof["document"], proof["block"]
    if block.get("v", 1) < 2:
        return ["a version 1 block holds no documents"]
    try:
        leaf = document_leaf_hash(document["kind"], bytes.fromhex(document["digest"]))
    except (ValueError, UnicodeEncodeError):
        return ["the document's kind or digest is malformed"]
    problems = []
    if root_from_leaf_path(leaf, proof["merkle_path"]) != block["merkle_root"]:
        problems.append("the Merkle path does not lead to the block's root")
    leaves = block["entry_count"] + block["document_count"]
    index = proof["leaf_index"]
    if type(index) is not int or not block["entry_count"] <= index < leaves:
        problems.append("the leaf index is not a document's place in the block")
    elif not _path_fits(proof["merkle_path"], leaves, index):
        problems.append("the Merkle path's sides do not match the leaf index")
    problems.extend(_block_problems(block, trusted_public_keys, quorum))
    return problems


def _path_fits(path: list[dict], size: int, index: int) -> bool:
    """Whether the path's length and sides are those of leaf `index` in a tree of `size` leaves."""
    sides = []
    while size > 1:
        if index ^ 1 < size:
            sides.append("left" if index & 1 else "right")
        index //= 2
        size = (size + 1) // 2
    return sides == [step["side"] for step in path]


def _block_problems(block: dict, trusted_public_keys: set[str], quorum: int) -> list[str]:
    """The header hash and the quorum's signature, each signer counted once."""
    try:
        header_hash = block_hash(**header_from_proof(block))
    except ValueError:
        return ["the block header's version or counts are not a known header"]
    problems = []
    if header_hash != block["hash"]:
        problems.append("the block header does not hash to the block's hash")
    signers = block["signers"]
    if len(signers) != len(set(signers)):
        problems.append("a validator is listed more than once among the signers")
    if not set(signers) <= trusted_public_keys:
        problems.append("a signer is not one of the trusted validators")
    trusted_signers = set(signers) & trusted_public_keys
    if len(trusted_signers) < quorum:
        problems.append(f"only {len(trusted_signers)} trusted validators signed; {quorum} are needed")
    try:
        signed = reference_bls.FastAggregateVerify(
            [bytes.fromhex(s) for s in signers], bytes.fromhex(header_hash), bytes.fromhex(block["aggregate_signature"])
        )
    except Exception:
        signed = False
    if not signed:
        problems.append("the validators' aggregate signature does not verify")
    return problems


def check_inclusion_proof(proof: dict, trusted_public_keys: set[str], quorum: int) -> list[str]:
    """Return the reasons the proof fails (empty when it holds)."""
    from bank.hashing import compact_json_text

    problems = []
    entry, block = proof["entry"], proof["block"]
    if hashlib.sha256(compact_json_text(entry["canonical"]).encode()).hexdigest() != entry["hash"]:
        problems.append("the entry's hash does not match its canonical contents")
    if root_from_path(entry["hash"], proof["merkle_path"], block.get("v", 1)) != block["merkle_root"]:
        problems.append("the Merkle path does not lead to the block's root")
    header_hash = block_hash(**header_from_proof(block))
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
