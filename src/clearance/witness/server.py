"""A C2SP tlog-witness: cosigns a log's checkpoint only if it extends every one it cosigned before.

    clearance witness serve --key FILE --port P --data DIR --log ORIGIN=VKEY ...

Per log (by origin) the witness keeps the size and root hash it last cosigned, in SQLite under
DIR, durably (WAL, synchronous=FULL) and checked-and-updated in one transaction (tlog-witness:
"checking the old size against the latest checkpoint and persisting the new checkpoint must be
performed atomically", or two requests could roll the log back). A request that is signed by
the log but does not extend what the witness saw (a fork, a failed proof) is kept as evidence.
"""

from __future__ import annotations

import hmac
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from clearance.audit.cosignature import Cosigner
from clearance.audit.keys import NoteVerifier
from clearance.audit.merkle import verify_consistency
from clearance.audit.note import open_note
from clearance.errors import VerificationError
from clearance.witness.protocol import (
    MAX_BODY,
    PATH,
    SIZE_TYPE,
    AddCheckpoint,
    MalformedRequest,
    parse,
)

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    cosigned_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS evidence (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL,
    reason TEXT NOT NULL,
    request BLOB NOT NULL,
    received_at TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: str
    media_type: str = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Seen:
    size: int
    root: bytes


class WitnessState:
    """The last cosigned (size, root) per origin, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a cosignature is never ahead of the disk
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def seen(self, origin: str) -> Seen | None:
        with self._lock:
            row = self._db.execute(
                "SELECT size, root FROM logs WHERE origin = ?", (origin,)
            ).fetchone()
        return None if row is None else Seen(int(row[0]), bytes(row[1]))

    def evidence(self, origin: str) -> list[tuple[str, bytes]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT reason, request FROM evidence WHERE origin = ? ORDER BY id", (origin,)
            ).fetchall()
        return [(str(r[0]), bytes(r[1])) for r in rows]

    def add(self, request: AddCheckpoint, cosigner: Cosigner) -> Outcome:
        """Check `request` against what was seen and, if it extends it, record it and cosign;
        all in one transaction (the signature is verified before)."""
        new = request.checkpoint
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                outcome = self._check_and_record(request, cosigner)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        if outcome.status == 200:
            log.info("cosigned %s at size %d", new.origin, new.size)
        return outcome

    def _check_and_record(self, request: AddCheckpoint, cosigner: Cosigner) -> Outcome:
        new = request.checkpoint
        row = self._db.execute(
            "SELECT size, root, cosigned_at FROM logs WHERE origin = ?", (new.origin,)
        ).fetchone()
        size, root, last_time = (0, None, 0) if row is None else (row[0], bytes(row[1]), row[2])
        if request.old != size:
            # tlog-witness: 409 with the size the witness has, so the client can retry from it.
            return Outcome(409, f"{size}\n", SIZE_TYPE)
        if root is not None:
            if request.old == new.size:
                if not hmac.compare_digest(root, new.root):
                    self._keep(request, "fork: same size, another root")
                    return Outcome(409, "this checkpoint forks the log: same size, other root\n")
            else:
                try:
                    verify_consistency(size, new.size, root, new.root, request.proof)
                except VerificationError:
                    self._keep(request, "the consistency proof does not verify")
                    return Outcome(422, "the consistency proof does not verify\n")
        # Never a timestamp older than the last cosignature's (a clock stepped back).
        now = max(int(time.time()), int(last_time))
        self._db.execute(
            "INSERT INTO logs (origin, size, root, cosigned_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root, "
            "cosigned_at = excluded.cosigned_at",
            (new.origin, new.size, new.root, now),
        )
        return Outcome(200, cosigner.cosign(request.text, now))

    def _keep(self, request: AddCheckpoint, reason: str) -> None:
        """tlog-witness: the witness MAY log a signed request that does not verify, "as it might
        be proof of log misbehavior". Kept in the same transaction as the answer."""
        self._db.execute(
            "INSERT INTO evidence (origin, reason, request, received_at) VALUES (?, ?, ?, ?)",
            (request.checkpoint.origin, reason, request.encode(), datetime.now(UTC).isoformat()),
        )
        log.warning("log %s: %s (kept as evidence)", request.checkpoint.origin, reason)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Witness:
    """The add-checkpoint handler: `logs` maps each origin to the log keys trusted for it."""

    def __init__(
        self, cosigner: Cosigner, logs: dict[str, list[NoteVerifier]], state: WitnessState
    ) -> None:
        self.cosigner = cosigner
        self.logs = logs
        self.state = state

    def add_checkpoint(self, body: bytes) -> Outcome:
        try:
            request = parse(body)
        except MalformedRequest as exc:
            return Outcome(400, f"{exc}\n")
        keys = self.logs.get(request.checkpoint.origin)
        if keys is None:
            return Outcome(404, "unknown log origin\n")
        if not any(_signed_by(request.note, key) for key in keys):
            return Outcome(403, "no signature by a key trusted for this log\n")
        return self.state.add(request, self.cosigner)


def _signed_by(note: str, key: NoteVerifier) -> bool:
    """tlog-witness: signatures from unknown keys are ignored; a bad one from a trusted key
    counts as no signature."""
    try:
        open_note(note, key)
    except VerificationError:
        return False
    return True


def witness_app(witness: Witness) -> Starlette:
    async def add_checkpoint(request: Request) -> Response:
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY:
                    return PlainTextResponse("request body too large\n", status_code=413)
        except ClientDisconnect:
            return Response(status_code=400)
        outcome = await run_in_threadpool(witness.add_checkpoint, bytes(body))
        # Exactly the media type the spec names (Starlette would add a charset to text/*).
        return Response(outcome.body, outcome.status, headers={"content-type": outcome.media_type})

    return Starlette(routes=[Route(PATH, add_checkpoint, methods=["POST"])])


def parse_log_option(value: str) -> tuple[str, NoteVerifier]:
    """`ORIGIN=VKEY` (the log's origin line and its signed-note verifier key)."""
    origin, sep, vkey = value.partition("=")
    if not sep or not origin or "\n" in origin:
        raise ValueError(f"--log wants ORIGIN=VKEY, not {value!r}")
    return origin, NoteVerifier.from_text(vkey)
