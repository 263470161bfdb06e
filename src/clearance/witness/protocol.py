"""C2SP tlog-witness `add-checkpoint`: the request body, both ways.

    POST <prefix>/add-checkpoint
    old <size>\\n                  the size of the last checkpoint the witness cosigned (or 0)
    <base64 hash>\\n ...           an RFC 9162 §2.1.4 consistency proof from it, at most 63 lines
    \\n
    <signed checkpoint note>       C2SP tlog-checkpoint, signed by the log, maybe by others

200: one or more cosignature lines.  409: the witness's size ("<size>\\n", text/x.tlog.size),
or the same size with another root (a fork).  400 malformed, 403 no trusted signature,
404 unknown origin, 422 the proof does not verify.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from clearance.audit.checkpoint import Checkpoint
from clearance.audit.cosignature import split_note
from clearance.audit.merkle import HASH_SIZE
from clearance.errors import VerificationError

PATH = "/add-checkpoint"
SIZE_TYPE = "text/x.tlog.size"  # tlog-witness: the media type of a 409's body
MAX_PROOF = 63  # tlog-witness: "The client MUST NOT send more than 63 consistency proof lines"
MAX_BODY = 64 * 1024  # a checkpoint with a few dozen signatures is far smaller


class MalformedRequest(ValueError):
    """The body is not an add-checkpoint request (the witness answers 400)."""


@dataclass(frozen=True, slots=True)
class AddCheckpoint:
    old: int
    proof: list[bytes]
    note: str  # the signed checkpoint, as sent
    text: str  # its note text (what the log and the witnesses sign)
    checkpoint: Checkpoint

    def encode(self) -> bytes:
        return encode(self.old, self.proof, self.note)


def decimal(text: str) -> int:
    """An ASCII decimal with no leading zeroes (tlog-witness, tlog-checkpoint), below 2**63."""
    if (
        not (text.isascii() and text.isdigit() and len(text) <= 19)
        or (text != "0" and text.startswith("0"))
        or int(text) >= 1 << 63
    ):
        raise MalformedRequest(f"not a size: {text[:24]!r}")
    return int(text)


def encode(old: int, proof: list[bytes], note: str) -> bytes:
    if len(proof) > MAX_PROOF:
        raise ValueError("a consistency proof has at most 63 hashes")
    lines = [f"old {old}\n", *(base64.b64encode(h).decode() + "\n" for h in proof), "\n"]
    return ("".join(lines) + note).encode()


def parse(body: bytes) -> AddCheckpoint:
    """Parse and check the framing; signatures and the proof are the witness's to check."""
    if len(body) > MAX_BODY:
        raise MalformedRequest("request body too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest("request body is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise MalformedRequest("no blank line before the checkpoint")
    lines = head.split("\n")
    first = lines[0]
    if not first.startswith("old "):
        raise MalformedRequest("the first line must be `old <size>`")
    old = decimal(first[len("old ") :])
    if len(lines) - 1 > MAX_PROOF:
        raise MalformedRequest("more than 63 consistency proof lines")
    proof = []
    for line in lines[1:]:
        try:
            digest = base64.b64decode(line, validate=True)
        except ValueError:
            raise MalformedRequest("a consistency proof line is not base64") from None
        if len(digest) != HASH_SIZE:
            raise MalformedRequest("a consistency proof line is not a SHA-256 hash")
        proof.append(digest)
    try:
        note_text, _ = split_note(note)
        checkpoint = Checkpoint.parse(note_text)
    except VerificationError as exc:
        raise MalformedRequest(exc.detail) from None
    if old > checkpoint.size:
        raise MalformedRequest(f"old size {old} is larger than the checkpoint's {checkpoint.size}")
    if old == 0 and proof:
        raise MalformedRequest("the proof must be empty when the old size is 0")
    return AddCheckpoint(old, proof, note, note_text, checkpoint)
