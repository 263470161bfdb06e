"""The decision service: authenticate, decide (with the misuse guard's prompt check), and record
durably; what the gateway's proxy and every edge integration ask (docs/integrations.md).

    credential, endpoint, parsed fields -> caller (cached) -> decision (cached)
        -> guarded model: the prompt checked, the policy asked again with the verdict
        -> the decision entry appended (group commit); `release` waits until it is durable

Refusals before anyone is authenticated are counted, not appended one by one (refusals.py).
"""

from __future__ import annotations

import asyncio
import logging
import time

from clearance.audit.keys import derived_key
from clearance.catalog.models import Model
from clearance.decision.attempt import Attempt
from clearance.decision.metrics import Metrics
from clearance.decision.payload import unknown_model
from clearance.decision.recorder import Recorder
from clearance.decision.refusals import Refusals
from clearance.decision.surfaces import Surface, error_body
from clearance.errors import (
    AuditUnavailable,
    AuthenticationError,
    ClearanceError,
    LimitExceeded,
    LimitsUnavailable,
    PermissionDenied,
)
from clearance.guard import conversation
from clearance.guard.models import Check
from clearance.guard.service import CONTEXT_CHARS, Guard
from clearance.guard.strikes import Strikes
from clearance.identity.cip import AddressBook
from clearance.limits.limiter import Limiter
from clearance.limits.models import DEFAULT_OUTPUT_RESERVE, cost_micros
from clearance.net.asgi import Headers, api_key
from clearance.net.client import country_of
from clearance.policy.models import Action, Decision, Effect, GuardFact, RequestContext
from clearance.policy.state import Caller, DecisionState

log = logging.getLogger("clearance.gateway")


