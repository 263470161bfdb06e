"""The HTTP protocol the gateway serves with: uvicorn's httptools parser plus a header deadline.

uvicorn bounds idle keep-alive connections but not a client that trickles its request headers
(slowloris): such a connection would be held open for as long as the client likes. Here every
request must finish its headers within `HEADER_TIMEOUT` of its first byte (or of the connection
opening), or the connection is closed (checked four times per timeout: see `DeadlineProtocol`).
The body has its own deadline in `http.read_body`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT = 10.0


class DeadlineProtocol(HttpToolsProtocol):
    """A deadline is a float on the connection, set when a request begins and cleared when its
    headers are complete; one sweep per server (every `header_timeout / 4`, at most 1 s) closes
    the connections past theirs. A timer armed and cancelled per request cost about 5 % of a
    worker's CPU at c=32; the sweep makes a cut up to a quarter of the timeout late."""

    header_timeout = HEADER_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: float | None = None
        self._sweeper = _sweeper(self.server_state, self.loop, self.header_timeout)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline = self.loop.time() + self.header_timeout
        self._sweeper.add(self)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._deadline = self.loop.time() + self.header_timeout

    def on_headers_complete(self) -> None:
        self._deadline = None
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline = None
        self._sweeper.live.discard(self)
        super().connection_lost(exc)

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


class _Sweeper:
    """Every connection of one server whose headers are due, checked on one timer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self.loop = loop
        self.interval = interval
        self.live: set[DeadlineProtocol] = set()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, protocol: DeadlineProtocol) -> None:
        self.live.add(protocol)
        if self._timer is None:
            self._timer = self.loop.call_later(self.interval, self._sweep)

    def _sweep(self) -> None:
        self._timer = None
        now = self.loop.time()
        late = [p for p in self.live if p._deadline is not None and p._deadline <= now]
        for protocol in late:
            protocol._expire()
        if self.live:
            self._timer = self.loop.call_later(self.interval, self._sweep)


def _sweeper(state: Any, loop: asyncio.AbstractEventLoop, timeout: float) -> _Sweeper:
    """The sweeper of this server (uvicorn's ServerState is one per server) and timeout."""
    sweepers: dict[float, _Sweeper] = state.__dict__.setdefault("clearance_sweepers", {})
    sweeper = sweepers.get(timeout)
    if sweeper is None or sweeper.loop is not loop:
        sweeper = sweepers[timeout] = _Sweeper(loop, min(1.0, timeout / 4))
    return sweeper
