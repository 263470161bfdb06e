"""The archive: old tiles and entry bundles moved out of the database, still served and verified.

C2SP tlog-tiles makes a full tile (256 hashes) and a full entry bundle (256 entries) immutable
files with fixed names (`tile/<L>/<N>`, `tile/entries/<N>`). `clearance audit archive` writes
every full level-0 tile and entry bundle of the integrated tree, and every full higher tile, to
`[audit] archive` (a directory) or `[audit] archive_bucket` (an S3-compatible bucket), reads
each back and checks it (the bundle's leaf hashes must be the tile's hashes, RFC 9162 §2.1.1);
with `--prune` it then deletes the archived entries and level-0 tiles from the database.
Readers (the /audit routes, proofs, `audit verify`, queries, exports) read what is below the
pruned mark from the archive, through the same C2SP paths, so a static web server, a CDN or
the bucket itself can serve the archive as it is.

The archive's contents are checked where they are read, like everything else in the log: a
changed archived tile or entry fails proofs against the signed checkpoints.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from clearance.audit.merkle import HASH_SIZE, leaf_hash
from clearance.audit.tables import audit_archive, audit_entries, audit_tiles, audit_tree
from clearance.audit.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    entry_bundle,
    split_bundle,
    tile_path,
    tiles_in_tree,
)
from clearance.config import AuditSettings
from clearance.errors import AuditUnavailable, ConfigError, InvalidInput, VerificationError
from clearance.store import reading


class Archive(Protocol):
    """Where archived files live: `get` a C2SP path's bytes (None: not there), `put` them once."""

    def get(self, name: str) -> bytes | None: ...

    def put(self, name: str, data: bytes) -> None: ...


