"""The stored log on SQLite and PostgreSQL: sequencing, integration, restart, proofs."""

from __future__ import annotations

import asyncio
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance.audit import merkle
from clearance.audit.keys import NoteVerifier
from clearance.audit.service import AuditLog
from clearance.audit.tables import audit_entries, audit_tiles
from clearance.audit.verify import verify_log
from clearance.config import AuditSettings
from clearance.errors import InvalidInput, VerificationError
from tests.audit.conftest import ORIGIN, entry


def stored(engine: Engine) -> list[tuple[int, bytes]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(audit_entries).order_by(audit_entries.c.idx)).all()
    return [(int(i), bytes(e)) for i, e in rows]


def test_sqlite_is_durable(engine: Engine, audit_log: AuditLog) -> None:
    audit_log.append(entry(0))
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"


def test_appends_are_gap_free_and_integrated(engine: Engine, audit_log: AuditLog) -> None:
    assert audit_log.append(entry(0)) == 0
    assert audit_log.append_many([entry(i) for i in range(1, 600)]) == list(range(1, 600))
    checkpoint = audit_log.integrate()
    tree = merkle.MemoryTree([entry(i) for i in range(600)])
    assert checkpoint is not None and (checkpoint.size, checkpoint.root) == (600, tree.root())
    for i, n in [(0, 1), (5, 600), (599, 600), (300, 512)]:
        size, proof = audit_log.reader.inclusion_proof(i, n)
        merkle.verify_inclusion(i, size, merkle.leaf_hash(entry(i)), proof, tree.root(n))
    for m in (1, 255, 256, 257, 599):
        _, proof = audit_log.reader.consistency_proof(m, 600)
        merkle.verify_consistency(m, 600, tree.root(m), tree.root(), proof)
    assert audit_log.reader.entry(42) == entry(42)
    with pytest.raises(InvalidInput):
        audit_log.append(b"")


def test_concurrent_appenders_get_unique_gap_free_indices(
    engine: Engine, audit_log: AuditLog
) -> None:
    told: dict[int, list[int]] = {}

    def writer(w: int) -> None:
        told[w] = [audit_log.append(entry(w * 1000 + i)) for i in range(25)]

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(i for mine in told.values() for i in mine) == list(range(100))
    rows = dict(stored(engine))
    for w, mine in told.items():
        assert mine == sorted(mine)  # each writer's order is kept
        assert [rows[i] for i in mine] == [entry(w * 1000 + i) for i in range(25)]


def test_group_commit_batches_concurrent_callers(engine: Engine, audit_log: AuditLog) -> None:
    calls: list[int] = []
    commit = audit_log.sequencer._commit

    def counting(entries: list[bytes]) -> list[int]:
        calls.append(len(entries))
        return commit(entries)

    audit_log.sequencer._commit = counting  # type: ignore[method-assign]

    async def run() -> list[int]:
        first = await audit_log.sequencer.append(entry(0))  # idle writer: commits at once
        rest = await asyncio.gather(*(audit_log.sequencer.append(entry(i)) for i in range(1, 300)))
        return [first, *rest]

    indices = asyncio.run(run())
    assert indices == list(range(300))
    assert calls[0] == 1 and len(calls) < 300 and sum(calls) == 300
    assert [e for _, e in stored(engine)] == [entry(i) for i in range(300)]


def test_restart_resumes_the_same_tree(
    engine: Engine, audit_settings: AuditSettings, verifier: NoteVerifier
) -> None:
    first = AuditLog(engine, audit_settings)
    first.append_many([entry(i) for i in range(300)])
    first.integrate()
    first.close()
    second = AuditLog(engine, audit_settings)
    second.append_many([entry(i) for i in range(300, 700)])
    checkpoint = second.integrate()
    second.close()
    assert checkpoint is not None
    assert checkpoint.root == merkle.MemoryTree([entry(i) for i in range(700)]).root()
    report = verify_log(engine, verifier, ORIGIN)
    assert (report.size, report.checkpoints) == (700, 2)


def test_integrator_thread_signs_while_entries_arrive(
    engine: Engine, audit_settings: AuditSettings, verifier: NoteVerifier
) -> None:
    async def run() -> None:
        log = AuditLog(engine, audit_settings)
        await asyncio.to_thread(log.start)
        for i in range(20):
            await log.sequencer.append(entry(i))  # as the gateway appends
            await asyncio.sleep(0.01)
        await asyncio.to_thread(log.close)

    asyncio.run(run())
    report = verify_log(engine, verifier, ORIGIN)
    assert report.size == 20 and report.checkpoints >= 3  # empty tree, then periodic ones
    assert report.latest is not None and report.latest.size == 20


def test_integration_refuses_tiles_that_do_not_match_the_signed_tree(
    engine: Engine, audit_log: AuditLog
) -> None:
    audit_log.append_many([entry(i) for i in range(10)])
    audit_log.integrate()
    with engine.begin() as conn:
        conn.execute(sa.update(audit_tiles).values(hashes=b"\x00" * 32 * 10))
    audit_log.append(entry(10))
    with pytest.raises(VerificationError):
        audit_log.integrate()


def test_one_checkpoint_per_integration_while_entries_keep_arriving(
    engine: Engine, audit_log: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries that arrive while the integrator works wait for its next round: one call signs
    one checkpoint, rather than signing back to back for as long as the load lasts."""
    from clearance.audit import service

    audit_log.append_many([entry(i) for i in range(10)])
    real = service.integrate
    arrivals = iter(range(10, 60))

    def arriving(*args: object, **kwargs: object) -> object:
        audit_log.append(entry(next(arrivals)))  # one more committed as each round starts
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "integrate", arriving)
    first = audit_log.integrate()
    second = audit_log.integrate()
    with engine.connect() as conn:
        signed = conn.execute(sa.text("SELECT count(*) FROM audit_checkpoints")).scalar_one()
    assert first is not None and second is not None
    assert signed == 2 and first.size == 11 and second.size == 12
