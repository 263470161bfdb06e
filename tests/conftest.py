"""Shared fixtures: every storage test runs on real SQLite and real PostgreSQL.

PostgreSQL comes from CLEARANCE_TEST_POSTGRES_URL (default the local server). When it cannot be
reached the PostgreSQL half is skipped with a visible warning, unless CLEARANCE_REQUIRE_POSTGRES=1,
in which case the run fails: CI must never pass by skipping the database.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance.audit.keys import generate_signing_key
from clearance.audit.service import AuditLog
from clearance.config import AuditSettings
from clearance.identity.vault import EvidenceVault, generate_master_key, parse_master_key
from clearance.store import connect, migrate

POSTGRES_URL = os.environ.get(
    "CLEARANCE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("CLEARANCE_REQUIRE_POSTGRES") == "1"
_pg_reachable: bool | None = None


def postgres_reachable() -> bool:
    global _pg_reachable
    if _pg_reachable is None:
        probe = connect(POSTGRES_URL)
        try:
            with probe.connect() as conn:
                conn.execute(sa.text("select 1"))
            _pg_reachable = True
        except sa.exc.OperationalError:
            _pg_reachable = False
        finally:
            probe.dispose()
    return _pg_reachable


def require_postgres() -> None:
    if postgres_reachable():
        return
    if REQUIRE_POSTGRES:
        pytest.fail(
            f"PostgreSQL required (CLEARANCE_REQUIRE_POSTGRES=1) but {POSTGRES_URL} is down"
        )
    warnings.warn(  # noqa: B028 - shown in the summary so a skipped half is never silent
        pytest.PytestWarning(f"PostgreSQL at {POSTGRES_URL} unreachable: skipping PostgreSQL tests")
    )
    pytest.skip("PostgreSQL unreachable")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database URL: a SQLite file, or a throwaway PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'clearance.db'}"
        engine = connect(url)
        migrate(engine)
        engine.dispose()
        yield url
        return
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = connect(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    engine = connect(url)
    migrate(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = connect(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def audit(engine: Engine, tmp_path: Path) -> Iterator[AuditLog]:
    """An audit log on `engine`, with a throwaway signing key."""
    key = tmp_path / "audit.key"
    key.write_text(generate_signing_key("test.local/audit") + "\n")
    log = AuditLog(engine, AuditSettings(signing_key_file=key, origin="test.local/audit"))
    yield log
    log.close()


@pytest.fixture
def vault(tmp_path: Path) -> EvidenceVault:
    """An evidence vault under a fresh master key."""
    return EvidenceVault(tmp_path / "evidence", parse_master_key(generate_master_key()))
