"""Invariants of signing (issue 7): one tree size never has two roots; every checkpoint
extends the last; an ambiguous storage error stops signing until state is reloaded from
storage; a checkpoint is signed only over committed entries."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance.audit import merkle
from clearance.audit.integrator import integrate
from clearance.audit.keys import NoteVerifier
from clearance.audit.service import AuditLog
from clearance.audit.tables import (
    audit_checkpoints,
    audit_entries,
    audit_head,
    audit_tiles,
    audit_tree,
)
from clearance.audit.verify import verify_log
from clearance.config import AuditSettings
from clearance.errors import AuditUnavailable, VerificationError
from clearance.store import connect, migrate
from tests.reliability.logs import ORIGIN, entry, stored_checkpoints, stored_entries
from tests.reliability.storage_faults import CommitFault


def assert_one_tree(engine: Engine) -> None:
    """Every stored checkpoint is a prefix root of the one tree rebuilt from the leaves."""
    rows = stored_entries(engine)
    tree = merkle.MemoryTree([rows[i] for i in range(len(rows))])
    checkpoints = stored_checkpoints(engine)
    assert checkpoints, "nothing was signed"
    assert len({size for size, _ in checkpoints}) == len(checkpoints)
    for size, root in checkpoints:
        assert root == tree.root(size), f"the checkpoint at {size} is not on the rebuilt tree"


def test_concurrent_integrators_sign_one_linear_history(
    db_url: str, audit_settings: AuditSettings, verifier: NoteVerifier
) -> None:
    """Two processes' integrators race over the tree lock while a writer appends."""
    engines = [connect(db_url) for _ in range(3)]
    writer, *integrators = (AuditLog(e, audit_settings) for e in engines)
    stop = threading.Event()
    failures: list[BaseException] = []

    def integrate(log: AuditLog) -> None:
        while not stop.is_set():
            try:
                log.integrate()
            except (AuditUnavailable, VerificationError) as exc:  # recorded, then asserted
                failures.append(exc)

    threads = [threading.Thread(target=integrate, args=(log,)) for log in integrators]
    for t in threads:
        t.start()
    try:
        for i in range(0, 600, 20):
            writer.append_many([entry("w", i + k) for k in range(20)])
            time.sleep(0.005)
    finally:
        stop.set()
        for t in threads:
            t.join()
        for log in (writer, *integrators):
            log.close()
        for e in engines:
            e.dispose()
    assert failures == []
    engine = connect(db_url)
    try:
        assert len(stored_checkpoints(engine)) > 1
        assert_one_tree(engine)
        assert verify_log(engine, verifier, ORIGIN).size == 600
    finally:
        engine.dispose()


def test_a_rewritten_history_is_never_signed(
    engine: Engine, audit_settings: AuditSettings, tmp_path: Path
) -> None:
    """An insider swaps in the tiles of another history (same size): the signer refuses."""
    log = AuditLog(engine, audit_settings)
    log.append_many([entry("honest", i) for i in range(300)])
    log.integrate()
    signed = stored_checkpoints(engine)
    forged = merkle.MemoryTree([entry("forged", i) for i in range(300)])
    other = connect(f"sqlite:///{tmp_path / 'other.db'}")  # the forged log, built by our own code
    try:
        migrate(other)
        forger = AuditLog(other, audit_settings)
        forger.append_many([entry("forged", i) for i in range(300)])
        forger.integrate()
        forger.close()
        _copy_tree(other, engine)
    finally:
        other.dispose()
    log.close()
    restarted = AuditLog(engine, audit_settings)
    restarted.append_many([entry("honest", i) for i in range(300, 310)])
    with pytest.raises(VerificationError, match="refusing"):
        restarted.integrate()
    restarted.close()
    assert stored_checkpoints(engine) == signed
    assert signed[-1][1] != forged.root()


