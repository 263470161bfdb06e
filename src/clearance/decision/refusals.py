"""Requests refused before anyone is authenticated: counted, summarised, and limited per client.

Anyone on the internet can send a bad key. If each such request waited for its own durable,
permanent audit entry, a stranger could grow the five-year log and take its write capacity
without a key. So these refusals answer at once and are counted in memory, one bucket per
(reason, status, surface, client country, client network) per interval; each bucket becomes one
`refusal_summary` entry holding the count and the first and last time (flushed every interval
and at a graceful stop). Refusals after authentication keep one entry each (decision/recorder.py).

The client network is a keyed hash of the /24 (IPv4) or /48 (IPv6): it groups a scan without
keeping an address, and only the operator (holding the key) can test whether a given network
was among them.

A client that keeps sending bad keys is answered 429 for the rest of its window, before any
database read, unless its key is one the worker already holds as good: a shared NAT address
with one guessing machine behind it does not lock out the people who have real keys.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from clearance.audit import entries
from clearance.config import GatewaySettings
from clearance.errors import RateLimited
from clearance.net.client import client_subject

MAX_BUCKETS = 10_000  # per interval; beyond, refusals go to one overflow bucket per reason
MAX_CLIENTS = 100_000  # clients tracked by the limiter; beyond, the oldest windows are dropped


@dataclass(slots=True)
class _Bucket:
    count: int
    first: float
    last: float


@dataclass(slots=True)
class _Window:
    start: float
    count: int


BucketKey = tuple[str, int, entries.Surface, str | None, str | None]


class Refusals:
    def __init__(
        self,
        settings: GatewaySettings,
        key: bytes,  # keys the client-network hash (audit.keys.derived_key)
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.interval = settings.refusal_summary_seconds
        self.limit = settings.bad_keys_per_client
        self.window = float(settings.bad_key_window_seconds)
        self._key = key
        self._clock = clock
        self._buckets: dict[BucketKey, _Bucket] = {}
        self._clients: dict[str, _Window] = {}

    def check(self, client: str) -> None:
        """Raise RateLimited if `client` has used up its bad-key allowance for this window."""
        if self.limit <= 0:
            return
        window = self._clients.get(client_subject(client))
        if window is None or window.count < self.limit:
            return
        now = self._clock()
        left = window.start + self.window - now
        if left <= 0:
            return
        raise RateLimited(
            "too many requests with a missing or invalid API key from your address; "
            f"retry in {math.ceil(left)} s",
            retry_after=math.ceil(left),
            reason="too_many_bad_keys",
        )

    def count(
        self,
        *,
        reason: str,
        status: int,
        surface: entries.Surface,
        country: str | None,
        client: str,
    ) -> None:
        """One refusal, into its bucket (and, unless it was a 429, the client's window)."""
        now = self._clock()
        key: BucketKey = (reason, status, surface, country or None, self._network(client))
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                key = (reason, status, surface, None, None)
                bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(0, now, now)
        bucket.count += 1
        bucket.last = now
        if status != 429 and self.limit > 0:
            self._note_bad_key(client_subject(client), now)

    def _note_bad_key(self, client: str, now: float) -> None:
        window = self._clients.get(client)
        if window is None or now - window.start >= self.window:
            if window is None and len(self._clients) >= MAX_CLIENTS:
                self._prune(now)
            self._clients[client] = _Window(now, 1)
        else:
            window.count += 1

    def _prune(self, now: float) -> None:
        self._clients = {c: w for c, w in self._clients.items() if now - w.start < self.window}
        while len(self._clients) >= MAX_CLIENTS:  # all current: drop the oldest (dicts keep order)
            del self._clients[next(iter(self._clients))]

    def drain(self) -> list[bytes]:
        """The summary entries of everything counted since the last drain; the counts restart."""
        buckets, self._buckets = self._buckets, {}
        self._prune(self._clock())
        out = []
        for (reason, status, surface, country, network), b in buckets.items():
            out.append(
                entries.refusal_summary(
                    reason=reason,
                    status=status,
                    surface=surface,
                    ip_country=country,
                    client_network=network,
                    count=b.count,
                    first=datetime.fromtimestamp(b.first, UTC),
                    last=datetime.fromtimestamp(b.last, UTC),
                    interval=self.interval,
                )
            )
        return out

    def _network(self, client: str) -> str | None:
        try:
            addr = ipaddress.ip_address(client)
        except ValueError:
            return None  # no peer address (a Unix socket): nothing to group by
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped  # ::ffff:a.b.c.d is the IPv4 client a.b.c.d
        prefix = 24 if addr.version == 4 else 48
        net = ipaddress.ip_network((addr, prefix), strict=False)
        mac = hmac.new(self._key, str(net).encode(), hashlib.sha256).hexdigest()
        return "hmac-sha256:" + mac[:32]
