"""`clearance worker`: the supervisor of `[jobs] concurrency` runner processes.

It starts the runners (spawn: fresh interpreters, each loading the OCR and face models once),
and every quarter second looks at each one's `Slot`:
- a job past `[jobs] time_limit_seconds`: the runner is killed (SIGKILL: OCR in C code does not
  stop for a signal handler), the attempt recorded as failed (retried after its back-off, or
  rejected after the last), and a new runner started;
- a runner that died: its job's attempt is recorded the same way, and a new runner started (after
  a pause that doubles while runners keep dying young, so a broken set-up does not spin).
Every quarter of `[jobs] lease_seconds` it renews the leases of the jobs its runners hold. A
worker killed outright (-9, or its host gone) renews nothing: its jobs' leases pass within
`lease_seconds` and another worker's runners claim them (runner.py watches its parent and exits
with it).

Stopping (SIGTERM, SIGINT): runners finish the job they hold, within the time limit, then exit.
Every `PURGE_SECONDS` it deletes jobs finished more than `KEEP_DAYS` ago, erasing any staged
upload left behind (a runner that died between finishing and erasing).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.process import BaseProcess
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from clearance.config import Settings, load_settings
from clearance.errors import ClearanceError
from clearance.identity.vault import EvidenceVault
from clearance.jobs import runner, service
from clearance.jobs.models import JobState
from clearance.jobs.uploads import unstage
from clearance.store import connect, reading

log = logging.getLogger("clearance.worker")
WATCH_SECONDS = 0.25
IDLE_GRACE_SECONDS = 1.0  # what a runner holding no job gets to leave before it is killed
PURGE_SECONDS = 600.0
KEEP_DAYS = 7  # finished jobs stay this long (the portal shows their outcome)
_YOUNG_SECONDS = 10.0  # a runner that dies younger than this makes the next start wait
_RESTART_MAX_SECONDS = 30.0
_spawn = multiprocessing.get_context("spawn")


@dataclass
class Runner:
    slot: runner.Slot
    process: BaseProcess | None = None
    started: float = 0.0
    pause: float = 0.0  # before the next start
    not_before: float = 0.0


@dataclass
class Worker:
    config: Path
    settings: Settings
    concurrency: int
    parent: int | None = None  # stop when this process is gone (`clearance serve`'s worker)
    runners: list[Runner] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.engine: Engine = connect(self.settings.database_url)
        self.stop = _spawn.Event()
        self._vault: EvidenceVault | None = None
        self.runners = [
            Runner(runner.Slot(_spawn.Value("q", 0), _spawn.Value("q", 0), _spawn.Value("d", 0)))
            for _ in range(self.concurrency)
        ]
        self._renewed = 0.0  # time.monotonic() of the last lease renewal

    def run(self) -> None:
        """Until SIGTERM or SIGINT (or the parent's end): watch, restart, purge."""
        done = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
        last_purge = 0.0
        try:
            while not done.is_set():
                if self.parent is not None and os.getppid() != self.parent:
                    break
                self.watch()
                if time.monotonic() - last_purge > PURGE_SECONDS:
                    last_purge = time.monotonic()
                    self.purge()
                done.wait(WATCH_SECONDS)
        finally:
            self.shutdown()

    def heartbeat(self, *, force: bool = False) -> None:
        """Renew the leases of the jobs the live runners hold, every quarter of a lease."""
        lease = self.settings.jobs.lease_seconds
        if not force and time.monotonic() - self._renewed < lease / 4:
            return
        self._renewed = time.monotonic()
        held = [
            (r.slot.job.value, r.slot.attempt.value)
            for r in self.runners
            if r.process is not None and r.process.is_alive() and r.slot.job.value
        ]
        try:
            service.renew(self.engine, held, lease_seconds=lease)
        except SQLAlchemyError as exc:  # the next beat tries again; the lease covers three more
            log.warning("renewing the leases of %d jobs failed: %s", len(held), type(exc).__name__)

    def watch(self) -> None:
        self.heartbeat()
        limit = self.settings.jobs.time_limit_seconds
        for r in self.runners:
            process = r.process
            if process is None:
                if time.monotonic() >= r.not_before and not self.stop.is_set():
                    self._start(r)
                continue
            job, attempt = r.slot.job.value, r.slot.attempt.value
            if process.is_alive():
                if job and time.time() - r.slot.started.value > limit:
                    process.kill()
                    process.join()
                    self._failed(job, attempt, f"it ran over the {limit} s time limit")
                    self._ended(r, young=False)
                continue
            if job:
                self._failed(job, attempt, f"its runner stopped (exit code {process.exitcode})")
            self._ended(r, young=time.monotonic() - r.started < _YOUNG_SECONDS)

    def _start(self, r: Runner) -> None:
        r.slot.job.value = 0
        r.process = _spawn.Process(
            target=runner.main,
            args=(str(self.config), r.slot, self.stop, os.getpid()),
            name="clearance-runner",
            daemon=True,
        )
        r.process.start()
        r.started = time.monotonic()

    def _ended(self, r: Runner, *, young: bool) -> None:
        r.process = None
        r.slot.job.value = 0
        r.pause = min(_RESTART_MAX_SECONDS, max(1.0, r.pause * 2)) if young else 0.0
        r.not_before = time.monotonic() + r.pause
        if young:
            log.warning("a runner stopped soon after it started; next start in %.0f s", r.pause)

    def _failed(self, job_id: int, attempt: int, error: str) -> None:
        """Record the attempt a runner could not finish (unless it has ended since)."""
        try:
            with reading(self.engine) as conn:
                job = service.get(conn, job_id)
            if job.attempts != attempt or job.state is not JobState.RUNNING:
                return
            log.warning("job %d attempt %d failed: %s", job_id, attempt, error)
            if service.fail(self.engine, job, error) is JobState.REJECTED:
                unstage(self._open_vault(), job.payload)
        except (SQLAlchemyError, ClearanceError, OSError) as exc:  # the lease passes anyway
            log.warning("job %d: recording the failed attempt failed: %s", job_id, exc)

    def _open_vault(self) -> EvidenceVault:
        if self._vault is None:
            self._vault = EvidenceVault.open(self.settings.identity)
        return self._vault

    def purge(self) -> int:
        cutoff = service.utc_now() - timedelta(days=KEEP_DAYS)
        try:
            with reading(self.engine) as conn:
                old = service.finished_before(conn, cutoff)
            for job in old:
                unstage(self._open_vault(), job.payload)
            with self.engine.begin() as conn:
                service.delete(conn, [job.id for job in old])
        except (SQLAlchemyError, ClearanceError, OSError) as exc:  # the next purge tries again
            log.warning("purging finished jobs failed: %s", exc)
            return 0
        return len(old)

    def shutdown(self) -> None:
        """Runners finish the job they hold (within the time limit), then the rest is killed. A
        runner holding no job (idle, or still loading its models: seconds at a low priority on
        a busy host) has nothing to finish: it gets a moment to leave, then is killed, so the
        worker ends with `serve` instead of outliving it by a model load."""
        self.stop.set()
        deadline = time.monotonic() + self.settings.jobs.time_limit_seconds
        for r in self.runners:
            if r.process is not None:
                holding = bool(r.slot.job.value)
                end = deadline if holding else time.monotonic() + IDLE_GRACE_SECONDS
                # The jobs still running keep their leases while they finish.
                while r.process.is_alive() and time.monotonic() < end:
                    self.heartbeat()
                    r.process.join(min(WATCH_SECONDS, max(0.0, end - time.monotonic())))
                if r.process.is_alive():
                    r.process.kill()
                    r.process.join()
                if r.slot.job.value:  # it ended mid-job
                    self._failed(r.slot.job.value, r.slot.attempt.value, "the worker stopped")
        self.engine.dispose()


def run(config: str, concurrency: int | None = None, parent: int | None = None) -> None:
    """The worker process: `clearance worker`, or the one `clearance serve` starts."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    settings = load_settings(config)
    Worker(Path(config), settings, concurrency or settings.jobs.concurrency, parent).run()


def start_local(config: Path) -> BaseProcess:
    """The worker `clearance serve` runs beside its HTTP workers; it ends with `serve`."""
    process = _spawn.Process(
        target=run, args=(str(config), None, os.getpid()), name="clearance-worker", daemon=False
    )
    process.start()
    return process


def stop_local(process: BaseProcess, timeout: float) -> None:
    if process.is_alive():
        process.terminate()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
