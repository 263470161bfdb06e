"""Evidence vault: document photos, selfies and liveness frames, encrypted at rest.

Envelope encryption (NIST SP 800-57 Part 1 §6.1.1 data and key-wrapping keys): every file gets
a fresh 256-bit data key; the content is sealed with AES-256-GCM (NIST SP 800-38D, a 96-bit
random nonce) and the data key is wrapped with the master key by AES Key Wrap (RFC 3394,
NIST SP 800-38F). A sealed file is

    magic "CLVE\\x01" | master key id (4) | wrapped data key (40) | nonce (12) | ciphertext+tag

and the GCM additional data binds the header and the evidence id, so a flipped byte, a file
swapped between ids or the wrong master key all fail as a `VerificationError`. Erasing a file
erases its wrapped key with it. The master key itself never leaves this module.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from clearance.config import IdentitySettings
from clearance.errors import ConfigError, NotFound, VerificationError

MAGIC = b"CLVE\x01"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # NIST SP 800-38D §8.2.2: 96-bit random nonces, one per data key here
WRAPPED_BYTES = KEY_BYTES + 8  # RFC 3394 §2.2.1: n+1 64-bit blocks
_HEADER = len(MAGIC) + 4 + WRAPPED_BYTES + NONCE_BYTES
_ID = re.compile(r"[0-9a-f]{32}")
_KEY_PREFIX = "clearance-vault-key-v1:"


def generate_master_key() -> str:
    """A new master key in its text form (one line, for the master key file)."""
    return _KEY_PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def parse_master_key(text: str) -> bytes:
    text = text.strip()
    if not text.startswith(_KEY_PREFIX):
        raise ConfigError("the identity master key file is not a clearance vault key")
    try:
        key = base64.b64decode(text[len(_KEY_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII characters
        raise ConfigError("the identity master key file is malformed") from None
    if len(key) != KEY_BYTES:
        raise ConfigError("the identity master key is not 256 bits")
    return key


def load_master_key(path: Path) -> bytes:
    try:
        return parse_master_key(path.read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the identity master key {path}: {exc}") from exc


def key_id(master: bytes) -> bytes:
    """Names the master key in each file (for rotation) without revealing anything about it."""
    return hashlib.sha256(b"clearance vault key id\x00" + master).digest()[:4]


def derive_key(master: bytes, purpose: str) -> bytes:
    """A separate key for another use of the master secret (RFC 5869 HKDF-SHA256, `info`)."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=None,
        info=b"clearance/identity/" + purpose.encode(),
    )
    return hkdf.derive(master)


def seal(master: bytes, evidence_id: str, plaintext: bytes) -> bytes:
    data_key = AESGCM.generate_key(bit_length=256)
    header = MAGIC + key_id(master) + aes_key_wrap(master, data_key)
    nonce = secrets.token_bytes(NONCE_BYTES)
    header += nonce
    return header + AESGCM(data_key).encrypt(nonce, plaintext, header + evidence_id.encode())


def unseal(master: bytes, evidence_id: str, sealed: bytes) -> bytes:
    if len(sealed) < _HEADER + 16 or not sealed.startswith(MAGIC):
        raise VerificationError("the evidence file is not a sealed vault file")
    start = len(MAGIC)
    if sealed[start : start + 4] != key_id(master):
        raise VerificationError("the evidence was sealed under another master key")
    wrapped = sealed[start + 4 : start + 4 + WRAPPED_BYTES]
    nonce = sealed[_HEADER - NONCE_BYTES : _HEADER]
    try:
        data_key = aes_key_unwrap(master, wrapped)
        return AESGCM(data_key).decrypt(
            nonce, sealed[_HEADER:], sealed[:_HEADER] + evidence_id.encode()
        )
    except (InvalidUnwrap, InvalidTag):
        raise VerificationError("the evidence failed authentication (altered or corrupt)") from None


@dataclass(frozen=True, slots=True)
class StoredEvidence:
    id: str  # 32 hex characters, random
    digest: str  # SHA-256 of the sealed bytes: what the audit log may name


class EvidenceVault:
    """Sealed files under one directory, `<id[:2]>/<id>`, owner-only."""

    def __init__(self, directory: Path, master: bytes) -> None:
        if len(master) != KEY_BYTES:
            raise ConfigError("the identity master key is not 256 bits")
        self._dir = directory
        self._master = master

    @classmethod
    def open(cls, settings: IdentitySettings) -> EvidenceVault:
        return cls(settings.evidence_dir, load_master_key(settings.master_key_file))

    def derive_key(self, purpose: str) -> bytes:
        return derive_key(self._master, purpose)

    def _path(self, evidence_id: str) -> Path:
        if not _ID.fullmatch(evidence_id):
            raise NotFound("no such evidence")
        return self._dir / evidence_id[:2] / evidence_id

    def put(self, plaintext: bytes) -> StoredEvidence:
        evidence_id = secrets.token_hex(16)
        sealed = seal(self._master, evidence_id, plaintext)
        path = self._path(evidence_id)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temp = path.with_suffix(".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(sealed)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)  # readers never see a partial file
        return StoredEvidence(evidence_id, hashlib.sha256(sealed).hexdigest())

    def get(self, evidence_id: str) -> bytes:
        try:
            sealed = self._path(evidence_id).read_bytes()
        except FileNotFoundError:
            raise NotFound("the evidence has been erased or never existed") from None
        return unseal(self._master, evidence_id, sealed)

    def erase(self, evidence_id: str) -> bool:
        """Delete the file (and with it the wrapped data key); False if it was already gone."""
        try:
            self._path(evidence_id).unlink()
        except FileNotFoundError:
            return False
        return True

    def exists(self, evidence_id: str) -> bool:
        return self._path(evidence_id).is_file()
