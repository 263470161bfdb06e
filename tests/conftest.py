"""Shared fixtures: every storage test runs on real SQLite and real PostgreSQL.

PostgreSQL comes from CLEARANCE_TEST_POSTGRES_URL (default the local server). When it cannot be
reached the PostgreSQL half is skipped with a visible warning, unless CLEARANCE_REQUIRE_POSTGRES=1,
in which case the run fails: CI must never pass by skipping the database.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from xdist.scheduler import LoadScopeScheduling

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


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per session; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "clearance.db"
    engine = connect(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()  # the last connection checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def _postgres_template() -> Iterator[tuple[Engine, sa.URL, str]]:
    """One migrated PostgreSQL database per session; each test gets `CREATE DATABASE ...
    TEMPLATE` of it (a file-level copy, faster than running the migrations again)."""
    require_postgres()
    server = sa.make_url(POSTGRES_URL)
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    template = f"clearance_tmpl_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{template}"'))
    engine = connect(server.set(database=template).render_as_string(hide_password=False))
    migrate(engine)
    engine.dispose()
    try:
        yield admin, server, template
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database URL: a SQLite file, or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "clearance.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    with postgres_database(request.getfixturevalue("_postgres_template")) as url:
        yield url


@contextlib.contextmanager
def postgres_database(template: tuple[Engine, sa.URL, str]) -> Iterator[str]:
    """A throwaway PostgreSQL database made from the session's migrated template (the
    `_postgres_template` fixture's value); its URL, dropped at the end."""
    admin, server, name_of_template = template
    name = f"clearance_t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{name_of_template}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


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


# Test modules whose tests run in one pytest-xdist worker, in order, under `make test`'s
# `--dist loadgroup`: a module-scoped fixture that is a costly set of processes (tests/scale's
# cluster) is then built once. xdist's own loadgroup groups by `xdist_group` marks, renaming each
# marked test's id on the worker, which pytest 9.2 no longer lets it do (Node.nodeid is read-only
# there): every test would go its own way, each building the cluster again.
TOGETHER = ("tests/scale/",)


class _Together(LoadScopeScheduling):
    """Like xdist's `load`, but the tests of each module under `TOGETHER` are one unit."""

    def _split_scope(self, nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        return path if path.startswith(TOGETHER) else nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadScopeScheduling | None:
    return _Together(config, log) if config.getvalue("dist") == "loadgroup" else None
