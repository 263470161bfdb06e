"""Turns gateway attempts into audit entries: the decision before forwarding, and what happened.

Entries hold the pseudonymous subject id, models, effect, rules, digests and versions, and in
typed fields the HTTP status, the reason code, the endpoint and surface; never the key, the
prompt, the completion or the client's address (only its country). Requests refused before
anyone is authenticated are not appended one by one: `decision/refusals.py` counts them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from clearance.audit import entries
from clearance.audit.sink import AsyncAuditSink
from clearance.decision.attempt import Attempt
from clearance.errors import AuditUnavailable, ClearanceError
from clearance.policy.models import Effect

log = logging.getLogger("clearance.gateway")


class Recorder:
    def __init__(
        self, log_: AsyncAuditSink, list_versions: Callable[[], Mapping[str, str]]
    ) -> None:
        self.log = log_
        self.list_versions = list_versions
        self.encoder = entries.AccessEncoder()

    def _entry(
        self,
        attempt: Attempt,
        outcome: entries.Outcome,
        status: int | None,
        reason: str | None,
        decision_index: int | None = None,
        guard: dict[str, object] | None = None,
    ) -> bytes:
        d = attempt.decision
        caller = attempt.caller
        assert caller is not None, "refusals before authentication are counted, not appended"
        fields: dict[str, Any] = dict(
            subject=caller.facts.subject_id,
            key_id=caller.key.id,
            surface=attempt.route.surface.logged,
            endpoint=attempt.route.path,
            stream=attempt.stream,
            action="inference",
            model_requested=attempt.model,
            model_served=d.model_served if d else None,
            effect=d.effect.value if d else "error",
            rules=d.rules if d else (),
            policy_hash=d.policy_hash if d else None,
            facts_digest=d.facts_digest if d else None,
            facts_version=d.facts_version if d else None,
            list_versions=self.list_versions(),
            ip_country=attempt.ip_country or None,
            outcome=outcome,
            status=status,
            reason=reason,
        )
        if decision_index is None and guard is None:
            return self.encoder.encode(**fields)  # the decision's constant part is cached
        return entries.access_decision(**fields, decision_index=decision_index, guard=guard)

    def decision(self, attempt: Attempt) -> asyncio.Future[int]:
        """Start appending the decision; the future is its index once durable."""
        d = attempt.decision
        assert d is not None
        # A denial or fallback names the rule that refused the requested model.
        reason = None if d.effect is Effect.ALLOW else d.rules[0]
        guard = attempt.guard.entry() if attempt.guard is not None else None
        if d.allowed:
            entry = self._entry(attempt, "forwarding", None, reason, guard=guard)
        else:
            entry = self._entry(attempt, "denied", d.reasons[0].status, reason, guard=guard)
        return self.log.submit(entry)

    async def rejected(self, attempt: Attempt, exc: ClearanceError) -> None:
        """A refusal after authentication but before a decision (bad body, unknown model, 413)."""
        try:
            await self.log.append(self._entry(attempt, "rejected", exc.status, exc.reason))
        except AuditUnavailable:
            # Nothing is forwarded for a rejected request, so the client still gets its error.
            log.error("audit log unavailable while recording a rejected request")

    async def outcome(
        self,
        attempt: Attempt,
        outcome: entries.Outcome,
        status: int | None,
        reason: str,
        guard: dict[str, object] | None = None,
    ) -> None:
        """What became of a forwarded request, when it did not end normally."""
        try:
            await self.log.append(
                self._entry(
                    attempt, outcome, status, reason, decision_index=attempt.index, guard=guard
                )
            )
        except AuditUnavailable:
            log.error("audit log unavailable while recording outcome %s (%s)", outcome, reason)

    async def summaries(self, records: list[bytes]) -> None:
        """Append refusal summaries (decision/refusals.py) as one batch; a loss is logged."""
        results = await asyncio.gather(
            *(self.log.append(r) for r in records), return_exceptions=True
        )
        lost = [r for r in results if isinstance(r, BaseException)]
        for failure in lost:
            if not isinstance(failure, AuditUnavailable):
                raise failure
        if lost:
            log.error("audit log unavailable: %d refusal summaries lost", len(lost))
