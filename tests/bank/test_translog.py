"""RFC 9162 inclusion and consistency proofs from stored complete subtrees (bank.translog):
every proof of a random log verifies, and a wrong size, leaf, root or proof node fails."""

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from bank.hashing import root_of_leaves
from bank.translog import MemoryLog, consistency_proof, inclusion_proof, verify_consistency, verify_inclusion


def leaf(i: int) -> bytes:
    return hashlib.sha256(b"\x00" + i.to_bytes(8, "big")).digest()


def log_of(size: int) -> MemoryLog:
    log = MemoryLog()
    for i in range(size):
        log.append(leaf(i))
    return log


def flipped(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


def test_roots_are_rfc_6962_tree_hashes_of_every_prefix():
    log = log_of(33)
    for size in range(1, 34):
        assert log.root(size).hex() == root_of_leaves([leaf(i) for i in range(size)])


def test_consistency_proofs_match_hand_derived_subtrees_of_rfc_9162_figure():
    # The seven-leaf tree of RFC 9162 section 2.1.5: PROOF(3, D[7]) = [c, d, g, l], where
    # c = leaf 2, d = leaf 3, g = MTH(D[0:2]) and l = MTH(D[4:7]).
    log = log_of(7)
    node = log.node
    l_hash = hashlib.sha256(b"\x01" + node(1, 2) + node(0, 6)).digest()
    assert consistency_proof(node, 3, 7) == [node(0, 2), node(0, 3), node(1, 0), l_hash]
    # PROOF(4, D[7]) = [l]; PROOF(6, D[7]) = [i, j, k]: i = MTH(D[4:6]), j = leaf 6, k = MTH(D[0:4]).
    assert consistency_proof(node, 4, 7) == [l_hash]
    assert consistency_proof(node, 6, 7) == [node(1, 2), node(0, 6), node(2, 0)]
    # PATH(0, D[3]) = [d0's sibling leaf 1, leaf 2].
    assert inclusion_proof(node, 0, 3) == [node(0, 1), node(0, 2)]


@settings(max_examples=60, deadline=None)
@given(size=st.integers(min_value=1, max_value=70), data=st.data())
def test_every_inclusion_proof_verifies_and_a_wrong_size_or_leaf_fails(size, data):
    log = log_of(size + 1)  # one leaf more, for the root of a wrong size
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    root = log.root(size)
    proof = inclusion_proof(log.node, index, size)
    assert len(proof) <= max(1, size - 1).bit_length()
    assert verify_inclusion(leaf(index), index, size, proof, root)
    assert not verify_inclusion(flipped(leaf(index)), index, size, proof, root)
    # a proof checked as of another size, against that size's root
    assert not verify_inclusion(leaf(index), index, size + 1, proof, log.root(size + 1))
    if size > 1:
        assert not verify_inclusion(leaf(index), index ^ 1 if index ^ 1 < size else index - 1, size, proof, root)
        wrong = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        assert not verify_inclusion(
            leaf(index), index, size, [*proof[:wrong], flipped(proof[wrong]), *proof[wrong + 1 :]], root
        )


@settings(max_examples=80, deadline=None)
@given(new_size=st.integers(min_value=1, max_value=70), data=st.data())
def test_every_consistency_proof_verifies_and_a_rewritten_leaf_or_wrong_size_fails(new_size, data):
    log = log_of(new_size + 1)  # one leaf more, for the root of a wrong size
    old_size = data.draw(st.integers(min_value=1, max_value=new_size))
    old_root, new_root = log.root(old_size), log.root(new_size)
    proof = consistency_proof(log.node, old_size, new_size)
    assert verify_consistency(old_size, new_size, old_root, new_root, proof)
    if old_size == new_size:
        assert proof == []
        return
    # a log that rewrote a leaf the old log held does not extend the old one
    changed = data.draw(st.integers(min_value=0, max_value=old_size - 1))
    rewritten = MemoryLog()
    for i in range(new_size):
        rewritten.append(flipped(leaf(i)) if i == changed else leaf(i))
    assert not verify_consistency(
        old_size, new_size, old_root, rewritten.root(new_size), consistency_proof(rewritten.node, old_size, new_size)
    )
    assert not verify_consistency(old_size, new_size, flipped(old_root), new_root, proof)
    # the proof checked as of other sizes, against those sizes' roots
    assert not verify_consistency(old_size, new_size + 1, old_root, log.root(new_size + 1), proof)
    if old_size > 1:
        assert not verify_consistency(old_size - 1, new_size, log.root(old_size - 1), new_root, proof)
    wrong = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
    assert not verify_consistency(
        old_size, new_size, old_root, new_root, [*proof[:wrong], flipped(proof[wrong]), *proof[wrong + 1 :]]
    )
