"""Ed25519 keys in the C2SP signed-note text forms (golang.org/x/mod/sumdb/note).

    signer key:   PRIVATE+KEY+<name>+<key id, 8 hex>+<base64(0x01 || 32-byte seed)>
    verifier key: <name>+<key id, 8 hex>+<base64(0x01 || 32-byte public key)>

C2SP signed-note "Signatures": key id = first 4 bytes of SHA-256(name || 0x0A || 0x01 || pubkey).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from clearance.errors import ConfigError, InvalidInput

ALG_ED25519 = 0x01
K = TypeVar("K")
_NAME = re.compile(r"[^\s+]+")


def check_name(name: str) -> str:
    """C2SP signed-note: a key name is non-empty and holds no "+" and no whitespace."""
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"invalid signed-note key name {name!r}")
    return name


def key_id(name: str, public: bytes, alg: int = ALG_ED25519) -> int:
    """C2SP signed-note: SHA-256(name || "\n" || signature type || public key)[:4]; the type is
    0x01 for a log's Ed25519 key, 0x04 for a witness's cosignature/v1 key (tlog-cosignature)."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public).digest()
    return int.from_bytes(digest[:4], "big")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _decode_key(text: str, what: str, alg: int = ALG_ED25519) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as exc:  # binascii.Error, or a str that is not ASCII
        raise InvalidInput(f"malformed {what}") from exc
    if len(raw) != 33 or raw[0] != alg:
        raise InvalidInput(f"malformed {what}: not an Ed25519 key of type 0x{alg:02x}")
    return raw[1:]


def parse_vkey(text: str, alg: int = ALG_ED25519) -> tuple[str, int, Ed25519PublicKey]:
    """A C2SP verifier key `name+keyid+base64(type || key)`: (name, key id, public key)."""
    # The key's base64 may itself contain "+": split off only the leading fields.
    parts = text.strip().split("+", 2)
    if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        raise InvalidInput("malformed verifier key: want name+keyid+base64")
    name, hex_id, b64 = check_name(parts[0]), parts[1], parts[2]
    raw = _decode_key(b64, "verifier key", alg)
    if key_id(name, raw, alg) != int(hex_id, 16):
        raise InvalidInput("malformed verifier key: key id does not match the key")
    return name, int(hex_id, 16), Ed25519PublicKey.from_public_bytes(raw)


def vkey_text(name: str, public: Ed25519PublicKey, alg: int = ALG_ED25519) -> str:
    raw = _raw_public(public)
    return f"{name}+{key_id(name, raw, alg):08x}+{base64.b64encode(bytes([alg]) + raw).decode()}"


def parse_private(text: str, alg: int = ALG_ED25519) -> tuple[str, int, Ed25519PrivateKey]:
    """A signer key `PRIVATE+KEY+name+keyid+base64(type || seed)`: (name, key id, private key)."""
    parts = text.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise InvalidInput("malformed signer key: want PRIVATE+KEY+name+keyid+base64")
    name, hex_id = check_name(parts[2]), parts[3]
    private = Ed25519PrivateKey.from_private_bytes(_decode_key(parts[4], "signer key", alg))
    if not re.fullmatch(r"[0-9a-f]{8}", hex_id) or int(hex_id, 16) != key_id(
        name, _raw_public(private.public_key()), alg
    ):
        raise InvalidInput("malformed signer key: key id does not match the key")
    return name, int(hex_id, 16), private


def generate_private(name: str, alg: int = ALG_ED25519) -> str:
    """A fresh Ed25519 signer key in the signed-note private-key text form."""
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    kid = key_id(check_name(name), _raw_public(private.public_key()), alg)
    return f"PRIVATE+KEY+{name}+{kid:08x}+{base64.b64encode(bytes([alg]) + seed).decode()}"


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    name: str
    key_id: int
    public: Ed25519PublicKey

    @classmethod
    def from_text(cls, text: str) -> NoteVerifier:
        return cls(*parse_vkey(text))

    @property
    def text(self) -> str:
        return vkey_text(self.name, self.public)

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self.public.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class NoteSigner:
    name: str
    key_id: int
    private: Ed25519PrivateKey

    @classmethod
    def from_text(cls, text: str) -> NoteSigner:
        return cls(*parse_private(text))

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.key_id, self.private.public_key())

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


def generate_signing_key(name: str) -> str:
    """A fresh log signer key (type 0x01) in the signed-note private-key text form."""
    return generate_private(name)


def verifier_key(signer_key: str) -> str:
    """The verifier key text (`name+keyid+base64`) for a signer key text."""
    return NoteSigner.from_text(signer_key).verifier.text


def load_key_file(path: Path, what: str, parse: Callable[[str], K]) -> K:
    """A key file parsed by `parse`; a missing or malformed file is a `ConfigError` naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror}") from exc
    try:
        return parse(text)
    except InvalidInput as exc:
        raise ConfigError(f"{what} {path}: {exc.detail}") from exc


def load_signer(path: Path) -> NoteSigner:
    """Read the signer key written by `clearance init` (settings.audit.signing_key_file)."""
    return load_key_file(path, "audit signing key", NoteSigner.from_text)


def derived_key(signing_key_file: Path, purpose: str) -> bytes:
    """A 32-byte key for one purpose (a pseudonym, a keyed hash of a network, a rate-limit
    subject), derived from the audit signing key: no further secret to keep or rotate."""
    material = signing_key_file.read_bytes()
    return hashlib.sha256(f"clearance/{purpose}\0".encode() + material).digest()
