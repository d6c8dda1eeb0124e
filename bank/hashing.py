"""Canonical bytes and hashes of entries and block headers, and RFC 6962 Merkle trees.

Pure standard library on purpose: a third party checks our proofs with this
file (or a re-implementation of docs/PROOFS.md) and nothing of Django.
"""

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

FORMAT_VERSION = 1
GENESIS_PREV_HASH = "00" * 32


compact_json_text = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _compact_json(obj) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same object always gives the same bytes."""
    return compact_json_text(obj).encode()


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)


def epoch_micros(moment: datetime) -> int:
    """A time as whole microseconds since 1970-01-01 UTC (exact, no float)."""
    return (moment - EPOCH) // ONE_MICROSECOND


ENTRY_TAG = "bkrw-entry/1"


def entry_bytes(
    *,
    uid: str,
    created_at_us: int,
    kind: str,
    memo: str,
    reference: str,
    reverses_id: int | None,
    postings: Iterable[tuple[int, str, int]],
) -> bytes:
    """The bytes an entry's hash covers: a JSON array in a fixed order,
    [tag, uid, created_at_us, kind, memo, reference, reverses_id, postings],
    postings sorted as [account id, currency, amount]."""
    return _compact_json([ENTRY_TAG, uid, created_at_us, kind, memo, reference, reverses_id, sorted(postings)])


def entry_hash(**fields) -> str:
    return hashlib.sha256(entry_bytes(**fields)).hexdigest()


HEADER_VERSIONS = (1, 2)
HEADER_VERSION = 2  # what sealing writes now; version 1 blocks keep verifying under version 1


def block_header_bytes(
    *,
    height: int,
    prev_hash: str,
    merkle_root: str,
    sealed_at: datetime,
    entry_count: int,
    version: int = 1,
    document_count: int = 0,
) -> bytes:
    """The header a block's hash covers, by version. Version 1 has no document
    count (its blocks hold entries only); version 2 commits to both counts."""
    header = {
        "v": version,
        "height": height,
        "prev_hash": prev_hash,
        "merkle_root": merkle_root,
        "sealed_at_us": epoch_micros(sealed_at),
        "entry_count": entry_count,
    }
    if version == 2:
        header["document_count"] = document_count
    elif version != 1 or document_count:
        raise ValueError(f"no header version {version} with {document_count} documents")
    return _compact_json(header)


def block_hash(**header) -> str:
    """The block's hash, which is also the message every validator signs."""
    return hashlib.sha256(block_header_bytes(**header)).hexdigest()


def header_from_proof(block: dict) -> dict:
    """The keyword arguments of block_hash from a proof's `block` object (no `v`: version 1)."""
    return {
        "version": block.get("v", 1),
        "height": block["height"],
        "prev_hash": block["prev_hash"],
        "merkle_root": block["merkle_root"],
        "sealed_at": EPOCH + timedelta(microseconds=block["sealed_at_us"]),
        "entry_count": block["entry_count"],
        "document_count": block.get("document_count", 0),
    }


# RFC 6962 section 2.1: leaves and inner nodes are hashed with distinct
# prefixes, so a leaf can never be passed off as an inner node.
def _leaf(entry_hash_bytes: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry_hash_bytes).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


# Version 2 leaves: after RFC 6962's 0x00, a tag that says what the leaf is,
# ended by 0x00 (no tag or kind holds a NUL), so no entry's leaf bytes can equal
# a document's, and no document of one kind can pass for another kind.
ENTRY_LEAF_TAG = b"bkrw-leaf/entry\x00"
DOCUMENT_LEAF_TAG = b"bkrw-leaf/document\x00"


def entry_leaf_hash(version: int, entry_hash_bytes: bytes) -> bytes:
    """v1: SHA-256(0x00 || entry_hash); v2: SHA-256(0x00 || "bkrw-leaf/entry" 0x00 || entry_hash)."""
    if len(entry_hash_bytes) != 32:
        raise ValueError("an entry hash is 32 bytes")
    if version == 1:
        return _leaf(entry_hash_bytes)
    if version == 2:
        return hashlib.sha256(b"\x00" + ENTRY_LEAF_TAG + entry_hash_bytes).digest()
    raise ValueError(f"no header version {version}")


def document_leaf_hash(kind: str, digest: bytes) -> bytes:
    """SHA-256(0x00 || "bkrw-leaf/document" 0x00 || kind (ASCII) 0x00 || digest). Version 2 and later only."""
    if len(digest) != 32:
        raise ValueError("a document digest is 32 bytes")
    kind_bytes = kind.encode("ascii")
    if b"\x00" in kind_bytes:
        raise ValueError("a document kind holds no NUL")
    return hashlib.sha256(b"\x00" + DOCUMENT_LEAF_TAG + kind_bytes + b"\x00" + bytes(digest)).digest()


def block_leaf_hashes(
    version: int, entry_hashes: Iterable[bytes], documents: Iterable[tuple[str, bytes]] = ()
) -> list[bytes]:
    """A block's leaves in tree order: its entries by id, then (version 2) its documents by id."""
    leaves = [entry_leaf_hash(version, h) for h in entry_hashes]
    documents = list(documents)
    if documents and version < 2:
        raise ValueError("a version 1 block holds no documents")
    leaves.extend(document_leaf_hash(kind, digest) for kind, digest in documents)
    return leaves


EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def root_of_leaves(leaves: Sequence[bytes]) -> str:
    """RFC 6962's tree hash over leaf hashes. Built bottom-up, carrying a lone
    last node up a level, which gives RFC 6962's tree exactly."""
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    while len(level) > 1:
        paired = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0].hex()


def path_of_leaves(leaves: Sequence[bytes], index: int) -> list[dict]:
    """The audit path of leaf `index`: sibling hashes from the leaf up, each with its side."""
    level = list(leaves)
    path = []
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            side = "left" if sibling < index else "right"
            path.append({"side": side, "hash": level[sibling].hex()})
        paired = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
        index //= 2
    return path


def root_from_leaf_path(leaf: bytes, path: Iterable[dict]) -> str:
    node = leaf
    for step in path:
        sibling = bytes.fromhex(step["hash"])
        node = _node(sibling, node) if step["side"] == "left" else _node(node, sibling)
    return node.hex()


class RootBuilder:
    """RFC 6962's tree hash fed one leaf at a time, holding only the roots of
    complete subtrees (at most log2(n) hashes): for streaming a block's leaves."""

    def __init__(self):
        self.count = 0
        self._stack: list[tuple[int, bytes]] = []

    def add(self, leaf: bytes) -> None:
        size, node = 1, leaf
        while self._stack and self._stack[-1][0] == size:
            _, left = self._stack.pop()
            size, node = size * 2, _node(left, node)
        self._stack.append((size, node))
        self.count += 1

    def root(self) -> str:
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = _node(left, node)
        return node.hex()


# Version 1 names, over entry hashes (kept for version 1 blocks and their proofs).
def merkle_root(entry_hashes: Sequence[bytes]) -> str:
    """Root of a version 1 block over its entries' hashes in id order."""
    return root_of_leaves([_leaf(h) for h in entry_hashes])


def merkle_path(entry_hashes: Sequence[bytes], index: int) -> list[dict]:
    return path_of_leaves([_leaf(h) for h in entry_hashes], index)


def root_from_path(entry_hash_hex: str, path: Iterable[dict], version: int = 1) -> str:
    """The root an entry's audit path leads to, under the block's header version."""
    return root_from_leaf_path(entry_leaf_hash(version, bytes.fromhex(entry_hash_hex)), path)
