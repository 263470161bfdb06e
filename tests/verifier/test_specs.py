"""clearance-verify's pure parts against published vectors and against Clearance's own,
separately written implementation (each checks the other)."""

from __future__ import annotations

import ast
import base64
import tomllib
from pathlib import Path

import pytest

from clearance.audit.checkpoint import Checkpoint as OurCheckpoint
from clearance.audit.cosignature import CosignatureVerifier, Cosigner, generate_witness_key
from clearance.audit.keys import NoteSigner, generate_signing_key
from clearance.audit.merkle import MemoryTree, consistency_proof, inclusion_proof
from clearance.audit.note import sign_note
from clearance_verify.errors import CannotCheck, VerificationFailed
from clearance_verify.merkle import leaf_hash, tree_root, verify_consistency, verify_inclusion
from clearance_verify.note import COSIGNATURE_V1, Note, Vkey, verify_checkpoint
from clearance_verify.tiles import index_path, tile_path, tiles_at
from tests.audit import vectors

VERIFIER = Path(__file__).parents[2] / "verifier"
LEAVES = [leaf_hash(x) for x in vectors.LEAVES]


def test_roots_match_the_rfc_6962_vectors() -> None:
    for size, root in enumerate(vectors.ROOTS):
        assert tree_root(LEAVES[:size]).hex() == root


def test_inclusion_vectors_verify_and_a_changed_hash_fails() -> None:
    for index, size, proof in vectors.INCLUSION:
        hashes = [bytes.fromhex(h) for h in proof]
        root = bytes.fromhex(vectors.ROOTS[size])
        verify_inclusion(index, size, LEAVES[index], hashes, root)
        with pytest.raises(VerificationFailed, match="does not lead to the checkpoint's root"):
            verify_inclusion(index, size, LEAVES[index], [*hashes[:-1], bytes(32)], root)
        if size > 1:
            with pytest.raises(VerificationFailed):
                verify_inclusion((index + 1) % size, size, LEAVES[index], hashes, root)


def test_consistency_vectors_verify_and_a_fork_fails() -> None:
    for first, second, proof in vectors.CONSISTENCY:
        hashes = [bytes.fromhex(h) for h in proof]
        old, new = bytes.fromhex(vectors.ROOTS[first]), bytes.fromhex(vectors.ROOTS[second])
        verify_consistency(first, second, old, new, hashes)
        if first != second:
            with pytest.raises(VerificationFailed, match="fork"):
                verify_consistency(first, second, bytes(32), new, hashes)
    with pytest.raises(VerificationFailed, match="rollback"):
        verify_consistency(5, 3, bytes(32), bytes(32), [])


def test_agrees_with_clearances_tree_on_every_size_and_index() -> None:
    tree = MemoryTree([i.to_bytes(4, "big") for i in range(70)])
    for size in range(1, 71):
        root = tree.root(size)
        assert tree_root(tree.levels[0][:size]) == root
        for index in range(0, size, 7):
            proof = inclusion_proof(index, size, tree.read)
            verify_inclusion(index, size, tree.levels[0][index], proof, root)
        for first in range(1, size, 5):
            proof = consistency_proof(first, size, tree.read)
            verify_consistency(first, size, tree.root(first), root, proof)


def test_go_signed_note_vector() -> None:
    note = Note.parse(vectors.NOTE_SIGNED)
    key = Vkey.parse(vectors.NOTE_VERIFIER)
    [claim] = note.signed_by(key)
    assert key.verify(claim.data, note.text.encode())
    assert not note.signed_by(Vkey.parse(vectors.OTHER_VERIFIER))


def _signed_checkpoint(size: int = 7) -> tuple[str, NoteSigner]:
    signer = NoteSigner.from_text(generate_signing_key("log.example/audit"))
    body = OurCheckpoint("log.example/audit", size, bytes(range(32))).body()
    return sign_note(body, signer), signer


def test_cosignatures_interoperate_both_ways() -> None:
    note, signer = _signed_checkpoint()
    text = note.partition("\n\n")[0] + "\n"
    cosigner = Cosigner.from_text(generate_witness_key("witness.example/w1"))
    cosigned = note + cosigner.cosign(text, 1_700_000_000)
    log = Vkey.parse(signer.verifier.text)
    witness = Vkey.parse(cosigner.verifier.text, COSIGNATURE_V1)
    verified = verify_checkpoint(cosigned, log, [witness], 1)
    assert verified.checkpoint.size == 7
    assert [(c.witness.name, c.timestamp) for c in verified.cosigned] == [
        ("witness.example/w1", 1_700_000_000)
    ]
    # Clearance's own verifier accepts the line as parsed here; a changed byte fails here.
    line = cosigned.splitlines()[-1]
    assert CosignatureVerifier.from_text(witness.text).verify(text, line) is not None
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[-1] ^= 1
    forged = note + f"\u2014 witness.example/w1 {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(VerificationFailed, match=r"cosignature of witness witness\.example/w1"):
        verify_checkpoint(forged, log, [witness], 1)


def test_checkpoint_failures_name_the_key() -> None:
    note, signer = _signed_checkpoint()
    ours = Vkey.parse(signer.verifier.text)
    other = Vkey.parse(
        NoteSigner.from_text(generate_signing_key("log.example/audit")).verifier.text
    )
    with pytest.raises(VerificationFailed) as failed:
        verify_checkpoint(note, other)
    assert str(failed.value) == (
        f"checkpoint: no signature by the log key {other.label} (signed by: {ours.label})"
    )
    with pytest.raises(CannotCheck, match="not a witness key"):
        Vkey.parse(other.text, COSIGNATURE_V1)
    with pytest.raises(VerificationFailed, match=r"signature of log key .* is invalid"):
        verify_checkpoint(note.replace("\n7\n", "\n8\n"), ours)
    padded = sign_note(note.partition("\n\n")[0].replace("\n7\n", "\n07\n") + "\n", signer)
    with pytest.raises(VerificationFailed, match="malformed checkpoint size '07'"):
        verify_checkpoint(padded, ours)


def test_tile_paths() -> None:
    assert index_path(1234067) == "x001/x234/067"
    assert index_path(5) == "005"
    assert tile_path(None, 1, 44) == "tile/entries/001.p/44"
    assert tile_path(1, 0, 256) == "tile/1/000"
    assert tiles_at(0, 300) == [(0, 256), (1, 44)]
    assert tiles_at(1, 300) == [(0, 1)]
    assert tiles_at(2, 300) == []


def test_the_verifier_depends_only_on_cryptography_and_never_imports_clearance() -> None:
    project = tomllib.loads((VERIFIER / "pyproject.toml").read_text())["project"]
    assert project["dependencies"] == ["cryptography>=43"]
    for path in (VERIFIER / "src/clearance_verify").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                assert top != "clearance", f"{path.name} imports {name}"
