"""An audit log on the shared `engine` fixture (real SQLite file and real PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from clearance.audit import entries
from clearance.audit.keys import NoteVerifier, generate_signing_key, load_signer
from clearance.audit.service import AuditLog
from clearance.config import AuditSettings

ORIGIN = "test.clearance.local/audit"


@pytest.fixture
def audit_settings(tmp_path: Path) -> AuditSettings:
    key = tmp_path / "audit-signing.key"
    key.write_text(generate_signing_key(ORIGIN) + "\n")
    return AuditSettings(signing_key_file=key, origin=ORIGIN, checkpoint_interval_seconds=0.05)


@pytest.fixture
def verifier(audit_settings: AuditSettings) -> NoteVerifier:
    return load_signer(audit_settings.signing_key_file).verifier


@pytest.fixture
def audit_log(engine: Engine, audit_settings: AuditSettings) -> Iterator[AuditLog]:
    log = AuditLog(engine, audit_settings)
    yield log
    log.close()


FIXED = datetime(2026, 1, 1, tzinfo=UTC)


def entry(i: int, actor: str = "test") -> bytes:
    """A real (schema-valid) entry, the same bytes for the same `i`, distinct for each."""
    return entries.admin_action(
        actor=actor, action="test.append", target=str(i), details={"i": i}, time=FIXED
    )
