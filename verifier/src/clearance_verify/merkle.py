"""RFC 9162 Merkle tree hashes and proof verification, written from the RFC's own steps."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from clearance_verify.errors import VerificationFailed

HASH_SIZE = 32


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of a leaf is SHA-256(0x00 || entry)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: an interior node is SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def tree_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH over leaf hashes: split at the largest power of two below n.

    Folded bottom-up: pair the hashes of each level, an odd last one moves up unchanged, which
    yields the same tree as the recursive split."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _lengths(hashes: Sequence[bytes]) -> None:
    if any(len(h) != HASH_SIZE for h in hashes):
        raise VerificationFailed("a proof hash is not 32 bytes long")


def inclusion_root(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2 steps 1-4: the root a proof implies for leaf `index` of `size`."""
    if not 0 <= index < size:
        raise VerificationFailed(f"index {index} is outside a tree of size {size}")
    _lengths([leaf, *proof])
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:  # step 3.1
            raise VerificationFailed("the inclusion proof has too many hashes")
        if fn & 1 or fn == sn:  # step 3.2
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:  # step 3.3
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # step 4
        raise VerificationFailed("the inclusion proof has too few hashes")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2 step 5: the computed root must equal the signed one."""
    if not hmac.compare_digest(inclusion_root(index, size, leaf, proof), root):
        raise VerificationFailed("the inclusion proof does not lead to the checkpoint's root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2: the tree of `second` leaves extends the tree of `first`."""
    _lengths([first_root, second_root, *proof])
    if not 0 <= first <= second:
        raise VerificationFailed(f"size {first} is larger than size {second}: a rollback")
    if first == second:
        if proof or not hmac.compare_digest(first_root, second_root):
            raise VerificationFailed(f"two different roots for the same size {first}: a fork")
        return
    if first == 0:
        if proof:
            raise VerificationFailed("a consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise VerificationFailed("the consistency proof is empty")
    path = list(proof)
    if first & (first - 1) == 0:  # step 1: first is an exact power of 2
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1  # step 2
    while fn & 1:  # step 3
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 4
    for c in path[1:]:  # step 5
        if sn == 0:
            raise VerificationFailed("the consistency proof has too many hashes")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # step 6
    if sn != 0 or not hmac.compare_digest(fr, first_root):
        raise VerificationFailed(
            f"the consistency proof from size {first} does not match its root: a fork"
        )
    if not hmac.compare_digest(sr, second_root):
        raise VerificationFailed(
            f"the log at size {second} does not extend the tree at size {first}: a fork"
        )
