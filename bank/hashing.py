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


def block_header_bytes(
    *, height: int, prev_hash: str, merkle_root: str, sealed_at: datetime, entry_count: int
) -> bytes:
    return _compact_json(
        {
            "v": FORMAT_VERSION,
            "height": height,
            "prev_hash": prev_hash,
            "merkle_root": merkle_root,
            "sealed_at_us": epoch_micros(sealed_at),
            "entry_count": entry_count,
        }
    )


def block_hash(**header) -> str:
    """The block's hash, which is also the message every validator signs."""
    return hashlib.sha256(block_header_bytes(**header)).hexdigest()


# RFC 6962 section 2.1: leaves and inner nodes are hashed with distinct
# prefixes, so a leaf can never be passed off as an inner node.
def _leaf(entry_hash_bytes: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry_hash_bytes).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(entry_hashes: Sequence[bytes]) -> str:
    """Root over the entries' hashes in id order. Built bottom-up, carrying a
    lone last node up a level, which gives RFC 6962's tree exactly."""
    if not entry_hashes:
        return hashlib.sha256(b"").hexdigest()
    level = [_leaf(h) for h in entry_hashes]
    while len(level) > 1:
        paired = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0].hex()


def merkle_path(entry_hashes: Sequence[bytes], index: int) -> list[dict]:
    """The audit path of leaf `index`: sibling hashes from the leaf up, each with its side."""
    level = [_leaf(h) for h in entry_hashes]
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


def root_from_path(entry_hash_hex: str, path: Iterable[dict]) -> str:
    node = _leaf(bytes.fromhex(entry_hash_hex))
    for step in path:
        sibling = bytes.fromhex(step["hash"])
        node = _node(sibling, node) if step["side"] == "left" else _node(node, sibling)
    return node.hex()
