"""RFC 9162 Merkle tree hashing, proofs and their verification. Pure functions over bytes.

Hashes of complete subtrees are read through a `NodeReader`: `read(level, index)` returns the
hash of the complete subtree holding leaves [index * 2**level, (index + 1) * 2**level). A tree
kept in memory, stored tiles, or a database can all serve one, so proofs are built the same way
everywhere from stored hashes, without recomputing the tree.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence

from clearance.errors import VerificationError

HASH_SIZE = 32
# RFC 9162 §2.1.1: MTH({}) = SHA-256() for the empty tree.
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeReader = Callable[[int, int], bytes]


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 §2.1.1: MTH({d(0)}) = SHA-256(0x00 || d(0))."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """RFC 9162 §2.1.1: k, the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def complete_root(hashes: Sequence[bytes]) -> bytes:
    """The root of a complete subtree whose 2**k level hashes are given left to right."""
    level = list(hashes)
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def range_hash(lo: int, hi: int, read: NodeReader) -> bytes:
    """MTH(D[lo:hi]) for a range starting on a boundary of its own tree (RFC 9162 §2.1.1).

    The range splits into complete subtrees of decreasing size, folded from the right, exactly
    as the recursive definition splits at the largest power of two below the size.
    """
    if hi <= lo:
        raise ValueError(f"empty range [{lo}, {hi})")
    parts: list[bytes] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        while lo % (1 << level):
            level -= 1
        parts.append(read(level, lo >> level))
        lo += 1 << level
    result = parts[-1]
    for part in reversed(parts[:-1]):
        result = node_hash(part, result)
    return result


def root(size: int, read: NodeReader) -> bytes:
    return EMPTY_ROOT if size == 0 else range_hash(0, size, read)


def inclusion_proof(index: int, size: int, read: NodeReader) -> list[bytes]:
    """RFC 9162 §2.1.3.1: PATH(m, D[n]), leaf first."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} outside a tree of size {size}")
    path: list[bytes] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = split_point(hi - lo)
        if m < k:
            path.append(range_hash(lo + k, hi, read))
            hi = lo + k
        else:
            path.append(range_hash(lo, lo + k, read))
            lo, m = lo + k, m - k
    path.reverse()
    return path


def consistency_proof(first: int, second: int, read: NodeReader) -> list[bytes]:
    """RFC 9162 §2.1.4.1: PROOF(m, D[n]) = SUBPROOF(m, D[n], true); empty if m is 0 or n."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from {first} to {second}")
    if first in (0, second):
        return []
    path: list[bytes] = []
    lo, hi, m, b = 0, second, first, True
    while True:
        n = hi - lo
        if m == n:
            if not b:
                path.append(range_hash(lo, hi, read))
            break
        k = split_point(n)
        if m <= k:
            path.append(range_hash(lo + k, hi, read))
            hi = lo + k
        else:
            path.append(range_hash(lo, lo + k, read))
            lo, m, b = lo + k, m - k, False
    path.reverse()
    return path


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2 steps 1-4: the root that `proof` implies for the leaf hash `leaf`."""
    if not 0 <= index < size:
        raise VerificationError(f"inclusion proof: index {index} outside tree of size {size}")
    _check_sizes([leaf, *proof])
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise VerificationError("inclusion proof: too many hashes")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError("inclusion proof: too few hashes")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> None:
    """RFC 9162 §2.1.3.2 step 5: raise `VerificationError` unless the proof yields the root."""
    if not hmac.compare_digest(root_from_inclusion(index, size, leaf, proof), expected_root):
        raise VerificationError(f"inclusion proof for index {index} does not match the root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2: raise `VerificationError` unless `second` extends `first`."""
    if not 0 <= first <= second:
        raise VerificationError(f"consistency proof: size {first} is larger than {second}")
    _check_sizes([first_root, second_root, *proof])
    if first == second or first == 0:
        if proof or (first and not hmac.compare_digest(first_root, second_root)):
            raise VerificationError("consistency proof: must be empty and roots equal")
        return
    if not proof:
        raise VerificationError("consistency proof: empty")
    path = list(proof)
    if first & (first - 1) == 0:  # step 2: first is an exact power of two
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:  # step 4
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof: too many hashes")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    ok = sn == 0 and hmac.compare_digest(fr, first_root)
    if not (ok and hmac.compare_digest(sr, second_root)):
        raise VerificationError(f"consistency proof from {first} to {second} does not verify")


def _check_sizes(hashes: Sequence[bytes]) -> None:
    if any(len(h) != HASH_SIZE for h in hashes):
        raise VerificationError("hash of the wrong length")


class CompactRange:
    """The right edge of a growing tree: one hash per complete subtree, O(log n) memory.

    Appending is amortised two hashes per leaf; `root()` folds the edge as `range_hash` does.
    """

    def __init__(self) -> None:
        self.size = 0
        self._edge: list[tuple[int, bytes]] = []

    def append(self, leaf: bytes) -> None:
        level, h = 0, leaf
        while self._edge and self._edge[-1][0] == level:
            h = node_hash(self._edge.pop()[1], h)
            level += 1
        self._edge.append((level, h))
        self.size += 1

    def root(self) -> bytes:
        if not self._edge:
            return EMPTY_ROOT
        result = self._edge[-1][1]
        for _, h in reversed(self._edge[:-1]):
            result = node_hash(h, result)
        return result


class MemoryTree:
    """All node hashes of a tree held in memory: for tests, tools and small logs."""

    def __init__(self, entries: Sequence[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        for entry in entries:
            self.append(entry)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def append(self, entry: bytes) -> None:
        self.append_hash(leaf_hash(entry))

    def append_hash(self, leaf: bytes) -> None:
        self.levels[0].append(leaf)
        level = 0
        while len(self.levels[level]) % 2 == 0:
            below = self.levels[level]
            if level + 1 == len(self.levels):
                self.levels.append([])
            self.levels[level + 1].append(node_hash(below[-2], below[-1]))
            level += 1

    def read(self, level: int, index: int) -> bytes:
        return self.levels[level][index]

    def root(self, size: int | None = None) -> bytes:
        return root(self.size if size is None else size, self.read)
