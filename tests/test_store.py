from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance.store import metadata, migrate


def test_migrations_create_every_table(engine: Engine) -> None:
    names = set(sa.inspect(engine).get_table_names())
    assert {t.name for t in metadata.sorted_tables} <= names


def test_migrate_is_idempotent(engine: Engine) -> None:
    migrate(engine)
    with engine.connect() as conn:
        head = conn.execute(sa.text("select version_num from alembic_version")).scalar_one()
    assert head


def test_sqlite_runs_wal_with_full_fsync(tmp_path: object) -> None:
    from pathlib import Path

    from clearance.store import connect

    assert isinstance(tmp_path, Path)
    eng = connect(f"sqlite:///{tmp_path / 'x.db'}")
    with eng.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        # 2 = FULL: every commit fsyncs (an acknowledged audit entry survives power loss).
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == 2
    eng.dispose()
