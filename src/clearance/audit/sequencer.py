"""The sequencer: durable, gap-free appends, and group commit for many concurrent callers.

Each append transaction bumps the one-row log head (`UPDATE audit_head SET size = size + n
RETURNING size`) and inserts its entries under the indices that returned. The head row
serialises appenders on SQLite and PostgreSQL alike, so indices are gap-free and in commit
order, and a caller learns its index only after its transaction committed (with fsync on
SQLite: synchronous=FULL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.pool import PoolProxiedConnection

from clearance.audit.tables import audit_entries, audit_head
from clearance.audit.tiles import MAX_ENTRY_SIZE
from clearance.errors import AuditUnavailable, ClearanceError, ConfigError, InvalidInput
from clearance.store.db import WriterQueue

log = logging.getLogger(__name__)


def check_durable(engine: Engine) -> None:
    """Refuse to run the log on a connection that would acknowledge a commit before its fsync."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            fsync = str(conn.exec_driver_sql("SHOW fsync").scalar_one())
            commit = str(conn.exec_driver_sql("SHOW synchronous_commit").scalar_one())
        # synchronous_commit=off returns before the WAL flush (PostgreSQL docs §20.5.1).
        if fsync != "on" or commit == "off":
            raise ConfigError("the audit log needs PostgreSQL with fsync=on, synchronous_commit on")
        return
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        journal = str(conn.exec_driver_sql("PRAGMA journal_mode").scalar_one()).lower()
        synchronous = int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())
    if journal != "wal" or synchronous != 2:  # 2 = FULL
        raise ConfigError("the audit log needs SQLite in WAL mode with synchronous=FULL")
    _sync_directory(engine.url.database)


def _sync_directory(database: str | None) -> None:
    """SQLite ignores a failed fsync of the directory when it creates the WAL file, so an entry
    could be acknowledged into a WAL whose directory entry is not yet durable. Sync the directory
    ourselves once the WAL exists, and refuse to run if that fails."""
    if not database or database == ":memory:":
        return
    path = Path(database).resolve()
    if not Path(f"{path}-wal").exists():
        return
    try:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise AuditUnavailable(
            f"cannot make the audit database's directory durable: {exc}"
        ) from exc


def check_entry(entry: bytes) -> None:
    # C2SP tlog-tiles entry bundles carry a uint16 length: larger entries cannot be served.
    if not isinstance(entry, bytes) or not 0 < len(entry) <= MAX_ENTRY_SIZE:
        raise InvalidInput(f"an audit entry must be 1 to {MAX_ENTRY_SIZE} bytes")


