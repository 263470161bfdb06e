"""Peak memory of one call: the process's resident high-water mark, reset just before it.

Pillow and libjpeg allocate outside Python's allocator, so tracemalloc alone would miss most of
an image's pixels. Linux lets a process reset its own VmHWM by writing "5" to
/proc/self/clear_refs (proc(5)); the peak growth over the resident size at the start is what
the call cost. tracemalloc's peak is kept too, as a floor when /proc is not writable.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
MB = 1024 * 1024
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True, slots=True)
class Cost:
    seconds: float
    peak_bytes: int  # max(resident high-water growth, tracemalloc peak)
    outcome: object  # the return value, or the exception raised


def _status_kb(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def _reset_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def measure(call: Callable[[], T], expected: tuple[type[BaseException], ...] = ()) -> Cost:
    """Run `call` once; an exception of an `expected` type is the outcome, others propagate."""
    resettable = _reset_peak()
    start_rss = _status_kb("VmRSS")
    tracemalloc.start()
    started = time.perf_counter()
    outcome: object
    try:
        outcome = call()
    except expected as exc:
        outcome = exc
    finally:
        seconds = time.perf_counter() - started
        _, traced = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    resident = (_status_kb("VmHWM") - start_rss) * 1024 if resettable else 0
    return Cost(seconds, max(resident, traced), outcome)