class DirectoryArchive:
    """Tiles and bundles as files under `root`, at their C2SP paths; written once, never
    changed (a second write of other bytes is refused: the log would have forked)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __str__(self) -> str:
        return str(self.root)

    def _path(self, name: str) -> Path:
        if name.startswith("/") or ".." in name.split("/"):
            raise InvalidInput(f"not an archive path: {name!r}")
        return self.root / name

    def get(self, name: str) -> bytes | None:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AuditUnavailable(f"the audit archive cannot be read: {exc.strerror}") from exc

    def put(self, name: str, data: bytes) -> None:
        """Write durably (temporary file, fsync, rename, fsync of the directory)."""
        path = self._path(name)
        existing = self.get(name)
        if existing is not None:
            if existing != data:
                raise VerificationError(f"the archive already holds another {name}")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


class BucketArchive:
    """The same files as objects in an S3-compatible bucket, under `prefix`. An S3 PUT is
    atomic and acknowledged once stored durably; the client retries transient errors."""

    def __init__(self, url: str, endpoint: str = "") -> None:
        import boto3  # only when a bucket is configured: botocore takes a while to import
        from botocore.config import Config

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        self.url = url
        self._bucket = bucket
        self._prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._client = boto3.client(
            "s3",
            endpoint_url=endpoint or None,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}),
        )

    def __str__(self) -> str:
        return self.url

    def get(self, name: str) -> bytes | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=self._prefix + name)
            return bytes(answer["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise AuditUnavailable(f"the audit archive {self.url} cannot be read: {exc}") from exc
        except BotoCoreError as exc:
            raise AuditUnavailable(f"the audit archive {self.url} cannot be read: {exc}") from exc

    def put(self, name: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        existing = self.get(name)
        if existing is not None:
            if existing != data:
                raise VerificationError(f"the archive already holds another {name}")
            return
        try:
            self._client.put_object(
                Bucket=self._bucket,
                Key=self._prefix + name,
                Body=data,
                ContentType="application/octet-stream",
                CacheControl="public, max-age=31536000, immutable",
            )
        except (BotoCoreError, ClientError) as exc:
            raise AuditUnavailable(
                f"the audit archive {self.url} cannot be written: {exc}"
            ) from exc


def open_archive(settings: AuditSettings) -> Archive | None:
    if settings.archive is not None and settings.archive_bucket:
        raise ConfigError("[audit] archive and archive_bucket: set one, not both")
    if settings.archive_bucket:
        return BucketArchive(settings.archive_bucket, settings.archive_endpoint)
    return DirectoryArchive(settings.archive) if settings.archive is not None else None


_MIGRATED: weakref.WeakSet[Engine] = weakref.WeakSet()  # engines known to have the table


def _has_table(conn: Connection) -> bool:
    """A database from before migration 0010 (an offline copy of an old log, opened with
    `audit verify --database`) has no archive table: nothing of it was pruned."""
    if conn.engine in _MIGRATED:
        return True
    if not sa.inspect(conn).has_table(audit_archive.name):
        return False
    _MIGRATED.add(conn.engine)
    return True


def pruned_below(conn: Connection) -> int:
    """Entries (and level-0 tiles) below this index live only in the archive."""
    if not _has_table(conn):
        return 0
    value = conn.execute(
        sa.select(audit_archive.c.pruned_below).where(audit_archive.c.id == 1)
    ).scalar_one_or_none()
    return 0 if value is None else int(value)


def archived_below(conn: Connection) -> int:
    if not _has_table(conn):
        return 0
    value = conn.execute(
        sa.select(audit_archive.c.archived_below).where(audit_archive.c.id == 1)
    ).scalar_one_or_none()
    return 0 if value is None else int(value)


def read_archived_tile(archive: Archive | None, level: int, index: int) -> bytes:
    if archive is None:
        raise AuditUnavailable("tiles were pruned to the archive, but [audit] archive is not set")
    data = archive.get(tile_path(level, index))
    if data is None:
        raise AuditUnavailable(f"the archive is missing {tile_path(level, index)}")
    return data


def read_archived_entries(archive: Archive | None, start: int, stop: int) -> list[bytes]:
    """Entries [start, stop) from the archived bundles."""
    if archive is None:
        raise AuditUnavailable("entries were pruned to the archive, but [audit] archive is not set")
    out: list[bytes] = []
    for bundle in range(start // TILE_WIDTH, (stop - 1) // TILE_WIDTH + 1):
        data = archive.get(tile_path(None, bundle))
        if data is None:
            raise AuditUnavailable(f"the archive is missing {tile_path(None, bundle)}")
        try:
            entries = split_bundle(data)
        except InvalidInput as exc:
            raise VerificationError(f"archived {tile_path(None, bundle)}: {exc.detail}") from exc
        if len(entries) != TILE_WIDTH:
            raise VerificationError(f"archived {tile_path(None, bundle)} is not a full bundle")
        first = bundle * TILE_WIDTH
        out += entries[max(start, first) - first : min(stop, first + TILE_WIDTH) - first]
    return out


@dataclass(frozen=True, slots=True)
class ArchiveReport:
    archived_below: int  # entries [0, this) are in the archive
    pruned_below: int  # and [0, this) only there
    bundles: int  # entry bundles written by this run
    tiles: int  # tiles written by this run


def archive(engine: Engine, store: Archive, *, prune: bool = False) -> ArchiveReport:
    """Archive every full bundle and tile of the integrated tree not archived yet; with
    `prune`, delete what is archived from the database."""
    with reading(engine) as conn:
        size = int(
            conn.execute(sa.select(audit_tree.c.size).where(audit_tree.c.id == 1)).scalar_one()
        )
        done = archived_below(conn)
    full = size // TILE_WIDTH
    bundles = tiles = 0
    for bundle in range(done // TILE_WIDTH, full):
        _archive_bundle(engine, store, bundle)
        bundles += 1
        tiles += 1
    level = 1
    while size >> (TILE_HEIGHT * level):
        # Higher tiles are small (1/256 of the level below): written, and kept in the database.
        for index in range(tiles_in_tree(size, level)[0]):
            if store.get(tile_path(level, index)) is None:
                store.put(tile_path(level, index), _db_tile(engine, level, index))
                tiles += 1
        level += 1
    with engine.begin() as conn:
        _set(conn, archived_below=full * TILE_WIDTH)
        if prune:
            mark = full * TILE_WIDTH
            conn.execute(sa.delete(audit_entries).where(audit_entries.c.idx < mark))
            conn.execute(
                sa.delete(audit_tiles).where(audit_tiles.c.level == 0, audit_tiles.c.idx < full)
            )
            _set(conn, pruned_below=max(mark, pruned_below(conn)))
        below = pruned_below(conn)
    return ArchiveReport(full * TILE_WIDTH, below, bundles, tiles)


def _archive_bundle(engine: Engine, store: Archive, bundle: int) -> None:
    first = bundle * TILE_WIDTH
    with reading(engine) as conn:
        if first < pruned_below(conn):
            return  # archived and pruned by an earlier run
        rows = conn.execute(
            sa.select(audit_entries.c.idx, audit_entries.c.entry)
            .where(audit_entries.c.idx >= first, audit_entries.c.idx < first + TILE_WIDTH)
            .order_by(audit_entries.c.idx)
        ).all()
        tile = _tile(conn, 0, bundle)
    if [int(r[0]) for r in rows] != list(range(first, first + TILE_WIDTH)):
        raise VerificationError(f"entries {first}..{first + TILE_WIDTH - 1} are not all stored")
    entries = [bytes(r[1]) for r in rows]
    # RFC 9162 §2.1.1: each entry's leaf hash is the level-0 tile's hash at its index.
    for i, entry in enumerate(entries):
        if leaf_hash(entry) != tile[i * HASH_SIZE : (i + 1) * HASH_SIZE]:
            raise VerificationError(f"audit entry {first + i} does not match its stored hash")
    data = entry_bundle(entries)
    store.put(tile_path(None, bundle), data)
    store.put(tile_path(0, bundle), tile)
    if store.get(tile_path(None, bundle)) != data or store.get(tile_path(0, bundle)) != tile:
        raise VerificationError(f"the archive did not keep bundle {bundle} as written")


def _db_tile(engine: Engine, level: int, index: int) -> bytes:
    with reading(engine) as conn:
        return _tile(conn, level, index)


def _tile(conn: Connection, level: int, index: int) -> bytes:
    data = conn.execute(
        sa.select(audit_tiles.c.hashes).where(
            audit_tiles.c.level == level, audit_tiles.c.idx == index
        )
    ).scalar_one_or_none()
    if data is None or len(data) != TILE_WIDTH * HASH_SIZE:
        raise VerificationError(f"tile {level}/{index} is not stored in full")
    return bytes(data)


def _set(conn: Connection, **values: int) -> None:
    updated = conn.execute(sa.update(audit_archive).where(audit_archive.c.id == 1).values(**values))
    if updated.rowcount == 0:
        row = {"id": 1, "archived_below": 0, "pruned_below": 0, **values}
        conn.execute(sa.insert(audit_archive).values(**row))
