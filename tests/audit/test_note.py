"""C2SP signed-note keys and signatures (Go sumdb/note vectors) and tlog-checkpoints."""

from __future__ import annotations

import pytest

from clearance.audit import merkle
from clearance.audit.checkpoint import Checkpoint, CheckpointSigner, open_checkpoint
from clearance.audit.keys import (
    NoteSigner,
    NoteVerifier,
    generate_signing_key,
    load_signer,
    verifier_key,
)
from clearance.audit.note import open_note, sign_note
from clearance.errors import ConfigError, InvalidInput, VerificationError
from tests.audit.vectors import (
    NOTE_SIGNED,
    NOTE_SIGNER,
    NOTE_TEXT,
    NOTE_VERIFIER,
    OTHER_SIGNATURE,
    OTHER_VERIFIER,
)


def test_go_vectors_sign_and_verify() -> None:
    signer = NoteSigner.from_text(NOTE_SIGNER)
    assert signer.verifier.text == NOTE_VERIFIER
    assert verifier_key(NOTE_SIGNER) == NOTE_VERIFIER
    assert sign_note(NOTE_TEXT, signer) == NOTE_SIGNED  # Ed25519 is deterministic
    verifier = NoteVerifier.from_text(NOTE_VERIFIER)
    assert open_note(NOTE_SIGNED, verifier) == NOTE_TEXT
    # A second signature by an unknown key is ignored; our key must still be among them.
    assert open_note(NOTE_SIGNED + OTHER_SIGNATURE, verifier) == NOTE_TEXT
    with pytest.raises(VerificationError):
        open_note(NOTE_SIGNED, NoteVerifier.from_text(OTHER_VERIFIER))


@pytest.mark.parametrize(
    "note",
    [
        NOTE_SIGNED.replace("problem,", "problem;"),
        NOTE_SIGNED[:60] + "ABCD" + NOTE_SIGNED[60:],
        NOTE_SIGNED.replace("x08go", "xxxxx"),
        NOTE_TEXT,
        NOTE_SIGNED + "Unexpected line.\n",
        "\x01" + NOTE_SIGNED,
    ],
)
def test_altered_notes_fail(note: str) -> None:
    with pytest.raises(VerificationError):
        open_note(note, NoteVerifier.from_text(NOTE_VERIFIER))


def test_mangled_keys_are_rejected() -> None:
    for i in range(len(NOTE_VERIFIER)):
        mangled = NOTE_VERIFIER[:i] + chr(ord(NOTE_VERIFIER[i]) + 1) + NOTE_VERIFIER[i + 1 :]
        with pytest.raises(InvalidInput):
            NoteVerifier.from_text(mangled)
    for cut in (NOTE_SIGNER[:-1], NOTE_SIGNER[1:], NOTE_SIGNER.replace("c74f", "c74e")):
        with pytest.raises(InvalidInput):
            NoteSigner.from_text(cut)


def test_generated_key_roundtrip(tmp_path: pytest.TempPathFactory) -> None:
    text = generate_signing_key("example.com/log")
    assert text.startswith("PRIVATE+KEY+example.com/log+")
    path = tmp_path / "key"  # type: ignore[operator]
    path.write_text(text + "\n")
    signer = load_signer(path)
    name, key_id, _ = signer.verifier.text.split("+", 2)
    assert (name, int(key_id, 16)) == ("example.com/log", signer.key_id)
    with pytest.raises(InvalidInput):
        generate_signing_key("bad name")
    with pytest.raises(ConfigError):
        load_signer(path.with_name("missing"))  # type: ignore[attr-defined]


def test_checkpoint_body_and_signature() -> None:
    signer = NoteSigner.from_text(NOTE_SIGNER)
    root = merkle.MemoryTree([b"a"]).root()
    checkpoint = Checkpoint("example.com/log", 1, root)
    assert Checkpoint.parse(checkpoint.body()) == checkpoint
    assert checkpoint.body().splitlines()[:2] == ["example.com/log", "1"]
    note = sign_note(checkpoint.body(), signer)
    assert open_checkpoint(note, signer.verifier, "example.com/log") == checkpoint
    with pytest.raises(VerificationError):
        open_checkpoint(note, signer.verifier, "other.com/log")
    for bad in ["o\n01\nAAAA\n", "o\n1\n" + "A" * 42 + "==\n", "o\n1\n"]:
        with pytest.raises(VerificationError):
            Checkpoint.parse(bad)


def test_signer_refuses_a_checkpoint_that_does_not_extend_the_last() -> None:
    signer = CheckpointSigner(NoteSigner.from_text(NOTE_SIGNER), "example.com/log")
    honest = merkle.MemoryTree([b"%d" % i for i in range(10)])
    forked = merkle.MemoryTree([b"%d" % i for i in range(5)] + [b"x%d" % i for i in range(7)])

    def prove(tree: merkle.MemoryTree) -> object:
        return lambda m, n: merkle.consistency_proof(m, n, tree.read)

    signer.sign(5, honest.root(5), prove(honest))  # type: ignore[arg-type]
    signer.sign(10, honest.root(10), prove(honest))  # type: ignore[arg-type]
    with pytest.raises(VerificationError, match="refusing"):
        signer.sign(12, forked.root(12), prove(forked))  # type: ignore[arg-type]
    with pytest.raises(VerificationError, match="refusing"):
        signer.sign(10, forked.root(10), prove(forked))  # type: ignore[arg-type]
    assert signer.last == Checkpoint("example.com/log", 10, honest.root(10))
