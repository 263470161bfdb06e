"""One worker's LISTEN connection on PostgreSQL: hears every state version bump as it commits.

The connection is a psycopg async connection on the worker's own event loop: it sits idle in the
loop's selector until a notification arrives, costs the request path nothing meanwhile, and needs
no thread. What a notification means is the caller's business (`on_notice`); so is what to do
after (re)connecting (`on_connect`), which must re-read every version: notifications sent while
the connection was down are lost, not queued (PostgreSQL delivers them only to the sessions
listening at commit).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy.engine import Engine

from clearance.store.versions import CHANNEL, Notice

log = logging.getLogger("clearance.store.listener")

# The first retry after a lost connection comes almost at once (a killed backend, a failover);
# then doubling to at most MAX_BACKOFF, jittered so that the workers of every node do not
# reconnect in step after a server restart.
FIRST_BACKOFF = 0.05
MAX_BACKOFF = 5.0
_jitter = random.Random()  # not the `random` module's shared generator (see maintenance.py)
# TCP keepalives: a peer gone without a FIN (a host lost, a NAT entry dropped) is found dead in
# about IDLE + INTERVAL * COUNT seconds; the listener would otherwise wait on it for ever (the
# version poll still covers that meanwhile, at its slower interval).
KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}
APPLICATION_NAME = "clearance-listen"  # how an operator (or a test) finds these in pg_stat_activity


class Listener:
    """LISTEN on `versions.CHANNEL` over a connection of its own, reconnecting for ever."""

    def __init__(
        self,
        engine: Engine,
        *,
        on_notice: Callable[[Notice], object],
        on_connect: Callable[[], object],
    ) -> None:
        _, params = engine.dialect.create_connect_args(engine.url)
        params.pop("context", None)  # SQLAlchemy's adapters, not a connection parameter
        params.setdefault("application_name", APPLICATION_NAME)
        params.setdefault("connect_timeout", 5)
        self._params: dict[str, Any] = {**KEEPALIVE, **params}
        self._on_notice = on_notice
        self._on_connect = on_connect
        self.connected = False
        self.backend_pid: int | None = None  # the server process of the current connection
        self.connections = 0  # how many times it has connected (1 + reconnections)

    async def run(self) -> None:
        """Listen until cancelled."""
        delay = FIRST_BACKOFF
        while True:
            try:
                await self._listen()
            except psycopg.Error as exc:  # lost or refused: try again, later each time
                log.warning("LISTEN connection lost (%s); reconnecting", " ".join(str(exc).split()))
            finally:
                if self.connected:  # it was listening: back-off starts over
                    delay = FIRST_BACKOFF
                self.connected = False
            await asyncio.sleep(_jitter.uniform(delay / 2, delay))
            delay = min(delay * 2, MAX_BACKOFF)

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(autocommit=True, **self._params) as conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            self.backend_pid = conn.info.backend_pid
            self.connections += 1
            self.connected = True
            # Listening before the re-read: a change committed after it is announced, one
            # committed before it is in what the re-read finds.
            self._on_connect()
            async for notify in conn.notifies():
                notice = Notice.parse(notify.payload)
                if notice is not None:
                    self._on_notice(notice)
