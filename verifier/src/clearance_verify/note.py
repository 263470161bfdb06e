"""C2SP signed-note, tlog-checkpoint and tlog-cosignature (cosignature/v1).

A note is its text (ending in a newline), a blank line, and signature lines
`— <key name> base64(4-byte key id || signature)`. A verifier key is
`<name>+<key id, 8 hex>+base64(<signature type> || <public key>)`; the key id is
SHA-256(name || "\\n" || type || public key)[:4]. Type 0x01 is a plain Ed25519 note signature
(the log's); type 0x04 is an Ed25519 cosignature/v1 (a witness's), whose signature is an 8-byte
big-endian timestamp followed by the Ed25519 signature over
"cosignature/v1\\ntime <timestamp>\\n" + the note text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from clearance_verify.errors import CannotCheck, VerificationFailed
from clearance_verify.merkle import HASH_SIZE

ED25519 = 0x01  # C2SP signed-note: Ed25519 signature over the note text
COSIGNATURE_V1 = 0x04  # C2SP tlog-cosignature: timestamped Ed25519 cosignature
DASH = "\u2014 "  # an em dash and a space start every signature line
MAX_SIGNATURES = 100  # as golang.org/x/mod/sumdb/note: more is a malformed note


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VerificationFailed(f"{what}: not valid base64") from exc


@dataclass(frozen=True, slots=True)
class Vkey:
    """A C2SP signed-note verifier key."""

    name: str
    key_id: bytes
    kind: int  # ED25519 (a log) or COSIGNATURE_V1 (a witness)
    public: bytes
    text: str

    @classmethod
    def parse(cls, text: str, kind: int | None = None) -> Vkey:
        text = text.strip()
        parts = text.split("+", 2)
        if len(parts) != 3 or not parts[0] or any(c.isspace() for c in parts[0]):
            raise CannotCheck(f"malformed verifier key {text[:60]!r}: want name+keyid+base64")
        name, hex_id, b64 = parts
        try:
            raw = base64.b64decode(b64, validate=True)
            key_id = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError) as exc:
            raise CannotCheck(f"malformed verifier key for {name!r}") from exc
        if len(key_id) != 4 or len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE_V1):
            raise CannotCheck(f"verifier key for {name!r} is not an Ed25519 key (type 01 or 04)")
        if kind is not None and raw[0] != kind:
            want = "a log key (type 0x01)" if kind == ED25519 else "a witness key (type 0x04)"
            raise CannotCheck(f"verifier key for {name!r} is not {want}")
        if key_id_of(name, raw[0], raw[1:]) != key_id:
            raise CannotCheck(f"verifier key for {name!r}: the key id does not match the key")
        return cls(name, key_id, raw[0], raw[1:], text)

    @property
    def label(self) -> str:
        return f"{self.name}+{self.key_id.hex()}"

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def key_id_of(name: str, kind: int, public: bytes) -> bytes:
    """C2SP signed-note: key id = SHA-256(name || 0x0A || type || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public).digest()[:4]


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    key_id: bytes
    data: bytes  # what follows the key id


