"""Turns gateway attempts into audit entries: the decision before forwarding, and what happened.

Entries hold the pseudonymous subject id, models, effect, rules, digests and versions; never the
key, the prompt, the completion or the client's address (only its country).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from clearance.audit import entries
from clearance.errors import AuditUnavailable, ClearanceError

if TYPE_CHECKING:
    from clearance.gateway.proxy import Attempt

log = logging.getLogger("clearance.gateway")


class Appender(Protocol):
    async def append(self, entry: bytes) -> int: ...


class Recorder:
    def __init__(self, log_: Appender, list_versions: Callable[[], Mapping[str, str]]) -> None:
        self.log = log_
        self.list_versions = list_versions

    def _entry(self, attempt: Attempt, outcome: str) -> bytes:
        d = attempt.decision
        caller = attempt.caller
        return entries.access_decision(
            # Unauthenticated attempts have no subject; they are recorded all the same.
            subject=caller.facts.subject_id if caller else "anonymous",
            key_id=caller.key.id if caller else None,
            action="inference",
            model_requested=attempt.model or "",
            model_served=d.model_served if d else None,
            effect=d.effect.value if d else "error",
            rules=d.rules if d else (),
            policy_hash=d.policy_hash if d else "",
            facts_digest=d.facts_digest if d else "",
            list_versions=self.list_versions(),
            ip_country=attempt.ip_country or None,
            outcome=outcome if attempt.index is None else f"{outcome}:decision={attempt.index}",
        )

    async def decision(self, attempt: Attempt) -> int:
        assert attempt.decision is not None
        outcome = "denied" if not attempt.decision.allowed else "forwarding"
        return await self.log.append(self._entry(attempt, outcome))

    async def rejected(self, attempt: Attempt, exc: ClearanceError) -> None:
        """A refusal before any decision (bad key, bad body, unknown model): recorded too."""
        try:
            await self.log.append(self._entry(attempt, f"rejected:{exc.status}:{exc.code}"))
        except AuditUnavailable:
            # Nothing is forwarded for a rejected request, so the client still gets its error.
            log.error("audit log unavailable while recording a rejected request")

    async def outcome(self, attempt: Attempt, outcome: str) -> None:
        """What became of a forwarded request, when it did not end normally."""
        try:
            await self.log.append(self._entry(attempt, outcome))
        except AuditUnavailable:
            log.error("audit log unavailable while recording outcome %s", outcome)
