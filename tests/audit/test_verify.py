"""Offline verification: any altered, removed or reordered entry fails, naming the index."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from clearance.audit.keys import NoteSigner, NoteVerifier, generate_signing_key
from clearance.audit.merkle import MemoryTree
from clearance.audit.service import AuditLog
from clearance.audit.tables import audit_checkpoints, audit_entries, audit_tiles
from clearance.audit.tiles import TileEdge
from clearance.audit.verify import TamperedEntry, verify_log
from clearance.config import AuditSettings
from clearance.errors import VerificationError
from tests.audit.conftest import ORIGIN, entry

SIZE = 700


@pytest.fixture
def filled(engine: Engine, audit_log: AuditLog) -> Engine:
    for start in (0, 300, 520):  # three signed checkpoints: 300, 520, 700
        audit_log.append_many(
            [entry(i) for i in range(start, {0: 300, 300: 520, 520: SIZE}[start])]
        )
        audit_log.integrate()
    return engine


def set_entry(conn: Connection, index: int, data: bytes) -> None:
    conn.execute(sa.update(audit_entries).where(audit_entries.c.idx == index).values(entry=data))


def alter(conn: Connection) -> None:
    set_entry(conn, 417, entry(417, actor="tesT"))


def remove(conn: Connection) -> None:
    conn.execute(sa.delete(audit_entries).where(audit_entries.c.idx == 417))


def reorder(conn: Connection) -> None:
    set_entry(conn, 417, entry(418))
    set_entry(conn, 418, entry(417))


def remove_last(conn: Connection) -> None:
    conn.execute(sa.delete(audit_entries).where(audit_entries.c.idx >= 417))


@pytest.mark.parametrize("tamper", [alter, remove, reorder, remove_last])
def test_tampering_names_the_first_bad_index(
    filled: Engine, verifier: NoteVerifier, tamper: Callable[[Connection], None]
) -> None:
    assert verify_log(filled, verifier, ORIGIN).size == SIZE
    with filled.begin() as conn:
        tamper(conn)
    with pytest.raises(TamperedEntry) as caught:
        verify_log(filled, verifier, ORIGIN)
    assert caught.value.index == 417


def test_rewriting_entries_and_tiles_still_fails_at_the_checkpoint(
    filled: Engine, verifier: NoteVerifier
) -> None:
    """An operator who recomputes the tiles too is caught by the signed roots."""
    forged = [entry(i) for i in range(SIZE)]
    forged[417] = entry(417, actor="forger")
    edge = TileEdge(0, {})
    tiles = edge.extend(MemoryTree(forged).levels[0])
    with filled.begin() as conn:
        set_entry(conn, 417, forged[417])
        conn.execute(sa.delete(audit_tiles))
        conn.execute(
            sa.insert(audit_tiles),
            [{"level": t.level, "idx": t.index, "hashes": t.hashes} for t in tiles],
        )
    with pytest.raises(TamperedEntry) as caught:
        verify_log(filled, verifier, ORIGIN)
    assert caught.value.index == 300  # first entry not covered by a matching checkpoint
    assert "checkpoint at size 520" in caught.value.detail


def test_checkpoints_must_be_signed_by_the_log_key(filled: Engine, verifier: NoteVerifier) -> None:
    other = NoteSigner.from_text(generate_signing_key(ORIGIN)).verifier
    with pytest.raises(VerificationError):
        verify_log(filled, other, ORIGIN)
    with filled.begin() as conn:
        conn.execute(
            sa.update(audit_checkpoints)
            .where(audit_checkpoints.c.size == 520)
            .values(note=sa.func.replace(audit_checkpoints.c.note, "\n520\n", "\n521\n"))
        )
    with pytest.raises(VerificationError):
        verify_log(filled, verifier, ORIGIN)


def test_an_auditors_older_checkpoint_must_be_a_prefix(
    engine: Engine, audit_log: AuditLog, audit_settings: AuditSettings, verifier: NoteVerifier
) -> None:
    audit_log.append_many([entry(i) for i in range(50)])
    audit_log.integrate()
    kept = audit_log.reader.checkpoint()
    audit_log.append_many([entry(i) for i in range(50, 80)])
    audit_log.integrate()
    assert verify_log(engine, verifier, ORIGIN, trusted=kept).size == 80
    # The operator rewrites history below the auditor's checkpoint and re-signs everything.
    with engine.begin() as conn:
        set_entry(conn, 10, entry(10, actor="rewriter"))
        conn.execute(sa.delete(audit_checkpoints))
        conn.execute(sa.delete(audit_tiles))
        conn.execute(
            sa.text("UPDATE audit_tree SET size = 0, root = :r"), {"r": MemoryTree().root()}
        )
    with pytest.raises(VerificationError, match="refusing"):
        audit_log.integrate()  # the running signer remembers what it signed
    fresh = AuditLog(engine, audit_settings)  # a new process has no such memory
    fresh.integrate()
    fresh.close()
    verify_log(engine, verifier, ORIGIN)  # self-consistent again...
    with pytest.raises(TamperedEntry):
        verify_log(engine, verifier, ORIGIN, trusted=kept)  # ...but not with what was published
