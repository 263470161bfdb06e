"""Counting in Redis, shared by every gateway process: one Lua script per request (atomic, one
round trip), one more when a request that holds a concurrency slot or counts tokens ends.

Fixed one-minute windows on Redis's clock (`TIME`), so every node agrees on the window whatever
its own clock says: a count is exact per window (a limit of 60/min admits exactly 60 in each
minute, whatever the number of replicas), the retry-after is exact, and each bucket costs one
integer key per window. The price is the boundary: up to twice the limit across the end of one
minute and the start of the next. Concurrency slots are leases in a sorted set scored by expiry,
so a worker killed mid-stream frees its slots after `[limits] stream_lease_seconds`. A spend budget
is one integer per bucket and period (micros, UTC day or month, the period named by the gateway):
admitting adds the request's reserve (its worst-case cost) atomically with the check, so concurrent
requests cannot overspend together; the end adds the real cost less the reserve.

Keys are built inside the scripts (the window comes from `TIME`), so this needs one Redis, not a
Redis Cluster.
"""

from __future__ import annotations

from redis.asyncio import Redis

from clearance.limits.memory import Periods
from clearance.limits.models import Bucket, Refusal

# KEYS: the buckets' key stems; ARGV: lease, lease seconds, the request's budget reserve (micros),
# then per bucket: rpm, tpm, concurrent, budget (micros), its period ("" without a budget) and the
# seconds left in that period.
ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = math.floor(now / 60)
local left = math.max(1, math.ceil((window + 1) * 60 - now))
local lease, ttl, reserve = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
for i, stem in ipairs(KEYS) do
  local o = 4 + 6 * (i - 1)
  local rpm, tpm, conc = tonumber(ARGV[o]), tonumber(ARGV[o+1]), tonumber(ARGV[o+2])
  local budget = tonumber(ARGV[o+3])
  if rpm > 0 and tonumber(redis.call('GET', stem .. ':r:' .. window) or '0') >= rpm then
    return {i, 'rpm', left}
  end
  if tpm > 0 and tonumber(redis.call('GET', stem .. ':t:' .. window) or '0') >= tpm then
    return {i, 'tpm', left}
  end
  if conc > 0 then
    redis.call('ZREMRANGEBYSCORE', stem .. ':c', '-inf', now)
    if redis.call('ZCARD', stem .. ':c') >= conc then return {i, 'concurrent', 1} end
  end
  if budget > 0 then
    local spent = tonumber(redis.call('GET', stem .. ':b:' .. ARGV[o+4]) or '0')
    if spent >= budget or spent + reserve > budget then
      return {i, 'budget', tonumber(ARGV[o+5])}
    end
  end
end
for i, stem in ipairs(KEYS) do
  local o = 4 + 6 * (i - 1)
  if tonumber(ARGV[o]) > 0 then
    local k = stem .. ':r:' .. window
    redis.call('INCR', k)
    redis.call('EXPIRE', k, 120)
  end
  if tonumber(ARGV[o+2]) > 0 then
    redis.call('ZADD', stem .. ':c', now + ttl, lease)
    redis.call('EXPIRE', stem .. ':c', ttl)
  end
  if tonumber(ARGV[o+3]) > 0 then
    local k = stem .. ':b:' .. ARGV[o+4]
    redis.call('INCRBY', k, reserve)
    redis.call('EXPIRE', k, tonumber(ARGV[o+5]) + 86400)
  end
end
return {0, '', 0}
"""

# KEYS: the stems; ARGV: lease, tokens, the spend to add (micros: the cost less the reserve, may
# be negative), then per bucket whether it counts tokens ('1'/'0'), whether it holds a slot, and
# its budget period ("" without a budget).
FINISH = """
local window = math.floor(tonumber(redis.call('TIME')[1]) / 60)
local lease, tokens, spend = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
for i, stem in ipairs(KEYS) do
  local o = 4 + 3 * (i - 1)
  if tokens > 0 and ARGV[o] == '1' then
    local k = stem .. ':t:' .. window
    redis.call('INCRBY', k, tokens)
    redis.call('EXPIRE', k, 120)
  end
  if ARGV[o+1] == '1' then redis.call('ZREM', stem .. ':c', lease) end
  if spend ~= 0 and ARGV[o+2] ~= '' then
    local k = stem .. ':b:' .. ARGV[o+2]
    if redis.call('EXISTS', k) == 1 then redis.call('INCRBY', k, spend) end
  end
end
return 0
"""


class RedisCounter:
    def __init__(self, client: Redis, prefix: str, lease_seconds: int) -> None:
        self.client = client
        self._prefix = prefix
        self._lease = str(lease_seconds)
        self._admit = client.register_script(ADMIT)
        self._finish = client.register_script(FINISH)

    def _stems(self, buckets: tuple[Bucket, ...]) -> list[str]:
        return [f"{self._prefix}:{b.id}" for b in buckets]

    async def admit(
        self, buckets: tuple[Bucket, ...], lease: str, reserve: int = 0, periods: Periods = ()
    ) -> Refusal | None:
        args: list[str | int] = [lease, self._lease, reserve]
        for i, b in enumerate(buckets):
            period = periods[i] if i < len(periods) and b.budget else None
            name, left = period if period is not None else ("", 0)
            args += [b.rpm, b.tpm, b.concurrent, b.budget if period else 0, name, left]
        index, limit, left = await self._admit(keys=self._stems(buckets), args=args)
        if not index:
            return None
        name = limit.decode() if isinstance(limit, bytes) else str(limit)
        return Refusal(buckets[int(index) - 1].id, name, int(left))

    async def finish(
        self,
        buckets: tuple[Bucket, ...],
        lease: str,
        tokens: int,
        spend: int = 0,
        periods: Periods = (),
    ) -> None:
        args: list[str | int] = [lease, tokens, spend]
        for i, b in enumerate(buckets):
            period = periods[i] if i < len(periods) and b.budget else None
            args += [
                "1" if b.tpm else "0",
                "1" if b.concurrent else "0",
                period[0] if period else "",
            ]
        await self._finish(keys=self._stems(buckets), args=args)

    async def close(self) -> None:
        await self.client.aclose()
