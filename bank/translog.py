"""The transparency log's tree algorithms (RFC 9162 section 2.1): inclusion and
consistency proofs over an append-only list of leaf hashes, and their verifiers.

Pure standard library, like bank.hashing. Proofs read only complete subtrees
(`node(level, index)`: the hash of leaves index*2**level ... (index+1)*2**level - 1),
so a store that keeps those nodes answers a proof in O(log n) reads, never
rehashing the leaves. Not yet wired into sealing or the block header.
"""

import hashlib
from collections.abc import Callable, Sequence

Node = Callable[[int, int], bytes]


def _hash_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """RFC 9162's k for n > 1: the largest power of two smaller than n."""
    return 1 << ((n - 1).bit_length() - 1)


def range_hash(node: Node, start: int, end: int) -> bytes:
    """MTH(D[start:end]) where start is a multiple of the largest power of two
    not above end - start (true of every range the proofs below ask for): the
    complete subtrees left to right, folded from the right."""
    if end - start < 1:
        raise ValueError("an empty range has no subtree hash here")
    parts = []
    while start < end:
        level = (end - start).bit_length() - 1
        while start % (1 << level):
            level -= 1
        parts.append(node(level, start >> level))
        start += 1 << level
    result = parts[-1]
    for left in reversed(parts[:-1]):
        result = _hash_node(left, result)
    return result


def inclusion_proof(node: Node, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]), RFC 9162 section 2.1.3.1."""
    if not 0 <= index < size:
        raise ValueError("the leaf is not in a tree of that size")
    return _path(node, index, 0, size)


def _path(node: Node, index: int, start: int, end: int) -> list[bytes]:
    n = end - start
    if n == 1:
        return []
    k = _largest_power_of_two_below(n)
    if index < k:
        return _path(node, index, start, start + k) + [range_hash(node, start + k, end)]
    return _path(node, index - k, start + k, end) + [range_hash(node, start, start + k)]


def consistency_proof(node: Node, old_size: int, new_size: int) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]), RFC 9162 section 2.1.4.1 (empty when the sizes are equal)."""
    if not 0 < old_size <= new_size:
        raise ValueError("a consistency proof needs 0 < old size <= new size")
    return _subproof(node, old_size, 0, new_size, True)


def _subproof(node: Node, m: int, start: int, end: int, complete: bool) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if complete else [range_hash(node, start, end)]
    k = _largest_power_of_two_below(n)
    if m <= k:
        return _subproof(node, m, start, start + k, complete) + [range_hash(node, start + k, end)]
    return _subproof(node, m - k, start + k, end, False) + [range_hash(node, start, start + k)]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _hash_node(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _hash_node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    proof = list(proof)
    if not proof:
        return False
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the proof's first node
        proof = [old_root, *proof]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _hash_node(c, fr)
            sr = _hash_node(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _hash_node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


class MemoryLog:
    """An append-only log that stores every complete subtree node as it forms,
    the shape a database table of (level, index, hash) rows would have."""

    def __init__(self):
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.size = 0

    def append(self, leaf: bytes) -> None:
        level, index, node = 0, self.size, leaf
        self.nodes[(0, index)] = node
        while index & 1:  # the new node completes its parent: store it too
            node = _hash_node(self.nodes[(level, index - 1)], node)
            level, index = level + 1, index >> 1
            self.nodes[(level, index)] = node
        self.size += 1

    def node(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        return range_hash(self.node, 0, size) if size else hashlib.sha256(b"").digest()
