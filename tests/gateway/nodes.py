"""Several `clearance serve` processes on one database, and the waits their tests make: for an
event (a refusal, a reconnection), bounded by a deadline, never a fixed sleep."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from clearance.config import Settings
from clearance.principals.service import create_key
from clearance.store import connect

from .conftest import CLEARANCE, spawn_serve, wait_serving

DEADLINE = 30.0  # seconds before a wait is a failure: far above any bound, below CI's timeout


def wait_until(what: str, done: Callable[[], bool], timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def new_key(settings: Settings, email: str) -> tuple[str, str]:
    """A new key (fallback off, so a suspension is a refusal); its id and secret."""
    engine = connect(settings.database_url)
    try:
        with engine.begin() as conn:
            rec, secret = create_key(conn, email, name="probe", allow_fallback=False)
    finally:
        engine.dispose()
    return rec.id, secret


@contextmanager
def nodes(config: Path, count: int, workers: int) -> Iterator[list[str]]:
    """`count` separate `clearance serve --workers N` processes on the same database, started
    together; their base URLs once each answers /healthz. Stopped together, gracefully."""
    started: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for _ in range(count):
            started.append(spawn_serve(config, workers=workers))
        for server, base in started:  # started together: the time of starting them one by one
            wait_serving(server, base, timeout=60 * count)
        yield [base for _, base in started]
    finally:
        for server, _ in started:
            server.terminate()
        for server, _ in started:
            server.wait(timeout=60)


def cli(config: Path, *args: str) -> None:
    """The real `clearance` command, in a process of its own."""
    subprocess.run(
        [CLEARANCE, *args, "--config", str(config)], check=True, capture_output=True, timeout=60
    )
