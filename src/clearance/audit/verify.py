"""Offline verification of a stored log: recompute the tree from the entries alone.

Checks, streaming the entries in index order: no index is missing; each entry's leaf hash
matches the stored level-0 tile (this names the exact entry that changed); the recomputed root
matches every stored checkpoint, each of whose signatures verifies with the log's public key
(all checkpoints lie on one recomputed tree, so each is consistent with the next); the stored
tree state matches; an auditor's own older checkpoint is a prefix of this log; and every entry
is valid against the published JSON Schema of its own version (audit/entry_schema.py).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from clearance.audit import entry_schema
from clearance.audit.archive import (
    Archive,
    pruned_below,
    read_archived_entries,
    read_archived_tile,
)
from clearance.audit.checkpoint import Checkpoint, open_checkpoint
from clearance.audit.keys import NoteVerifier
from clearance.audit.merkle import HASH_SIZE, CompactRange, leaf_hash
from clearance.audit.reader import head_size
from clearance.audit.tables import audit_checkpoints, audit_entries, audit_tiles, audit_tree
from clearance.audit.tiles import TILE_WIDTH
from clearance.errors import VerificationError
from clearance.store import reading

CHUNK = 1 << 14  # entries per read; a multiple of the tile width
Progress = Callable[[int, int], None]


class TamperedEntry(VerificationError):
    """The log does not verify; `index` is the first entry that is not as signed."""

    def __init__(self, index: int, detail: str) -> None:
        super().__init__(f"audit entry {index}: {detail}")
        self.index = index


@dataclass(frozen=True, slots=True)
class Report:
    size: int  # entries verified
    checkpoints: int  # signed checkpoints verified
    latest: Checkpoint | None


def verify_log(
    engine: Engine,
    verifier: NoteVerifier,
    origin: str | None = None,
    *,
    trusted: str | None = None,
    progress: Progress | None = None,
    archive: Archive | None = None,
) -> Report:
    """Raise `TamperedEntry` (or `VerificationError`) at the first problem; else a report.
    Entries and tiles pruned to `archive` (audit/archive.py) are read and checked from there."""
    with reading(engine) as conn:
        signed = _checkpoints(conn, verifier, origin)
        targets = list(signed)
        if trusted is not None:
            targets.append(open_checkpoint(trusted, verifier, origin))
        head = head_size(conn)
        state = conn.execute(sa.select(audit_tree.c.size, audit_tree.c.root)).one()
        targets.append(Checkpoint("", int(state[0]), bytes(state[1])))
        targets.sort(key=lambda c: c.size)
        source = _Source(conn, archive, pruned_below(conn))
        tree = _walk(source, head, int(state[0]), targets, progress)
    return Report(size=tree.size, checkpoints=len(signed), latest=signed[-1] if signed else None)


def _checkpoints(conn: Connection, verifier: NoteVerifier, origin: str | None) -> list[Checkpoint]:
    result = []
    rows = conn.execute(
        sa.select(
            audit_checkpoints.c.size, audit_checkpoints.c.root, audit_checkpoints.c.note
        ).order_by(audit_checkpoints.c.size)
    )
    for size, root, note in rows:
        checkpoint = open_checkpoint(str(note), verifier, origin)
        if checkpoint.size != int(size) or checkpoint.root != bytes(root):
            raise VerificationError(f"stored checkpoint {size} does not match its signed note")
        result.append(checkpoint)
    return result


@dataclass(frozen=True, slots=True)
class _Source:
    conn: Connection
    archive: Archive | None
    pruned: int  # entries and level-0 tiles below this are read from the archive


def _walk(
    source: _Source,
    head: int,
    integrated: int,
    checkpoints: list[Checkpoint],
    progress: Progress | None,
) -> CompactRange:
    tree = CompactRange()
    pending = iter(checkpoints)
    target = next(pending, None)
    proven = 0  # every entry below this is covered by a verified checkpoint
    target, proven = _check_roots(tree, target, pending, proven)
    for start, entries in _chunks(source, head):
        hashes = [leaf_hash(e) for e in entries]
        _check_tiles(source, start, hashes, integrated)
        _check_schemas(start, entries)
        for h in hashes:
            tree.append(h)
            if target is not None and tree.size == target.size:
                target, proven = _check_roots(tree, target, pending, proven)
        if progress is not None:
            progress(tree.size, head)
    if tree.size != head:
        raise TamperedEntry(tree.size, "missing (the log head counts more entries)")
    if target is not None:
        raise TamperedEntry(tree.size, f"missing (a checkpoint covers {target.size} entries)")
    return tree


def _check_roots(
    tree: CompactRange,
    target: Checkpoint | None,
    pending: Iterator[Checkpoint],
    proven: int,
) -> tuple[Checkpoint | None, int]:
    while target is not None and target.size == tree.size:
        if not hmac.compare_digest(tree.root(), target.root):
            what = f"checkpoint at size {target.size}" if target.origin else "stored tree"
            raise TamperedEntry(proven, f"entries from here on do not match the {what}")
        target = next(pending, None)
    return target, tree.size


def _chunks(source: _Source, head: int) -> Iterator[tuple[int, list[bytes]]]:
    start = 0
    while start < min(source.pruned, head):
        stop = min(start + CHUNK, source.pruned, head)
        yield start, read_archived_entries(source.archive, start, stop)
        start = stop
    while start < head:
        rows = source.conn.execute(
            sa.select(audit_entries.c.idx, audit_entries.c.entry)
            .where(audit_entries.c.idx >= start, audit_entries.c.idx < start + CHUNK)
            .order_by(audit_entries.c.idx)
        ).all()
        for offset, row in enumerate(rows):
            if int(row[0]) != start + offset:
                raise TamperedEntry(start + offset, "missing")
        if not rows:
            return
        yield start, [bytes(r[1]) for r in rows]
        if len(rows) < CHUNK:
            return
        start += CHUNK


def _check_schemas(start: int, entries: list[bytes]) -> None:
    for offset, raw in enumerate(entries):
        try:
            entry_schema.check(raw)
        except entry_schema.EntrySchemaError as exc:
            raise TamperedEntry(start + offset, exc.detail) from exc


def _check_tiles(source: _Source, start: int, hashes: list[bytes], integrated: int) -> None:
    """Compare leaf hashes with stored level-0 tiles: names the exact entry that changed."""
    stop = min(start + len(hashes), integrated)
    if stop <= start:
        return
    tiles = dict(
        source.conn.execute(
            sa.select(audit_tiles.c.idx, audit_tiles.c.hashes).where(
                audit_tiles.c.level == 0,
                audit_tiles.c.idx >= start // TILE_WIDTH,
                audit_tiles.c.idx <= (stop - 1) // TILE_WIDTH,
            )
        ).all()
    )
    for first in range(start, stop, TILE_WIDTH):
        if first < source.pruned and first // TILE_WIDTH not in tiles:
            tiles[first // TILE_WIDTH] = read_archived_tile(source.archive, 0, first // TILE_WIDTH)
        last = min(first + TILE_WIDTH, stop)
        ours = b"".join(hashes[first - start : last - start])
        stored = bytes(tiles.get(first // TILE_WIDTH, b""))[: (last - first) * HASH_SIZE]
        if ours != stored:
            for i in range(first, last):
                k = (i - first) * HASH_SIZE
                if ours[k : k + HASH_SIZE] != stored[k : k + HASH_SIZE]:
                    raise TamperedEntry(i, "does not match the hash stored in the tree")
