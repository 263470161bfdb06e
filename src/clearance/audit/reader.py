"""Reading the stored log: entries, tiles, checkpoints, and RFC 9162 proofs built from tiles."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from clearance.audit import merkle
from clearance.audit.archive import (
    Archive,
    pruned_below,
    read_archived_entries,
    read_archived_tile,
)
from clearance.audit.merkle import HASH_SIZE
from clearance.audit.tables import (
    audit_checkpoints,
    audit_cosignatures,
    audit_entries,
    audit_head,
    audit_tiles,
    audit_tree,
)
from clearance.audit.tiles import TILE_WIDTH, entry_bundle, tile_node_reader
from clearance.errors import InvalidInput, NotFound, VerificationError
from clearance.store import reading


class StoredTiles:
    """Tiles read through one connection, cached for the life of one request or transaction;
    full level-0 tiles pruned to the archive (audit/archive.py) are read from there."""

    def __init__(self, conn: Connection, archive: Archive | None = None) -> None:
        self._conn = conn
        self._archive = archive
        self._pruned: int | None = None
        self._cache: dict[tuple[int, int], bytes] = {}

    def read_tile(self, level: int, index: int) -> bytes:
        key = (level, index)
        if key not in self._cache:
            data = self._conn.execute(
                sa.select(audit_tiles.c.hashes).where(
                    audit_tiles.c.level == level, audit_tiles.c.idx == index
                )
            ).scalar_one_or_none()
            if data is None and level == 0 and index * TILE_WIDTH < self._pruned_below():
                data = read_archived_tile(self._archive, level, index)
            self._cache[key] = b"" if data is None else bytes(data)
        return self._cache[key]

    def _pruned_below(self) -> int:
        if self._pruned is None:
            self._pruned = pruned_below(self._conn)
        return self._pruned

    def node_reader(self) -> merkle.NodeReader:
        return tile_node_reader(self.read_tile)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """For the signer: a hash missing from storage means the proof cannot be made."""
        try:
            return merkle.consistency_proof(first, second, self.node_reader())
        except NotFound as exc:
            raise VerificationError(f"no stored consistency proof {first} -> {second}") from exc


def tree_size(conn: Connection) -> int:
    return int(conn.execute(sa.select(audit_tree.c.size).where(audit_tree.c.id == 1)).scalar_one())


def head_size(conn: Connection) -> int:
    return int(conn.execute(sa.select(audit_head.c.size).where(audit_head.c.id == 1)).scalar_one())


def latest_note(conn: Connection) -> str | None:
    note = conn.execute(
        sa.select(audit_checkpoints.c.note).order_by(audit_checkpoints.c.size.desc()).limit(1)
    ).scalar_one_or_none()
    return None if note is None else str(note)


def cosigned_note(conn: Connection, quorum: int = 0) -> str | None:
    """The newest checkpoint with the witnesses' cosignatures after the log's signature; with
    `quorum`, the newest that at least `quorum` witnesses cosigned (None if there is none)."""
    query = sa.select(audit_checkpoints.c.size, audit_checkpoints.c.note)
    if quorum > 0:
        cosigned = (
            sa.select(audit_cosignatures.c.size)
            .group_by(audit_cosignatures.c.size)
            .having(sa.func.count() >= quorum)
        )
        query = query.where(audit_checkpoints.c.size.in_(cosigned))
    row = conn.execute(query.order_by(audit_checkpoints.c.size.desc()).limit(1)).first()
    if row is None:
        return None
    size, note = int(row[0]), str(row[1])
    lines = (
        conn.execute(
            sa.select(audit_cosignatures.c.line)
            .where(audit_cosignatures.c.size == size)
            .order_by(audit_cosignatures.c.witness)
        )
        .scalars()
        .all()
    )
    return note + "".join(lines)


class LogReader:
    """What the HTTP routes and tools read; every method is one short read transaction."""

    def __init__(self, engine: Engine, archive: Archive | None = None) -> None:
        self._engine = engine
        self._archive = archive

    def checkpoint(self, quorum: int = 0) -> str:
        """The newest signed checkpoint with its witnesses' cosignatures; with `quorum`, the
        newest that `quorum` witnesses cosigned."""
        with reading(self._engine) as conn:
            note = cosigned_note(conn, quorum)
        if note is None:
            if quorum:
                raise NotFound(f"no checkpoint is cosigned by {quorum} witnesses yet")
            raise NotFound("the log has no signed checkpoint yet")
        return note

    def sizes(self) -> tuple[int, int]:
        """(committed entries, entries integrated into the tree)."""
        with reading(self._engine) as conn:
            return head_size(conn), tree_size(conn)

    def entry(self, index: int) -> bytes:
        with reading(self._engine) as conn:
            data = conn.execute(
                sa.select(audit_entries.c.entry).where(audit_entries.c.idx == index)
            ).scalar_one_or_none()
            if data is None and 0 <= index < pruned_below(conn):
                return read_archived_entries(self._archive, index, index + 1)[0]
        if data is None:
            raise NotFound(f"no audit entry {index}")
        return bytes(data)

    def entries(self, start: int, stop: int) -> list[bytes]:
        """Entries [start, stop) that exist, in order: the archived ones from the archive."""
        with reading(self._engine) as conn:
            pruned = min(pruned_below(conn), stop)
            rows = conn.execute(
                sa.select(audit_entries.c.entry)
                .where(audit_entries.c.idx >= max(start, pruned), audit_entries.c.idx < stop)
                .order_by(audit_entries.c.idx)
            ).all()
        old = read_archived_entries(self._archive, start, pruned) if start < pruned else []
        return old + [bytes(r[0]) for r in rows]

    def tile(self, level: int, index: int, width: int) -> bytes:
        """C2SP tlog-tiles: a tile of `width` hashes; narrower ones are prefixes of wider."""
        with reading(self._engine) as conn:
            data = StoredTiles(conn, self._archive).read_tile(level, index)
        if len(data) < width * HASH_SIZE:
            raise NotFound("tile not in the tree yet")
        return data[: width * HASH_SIZE]

    def entry_bundle(self, index: int, width: int) -> bytes:
        start = index * TILE_WIDTH
        with reading(self._engine) as conn:
            if start + width > tree_size(conn):
                raise NotFound("entry bundle not in the tree yet")
        return entry_bundle(self.entries(start, start + width))

    def inclusion_proof(self, index: int, size: int | None = None) -> tuple[int, list[bytes]]:
        """RFC 9162 §2.1.3.1 proof for entry `index` in the tree of `size` (default: latest)."""
        with reading(self._engine) as conn:
            size = self._check_size(conn, size)
            if not 0 <= index < size:
                raise InvalidInput(f"index {index} is not in a tree of size {size}")
            tiles = StoredTiles(conn, self._archive)
            return size, merkle.inclusion_proof(index, size, tiles.node_reader())

    def consistency_proof(self, first: int, second: int | None = None) -> tuple[int, list[bytes]]:
        """RFC 9162 §2.1.4.1 proof that the tree of `second` extends the tree of `first`."""
        with reading(self._engine) as conn:
            second = self._check_size(conn, second)
            if not 0 <= first <= second:
                raise InvalidInput(f"no consistency proof from size {first} to {second}")
            return second, StoredTiles(conn, self._archive).consistency_proof(first, second)

    @staticmethod
    def _check_size(conn: Connection, size: int | None) -> int:
        integrated = tree_size(conn)
        if size is None:
            return integrated
        if not 0 < size <= integrated:
            raise InvalidInput(f"tree size {size} is not between 1 and {integrated}")
        return size
