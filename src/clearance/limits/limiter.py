"""The request path's view of limits: which buckets hold a caller, admit or refuse, and count
what an admitted request used when it ends.

With no limit stored anywhere, `buckets` answers () from memory and nothing else runs: no Redis
call, no database read. With `[redis] url` the counts are shared by every process (redis.py);
without, each process counts alone (memory.py), as on one node. Redis unreachable: the request
is refused (503) or counted by this worker alone, per `[limits]` and whether the served model is
controlled; never served uncounted.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from clearance.config import Settings
from clearance.errors import LimitExceeded, LimitsUnavailable
from clearance.limits.memory import MemoryCounter
from clearance.limits.models import Bucket, Refusal
from clearance.limits.redis import RedisCounter
from clearance.limits.table import LimitTable

log = logging.getLogger("clearance.limits")
RETRY_REDIS_SECONDS = 1.0  # after a failure, Redis is not asked again for this long

_WHAT = {"rpm": "requests per minute", "tpm": "tokens per minute", "concurrent": "requests at once"}
_WHOSE = {"user": "your", "org": "your organisation's", "key": "this API key's"}


class Counter(Protocol):
    async def admit(self, buckets: tuple[Bucket, ...], lease: str) -> Refusal | None: ...
    async def finish(self, buckets: tuple[Bucket, ...], lease: str, tokens: int) -> None: ...


@dataclass(slots=True)
class Ticket:
    """An admitted request: what to count when it ends, and where."""

    buckets: tuple[Bucket, ...]
    lease: str
    counter: Counter

    @property
    def counts_tokens(self) -> bool:
        return any(b.tpm for b in self.buckets)

    @property
    def holds_slot(self) -> bool:
        return any(b.concurrent for b in self.buckets)


class Limiter:
    def __init__(self, settings: Settings, table: LimitTable | None = None) -> None:
        self.settings = settings.limits
        self.table = table or LimitTable()
        self.local = MemoryCounter(self.settings.stream_lease_seconds)
        self.shared: RedisCounter | None = None
        redis = settings.redis
        if redis.url:
            timeout = redis.timeout_ms / 1000
            client = Redis.from_url(
                redis.url, socket_timeout=timeout, socket_connect_timeout=timeout
            )
            self.shared = RedisCounter(client, redis.key_prefix, self.settings.stream_lease_seconds)
        self._down_until = 0.0
        self._process = secrets.token_hex(6)
        self._next = itertools.count()

    def reload(self, table: LimitTable) -> None:
        self.table = table

    def buckets(self, key_id: str, user_id: int, org_id: int | None) -> tuple[Bucket, ...]:
        return self.table.buckets(key_id, user_id, org_id)

    async def admit(self, buckets: tuple[Bucket, ...], *, controlled: bool) -> Ticket:
        """Count one request in `buckets`; raises LimitExceeded (429) at a limit, and
        LimitsUnavailable (503) when Redis is down and the fail mode is closed."""
        lease = f"{self._process}:{next(self._next)}"
        counter: Counter = self.local
        if self.shared is not None:
            counter = (
                self.shared if time.monotonic() >= self._down_until else self._fallback(controlled)
            )
        try:
            refused = await counter.admit(buckets, lease)
        except (RedisError, OSError) as exc:
            log.warning("Redis unavailable for limits: %s", exc)
            self._down_until = time.monotonic() + RETRY_REDIS_SECONDS
            counter = self._fallback(controlled)
            refused = await counter.admit(buckets, lease)
        if refused is not None:
            raise _exceeded(refused)
        return Ticket(buckets, lease, counter)

    def _fallback(self, controlled: bool) -> Counter:
        mode = (
            self.settings.controlled_without_redis
            if controlled
            else self.settings.uncontrolled_without_redis
        )
        if mode == "closed":
            raise LimitsUnavailable(
                "usage limits cannot be checked right now; try again shortly",
                reason="limits_unavailable",
            )
        return self.local

    async def finish(self, ticket: Ticket, tokens: int) -> None:
        """Count the tokens an admitted request used and free its slot; a failure is logged (a
        slot then frees itself when its lease expires)."""
        if not (ticket.holds_slot or (tokens > 0 and ticket.counts_tokens)):
            return
        try:
            await ticket.counter.finish(ticket.buckets, ticket.lease, tokens)
        except (RedisError, OSError) as exc:
            log.warning("Redis unavailable: %d tokens not counted (%s)", tokens, exc)

    async def close(self) -> None:
        if self.shared is not None:
            await self.shared.close()


def _exceeded(r: Refusal) -> LimitExceeded:
    whose = _WHOSE.get(r.scope, "your")
    return LimitExceeded(
        f"Rate limit reached: {whose} limit of {_WHAT[r.limit]}; retry in {r.retry_after} s",
        retry_after=r.retry_after,
        reason=f"limit.{r.limit}.{r.scope}",
    )
