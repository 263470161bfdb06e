"""One request through the gateway, as far as it got: what the recorder writes down."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from clearance.decision.surfaces import Route
from clearance.guard.models import Check
from clearance.guard.stream import StreamReader
from clearance.limits.limiter import Ticket
from clearance.limits.usage import UsageMeter
from clearance.net.asgi import Headers
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
    relaying: asyncio.Task[None] | None = None  # the request's task, while it relays
    ended: str | None = None  # why the relay was ended early (see `end`)
    finishing: bool = False  # the last byte is being sent: nothing ends it any more
    # The misuse guard (guard/stream.py): the prompt's check, the end of the prompt an output
    # check is shown, the stream being read, the output check in flight, and what cut the answer.
    guard: Check | None = None
    prompt_tail: str = ""
    reader: StreamReader | None = None
    checking: asyncio.Task[Check] | None = None
    cut: tuple[Check, Decision] | None = None
    # Limits (clearance.limits): the admitted request's counts, and its answer's usage reader.
    ticket: Ticket | None = None
    meter: UsageMeter | None = None

    def end(self, why: str) -> bool:
        """End the request early: `client_disconnected`, `model_suspended` (the kill switch),
        `usage_flagged` (the misuse guard) or `audit_unavailable` (its decision entry failed to
        commit). The first reason wins. Before
        the relay starts this only marks the attempt (the relay is then not started); during it,
        the request's task is cancelled; after it, nothing happens. Returns whether it ended."""
        if self.ended is not None or self.finishing:
            return False
        if self.relaying is None and self.released:
            return False  # relayed and done: too late to end anything
        self.ended = why
        if self.relaying is not None:
            self.relaying.cancel(why)
        return True

    def index_header(self) -> Headers:
        """The audit index header; none only when serving unrecorded was allowed."""
        if self.index is None:
            return []
        return [(b"clearance-audit-index", str(self.index).encode())]
