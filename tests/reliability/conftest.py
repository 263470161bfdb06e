"""Fixtures for the reliability tests: a signing key and settings for a log under test."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearance.audit.keys import NoteVerifier, load_signer
from clearance.config import AuditSettings
from tests.reliability.logs import make_settings


@pytest.fixture
def audit_settings(tmp_path: Path) -> AuditSettings:
    return make_settings(tmp_path)


@pytest.fixture
def verifier(audit_settings: AuditSettings) -> NoteVerifier:
    return load_signer(audit_settings.signing_key_file).verifier
