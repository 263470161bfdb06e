"""The files of prometheus_client's multi-process mode: the private directory `clearance serve`
makes for one run, and the bookkeeping of workers that end.

Each worker writes `counter_<pid>.db`, `histogram_<pid>.db` and `gauge_livesum_<pid>.db` in the
directory named by PROMETHEUS_MULTIPROC_DIR (set before the workers start: prometheus_client reads
it when first imported). Counter and histogram files of a worker that ended stay, so the node's
totals never go back; its live gauges must go (`multiprocess.mark_process_dead`): a worker that
stops does it itself (`retire`), and one killed outright is found by the next scrape (`sweep`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from prometheus_client import multiprocess

ENV = "PROMETHEUS_MULTIPROC_DIR"
_PREFIX = "clearance-metrics-"
_LIVE_GAUGE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


def create(base: Path | None = None) -> Path:
    """A new directory for this run under `base` (the temporary directory), readable by this user
    only (mkdtemp: 0700), after removing those a run that was killed (no stop to clean up) left
    behind: named after the pid of a `serve` that is gone, and ours."""
    base = base or Path(tempfile.gettempdir())
    for stale in base.glob(f"{_PREFIX}*"):
        owner = stale.name.removeprefix(_PREFIX).partition("-")[0]
        if owner.isdigit() and not _alive(int(owner)) and stale.stat().st_uid == os.getuid():
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=base))


def remove(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def retire(directory: Path, pid: int) -> None:
    """Worker `pid` has ended: drop its live gauges (its counters and histograms stay)."""
    with contextlib.suppress(FileNotFoundError):  # another worker's sweep got there first
        multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def sweep(directory: Path) -> None:
    """Retire every worker that left live gauges and is gone (killed: it could not retire itself).
    A few file names and a signal-0 probe per worker, at each scrape."""
    for path in directory.glob("gauge_live*.db"):
        match = _LIVE_GAUGE.fullmatch(path.name)
        if match is not None and not _alive(int(match[1])):
            retire(directory, int(match[1]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
