"""`AuditLog`: the one object the rest of Clearance uses to write the audit log.

log = AuditLog(engine, settings.audit)
log.start()                              # integrator thread: tiles + a checkpoint each second
index = log.append(entry_bytes)          # blocking; returns once the entry is durable
index = await log.sequencer.append(e)    # asyncio group commit, for the gateway
log.close()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from sqlalchemy.engine import Engine

from clearance.audit.archive import open_archive
from clearance.audit.checkpoint import Checkpoint, CheckpointSigner
from clearance.audit.integrator import MAX_PER_CHECKPOINT, integrate
from clearance.audit.keys import NoteSigner, load_signer
from clearance.audit.reader import LogReader
from clearance.audit.sequencer import Appender, GroupCommitter, check_durable
from clearance.audit.witnessing import Witnessing
from clearance.config import AuditSettings
from clearance.errors import ClearanceError

log = logging.getLogger(__name__)


class AuditLog:
    def __init__(
        self, engine: Engine, settings: AuditSettings, *, signer: NoteSigner | None = None
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._key = signer
        self._signer: CheckpointSigner | None = None
        self._checked = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._appended = False
        self._integrates = True
        self._appender = Appender(engine)
        self.sequencer = GroupCommitter(self._commit, settings.batch_max_entries)
        self.archive = open_archive(settings)
        self.reader = LogReader(engine, self.archive)
        # Checked here, so a bad [[audit.witnesses]] stops the start; used by the integrator.
        self.witnessing = Witnessing(engine, settings)

    # -- appending ------------------------------------------------------------------------

    def append(self, entry: bytes) -> int:
        """Append one entry; return its index once committed durably. Thread-safe."""
        return self._commit([entry])[0]

    def append_many(self, entries: Sequence[bytes]) -> list[int]:
        """Append entries in one transaction; gap-free consecutive indices, once durable."""
        return self._commit(entries)

    async def append_async(self, entry: bytes) -> int:
        """Group-committed append for asyncio callers (same as `sequencer.append`)."""
        return await self.sequencer.append(entry)

    def _commit(self, entries: Sequence[bytes]) -> list[int]:
        if not self._checked:
            check_durable(self._engine)
            self._checked = True
        indices = self._appender(entries)
        self._appended = True
        self._wake.set()
        return indices

    # -- integrating ----------------------------------------------------------------------

    @property
    def signer(self) -> CheckpointSigner:
        with self._lock:
            if self._signer is None:
                key = self._key or load_signer(self._settings.signing_key_file)
                self._signer = CheckpointSigner(key, self._settings.origin)
            return self._signer

    def integrate(self) -> Checkpoint | None:
        """Integrate every entry committed when the call starts and sign; return the newest
        checkpoint signed.

        One checkpoint per call, unless there is more than one checkpoint may cover
        (`MAX_PER_CHECKPOINT`): entries that keep arriving meanwhile wait for the next call,
        instead of keeping the integrator signing back to back (it did, and took half a CPU
        from the workers beside it at 1,000 requests a second)."""
        latest = None
        while True:
            before = self.signer.last.size if self.signer.last is not None else 0
            checkpoint = integrate(self._engine, self.signer, archive=self.archive)
            if checkpoint is None:
                return latest
            latest = checkpoint
            if checkpoint.size - before < MAX_PER_CHECKPOINT:
                return latest

    def start(self, *, integrator: bool = True) -> None:
        """Check durability; unless another process integrates (`integrator=False`: the serving
        workers of `clearance serve`, see clearance/background.py), check the key, integrate
        what is pending and start the integrator thread."""
        check_durable(self._engine)
        self._checked = True
        if not integrator:
            self._integrates = False
            return
        self.integrate()
        self._thread = threading.Thread(target=self._run, name="audit-integrator", daemon=True)
        self._thread.start()
        self.witnessing.start()  # submits the newest checkpoint now, and each one signed

    def _run(self) -> None:
        interval = self._settings.checkpoint_interval_seconds
        while not self._stop.is_set():
            started = time.monotonic()
            self._wake.clear()
            try:
                if self.integrate() is not None:
                    self.witnessing.signed()
            except ClearanceError as exc:
                log.warning("audit integration failed: %s", exc.detail)
            # Wait for new entries, but sign at most once per interval (and at least once per
            # interval while entries arrive).
            self._wake.wait(timeout=interval)
            self._stop.wait(timeout=max(0.0, started + interval - time.monotonic()))

    def close(self) -> None:
        """Stop the integrator and integrate what this process appended (best effort)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.witnessing.close()
        self.sequencer.close()
        self._appender.close()
        if (
            self._integrates
            and self._appended
            and (self._key or self._settings.signing_key_file.exists())
        ):
            try:
                self.integrate()
            except ClearanceError as exc:
                # The entries are durable; the next integrator will sign them.
                log.warning("audit integration at close failed: %s", exc.detail)
