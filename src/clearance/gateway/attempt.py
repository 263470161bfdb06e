"""One request through the gateway, as far as it got: what the recorder writes down."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from clearance.gateway.http import Headers
from clearance.gateway.surfaces import Route
from clearance.policy.models import Decision
from clearance.policy.state import Caller


@dataclass
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
    durable: asyncio.Future[None] | None = None  # the decision entry's commit
    released: bool = False  # the commit is acknowledged: the response may go out

    def index_header(self) -> Headers:
        """The audit index header; none only when serving unrecorded was allowed."""
        if self.index is None:
            return []
        return [(b"clearance-audit-index", str(self.index).encode())]
