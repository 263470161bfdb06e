"""Kill cycles: writer subprocesses appending (and integrating) are SIGKILLed at random moments,
then a restarted process checks the stored log (`check_log`). Used by tests and the bench."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from clearance.audit.checkpoint import Checkpoint
from clearance.config import AuditSettings
from clearance.store import connect
from tests.reliability.logs import check_log

ROOT = Path(__file__).resolve().parents[2]
WRITERS = 2
ACK_TIMEOUT = 30.0  # seconds to wait for a writer's first acknowledgements


@dataclass(frozen=True, slots=True)
class CrashReport:
    cycles: int
    acked: int  # acknowledged entries over all cycles
    lost: int  # acknowledged entries missing or changed after a restart (must be 0)
    size: int  # entries stored at the end (acknowledged + in flight when killed)
    first_ack: list[float]  # per cycle: seconds from spawning the writers to their first ack


class _Acks:
    """Acknowledgements read from the writers' pipes, in a thread per writer."""

    def __init__(self) -> None:
        self.entries: dict[int, bytes] = {}
        self.duplicates = 0
        self.started = time.monotonic()
        self.first: float | None = None  # seconds to the first acknowledgement
        self._lock = threading.Lock()

    def read(self, pipe: IO[bytes]) -> None:
        for line in pipe:
            kind, _, rest = line.rstrip(b"\n").partition(b" ")
            if kind != b"ACK":
                continue
            index, _, data = rest.partition(b" ")
            with self._lock:
                if self.first is None:
                    self.first = time.monotonic() - self.started
                if int(index) in self.entries:
                    self.duplicates += 1  # one index acknowledged twice: never allowed
                self.entries[int(index)] = data

    def count(self) -> int:
        with self._lock:
            return len(self.entries)


def spawn_writer(
    url: str, settings: AuditSettings, tag: str, log: IO[bytes]
) -> subprocess.Popen[bytes]:
    args = ["group", url, str(settings.signing_key_file), tag]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.writer", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
    )


def kill_cycle(
    url: str, settings: AuditSettings, cycle: int, rng: random.Random, errors: IO[bytes]
) -> _Acks:
    """Run writers until a random number of acknowledgements, SIGKILL them; return the acks."""
    acks = _Acks()
    children = [spawn_writer(url, settings, f"c{cycle}w{w}", errors) for w in range(WRITERS)]
    readers = []
    try:
        for child in children:
            assert child.stdout is not None
            reader = threading.Thread(target=acks.read, args=(child.stdout,), daemon=True)
            reader.start()
            readers.append(reader)
        target, deadline = rng.randint(20, 600), time.monotonic() + ACK_TIMEOUT
        while acks.count() < target:
            assert time.monotonic() < deadline, "the writers stopped acknowledging"
            assert all(c.poll() is None for c in children), "a writer died before the kill"
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.1))
        for child in rng.sample(children, len(children)):
            os.kill(child.pid, signal.SIGKILL)
            time.sleep(rng.uniform(0, 0.02))
    finally:
        for child in children:
            child.kill()
            child.wait(timeout=30)
        for reader in readers:
            reader.join(timeout=30)
        for child in children:
            assert child.stdout is not None
            child.stdout.close()
    assert acks.duplicates == 0, "an index was acknowledged twice"
    return acks


def kill_cycles(
    url: str, settings: AuditSettings, cycles: int, seed: int, workdir: Path
) -> CrashReport:
    """`cycles` rounds of writers + SIGKILL + restart check; raises AssertionError if broken."""
    rng = random.Random(seed)
    engine = connect(url)
    acked: dict[int, bytes] = {}
    kept: Checkpoint | None = None
    lost = size = 0
    first_ack: list[float] = []
    try:
        with (workdir / "writers.stderr").open("ab") as errors:
            for cycle in range(cycles):
                acks = kill_cycle(url, settings, cycle, rng, errors)
                acked.update(acks.entries)
                first_ack.append(acks.first or 0.0)
                result = check_log(engine, settings, acked, kept)
                kept, lost, size = result.checkpoint, result.lost, result.size
    finally:
        engine.dispose()
    return CrashReport(cycles, len(acked), lost, size, first_ack)
