"""A runner: one process that claims jobs and runs them, one at a time, until told to stop.

The worker (`worker.py`) starts `[jobs] concurrency` of them and watches each through its `Slot`
(the job it runs, since when): it kills a runner whose job passes the time limit, and records the
attempt as failed when a runner dies mid-job. Errors that may pass (the database or the audit log
unavailable, a file system error) fail the attempt here, and the job is retried after its
back-off; anything else ends the process, and the worker records the attempt.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from clearance.audit.service import AuditLog
from clearance.config import load_settings
from clearance.errors import ClearanceError
from clearance.jobs import service
from clearance.jobs.key_revocation import KeyRevocations
from clearance.jobs.models import Job, JobKind, JobState
from clearance.jobs.verification import Verifications
from clearance.store import connect

log = logging.getLogger("clearance.jobs")
IDLE_POLL_SECONDS = 0.5  # an idle runner looks for work this often
PARENT_CHECK_SECONDS = 0.5


class Handler(Protocol):
    """What runs one kind of job (verification.py, key_revocation.py)."""

    def warm(self) -> None: ...

    def run(self, job: Job) -> object: ...

    def discard(self, job: Job) -> None: ...


@dataclass(frozen=True)
class Slot:
    """Shared with the worker: the job this runner is running (0: none), its attempt, and when
    it started (time.time())."""

    job: Synchronized[int]
    attempt: Synchronized[int]
    started: Synchronized[float]

    def set(self, job: Job) -> None:
        self.started.value = time.time()
        self.attempt.value = job.attempts
        self.job.value = job.id

    def clear(self) -> None:
        self.job.value = 0


def describe(exc: BaseException) -> str:
    if isinstance(exc, ClearanceError):
        return exc.detail
    return type(exc).__name__  # a driver's message may quote data: its type is enough here


def run_job(handler: Handler, engine: Engine, job: Job) -> None:
    """Run one claimed job to an end, or fail its attempt (retried later)."""
    if job.attempts > job.max_attempts:  # its last runner died: it has had every attempt
        what = "the verification" if job.kind is JobKind.VERIFY_DOCUMENT else f"job {job.kind}"
        if service.reject(
            engine, job, f"{what} could not be completed ({job.max_attempts} attempts)"
        ):
            handler.discard(job)
        return
    try:
        handler.run(job)
    except service.LeaseLost:
        log.warning("job %d: another runner took it over; nothing stored here", job.id)
    except (ClearanceError, SQLAlchemyError, OSError) as exc:
        log.warning("job %d attempt %d failed: %s", job.id, job.attempts, describe(exc))
        if service.fail(engine, job, describe(exc)) is JobState.REJECTED:
            handler.discard(job)


def _watch_parent(parent: int) -> None:
    """A runner outlives its worker only by this long (a kill -9 of the worker)."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)


def main(config: str, slot: Slot, stop: Event, parent: int) -> None:
    """The runner process (started by the worker with the spawn method)."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    # The worker stops its runners (the stop event, then SIGKILL): a Ctrl-C or a SIGTERM sent to
    # the whole process group must not end a job half done.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    settings = load_settings(config)
    # OCR and face matching take seconds of CPU per job: where a runner shares a host with
    # serving workers (the embedded default, or a small node), requests come first.
    if settings.jobs.nice:
        os.nice(settings.jobs.nice)
    engine = connect(settings.database_url)
    audit = AuditLog(engine, settings.audit)
    handlers: dict[JobKind, Handler] = {
        JobKind.VERIFY_DOCUMENT: Verifications(settings, engine, audit),
        JobKind.REVOKE_ORG_KEYS: KeyRevocations(engine, audit),
    }
    for handler in handlers.values():
        handler.warm()
    name, lease = service.runner_name(), settings.jobs.lease_seconds
    try:
        while not stop.is_set():
            try:
                job = service.claim(engine, lease_seconds=lease, runner=name)
            except SQLAlchemyError as exc:  # the database is away: look again later
                log.warning("claiming a job failed: %s", type(exc).__name__)
                job = None
            if job is None:
                stop.wait(IDLE_POLL_SECONDS)
                continue
            slot.set(job)
            try:
                run_job(handlers[job.kind], engine, job)
            finally:
                slot.clear()
    finally:
        audit.close()
        engine.dispose()
