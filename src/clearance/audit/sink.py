"""What a writer needs of the audit log, written once: append an entry, get its index once the
entry is durable. `AuditLog` is the one implementation; the gateway awaits its group-committing
sequencer (`AuditLog.sequencer`), which has the same shape asynchronously."""

from __future__ import annotations

import asyncio
from typing import Protocol


class AuditSink(Protocol):
    def append(self, entry: bytes) -> int: ...


class AsyncAuditSink(Protocol):
    async def append(self, entry: bytes) -> int: ...

    def submit(self, entry: bytes) -> asyncio.Future[int]:
        """Start the append; the future resolves to the index once the entry is durable."""
        ...
