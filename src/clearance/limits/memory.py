"""Counting in this process: the embedded default (no `[redis] url`), and the per-worker
fallback while Redis is unreachable. Same windows and answers as the Redis script (redis.py)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from clearance.limits.models import Bucket, Refusal

Periods = tuple[tuple[str, int] | None, ...]  # per bucket: its budget period and seconds left

WINDOW = 60  # seconds: requests and tokens are counted per minute, in fixed windows
MAX_COUNTS = 100_000  # counts kept before those of past windows are dropped


class MemoryCounter:
    def __init__(self, lease_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self._lease = lease_seconds
        self._clock = clock
        self._counts: dict[str, tuple[int, int]] = {}  # "user:42:r" -> (window, count)
        self._leases: dict[str, dict[str, float]] = {}  # "user:42" -> {lease: expiry}
        self._spent: dict[str, int] = {}  # "user:42:b:d20261207" -> micros spent and reserved

    def _used(self, key: str, window: int) -> int:
        found = self._counts.get(key)
        return found[1] if found is not None and found[0] == window else 0

    def _add(self, key: str, window: int, n: int) -> None:
        if len(self._counts) >= MAX_COUNTS and key not in self._counts:
            self._counts = {k: c for k, c in self._counts.items() if c[0] >= window}
        self._counts[key] = (window, self._used(key, window) + n)

    async def admit(
        self, buckets: tuple[Bucket, ...], lease: str, reserve: int = 0, periods: Periods = ()
    ) -> Refusal | None:
        """Count the request in every bucket, or in none and say which limit refused. A budget
        refuses once spent, or when the request's `reserve` (its worst-case cost) would pass
        it; the reserve is then held against the budget until `finish` settles the real cost."""
        now = self._clock()
        window = int(now // WINDOW)
        left = max(1, math.ceil((window + 1) * WINDOW - now))
        for b, period in zip(buckets, periods, strict=False):
            if b.budget and period is not None:
                spent = self._spent.get(f"{b.id}:b:{period[0]}", 0)
                if spent >= b.budget or spent + reserve > b.budget:
                    return Refusal(b.id, "budget", period[1])
        for b in buckets:
            if b.rpm and self._used(b.id + ":r", window) >= b.rpm:
                return Refusal(b.id, "rpm", left)
            if b.tpm and self._used(b.id + ":t", window) >= b.tpm:
                return Refusal(b.id, "tpm", left)
            if b.concurrent:
                held = self._leases.get(b.id, {})
                for expired in [k for k, until in held.items() if until <= now]:
                    del held[expired]
                if len(held) >= b.concurrent:
                    return Refusal(b.id, "concurrent", 1)
        for b in buckets:
            if b.rpm:
                self._add(b.id + ":r", window, 1)
            if b.concurrent:
                self._leases.setdefault(b.id, {})[lease] = now + self._lease
        for b, period in zip(buckets, periods, strict=False):
            if b.budget and period is not None:
                self._spend(f"{b.id}:b:{period[0]}", reserve)
        return None

    def _spend(self, key: str, micros: int) -> None:
        if len(self._spent) >= MAX_COUNTS and key not in self._spent:
            stem = key.rpartition(":")[2]  # keep this period's, drop past periods'
            self._spent = {k: v for k, v in self._spent.items() if k.endswith(stem)}
        self._spent[key] = self._spent.get(key, 0) + micros

    async def finish(
        self,
        buckets: tuple[Bucket, ...],
        lease: str,
        tokens: int,
        spend: int = 0,
        periods: Periods = (),
    ) -> None:
        """The request ended: its tokens counted, its concurrency slot freed, and its budget
        charged `spend` more (the real cost less the reserve: negative when it cost less)."""
        window = int(self._clock() // WINDOW)
        for b in buckets:
            if b.tpm and tokens > 0:
                self._add(b.id + ":t", window, tokens)
            if b.concurrent:
                self._leases.get(b.id, {}).pop(lease, None)
        if spend:
            for b, period in zip(buckets, periods, strict=False):
                if b.budget and period is not None:  # the period it was admitted in
                    self._spend(f"{b.id}:b:{period[0]}", spend)