def _copy_tree(source: Engine, target: Engine) -> None:
    with source.connect() as src:
        entries = [dict(r._mapping) for r in src.execute(sa.select(audit_entries))]
        tiles = [dict(r._mapping) for r in src.execute(sa.select(audit_tiles))]
        tree = dict(src.execute(sa.select(audit_tree)).one()._mapping)
    with target.begin() as dst:
        for table in (audit_entries, audit_tiles):
            dst.execute(sa.delete(table))
        dst.execute(sa.insert(audit_entries), entries)
        dst.execute(sa.insert(audit_tiles), tiles)
        dst.execute(sa.update(audit_tree).values(size=tree["size"], root=tree["root"]))


@pytest.mark.parametrize("persist", [False, True], ids=["lost", "failed-but-persisted"])
def test_an_ambiguous_storage_error_stops_signing_until_reload(
    engine: Engine,
    audit_settings: AuditSettings,
    verifier: NoteVerifier,
    monkeypatch: pytest.MonkeyPatch,
    persist: bool,
) -> None:
    fault = CommitFault(engine, monkeypatch)
    log = AuditLog(engine, audit_settings)
    try:
        log.append_many([entry("w", i) for i in range(10)])
        log.integrate()
        log.append_many([entry("w", i) for i in range(10, 20)])
        fault.arm(persist=persist)
        with pytest.raises(AuditUnavailable):
            log.integrate()
        assert fault.fired == 1
        assert [s for s, _ in stored_checkpoints(engine)] == ([10, 20] if persist else [10])
        # In memory nothing can be trusted now: signing anything is refused ...
        assert log.signer.stale
        tree = merkle.MemoryTree([entry("w", i) for i in range(20)])
        with pytest.raises(AuditUnavailable, match="reloaded"):
            log.signer.sign(20, tree.root(), lambda m, n: merkle.consistency_proof(m, n, tree.read))
        # ... until the next round has reloaded the stored checkpoint, and extends it.
        log.append_many([entry("w", i) for i in range(20, 25)])
        checkpoint = log.integrate()
        assert checkpoint is not None and checkpoint.size == 25
        assert not log.signer.stale
    finally:
        log.close()
    assert [s for s, _ in stored_checkpoints(engine)] == ([10, 20, 25] if persist else [10, 25])
    assert_one_tree(engine)
    assert verify_log(engine, verifier, ORIGIN).size == 25


@pytest.mark.parametrize("outcome", ["rollback", "commit"])
def test_a_checkpoint_covers_only_committed_entries(
    engine: Engine, audit_settings: AuditSettings, outcome: str
) -> None:
    log = AuditLog(engine, audit_settings)
    log.append_many([entry("w", i) for i in range(10)])
    signed: list[int] = []
    with engine.connect() as pending:  # an append transaction still in flight
        pending.execute(sa.update(audit_head).values(size=audit_head.c.size + 5))
        pending.execute(
            sa.insert(audit_entries), [{"idx": i, "entry": entry("p", i)} for i in range(10, 15)]
        )
        # One integration round, begun while the transaction is in flight.
        round_ = threading.Thread(target=lambda: signed.append(_size(integrate(engine, signer))))
        signer = log.signer
        round_.start()
        time.sleep(0.3)  # PostgreSQL signs now; SQLite's integrator waits for the write lock
        getattr(pending, outcome)()
        round_.join(timeout=30)
    assert signed == [10]
    after = log.integrate()
    log.close()
    assert _size(after) == (15 if outcome == "commit" else None)
    assert_one_tree(engine)


def _size(checkpoint: object) -> int | None:
    return getattr(checkpoint, "size", None)


def test_checkpoints_table_rejects_a_second_root_for_a_size(engine: Engine) -> None:
    """The store itself refuses two roots for one size (primary key on the tree size)."""
    row = {"size": 1, "root": b"\x00" * 32, "note": "n", "signed_at": datetime.now(UTC)}
    with engine.begin() as conn:
        conn.execute(sa.insert(audit_checkpoints).values(row))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.insert(audit_checkpoints).values({**row, "root": b"\x01" * 32}))
