"""Invariant: an acknowledged index is committed and fsync'd, and a failed commit is never
acknowledged (issue 7). On SQLite every audit connection runs synchronous=FULL in WAL
mode; on PostgreSQL fsync=on and synchronous_commit is not off."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from clearance.audit.service import AuditLog
from clearance.config import AuditSettings
from clearance.errors import AuditUnavailable, ConfigError
from clearance.store import connect
from tests.reliability.logs import entry, stored_entries
from tests.reliability.storage_faults import CommitFault


def test_every_audit_connection_fsyncs_each_commit(
    db_url: str, audit_settings: AuditSettings
) -> None:
    engine = connect(db_url, pool_size=3)
    log = AuditLog(engine, audit_settings)
    try:
        assert log.append(entry("w", 0)) == 0
        with ExitStack() as stack:  # three connections the pool hands out at once
            conns = [engine.raw_connection() for _ in range(3)]
            for conn in conns:
                stack.callback(conn.close)
                if engine.dialect.name == "sqlite":
                    assert _show(conn, "PRAGMA synchronous") == 2  # FULL
                    assert _show(conn, "PRAGMA journal_mode") == "wal"
                else:
                    assert _show(conn, "SHOW fsync") == "on"
                    assert _show(conn, "SHOW synchronous_commit") != "off"
    finally:
        log.close()
        engine.dispose()


def _show(conn: Any, query: str) -> object:
    cursor = conn.cursor()
    try:
        cursor.execute(query)
        return cursor.fetchone()[0]
    finally:
        cursor.close()


def test_a_store_that_acknowledges_before_fsync_is_refused(
    db_url: str, engine: Engine, audit_settings: AuditSettings
) -> None:
    reader = engine
    engine = connect(db_url)  # the log's own engine, with weakened durability

    @event.listens_for(engine, "connect")
    def weaken(dbapi_conn: Any, _record: Any) -> None:
        if engine.dialect.name == "sqlite":
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")  # commits no longer fsync the WAL
        else:
            dbapi_conn.execute("SET synchronous_commit = off")
            dbapi_conn.commit()

    log = AuditLog(engine, audit_settings)
    try:
        with pytest.raises(ConfigError):
            log.append(entry("w", 0))
        with pytest.raises(ConfigError):
            log.start()
    finally:
        log.close()
        engine.dispose()
    assert stored_entries(reader) == {}


@pytest.mark.parametrize("persist", [False, True], ids=["lost", "failed-but-persisted"])
def test_a_failed_commit_is_never_acknowledged(
    engine: Engine, audit_settings: AuditSettings, monkeypatch: pytest.MonkeyPatch, persist: bool
) -> None:
    fault = CommitFault(engine, monkeypatch)
    log = AuditLog(engine, audit_settings)
    try:
        assert log.append(entry("w", 0)) == 0
        fault.arm(persist=persist)
        with pytest.raises(AuditUnavailable):
            log.append(entry("w", 1))
        assert fault.fired == 1
        # The next append gets a fresh index: no index is ever acknowledged twice.
        assert log.append(entry("w", 2)) == (2 if persist else 1)
    finally:
        log.close()
    rows = stored_entries(engine)
    expected = [entry("w", 0), entry("w", 1), entry("w", 2)] if persist else None
    assert [rows[i] for i in sorted(rows)] == (expected or [entry("w", 0), entry("w", 2)])


def test_group_commit_fails_every_caller_of_a_failed_batch(
    engine: Engine, audit_settings: AuditSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault = CommitFault(engine, monkeypatch)
    log = AuditLog(engine, audit_settings)

    async def run() -> list[int | BaseException]:
        await log.sequencer.append(entry("w", 0))  # warm: the durability check has run
        fault.arm(persist=True)
        calls = (log.sequencer.append(entry("w", i)) for i in range(1, 50))
        return await asyncio.gather(*calls, return_exceptions=True)

    try:
        results = asyncio.run(run())
    finally:
        log.close()
    failed = [r for r in results if isinstance(r, AuditUnavailable)]
    acked = [r for r in results if isinstance(r, int)]
    assert failed and len(failed) + len(acked) == 49
    assert len(set(acked)) == len(acked)  # every acknowledged index is unique ...
    rows = stored_entries(engine)
    for index, result in zip(range(1, 50), results, strict=True):
        if isinstance(result, int):  # ... and holds exactly the entry it acknowledged
            assert rows[result] == entry("w", index)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT size FROM audit_head")).scalar_one() == len(rows)
