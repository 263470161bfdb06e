"""Limits count in fixed one-minute windows (clearance.limits): requests that straddle a minute's
end see their counts start again. A test whose counts must be exact first waits until its
requests fit in what is left of the current minute, on the clock that counts them."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from clearance.limits.memory import WINDOW


def redis_clock(client: redis.Redis) -> Callable[[], float]:
    """Redis's own clock (`TIME`), the one its limit scripts count by."""

    def now() -> float:
        seconds, micros = client.time()
        return float(seconds) + micros / 1e6

    return now


def wait_for_room(room: float, clock: Callable[[], float] = time.time) -> None:
    """Return once at least `room` seconds are left in `clock`'s minute (time.time: the clock of
    every worker's in-process counter on this machine)."""
    while WINDOW - clock() % WINDOW < room:
        time.sleep(0.2)
