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
from decimal import Decimal
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from clearance.config import Settings
from clearance.errors import BudgetExceeded, LimitExceeded, LimitsUnavailable
from clearance.limits.memory import MemoryCounter, Periods
from clearance.limits.models import Bucket, Refusal, cost_micros, period_window
from clearance.limits.redis import RedisCounter
from clearance.limits.table import LimitTable

log = logging.getLogger("clearance.limits")
RETRY_REDIS_SECONDS = 1.0  # after a failure, Redis is not asked again for this long

_WHAT = {
    "rpm": "requests per minute",
    "tpm": "tokens per minute",
    "concurrent": "requests at once",
    "budget": "spend for this period",
}
_WHOSE = {"user": "your", "org": "your organisation's", "key": "this API key's"}


class Counter(Protocol):
    async def admit(
        self, buckets: tuple[Bucket, ...], lease: str, reserve: int = 0, periods: Periods = ()
    ) -> Refusal | None: ...

    async def finish(
        self,
        buckets: tuple[Bucket, ...],
        lease: str,
        tokens: int,
        spend: int = 0,
        periods: Periods = (),
    ) -> None: ...


@dataclass(slots=True)
class Ticket:
    """An admitted request: what to count when it ends, and where."""

    buckets: tuple[Bucket, ...]
    lease: str
    counter: Counter
    reserve: int = 0  # micros held against the budgets until the cost is known
    periods: Periods = ()  # each bucket's budget period when admitted
    prices: tuple[Decimal, Decimal] | None = None  # the served model's, per million tokens

    @property
    def counts_tokens(self) -> bool:
        """Whether the answer's usage must be read: a tokens limit, or a budget to charge."""
        return any(b.tpm or b.budget for b in self.buckets)

    @property
    def has_budget(self) -> bool:
        return any(b.budget for b in self.buckets)

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

    async def admit(
        self,
        buckets: tuple[Bucket, ...],
        *,
        controlled: bool,
        prices: tuple[Decimal, Decimal] | None = None,
        estimate: tuple[int, int] = (0, 0),
    ) -> Ticket:
        """Count one request in `buckets`; raises LimitExceeded (429) at a limit or a spent
        budget, and LimitsUnavailable (503) when Redis is down and the fail mode is closed.
        With a budget, the request's worst-case cost (`estimate`: input and output tokens, at
        the served model's `prices`) is reserved at once and settled by `finish`."""
        lease = f"{self._process}:{next(self._next)}"
        reserve = 0
        periods: Periods = ()
        if any(b.budget for b in buckets):
            now = time.time()
            periods = tuple(
                period_window(b.period, now) if b.budget and b.period is not None else None
                for b in buckets
            )
            if prices is not None:
                reserve = cost_micros(estimate[0], estimate[1], prices)
        counter: Counter = self.local
        if self.shared is not None:
            counter = (
                self.shared if time.monotonic() >= self._down_until else self._fallback(controlled)
            )
        try:
            refused = await counter.admit(buckets, lease, reserve, periods)
        except (RedisError, OSError) as exc:
            log.warning("Redis unavailable for limits: %s", exc)
            self._down_until = time.monotonic() + RETRY_REDIS_SECONDS
            counter = self._fallback(controlled)
            refused = await counter.admit(buckets, lease, reserve, periods)
        if refused is not None:
            raise _exceeded(refused)
        return Ticket(buckets, lease, counter, reserve, periods, prices)

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

    async def finish(self, ticket: Ticket, tokens: int, cost: int = 0) -> None:
        """Count the tokens an admitted request used, charge its `cost` (micros) to its budgets
        in place of the reserve, and free its slot; a failure is logged (a slot then frees
        itself when its lease expires; the reserve stays charged: a budget errs on the safe
        side)."""
        spend = cost - ticket.reserve if ticket.has_budget else 0
        if not (ticket.holds_slot or (tokens > 0 and ticket.counts_tokens) or spend):
            return
        try:
            await ticket.counter.finish(ticket.buckets, ticket.lease, tokens, spend, ticket.periods)
        except (RedisError, OSError) as exc:
            log.warning("Redis unavailable: %d tokens not counted (%s)", tokens, exc)

    async def close(self) -> None:
        if self.shared is not None:
            await self.shared.close()


def _exceeded(r: Refusal) -> LimitExceeded:
    whose = _WHOSE.get(r.scope, "your")
    if r.limit == "budget":
        return BudgetExceeded(
            f"Budget reached: {whose} spend budget for this period is used up; it renews in "
            f"{r.retry_after} s",
            retry_after=r.retry_after,
            reason=f"limit.budget.{r.scope}",
        )
    return LimitExceeded(
        f"Rate limit reached: {whose} limit of {_WHAT[r.limit]}; retry in {r.retry_after} s",
        retry_after=r.retry_after,
        reason=f"limit.{r.limit}.{r.scope}",
    )