class Appender:
    """The append transaction, on one dedicated DBAPI connection with pre-written SQL.

    This is the hot path of every gateway request: a bare `BEGIN IMMEDIATE; UPDATE ... RETURNING;
    INSERT; COMMIT` costs ~0.2 ms on SQLite here, where the same through SQLAlchemy Core costs
    ~1 ms (statement compilation, pool and event machinery). Commits still go through the
    dialect's `do_commit`, so storage-fault tests see them. Thread-safe (one lock).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._queue = WriterQueue(engine)  # appenders in other processes: queue, do not poll
        self._conn: PoolProxiedConnection | None = None
        sqlite = engine.dialect.name == "sqlite"
        mark = "?" if sqlite else "%s"
        # SQLite: take the write lock up front (see store.db); PostgreSQL opens a transaction
        # implicitly on the first statement of a non-autocommit connection.
        self._begin = "BEGIN IMMEDIATE" if sqlite else None
        head, entries = audit_head.name, audit_entries.name
        self._update = f"UPDATE {head} SET size = size + {mark} WHERE id = 1 RETURNING size"
        self._insert = f"INSERT INTO {entries} (idx, entry) VALUES ({mark}, {mark})"

    def __call__(self, entries: Sequence[bytes]) -> list[int]:
        """Append `entries` in one transaction; return their indices once committed."""
        if not entries:
            return []
        for entry in entries:
            check_entry(entry)
        n = len(entries)
        dbapi_error = self._engine.dialect.loaded_dbapi.Error
        with self._lock, self._queue:
            conn = self._conn if self._conn is not None else self._engine.raw_connection()
            self._conn = conn
            try:
                cursor = conn.cursor()
                if self._begin:
                    cursor.execute(self._begin)
                cursor.execute(self._update, (n,))
                row = cursor.fetchone()
                if row is None:
                    raise dbapi_error("the audit log head row is missing")
                start = int(row[0]) - n
                cursor.executemany(self._insert, [(start + i, e) for i, e in enumerate(entries)])
                cursor.close()
                self._engine.dialect.do_commit(conn)
            except dbapi_error as exc:
                # Whether the commit landed is unknown: nobody is told an index, and the
                # connection is thrown away (the next append opens a fresh one).
                self._discard()
                raise AuditUnavailable("the audit log could not persist the entry") from exc
        return list(range(start, start + n))

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(self._engine.dialect.loaded_dbapi.Error):
                conn.invalidate()

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
            self._queue.close()


class GroupCommitter:
    """Group commit for asyncio callers: commit at once when idle; batch what arrives meanwhile.

    One committer thread owns the appender. A caller puts its entry on the queue and gets a
    future; at the end of the event loop's turn the queue is handed over, and the thread takes
    *every* entry handed over when it starts a commit (up to `max_batch`), commits them in one
    transaction and resolves their futures with one callback per event loop. (Taking entries as
    they arrive instead split a turn's burst: 32 appenders made batches of 16.)
    No timer: a lone request pays one commit, never a batching window (DESIGN.md "Group commit
    without a latency tax"); no task or executor hop per entry or per batch on the event loop.
    """

    def __init__(self, commit: Callable[[Sequence[bytes]], list[int]], max_batch: int) -> None:
        self._commit = commit
        # Called on the event loop with each batch's size once committed (the gateway's metrics).
        self.on_batch: Callable[[int], None] | None = None
        self._max_batch = max(1, max_batch)
        self._queue: deque[tuple[bytes, asyncio.Future[int]]] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._closed = False
        self._kicked = False  # a hand-over is scheduled on an event loop
        self._go = False  # what is queued may be taken
        self._thread: threading.Thread | None = None

    def submit(self, entry: bytes) -> asyncio.Future[int]:
        """Queue `entry`; the future gets its index once it is durable, or `AuditUnavailable`.

        Cancelling the future does not withdraw the entry (it may already be committing)."""
        check_entry(entry)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        with self._ready:
            if self._closed:
                raise AuditUnavailable("the audit log is closed")
            self._queue.append((entry, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-commit", daemon=True)
                self._thread.start()
            if not self._kicked:
                # Hand the batch over once this turn of the event loop is over: what the loop's
                # other callbacks submit in the same turn joins it (as with a drain task), and
                # the thread never takes half of what one turn submits.
                self._kicked = True
                future.get_loop().call_soon(self._kick)
        return future

    def _kick(self) -> None:
        with self._ready:
            self._kicked = False
            self._go = True
            self._ready.notify()

    async def append(self, entry: bytes) -> int:
        """Return the entry's index once it is durable; raise `AuditUnavailable` otherwise."""
        return await self.submit(entry)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not (self._go and self._queue) and not self._closed:
                    self._ready.wait()
                if not self._queue:
                    return  # closed and drained
                take = min(len(self._queue), self._max_batch)
                batch = [self._queue.popleft() for _ in range(take)]
                self._go = bool(self._queue)  # more was handed over than one commit takes
            self._commit_batch(batch)
            del batch  # not held while the thread waits for the next one

    def _commit_batch(self, batch: list[tuple[bytes, asyncio.Future[int]]]) -> None:
        outcome: list[int] | AuditUnavailable
        try:
            outcome = self._commit([entry for entry, _ in batch])
        except ClearanceError as exc:
            outcome = AuditUnavailable(exc.detail)
        except Exception:  # whatever failed, nobody waits forever or is told a false index
            log.exception("audit commit failed")
            outcome = AuditUnavailable("the audit log could not persist the entry")
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[int], int | None]]]
        by_loop = {}
        for i, (_, future) in enumerate(batch):
            index = outcome[i] if isinstance(outcome, list) else None
            by_loop.setdefault(future.get_loop(), []).append((future, index))
        error = outcome if isinstance(outcome, AuditUnavailable) else None
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting
                loop.call_soon_threadsafe(self._settle, settled, error)

    def _settle(
        self, settled: list[tuple[asyncio.Future[int], int | None]], error: AuditUnavailable | None
    ) -> None:
        for future, index in settled:
            if future.done():
                continue
            if error is not None or index is None:
                future.set_exception(error or AuditUnavailable("no index"))
            else:
                future.set_result(index)
        if error is None and self.on_batch is not None:
            self.on_batch(len(settled))

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        with self._ready:
            self._closed = True
            thread = self._thread
            self._ready.notify()  # whether idle or not: it checks `_closed` before waiting
        if thread is not None:
            thread.join()
