"""One request through the gateway, as far as it got: what the recorder writes down."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from clearance.gateway.http import Headers
from clearance.gateway.surfaces import Route
from clearance.policy.models import Decision
from clearance.policy.state import Caller


@dataclass(eq=False)  # identity: attempts are kept in sets (the in-flight requests)
class Attempt:
    """What we know about one request so far; enough to record it whatever happens."""

    route: Route
    started: float
    caller: Caller | None = None
    model: str | None = None
    stream: bool | None = None  # None until the body is read
    ip_country: str = ""
    decision: Decision | None = None
    index: int | None = None
    headers: Headers = field(default_factory=list)
    responded: bool = False  # the response has started: its status can no longer change
    durable: asyncio.Future[int] | None = None  # the decision entry's commit: its index
    released: bool = False  # the commit is acknowledged: the response may go out
    unrecorded: bool = False  # the commit failed and serving unrecorded is allowed
    relay: asyncio.Task[None] | None = None  # the upstream call and the reply, once started
    ended: str | None = None  # why the relay was ended early (see `end`)

    def end(self, why: str) -> bool:
        """End the request early: `client_disconnected`, `model_suspended` (the kill switch) or
        `audit_unavailable` (its decision entry failed to commit). The first reason wins; a
        relay that already finished is left alone. Returns whether this call ended it."""
        if self.ended is not None or (self.relay is not None and self.relay.done()):
            return False
        self.ended = why
        if self.relay is not None:
            self.relay.cancel(why)
        return True

    def index_header(self) -> Headers:
        """The audit index header; none only when serving unrecorded was allowed."""
        if self.index is None:
            return []
        return [(b"clearance-audit-index", str(self.index).encode())]
