"""Submitting our checkpoints to C2SP tlog-witnesses and keeping their cosignatures.

For each configured witness (`[[audit.witnesses]]`) the integrator's process sends the newest
signed checkpoint with an RFC 9162 consistency proof from the size the witness last cosigned
(tlog-witness `add-checkpoint`); a 409 names the witness's size and the request is made again
from it. The cosignature/v1 lines that verify with the witness's key are stored beside the
checkpoint (`audit_cosignatures`) and served with it at /audit/checkpoint.

Witnesses may lag or be down: nothing here blocks appending, integrating or serving. What they
refuse is logged; a witness that says our log forked (409 at the same size, 422 on our proof,
or a size larger than our tree) is logged as an error, for the operator to investigate.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from clearance.audit.archive import open_archive
from clearance.audit.cosignature import CosignatureVerifier, cosignatures, split_note
from clearance.audit.reader import StoredTiles
from clearance.audit.tables import audit_checkpoints, audit_cosignatures
from clearance.config import AuditSettings
from clearance.errors import ConfigError, InvalidInput, VerificationError
from clearance.store import reading
from clearance.witness import protocol

log = logging.getLogger(__name__)

MAX_ANSWER = 64 * 1024
RETRIES = 3  # 409s followed in one round: the witness's size can move while we ask


class WitnessError(Exception):
    """One witness did not cosign this time; `fork` when it says our log is inconsistent."""

    def __init__(self, message: str, *, fork: bool = False) -> None:
        super().__init__(message)
        self.fork = fork


@dataclass(frozen=True, slots=True)
class Conflict:
    size: int  # the size the witness last cosigned (tlog-witness 409, text/x.tlog.size)


@dataclass(frozen=True, slots=True)
class WitnessClient:
    url: str  # the submission prefix
    verifier: CosignatureVerifier
    timeout: float

    @property
    def name(self) -> str:
        return self.verifier.name

    def add_checkpoint(self, body: bytes) -> str | Conflict:
        """POST add-checkpoint; the answer's lines on 200, the witness's size on a 409 that
        gives one; `WitnessError` otherwise."""
        request = urllib.request.Request(
            self.url.rstrip("/") + protocol.PATH,
            data=body,
            method="POST",
            headers={"content-type": "text/plain; charset=utf-8", "user-agent": "clearance"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return str(answer.read(MAX_ANSWER).decode("utf-8"))
        except urllib.error.HTTPError as exc:
            with exc:
                text = exc.read(MAX_ANSWER).decode("utf-8", "replace")
                media = (exc.headers.get("content-type") or "").split(";")[0].strip()
            return _refusal(self.name, exc.code, media, text)
        except (OSError, UnicodeDecodeError) as exc:  # refused, reset, timed out, garbage
            raise WitnessError(f"witness {self.name} unreachable: {exc}") from None


def _refusal(name: str, status: int, media: str, text: str) -> Conflict:
    if status == 409 and media == protocol.SIZE_TYPE:
        try:
            return Conflict(protocol.decimal(text.removesuffix("\n")))
        except protocol.MalformedRequest:
            raise WitnessError(f"witness {name}: a 409 without a size") from None
    detail = text.strip()[:200]
    if status == 409:  # the same size with another root: the witness saw another tree
        raise WitnessError(f"witness {name} reports a fork: {detail}", fork=True)
    if status == 422:  # our consistency proof does not lead from what it saw to ours
        raise WitnessError(f"witness {name} rejects our consistency proof: {detail}", fork=True)
    meaning = {
        400: "malformed request",
        403: "our log key is not trusted there",
        404: "our log's origin is unknown there",
    }.get(status, "error")
    raise WitnessError(f"witness {name}: HTTP {status} ({meaning}): {detail}")


def witness_clients(settings: AuditSettings) -> list[WitnessClient]:
    """The configured witnesses; `ConfigError` for a bad key, a duplicate or a quorum that
    cannot be met."""
    clients = []
    for table in settings.witnesses:
        clients.append(_client(table, settings.witness_timeout_seconds))
    names = [c.name for c in clients]
    if len(set(names)) != len(names):
        raise ConfigError("[[audit.witnesses]]: two witnesses with the same key name")
    if clients and settings.witness_quorum > len(clients):
        raise ConfigError(
            f"[audit] witness_quorum = {settings.witness_quorum}, but only "
            f"{len(clients)} witnesses are configured"
        )
    return clients


def _client(table: Mapping[str, Any], timeout: float) -> WitnessClient:
    try:
        verifier = CosignatureVerifier.from_text(str(table["vkey"]))
    except InvalidInput as exc:
        raise ConfigError(f"[[audit.witnesses]] {table['url']}: vkey: {exc.detail}") from None
    return WitnessClient(str(table["url"]), verifier, timeout)


class Witnessing:
    """Rounds of submissions, one per newly signed checkpoint (or retry), in a thread."""

    def __init__(self, engine: Engine, settings: AuditSettings) -> None:
        self._engine = engine
        self._archive = open_archive(settings)
        self.clients = witness_clients(settings)
        self._retry = max(settings.checkpoint_interval_seconds, 1.0)
        self._known: dict[str, int] = {}  # what each witness last cosigned, as far as we know
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.clients:
            return
        with reading(self._engine) as conn:
            rows = conn.execute(
                sa.select(
                    audit_cosignatures.c.witness, sa.func.max(audit_cosignatures.c.size)
                ).group_by(audit_cosignatures.c.witness)
            ).all()
        self._known = {str(name): int(size) for name, size in rows}
        self._thread = threading.Thread(target=self._run, name="audit-witness", daemon=True)
        self._thread.start()

    def signed(self) -> None:
        """A new checkpoint was signed: submit it."""
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        delay = self._retry
        while not self._stop.is_set():
            self._wake.clear()
            failed = self.round()
            # After a failure wait longer each time (at most a minute) unless a new checkpoint
            # comes; a witness that was down gets the newest checkpoint when it is back.
            delay = min(delay * 2, 60.0) if failed else self._retry
            self._wake.wait(timeout=delay)

    def round(self) -> int:
        """Submit the newest checkpoint to every witness that has not cosigned it; return how
        many failed."""
        with reading(self._engine) as conn:
            latest = _latest(conn)
            if latest is None:
                return 0
            size, note = latest
            done = set(
                conn.execute(
                    sa.select(audit_cosignatures.c.witness).where(audit_cosignatures.c.size == size)
                ).scalars()
            )
        failed = 0
        for client in self.clients:
            if client.name in done or self._stop.is_set():
                continue
            try:
                line = self._submit(client, size, note)
            except WitnessError as exc:
                failed += 1
                (log.error if exc.fork else log.warning)("%s", exc)
                continue
            with self._engine.begin() as conn:
                conn.execute(
                    sa.insert(audit_cosignatures).values(
                        size=size, witness=client.name, line=line, cosigned_at=datetime.now(UTC)
                    )
                )
            self._known[client.name] = size
        return failed

    def _submit(self, client: WitnessClient, size: int, note: str) -> str:
        text, _ = split_note(note)
        old = min(self._known.get(client.name, 0), size)
        for _ in range(RETRIES):
            answer = client.add_checkpoint(protocol.encode(old, self._proof(old, size), note))
            if isinstance(answer, Conflict):
                if answer.size > size:
                    raise WitnessError(
                        f"witness {client.name} has cosigned size {answer.size} of this log, "
                        f"larger than our tree ({size}): storage rolled back, or a fork",
                        fork=True,
                    )
                old = self._known[client.name] = answer.size
                continue
            lines = [line + "\n" for line in answer.split("\n") if line]
            try:
                found = cosignatures(text, lines, [client.verifier])
            except VerificationError as exc:
                raise WitnessError(f"witness {client.name}: {exc.detail}") from None
            if client.name not in found:
                raise WitnessError(f"witness {client.name} answered without its cosignature")
            return found[client.name].line
        raise WitnessError(f"witness {client.name}: its size kept moving; retrying later")

    def _proof(self, old: int, size: int) -> list[bytes]:
        if not 0 < old < size:
            return []
        with reading(self._engine) as conn:
            return StoredTiles(conn, self._archive).consistency_proof(old, size)


def _latest(conn: Connection) -> tuple[int, str] | None:
    row = conn.execute(
        sa.select(audit_checkpoints.c.size, audit_checkpoints.c.note)
        .order_by(audit_checkpoints.c.size.desc())
        .limit(1)
    ).first()
    return None if row is None else (int(row[0]), str(row[1]))


@dataclass(frozen=True, slots=True)
class WitnessStatus:
    name: str
    url: str
    cosigned_size: int  # the largest checkpoint of ours it cosigned (0: none yet)
    cosigned_at: datetime | None
    behind: int  # entries signed since: how far it lags the newest checkpoint


def witness_status(engine: Engine, settings: AuditSettings) -> tuple[int, list[WitnessStatus]]:
    """The newest checkpoint's size, and how far each configured witness has cosigned."""
    clients = witness_clients(settings)
    with reading(engine) as conn:
        latest = _latest(conn)
        rows = conn.execute(
            sa.select(
                audit_cosignatures.c.witness,
                sa.func.max(audit_cosignatures.c.size),
                sa.func.max(audit_cosignatures.c.cosigned_at),
            ).group_by(audit_cosignatures.c.witness)
        ).all()
    size = 0 if latest is None else latest[0]
    seen = {str(r[0]): (int(r[1]), r[2]) for r in rows}
    return size, [
        WitnessStatus(
            c.name,
            c.url,
            seen.get(c.name, (0, None))[0],
            seen.get(c.name, (0, None))[1],
            size - seen.get(c.name, (0, None))[0],
        )
        for c in clients
    ]
