"""RFC 9162 tree: reference vectors, exhaustive small trees, and an independent verifier."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from sigstore._internal.merkle import verify_merkle_inclusion
from sigstore.errors import VerificationError as SigstoreVerificationError

from clearance.audit import merkle
from clearance.errors import VerificationError
from tests.audit.vectors import CONSISTENCY, INCLUSION, LEAVES, ROOTS

SIZES = range(1, 65)
OTHER = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def entries(n: int) -> list[bytes]:
    return [f"entry-{i}".encode() for i in range(n)]


def test_reference_roots() -> None:
    tree = merkle.MemoryTree(LEAVES)
    assert [tree.root(n).hex() for n in range(9)] == ROOTS


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_reference_inclusion(index: int, size: int, proof: list[str]) -> None:
    tree = merkle.MemoryTree(LEAVES)
    assert [h.hex() for h in merkle.inclusion_proof(index, size, tree.read)] == proof
    leaf = merkle.leaf_hash(LEAVES[index])
    merkle.verify_inclusion(index, size, leaf, [bytes.fromhex(h) for h in proof], tree.root(size))


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_reference_consistency(first: int, second: int, proof: list[str]) -> None:
    tree = merkle.MemoryTree(LEAVES)
    assert [h.hex() for h in merkle.consistency_proof(first, second, tree.read)] == proof
    hashes = [bytes.fromhex(h) for h in proof]
    merkle.verify_consistency(first, second, tree.root(first), tree.root(second), hashes)


def inclusion_tampers(
    index: int, size: int, proof: list[bytes]
) -> list[tuple[int, int, list[bytes]]]:
    """Wrong index or tree height, a hash flipped, missing or extra.

    (Size + 1 is no tamper: for some leaves the path has the same shape in both trees.)
    """
    bad = [(index ^ 1, size, proof), (index, size * 2, proof), (index, size // 2, proof)]
    bad += [(index, size, [*proof, OTHER]), (index, size, [OTHER, *proof])]
    if proof:
        bad.append((index, size, proof[:-1]))
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([proof[i][0] ^ 8]) + proof[i][1:]
        bad.append((index, size, flipped))
    return [(i, n, p) for i, n, p in bad if (i, n, p) != (index, size, proof) and i < n]


@pytest.mark.parametrize("size", SIZES)
def test_every_inclusion_proof_verifies_and_no_tampered_one_does(size: int) -> None:
    data = entries(size)
    tree = merkle.MemoryTree(data)
    root = tree.root()
    for index in range(size):
        leaf = merkle.leaf_hash(data[index])
        proof = merkle.inclusion_proof(index, size, tree.read)
        merkle.verify_inclusion(index, size, leaf, proof, root)
        with pytest.raises(VerificationError):
            merkle.verify_inclusion(index, size, merkle.leaf_hash(b"other"), proof, root)
        for i, n, p in inclusion_tampers(index, size, proof):
            with pytest.raises(VerificationError):
                merkle.verify_inclusion(i, n, leaf, p, root)


@pytest.mark.parametrize("second", SIZES)
def test_every_consistency_proof_verifies_and_no_tampered_one_does(second: int) -> None:
    tree = merkle.MemoryTree(entries(second))
    new = tree.root()
    for first in range(second + 1):
        old = tree.root(first)
        proof = merkle.consistency_proof(first, second, tree.read)
        merkle.verify_consistency(first, second, old, new, proof)
        if first in (0, second):
            continue
        bad = [(first - 1, second, old, proof), (first + 1, second, old, proof)]
        bad += [(first, second * 2, old, proof), (first, second // 2, old, proof)]
        bad += [(first, second, OTHER, proof), (first, second, old, [*proof, OTHER])]
        bad += [(first, second, old, proof[:-1]), (first, second, old, [])]
        for i in range(len(proof)):
            flipped = list(proof)
            flipped[i] = bytes([proof[i][0] ^ 16]) + proof[i][1:]
            bad.append((first, second, old, flipped))
        for m, n, r, p in bad:
            with pytest.raises(VerificationError):
                merkle.verify_consistency(m, n, r, new, p)


def test_compact_range_matches_full_tree() -> None:
    data = entries(300)
    tree, compact = merkle.MemoryTree(), merkle.CompactRange()
    assert compact.root() == merkle.EMPTY_ROOT
    for entry in data:
        tree.append(entry)
        compact.append(merkle.leaf_hash(entry))
        assert compact.root() == tree.root()


def sigstore_verifies(entry: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """sigstore-python's own inclusion verifier, fed a Rekor-shaped entry."""
    inner = SimpleNamespace(
        inclusion_proof=SimpleNamespace(
            log_index=index, tree_size=size, hashes=proof, root_hash=root
        ),
        canonicalized_body=entry,
    )
    try:
        verify_merkle_inclusion(cast(Any, SimpleNamespace(_inner=inner)))
    except SigstoreVerificationError:
        return False
    return True


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 9, 31, 64, 100, 257])
def test_sigstore_verifies_our_inclusion_proofs(size: int) -> None:
    data = entries(size)
    tree = merkle.MemoryTree(data)
    for index in range(size):
        proof = merkle.inclusion_proof(index, size, tree.read)
        assert sigstore_verifies(data[index], index, size, proof, tree.root())
        assert not sigstore_verifies(b"forged", index, size, proof, tree.root())
        if proof:
            assert not sigstore_verifies(
                data[index], index, size, [*proof[::-1], OTHER], tree.root()
            )
