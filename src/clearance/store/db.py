"""Engines: SQLite (WAL, fsync on commit) by default, PostgreSQL by URL."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from clearance.errors import ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here; SQLAlchemy would otherwise pick psycopg2."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def connect(url: str, **engine_args: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("sqlite:///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **engine_args
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.startswith("postgresql"):
        return sa.create_engine(url, pool_pre_ping=True, **engine_args)
    raise ConfigError(f"unsupported database URL scheme: {url.split(':', 1)[0]}")


def _sqlite_begin(conn: Connection) -> None:
    # A writer takes the write lock up front, so concurrent writers queue on busy_timeout rather
    # than failing to upgrade a read lock. A reader (see `reading`) takes none: WAL readers see a
    # consistent snapshot without blocking writers, or being blocked by them.
    readonly = conn.get_execution_options().get("readonly", False)
    conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


class WriterQueue:
    """A cross-process queue for SQLite's write lock, for the writers that matter most.

    SQLite makes a writer that finds the lock taken poll for it, sleeping 1, 2, 5, 10 ... 100 ms
    between tries (sqliteDefaultBusyCallback, src/main.c): two processes appending to the audit
    log (`serve --workers 2`) lose tens to hundreds of milliseconds that way. Holding an
    exclusive `flock` on `<database>-writers.lock` around the transaction queues them in the
    kernel instead, which wakes the next one the moment the lock is released. Each instance has
    its own open file (flock excludes separate opens, even in one process); a no-op for
    PostgreSQL and in-memory databases. Writers that do not queue here still wait as before."""

    def __init__(self, engine: Engine) -> None:
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self._fd: int | None = None
        if database and database != ":memory:" and not database.startswith("file:"):
            lock = f"{Path(database).resolve()}-writers.lock"
            self._fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def __enter__(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # blocks without the GIL

    def __exit__(self, *_exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A read-only connection: a snapshot that never holds SQLite's write lock."""
    with engine.connect() as conn:
        conn.execution_options(readonly=True)
        yield conn


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see connect)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # FULL: every commit is fsync'd, so an acknowledged write survives power loss.
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (Alembic `upgrade head`)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
