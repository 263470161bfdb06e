"""C2SP tlog-cosignature, Ed25519 (`cosignature/v1`): a witness's statement that a checkpoint is
the largest consistent tree it has seen of that log, as of a time.

    signature line:  — <witness name> base64(key id || u64 timestamp || Ed25519 signature)
    signed message:  "cosignature/v1\\n" "time <timestamp>\\n" <the checkpoint's note text>
    key id:          SHA-256(name || "\\n" || 0x04 || public key)[:4]
    keys:            vkey `name+keyid+base64(0x04 || public key)`, signer key
                     `PRIVATE+KEY+name+keyid+base64(0x04 || seed)` (the signed-note forms)
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from clearance.audit.keys import (
    generate_private,
    load_key_file,
    parse_private,
    parse_vkey,
    vkey_text,
)
from clearance.audit.note import SIGNATURE_PREFIX, check_text
from clearance.errors import InvalidInput, VerificationError

ALG_COSIGNATURE_V1 = 0x04  # C2SP tlog-cosignature: the key id's signature type byte
MAX_TIMESTAMP = (1 << 63) - 1  # tlog-cosignature: "MUST NOT exceed 2^63 - 1"


def message(text: str, timestamp: int) -> bytes:
    """The bytes a cosignature/v1 signs: the header line, the time line, then the checkpoint's
    whole note text (extension lines included, signature lines not)."""
    check_text(text)
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise InvalidInput("cosignature timestamp out of range")
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


@dataclass(frozen=True, slots=True)
class Cosignature:
    name: str
    timestamp: int  # POSIX seconds
    line: str  # the note signature line, with its newline


@dataclass(frozen=True, slots=True)
class CosignatureVerifier:
    """A witness's public key, as a log or an auditor trusts it."""

    name: str
    key_id: int
    public: Ed25519PublicKey

    @classmethod
    def from_text(cls, text: str) -> CosignatureVerifier:
        return cls(*parse_vkey(text, ALG_COSIGNATURE_V1))

    @property
    def text(self) -> str:
        return vkey_text(self.name, self.public, ALG_COSIGNATURE_V1)

    def verify(self, text: str, line: str) -> Cosignature | None:
        """The cosignature in `line` if it is this key's; None if the line is another key's.
        Raise `VerificationError` if it claims to be this key's and does not verify."""
        parsed = _parse_line(line)
        if parsed is None:
            return None
        name, raw = parsed
        if name != self.name or len(raw) < 4 or int.from_bytes(raw[:4], "big") != self.key_id:
            return None
        if len(raw) != 4 + 8 + 64:
            raise VerificationError(f"malformed cosignature from witness {self.name}")
        timestamp = int.from_bytes(raw[4:12], "big")
        if timestamp > MAX_TIMESTAMP:
            raise VerificationError(f"cosignature from witness {self.name}: timestamp too large")
        try:
            self.public.verify(raw[12:], message(text, timestamp))
        except InvalidSignature:
            raise VerificationError(f"invalid cosignature from witness {self.name}") from None
        return Cosignature(name, timestamp, line if line.endswith("\n") else line + "\n")


@dataclass(frozen=True, slots=True)
class Cosigner:
    """A witness's private key: signs cosignature/v1 lines."""

    name: str
    key_id: int
    private: Ed25519PrivateKey

    @classmethod
    def from_text(cls, text: str) -> Cosigner:
        return cls(*parse_private(text, ALG_COSIGNATURE_V1))

    @classmethod
    def load(cls, path: Path) -> Cosigner:
        return load_key_file(path, "witness key", cls.from_text)

    @property
    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self.name, self.key_id, self.private.public_key())

    def cosign(self, text: str, timestamp: int) -> str:
        """The signature line (ending in a newline) cosigning the checkpoint note text `text`."""
        signature = self.private.sign(message(text, timestamp))
        raw = self.key_id.to_bytes(4, "big") + timestamp.to_bytes(8, "big") + signature
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(raw).decode()}\n"


def generate_witness_key(name: str) -> str:
    """A fresh witness signer key (signed-note private-key form, type 0x04)."""
    return generate_private(name, ALG_COSIGNATURE_V1)


def split_note(note: str) -> tuple[str, list[str]]:
    """A signed note's text (ending in a newline) and its signature lines (each with its
    newline), per C2SP signed-note: the text, a blank line, then one or more signature lines."""
    text, sep, sigs = note.rpartition("\n\n")
    if not sep or not sigs.endswith("\n"):
        raise VerificationError("malformed signed note")
    text += "\n"
    check_text(text)
    lines = [line + "\n" for line in sigs[:-1].split("\n")]
    if any(not line.startswith(SIGNATURE_PREFIX) for line in lines):
        raise VerificationError("malformed signature line in note")
    return text, lines


def cosignatures(
    text: str, lines: Iterable[str], verifiers: Sequence[CosignatureVerifier]
) -> dict[str, Cosignature]:
    """The valid cosignatures among `lines`, by witness name; lines of unknown keys are ignored
    (tlog-witness: "The client MUST ignore any cosignatures from unknown keys"), a line that
    claims a known key and does not verify raises `VerificationError`."""
    found: dict[str, Cosignature] = {}
    for line in lines:
        for verifier in verifiers:
            cosignature = verifier.verify(text, line)
            if cosignature is not None:
                found.setdefault(cosignature.name, cosignature)
    return found


def _parse_line(line: str) -> tuple[str, bytes] | None:
    line = line.rstrip("\n")
    if not line.startswith(SIGNATURE_PREFIX):
        return None
    name, _, b64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
    try:
        return name, base64.b64decode(b64, validate=True)
    except ValueError:  # binascii.Error, or a str that is not ASCII
        return None