@dataclass(frozen=True, slots=True)
class Note:
    text: str  # ends in a newline; what every signature covers
    signatures: tuple[Signature, ...]

    @classmethod
    def parse(cls, note: str) -> Note:
        """C2SP signed-note "Format": text, then a blank line, then signature lines."""
        text, sep, block = note.rpartition("\n\n")
        if not sep or not block.endswith("\n"):
            raise VerificationFailed("malformed signed note: no signature block")
        text += "\n"
        if any(ord(c) < 0x20 and c != "\n" for c in note):
            raise VerificationFailed("malformed signed note: control characters")
        lines = block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise VerificationFailed("malformed signed note: too many signatures")
        signatures = []
        for line in lines:
            if not line.startswith(DASH):
                raise VerificationFailed(f"malformed signature line {line[:60]!r}")
            name, space, b64 = line[len(DASH) :].partition(" ")
            raw = _b64(b64, f"signature of {name!r}")
            if not space or not name or len(raw) < 5:
                raise VerificationFailed(f"malformed signature line {line[:60]!r}")
            signatures.append(Signature(name, raw[:4], raw[4:]))
        return cls(text, tuple(signatures))

    def signed_by(self, key: Vkey) -> list[Signature]:
        """Lines that claim `key` (same name and key id); verifiers ignore all others."""
        return [s for s in self.signatures if s.name == key.name and s.key_id == key.key_id]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """C2SP tlog-checkpoint: origin, decimal size, base64 root, then optional extension lines."""

    origin: str
    size: int
    root: bytes
    note: str  # the whole signed note, as received

    @classmethod
    def parse_text(cls, text: str, note: str) -> Checkpoint:
        lines = text.split("\n")[:-1]
        if len(lines) < 3 or not lines[0] or any(not line for line in lines):
            raise VerificationFailed("malformed checkpoint: want origin, size and root lines")
        origin, size_text, root_text = lines[:3]
        if not (size_text.isascii() and size_text.isdigit()) or (
            len(size_text) > 1 and size_text[0] == "0"
        ):
            raise VerificationFailed(f"malformed checkpoint size {size_text[:30]!r}")
        root = _b64(root_text, "checkpoint root")
        if len(root) != HASH_SIZE or int(size_text) >= 1 << 64:
            raise VerificationFailed("malformed checkpoint: root or size out of range")
        return cls(origin, int(size_text), root, note)


@dataclass(frozen=True, slots=True)
class Cosigned:
    witness: Vkey
    timestamp: int


@dataclass(frozen=True, slots=True)
class VerifiedCheckpoint:
    checkpoint: Checkpoint
    cosigned: tuple[Cosigned, ...]


def cosigned_message(text: str, timestamp: int) -> bytes:
    """C2SP tlog-cosignature "Ed25519 signed message"."""
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def verify_checkpoint(
    note: str,
    log: Vkey,
    witnesses: Sequence[Vkey] = (),
    quorum: int = 0,
    *,
    origin: str | None = None,
) -> VerifiedCheckpoint:
    """The log's signature, the checkpoint body, and a quorum of valid witness cosignatures."""
    parsed = Note.parse(note)
    claims = parsed.signed_by(log)
    if not claims:
        present = ", ".join(sorted({f"{s.name}+{s.key_id.hex()}" for s in parsed.signatures}))
        raise VerificationFailed(
            f"checkpoint: no signature by the log key {log.label} (signed by: {present or 'none'})"
        )
    if not any(len(s.data) == 64 and log.verify(s.data, parsed.text.encode()) for s in claims):
        raise VerificationFailed(f"checkpoint: the signature of log key {log.label} is invalid")
    checkpoint = Checkpoint.parse_text(parsed.text, note)
    if origin is not None and checkpoint.origin != origin:
        raise VerificationFailed(
            f"checkpoint: origin {checkpoint.origin!r} is not the expected {origin!r}"
        )
    cosigned = []
    for witness in witnesses:
        found = verify_cosignature(parsed, witness)
        if found is not None:
            cosigned.append(found)
    if len(cosigned) < quorum:
        missing = [w.label for w in witnesses if w not in {c.witness for c in cosigned}]
        raise VerificationFailed(
            f"checkpoint: {len(cosigned)} of the {quorum} witness cosignatures required "
            f"(none valid from: {', '.join(missing)})"
        )
    return VerifiedCheckpoint(checkpoint, tuple(cosigned))


def verify_cosignature(note: Note, witness: Vkey) -> Cosigned | None:
    """The witness's cosignature/v1 on the note, None if it has none; a line that claims the
    witness's key but does not verify is a failure naming the witness."""
    claims = note.signed_by(witness)
    if not claims:
        return None
    for claim in claims:
        if len(claim.data) != 8 + 64:
            raise VerificationFailed(f"cosignature of witness {witness.label} is malformed")
        timestamp = int.from_bytes(claim.data[:8], "big")
        if timestamp >= 1 << 63:
            raise VerificationFailed(f"cosignature of witness {witness.label}: bad timestamp")
        if witness.verify(claim.data[8:], cosigned_message(note.text, timestamp)):
            return Cosigned(witness, timestamp)
    raise VerificationFailed(f"cosignature of witness {witness.label} is invalid")
