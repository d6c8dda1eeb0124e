"""The worked example of docs/PROOFS.md (header version 2) is what bank.hashing computes."""

import hashlib
import re
from pathlib import Path

from bank.hashing import (
    EPOCH,
    ONE_MICROSECOND,
    block_hash,
    block_header_bytes,
    document_leaf_hash,
    entry_leaf_hash,
    root_of_leaves,
)

PAGE = Path(__file__).resolve().parents[2] / "docs" / "PROOFS.md"


def example() -> dict[str, str]:
    text = PAGE.read_text().split("### Worked example (version 2)", 1)[1].split("```")[1]
    return {m[1]: m[2] for m in re.finditer(r"^(\S+(?: \S+)?)\s{2,}(.+)$", text, re.MULTILINE)}


def test_the_worked_example_of_the_spec_matches_the_code():
    values = example()
    entry_hash = bytes.fromhex(values["entry_hash"])
    digest = bytes.fromhex(values["document digest"])
    entry_leaf = entry_leaf_hash(2, entry_hash)
    document_leaf = document_leaf_hash(values["document kind"], digest)
    assert entry_leaf.hex() == values["entry leaf"]
    assert document_leaf.hex() == values["document leaf"]
    assert root_of_leaves([entry_leaf, document_leaf]) == values["merkle_root"]
    header = {
        "version": 2,
        "height": 7,
        "prev_hash": "11" * 32,
        "merkle_root": values["merkle_root"],
        "sealed_at": EPOCH + 1764806400000000 * ONE_MICROSECOND,
        "entry_count": 1,
        "document_count": 1,
    }
    assert block_header_bytes(**header).decode() == values["header"]
    assert block_hash(**header) == values["block.hash"] == hashlib.sha256(values["header"].encode()).hexdigest()
