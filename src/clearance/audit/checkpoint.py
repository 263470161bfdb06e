"""C2SP tlog-checkpoint bodies, signed as C2SP signed-notes, and a signer that never forks.

<origin>
<tree size, decimal>
<base64 root hash>
"""

from __future__ import annotations

import base64
import hmac
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from clearance.audit.keys import NoteSigner, NoteVerifier
from clearance.audit.merkle import HASH_SIZE, verify_consistency
from clearance.audit.note import open_note, sign_note
from clearance.errors import AuditUnavailable, VerificationError


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        lines = body.split("\n")
        if len(lines) < 4 or lines[-1] != "" or not lines[0]:
            raise VerificationError("malformed checkpoint")
        origin, size_text, root_text = lines[0], lines[1], lines[2]
        # C2SP tlog-checkpoint: the size is an ASCII decimal uint64 without leading zeroes
        # (`isdigit` alone also takes "²", and `int` refuses over 4,300 digits).
        if (
            not (size_text.isascii() and size_text.isdigit() and len(size_text) <= 20)
            or (size_text != "0" and size_text.startswith("0"))
            or int(size_text) >= 1 << 64
        ):
            raise VerificationError("malformed checkpoint size")
        try:
            root = base64.b64decode(root_text, validate=True)
        except ValueError as exc:  # binascii.Error, or a str that is not ASCII
            raise VerificationError("malformed checkpoint root") from exc
        if len(root) != HASH_SIZE:
            raise VerificationError("malformed checkpoint root")
        return cls(origin, int(size_text), root)


def open_checkpoint(note: str, verifier: NoteVerifier, origin: str | None = None) -> Checkpoint:
    """Verify the signature and parse the body; the origin must match when one is expected."""
    checkpoint = Checkpoint.parse(open_note(note, verifier))
    if origin is not None and checkpoint.origin != origin:
        raise VerificationError(f"checkpoint is for log {checkpoint.origin!r}, not {origin!r}")
    return checkpoint


Prover = Callable[[int, int], Sequence[bytes]]


class CheckpointSigner:
    """Signs checkpoints, and refuses any that does not extend the last one it accepted.

    `prove(first, second)` must return the RFC 9162 consistency proof between two sizes of the
    tree being signed; the signer checks it against the roots before it signs (DESIGN.md: never
    sign two inconsistent checkpoints).

    After an ambiguous storage error the signer is `stale` (Sunlight's "failed but persisted":
    a checkpoint may or may not have been stored): it refuses to sign until `reload` has adopted
    the checkpoint that storage actually holds.
    """

    def __init__(self, signer: NoteSigner, origin: str) -> None:
        self._signer = signer
        self.origin = origin
        self.last: Checkpoint | None = None
        self.stale = False
        self._lock = threading.Lock()

    @property
    def verifier(self) -> NoteVerifier:
        return self._signer.verifier

    def accept(self, note: str, prove: Prover) -> Checkpoint:
        """Adopt a stored checkpoint signed by our key as the latest, if it extends ours."""
        checkpoint = open_checkpoint(note, self.verifier, self.origin)
        with self._lock:
            self._check_extends(checkpoint, prove)
            if self.last is None or checkpoint.size >= self.last.size:
                self.last = checkpoint
            self.stale = False
        return checkpoint

    def invalidate(self) -> None:
        """A write of a signed checkpoint failed ambiguously: stop signing until `reload`."""
        with self._lock:
            self.stale = True

    def reload(self, note: str | None, prove: Prover) -> None:
        """Adopt the stored latest checkpoint (None: storage holds none) and resume signing."""
        if note is not None:
            self.accept(note, prove)
            return
        with self._lock:
            if self.last is not None:
                # We signed a checkpoint that storage no longer holds: never sign over the loss.
                raise VerificationError(f"storage lost the signed checkpoint at {self.last.size}")
            self.stale = False

    def sign(self, size: int, root: bytes, prove: Prover) -> str:
        checkpoint = Checkpoint(self.origin, size, root)
        with self._lock:
            if self.stale:
                raise AuditUnavailable("checkpoint signing is stopped until state is reloaded")
            self._check_extends(checkpoint, prove)
            note = sign_note(checkpoint.body(), self._signer)
            self.last = checkpoint
        return note

    def _check_extends(self, new: Checkpoint, prove: Prover) -> None:
        last = self.last
        if last is None:
            return
        if new.size < last.size:
            old, young = new, last
        else:
            old, young = last, new
        if old.size == young.size:
            if not hmac.compare_digest(old.root, young.root):
                raise VerificationError(f"refusing to sign a fork at size {new.size}")
            return
        try:
            proof = prove(old.size, young.size)
            verify_consistency(old.size, young.size, old.root, young.root, proof)
        except VerificationError as exc:
            raise VerificationError(
                f"refusing to sign size {new.size}: it does not extend size {last.size}"
            ) from exc