class DecisionService:
    def __init__(
        self,
        state: DecisionState,
        recorder: Recorder,
        metrics: Metrics,
        guard: Guard | None = None,
        strikes: Strikes | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        self.state = state
        self.recorder = recorder
        self.metrics = metrics
        self.guard = guard  # the misuse guard (clearance.guard), when [guard] kind is set
        self.strikes = strikes
        self.limiter = limiter or Limiter(state.settings)
        # The CIP record's addresses (identity/cip.py), when the programme requires them.
        self.addresses = AddressBook() if "ip" in state.settings.cip.require else None
        self.settings = state.settings.gateway
        self.model_header = state.settings.edge.model_header.lower().encode("latin-1")
        audit_key = state.settings.audit.signing_key_file
        self.refusals = Refusals(self.settings, derived_key(audit_key, "client-network"))

    async def close(self) -> None:
        if self.guard is not None:
            await self.guard.close()
        await self.limiter.close()

    async def decide(
        self, attempt: Attempt, payload: dict[str, object] | None, model: str
    ) -> Decision:
        """The decision on an authenticated attempt, the guard's prompt check included (`payload`
        None: the edge sent no body, so a guarded model's check cannot run and fails); a refusal
        before a decision is recorded and raised."""
        assert attempt.caller is not None
        try:
            # The log keeps catalog ids only: a client-chosen string (an email, a prompt) never
            # becomes a permanent record, just its digest.
            attempt.model = model if model in self.state.catalog.models else unknown_model(model)
            key = attempt.caller.key
            if not key.allows(model):  # a key scoped to some models (`keys scope`)
                raise PermissionDenied(
                    f"this API key is not scoped for the model {model!r}", reason="key_model_scope"
                )
            attempt.decision = self.state.decide(
                attempt.caller,
                model,
                RequestContext(action=Action.INFERENCE, ip_country=attempt.ip_country),
            )
            served = attempt.decision.model_served
            if served is not None and served != model and not key.allows(served):
                # A fallback outside the key's scope is not served: the policy's refusal instead.
                attempt.decision = self.state.decide(
                    attempt.caller,
                    model,
                    RequestContext(action=Action.INFERENCE, ip_country=attempt.ip_country),
                    allow_fallback=False,
                )
            guarded = self.guarded(attempt)
            if guarded is not None:  # before anything goes upstream: a flagged prompt never does
                attempt.decision = await self.check_prompt(attempt, payload, guarded)
        except ClearanceError as exc:
            self.metrics.rejections.labels(str(exc.status)).inc()
            await self.recorder.rejected(attempt, exc)
            raise
        decision = attempt.decision
        self.metrics.decided(decision.effect.value, decision.rules[0])
        return decision

    async def admit(
        self,
        attempt: Attempt,
        served: Model,
        client: str,
        payload: dict[str, object] | None = None,
        body_bytes: int = 0,
    ) -> None:
        """Count an allowed attempt against the limits that hold its caller (none: nothing
        runs). At a limit: 429, counted into the interval's summary like a refusal before
        authentication (a client hammering at its limit must not grow the log one entry per
        request); limits uncountable (Redis down, fail closed): 503, recorded. Under a spend
        budget the request's worst-case cost at the served model's prices is reserved: its
        input at a token per 3 bytes of body, its output at its max_tokens (limits/models.py)."""
        caller = attempt.caller
        assert caller is not None
        limiter = self.limiter
        if limiter.table.empty:
            return
        buckets = limiter.buckets(caller.key.id, caller.key.user_id, caller.facts.org_id)
        if not buckets:
            return
        prices = estimate = None
        if served.priced and any(b.budget for b in buckets):
            assert served.input_price is not None and served.output_price is not None
            prices = (served.input_price, served.output_price)
            estimate = (body_bytes // 3 + 1, max_output(payload))
        try:
            attempt.ticket = await limiter.admit(
                buckets, controlled=served.controlled, prices=prices, estimate=estimate or (0, 0)
            )
        except LimitExceeded as exc:
            _, limit, scope = exc.reason.split(".")
            self.metrics.limit_refusals.labels(scope, limit).inc()
            self.count_refusal(client, attempt.route.surface, exc)
            raise
        except LimitsUnavailable as exc:
            self.metrics.limit_refusals.labels("", "unavailable").inc()
            self.metrics.rejections.labels(str(exc.status)).inc()
            await self.recorder.rejected(attempt, exc)
            raise

    async def settle_slot(self, attempt: Attempt) -> None:
        """Before the last byte: free a concurrency slot, so the client's next request finds it
        free. Tokens alone are counted after the answer (settle_limits from the relay's end),
        off the client's path: with Redis, that second round trip cost every request a
        measured +0.3 to +0.4 ms p50 at c=1 (bench/limits.py)."""
        if attempt.ticket is not None and attempt.ticket.holds_slot:
            await self.settle_limits(attempt)

    async def settle_limits(self, attempt: Attempt) -> None:
        """The admitted attempt ended: count its tokens and free its slot (once)."""
        ticket, attempt.ticket = attempt.ticket, None
        if ticket is not None:
            meter = attempt.meter
            used = (0, 0) if meter is None else meter.split()
            cost = 0 if ticket.prices is None else cost_micros(used[0], used[1], ticket.prices)
            await self.limiter.finish(ticket, used[0] + used[1], cost)

    def refusal(
        self, surface: Surface, decision: Decision, index: int | None, headers: Headers
    ) -> tuple[int, bytes, Headers]:
        """A refused decision as the client gets it: HTTP 451 (RFC 7725) with where to go next
        (the `Link` rel="blocked-by", RFC 7725 §3), or the status the rule names (a usage-policy
        refusal: 403; its check unavailable: 503); JSON in the SDK's shape."""
        first = decision.reasons[0]
        message = f"{first.reason} (rule: {first.rule}; decision: {index})"
        body = error_body(surface, first.status, message, first.rule)
        if first.status == 451:
            headers = [*headers, (b"link", self.blocked_by())]
        return first.status, body, headers

    def blocked_by(self) -> bytes:
        return f'<{self.settings.portal_url}>; rel="blocked-by"'.encode()

    async def authenticate(self, headers: dict[bytes, bytes], query: bytes, client: str) -> Caller:
        """The caller of a key held in memory at once; else, unless this client has sent too
        many bad keys (then 429, before any database read), from the database."""
        try:
            if b"key=" in query:
                raise AuthenticationError(
                    "API keys are not accepted in the URL; send a header", reason="key_in_url"
                )
            secret = api_key(headers)
            if not secret:
                raise AuthenticationError(
                    "missing API key: send Authorization: Bearer or x-api-key",
                    reason="missing_api_key",
                )
            caller = self.state.cached_caller(secret)
        except AuthenticationError:
            self.refusals.check(client)
            raise
        if caller is None:
            self.refusals.check(client)
            caller = await asyncio.to_thread(self.state.load_caller, secret)
        if self.addresses is not None:  # [cip] require "ip": where each person's keys are used
            self.addresses.observe(caller.key.user_id, client)
        return caller

    def count_refusal(self, client: str, surface: Surface, exc: ClearanceError) -> None:
        """A refusal before anyone is authenticated: counted at once, never waited for."""
        self.metrics.rejections.labels(str(exc.status)).inc()
        self.refusals.count(
            reason=exc.reason,
            status=exc.status,
            surface=surface.logged,
            country=country_of(client) or None,
            client=client,
        )

    async def flush_refusals(self) -> None:
        """Append what `count_refusal` counted since the last flush, one entry per bucket."""
        records = self.refusals.drain()
        if records:
            await self.recorder.summaries(records)

    def guarded(self, attempt: Attempt) -> Model | None:
        """The served model, when the guard checks this request: a generative endpoint, an
        allowed decision, a guarded model."""
        d = attempt.decision
        if self.guard is None or d is None or not d.allowed:
            return None
        if attempt.route.path not in conversation.GENERATIVE:
            return None
        assert d.model_served is not None
        served = self.state.catalog.models[d.model_served]
        return served if self.guard.guards(served) else None

    async def check_prompt(
        self, attempt: Attempt, payload: dict[str, object] | None, served: Model
    ) -> Decision:
        """The whole conversation checked; the policy decides again with the verdict."""
        assert self.guard is not None and attempt.decision is not None
        if payload is None:  # forward-auth without the body: nothing to check, the check fails
            check = self.guard.failed("prompt", "no_body", served)
        else:
            text = conversation.prompt_text(attempt.route.path, payload)
            attempt.prompt_tail = text[-CONTEXT_CHARS:]
            check = await self.guard.check_prompt(text, served)
        self.observe(check)
        attempt.guard = check
        ruled = self.ruling(attempt, served, check)
        return attempt.decision if ruled is None else ruled

    def observe(self, check: Check) -> None:
        self.metrics.guard_checks.labels(check.stage, check.verdict.outcome).inc()
        self.metrics.guard_latency.labels(check.stage).observe(check.elapsed_ms / 1000)

    def ruling(self, attempt: Attempt, served: Model, check: Check) -> Decision | None:
        """The policy's answer for the served model given the guard's verdict (context.guard):
        None when it still allows, else the refusal, naming the requested model."""
        assert attempt.caller is not None and attempt.decision is not None
        v = check.verdict
        ctx = RequestContext(
            action=Action.INFERENCE,
            ip_country=attempt.ip_country,
            guard=GuardFact(v.outcome, v.categories, v.score, check.fail_open),
        )
        ruled = self.state.decide(attempt.caller, served.id, ctx, allow_fallback=False)
        if ruled.allowed:
            return None
        return Decision(
            effect=Effect.DENY,
            model_requested=attempt.decision.model_requested,
            model_served=None,
            reasons=ruled.reasons,
            policy_hash=ruled.policy_hash,
            facts_version=ruled.facts_version,
            facts_digest=ruled.facts_digest,
        )

    async def record_flag(self, attempt: Attempt, check: Check, model_id: str) -> None:
        """Count a flag against the person (guard/strikes.py). A failure to store it is logged,
        never the client's problem: the refusal and its entry stand either way."""
        if self.strikes is None or attempt.caller is None:
            return
        subject = attempt.caller.facts.subject_id
        try:
            flagged = await asyncio.to_thread(
                self.strikes.record, subject, model_id, check, attempt.index
            )
        except Exception:
            log.exception("could not store a misuse-guard flag (decision %s)", attempt.index)
            return
        if flagged.case_id is not None:
            log.warning("misuse-guard hold placed: case %d", flagged.case_id)

    def start_record(self, attempt: Attempt) -> None:
        """Start appending the decision entry: `attempt.durable` resolves once it is durable.

        A failed commit ends the request (fail closed) unless the decision may be served
        unrecorded; either way `_release` then tells."""
        assert attempt.decision is not None
        submitted = time.perf_counter()
        durable = self.recorder.decision(attempt)
        attempt.durable = durable

        def committed(future: asyncio.Future[int]) -> None:
            self.metrics.audit_wait.observe(time.perf_counter() - submitted)
            if future.cancelled() or future.exception() is None:
                return
            assert attempt.decision is not None
            if self.may_serve_unrecorded(attempt.decision):
                attempt.unrecorded = True
            else:
                attempt.end("audit_unavailable")  # the upstream call, if any, is cancelled

        durable.add_done_callback(committed)

    async def release(self, attempt: Attempt) -> None:
        """Wait until the decision entry is durable; raises AuditUnavailable (fail closed).

        Shielded: cancelling the relay (a disconnect, the kill switch) must not cancel the append,
        whose entry the outcome entry then names."""
        durable = attempt.durable
        assert durable is not None
        if attempt.released:
            return
        if not durable.done():
            await asyncio.shield(durable)
        if durable.exception() is not None:
            if not attempt.unrecorded:
                raise AuditUnavailable("the audit log could not record the decision")
        else:
            attempt.index = durable.result()
        attempt.headers[:0] = attempt.index_header()
        attempt.released = True

    async def settle(self, attempt: Attempt) -> bool:
        """After the relay ended early: whether the decision entry is durable (to be named)."""
        try:
            await self.release(attempt)
        except AuditUnavailable:
            return False
        return True

    def checks_output(self) -> bool:
        return self.guard is not None and self.guard.settings.check_output

    def may_serve_unrecorded(self, decision: Decision) -> bool:
        if not self.settings.serve_uncontrolled_without_audit or decision.effect is Effect.DENY:
            return False
        models = self.state.catalog.models
        involved = {decision.model_requested, decision.model_served}
        return not any(models[m].controlled for m in involved if m in models)


def max_output(payload: dict[str, object] | None) -> int:
    """The most output tokens a request asks for (OpenAI chat's max_completion_tokens or
    max_tokens, the responses API's max_output_tokens, Anthropic's max_tokens)."""
    if payload is not None:
        for field in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
            value = payload.get(field)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return DEFAULT_OUTPUT_RESERVE
