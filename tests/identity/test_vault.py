"""The evidence vault: AES-256-GCM per file under a wrapped data key; tampering fails closed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from clearance.errors import ConfigError, NotFound, VerificationError
from clearance.identity.vault import (
    EvidenceVault,
    generate_master_key,
    load_master_key,
    parse_master_key,
)
from clearance.setup import write_instance

IMAGE = b"\xff\xd8\xff\xe0 a JPEG that holds a face " * 50


def sealed_path(vault: EvidenceVault, evidence_id: str, root: Path) -> Path:
    return root / "evidence" / evidence_id[:2] / evidence_id


def test_round_trip_and_nothing_readable_at_rest(vault: EvidenceVault, tmp_path: Path) -> None:
    stored = vault.put(IMAGE)
    path = sealed_path(vault, stored.id, tmp_path)
    raw = path.read_bytes()
    assert b"JPEG" not in raw and b"face" not in raw
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert vault.get(stored.id) == IMAGE
    # A fresh data key and nonce per file: the same image never seals to the same bytes.
    assert vault.put(IMAGE).digest != stored.digest


@pytest.mark.parametrize("where", [0, 6, 12, 50, 70, -1], ids=lambda i: f"byte{i}")
def test_a_flipped_byte_fails_to_decrypt(vault: EvidenceVault, tmp_path: Path, where: int) -> None:
    stored = vault.put(IMAGE)
    path = sealed_path(vault, stored.id, tmp_path)
    data = bytearray(path.read_bytes())
    data[where] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(VerificationError):
        vault.get(stored.id)


def test_a_file_moved_to_another_id_fails(vault: EvidenceVault, tmp_path: Path) -> None:
    first, second = vault.put(IMAGE), vault.put(b"another person's selfie")
    sealed_path(vault, second.id, tmp_path).write_bytes(
        sealed_path(vault, first.id, tmp_path).read_bytes()
    )
    with pytest.raises(VerificationError):
        vault.get(second.id)


def test_another_master_key_cannot_read(vault: EvidenceVault, tmp_path: Path) -> None:
    stored = vault.put(IMAGE)
    other = EvidenceVault(tmp_path / "evidence", parse_master_key(generate_master_key()))
    with pytest.raises(VerificationError):
        other.get(stored.id)


def test_erase(vault: EvidenceVault) -> None:
    stored = vault.put(IMAGE)
    assert vault.erase(stored.id) and not vault.exists(stored.id)
    assert not vault.erase(stored.id)
    with pytest.raises(NotFound):
        vault.get(stored.id)
    with pytest.raises(NotFound):  # ids are never paths
        vault.get("../../etc/passwd")


def test_derived_keys_are_separate_and_stable(vault: EvidenceVault) -> None:
    assert vault.derive_key("document-digest") == vault.derive_key("document-digest")
    assert vault.derive_key("document-digest") != vault.derive_key("other")


def test_init_writes_an_owner_only_master_key_and_never_replaces_it(tmp_path: Path) -> None:
    write_instance(tmp_path)
    key_file = tmp_path / "identity-master.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = load_master_key(key_file)
    assert len(key) == 32
    write_instance(tmp_path, force=True)
    assert load_master_key(key_file) == key  # replacing it would orphan every file


@pytest.mark.parametrize(
    "text", ["", "clearance-vault-key-v1:!!", "clearance-vault-key-v1:AAAA", "PRIVATE+KEY+x"]
)
def test_malformed_master_keys(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_master_key(text)
