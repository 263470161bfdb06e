"""The integrator: extends the tree from committed entries, stores tiles, signs a checkpoint.

Whoever holds the `audit_tree` row lock integrates (`SELECT ... FOR UPDATE SKIP LOCKED` on
PostgreSQL; SQLite's BEGIN IMMEDIATE serialises everything). It reads only entries below the
committed head, so a checkpoint never covers an uncommitted entry, and it starts from the stored
right edge of the tree, so another process can take over at any time. The signer checks an RFC
9162 consistency proof from its last checkpoint before it signs the next.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from clearance.audit.archive import Archive
from clearance.audit.checkpoint import Checkpoint, CheckpointSigner
from clearance.audit.merkle import leaf_hash
from clearance.audit.reader import StoredTiles, head_size, latest_note
from clearance.audit.tables import audit_checkpoints, audit_entries, audit_tiles, audit_tree
from clearance.audit.tiles import Tile, TileEdge
from clearance.errors import AuditUnavailable, VerificationError
from clearance.store import reading
from clearance.store.db import WriterQueue

MAX_PER_CHECKPOINT = 1 << 16  # bounds how long one integration holds the lock


@dataclass(frozen=True, slots=True)
class _Extension:
    """The tree grown from `size` to `end`, computed from a read snapshot."""

    size: int
    end: int
    root: bytes
    tiles: list[Tile]


def integrate(
    engine: Engine,
    signer: CheckpointSigner,
    limit: int = MAX_PER_CHECKPOINT,
    *,
    archive: Archive | None = None,
) -> Checkpoint | None:
    """Integrate up to `limit` committed entries and sign; None if nothing to do or locked.

    Reading the new entries and hashing them happens on a read snapshot, outside the write lock,
    so appenders never wait behind the hashing; the write transaction only re-checks that nobody
    integrated meanwhile, stores the tiles and signs.
    """
    try:
        with reading(engine) as conn:
            extension = _prepare(conn, limit)
    except sa.exc.SQLAlchemyError as exc:
        raise AuditUnavailable("the audit log could not be integrated") from exc
    before, done = signer.last, False
    queue = WriterQueue(engine)  # behind the appenders' queue, not polling SQLite's lock
    try:
        with queue, engine.begin() as conn:
            checkpoint = _commit(conn, signer, extension, archive)
        done = True
        return checkpoint
    except sa.exc.SQLAlchemyError as exc:
        # Ambiguous: the commit may have failed yet persisted the checkpoint (Sunlight's "failed
        # but persisted"). Stop signing until the next round reloads what storage holds.
        signer.invalidate()
        raise AuditUnavailable("the audit log could not be integrated") from exc
    finally:
        queue.close()
        if not done:
            signer.last = before


def _prepare(conn: Connection, limit: int) -> _Extension:
    state = _tree_state(conn, lock=False)
    assert state is not None, "an unlocked read always sees the tree row"
    size, stored_root = state
    end = min(head_size(conn), size + limit)
    edge = _load_edge(conn, size)
    if not hmac.compare_digest(edge.root(), stored_root):
        raise VerificationError(f"stored tiles do not match the stored tree at size {size}")
    tiles = edge.extend([leaf_hash(e) for e in _entries(conn, size, end)])
    return _Extension(size, end, edge.root(), tiles)


def _tree_state(conn: Connection, *, lock: bool) -> tuple[int, bytes] | None:
    """The stored tree's size and root; None when locking and another integrator holds it."""
    query = sa.select(audit_tree.c.size, audit_tree.c.root).where(audit_tree.c.id == 1)
    row = conn.execute(query.with_for_update(skip_locked=True) if lock else query).one_or_none()
    return None if row is None else (int(row[0]), bytes(row[1]))


def _commit(
    conn: Connection, signer: CheckpointSigner, ext: _Extension, archive: Archive | None
) -> Checkpoint | None:
    state = _tree_state(conn, lock=True)
    if state is None:
        return None  # another integrator holds the tree row
    size, stored_root = state
    if size != ext.size:
        return None  # another integrator got there first; the next round starts from its tree
    note = latest_note(conn)
    if signer.stale:
        signer.reload(note, StoredTiles(conn, archive).consistency_proof)
    elif note is not None and signer.last != Checkpoint(signer.origin, size, stored_root):
        # Another process signed since we last did (or we just started): it must extend ours.
        signer.accept(note, StoredTiles(conn, archive).consistency_proof)
    if ext.end == size and note is not None:
        return None
    _store_tiles(conn, ext.tiles, set(TileEdge.partial_tiles(size)))
    checkpoint = Checkpoint(signer.origin, ext.end, ext.root)
    # A fresh reader: the tiles just stored are part of the proof (a cached one would miss them).
    note = signer.sign(ext.end, checkpoint.root, StoredTiles(conn, archive).consistency_proof)
    conn.execute(
        sa.insert(audit_checkpoints).values(
            size=ext.end, root=checkpoint.root, note=note, signed_at=datetime.now(UTC)
        )
    )
    conn.execute(
        sa.update(audit_tree).where(audit_tree.c.id == 1).values(size=ext.end, root=ext.root)
    )
    return checkpoint


def _load_edge(conn: Connection, size: int) -> TileEdge:
    tiles = StoredTiles(conn)
    return TileEdge(size, {lvl: tiles.read_tile(lvl, i) for lvl, i in TileEdge.partial_tiles(size)})


def _entries(conn: Connection, start: int, end: int) -> list[bytes]:
    rows = conn.execute(
        sa.select(audit_entries.c.idx, audit_entries.c.entry)
        .where(audit_entries.c.idx >= start, audit_entries.c.idx < end)
        .order_by(audit_entries.c.idx)
    ).all()
    if [int(r[0]) for r in rows] != list(range(start, end)):
        raise VerificationError(f"committed entries {start}..{end - 1} are not all stored")
    return [bytes(r[1]) for r in rows]


def _store_tiles(conn: Connection, tiles: list[Tile], stored: set[tuple[int, int]]) -> None:
    if not tiles:
        return
    # A tile only grows: replace the stored (shorter) partial tiles; full ones are new.
    for tile in tiles:
        if (tile.level, tile.index) not in stored:
            continue
        conn.execute(
            sa.delete(audit_tiles).where(
                audit_tiles.c.level == tile.level, audit_tiles.c.idx == tile.index
            )
        )
    conn.execute(
        sa.insert(audit_tiles),
        [{"level": t.level, "idx": t.index, "hashes": t.hashes} for t in tiles],
    )
