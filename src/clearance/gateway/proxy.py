"""The request path: authenticate, decide, record, then forward or refuse.

    client SDK -> parse (model, stream) -> key -> caller (cached) -> decision (cached)
               -> deny: audit append, durable -> 451
               -> allow/fallback: audit append (group commit) | upstream call, side by side
                                  -> the entry is durable -> stream back unbuffered

The invariant: no byte of a response (not even its status line) reaches the client before its
decision entry is durable, and a denial never reaches the upstream. An allowed request's upstream
call starts while its entry commits; if the commit fails, the call is cancelled and the client
gets 503. Every attempt, refused or failed, is recorded: one entry each once the caller is known,
counted per interval before that (decision/refusals.py).
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from starlette.types import Receive, Scope, Send

from clearance.catalog.models import Model
from clearance.decision.attempt import Attempt
from clearance.decision.payload import parse_payload, rewrite
from clearance.decision.service import DecisionService
from clearance.decision.surfaces import ROUTES, Route, Surface, error_body, surface_for
from clearance.errors import (
    AuditUnavailable,
    ClearanceError,
    InvalidInput,
    LimitExceeded,
    NotFound,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from clearance.gateway import upstream as up
from clearance.guard import conversation
from clearance.guard.models import Check
from clearance.guard.stream import StreamReader
from clearance.limits.usage import UsageMeter
from clearance.net import h1
from clearance.net.asgi import Headers, read_body, send_bytes
from clearance.net.client import ClientLocator
from clearance.policy.models import Decision, Effect, RequestContext
from clearance.policy.state import Caller

log = logging.getLogger("clearance.gateway")


class Proxy:
    def __init__(self, decisions: DecisionService) -> None:
        self.decisions = decisions
        self.state = decisions.state
        self.recorder = decisions.recorder
        self.metrics = decisions.metrics
        self.guard = decisions.guard
        self.settings = self.state.settings.gateway
        self.locator = ClientLocator(self.settings.trusted_proxies)
        self.session: h1.Client | None = None
        # In-flight requests by served model, so a suspension can end them (the kill switch).
        self.inflight: dict[str, set[Attempt]] = {}
        self._settling: set[asyncio.Task[None]] = set()  # limits counted after an early end

    async def start(self) -> None:
        self.session = up.new_session(self.settings)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        await self.decisions.close()

    def suspend_inflight(self, model_ids: set[str]) -> int:
        attempts = [a for m in model_ids for a in self.inflight.get(m, ())]
        return sum(a.end("model_suspended") for a in attempts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        path: str = scope["path"]
        surface = surface_for(path, headers)
        try:
            if path == "/v1/models" and scope["method"] == "GET":
                client = self.locator.address(scope)
                try:
                    caller = await self.decisions.authenticate(
                        headers, scope.get("query_string", b""), client
                    )
                except ClearanceError as exc:
                    self.decisions.count_refusal(client, surface, exc)
                    raise
                await self.list_models(scope, headers, caller, surface, send)
                return
            route = ROUTES.get(path)
            if route is None:
                raise NotFound(f"no such endpoint: {scope['method']} {path}")
            if scope["method"] != "POST":
                raise InvalidInput(f"{path} accepts POST only")
            await self.handle(route, scope, receive, send, headers)
        except ClearanceError as exc:
            await self.refuse(send, surface, exc, [])

    async def refuse(
        self, send: Send, surface: Surface, exc: ClearanceError, headers: Headers
    ) -> None:
        body = error_body(surface, exc.status, exc.detail, exc.code)
        if isinstance(exc, RateLimited):  # RFC 6585 §4, RFC 9110 §10.2.3
            headers = [*headers, (b"retry-after", str(exc.retry_after).encode())]
            if not isinstance(exc, LimitExceeded):
                # A tarpit: a scanner's connection is held a moment instead of being answered
                # at full speed, so its flood cannot take the worker's loop from good keys.
                await asyncio.sleep(self.settings.bad_key_delay_seconds)
        await send_bytes(send, exc.status, body, headers)

    async def handle(
        self, route: Route, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]
    ) -> None:
        attempt = Attempt(route=route, started=time.perf_counter())
        client = self.locator.address(scope)
        try:
            attempt.caller = await self.decisions.authenticate(
                headers, scope.get("query_string", b""), client
            )
        except ClearanceError as exc:
            self.decisions.count_refusal(client, route.surface, exc)
            raise
        try:
            body = await read_body(receive, headers, self.settings.max_body_bytes)
            payload, model = parse_payload(body)
        except ClearanceError as exc:
            self.metrics.rejections.labels(str(exc.status)).inc()
            await self.recorder.rejected(attempt, exc)
            raise
        attempt.stream = payload.get("stream") is True
        attempt.ip_country = self.locator.country(scope, headers)
        decision = await self.decisions.decide(attempt, payload, model)
        if decision.effect is Effect.DENY:
            self.decisions.start_record(attempt)
            await self.decisions.release(
                attempt
            )  # durable before the 451; the upstream never sees it
            if attempt.guard is not None and attempt.guard.verdict.flagged:
                await self.decisions.record_flag(attempt, attempt.guard, decision.model_requested)
            await self.deny(send, route.surface, decision, attempt.index, attempt.index_header())
            return
        assert decision.model_served is not None
        served = self.state.catalog.models[decision.model_served]
        # Limits count allowed requests only; a refused one never reaches the log one by one.
        await self.decisions.admit(attempt, served, client, payload, len(body))
        if attempt.ticket is not None and attempt.ticket.counts_tokens:
            payload = self._meter(attempt, payload)
        # The commit and the upstream call run side by side; `_release` holds the response.
        self.decisions.start_record(attempt)
        attempt.headers = [
            (b"clearance-model-served", served.id.encode()),
            (b"clearance-decision", decision.effect.value.encode()),
        ]
        assert attempt.caller is not None
        stream = attempt.stream is True
        upstream_body = rewrite(payload, served.upstream_model, route, attempt.caller.pseudonym)
        # A stream may stay open for minutes: hold only the body being forwarded, not also the
        # client's raw bytes and their parsed copy (three copies of a long prompt per stream).
        del body, payload
        await self.forward(attempt, served, upstream_body, stream, receive, send, headers)

    def _meter(self, attempt: Attempt, payload: dict[str, object]) -> dict[str, object]:
        """Read the answer's usage for a tokens-per-minute limit. An OpenAI chat stream states
        it only when asked: ask, and take that chunk out again if the client had not."""
        stream = attempt.stream is True
        drop = False
        if (
            stream
            and attempt.route.path == "/v1/chat/completions"
            and not self.decisions.checks_output()
        ):
            options = payload.get("stream_options")
            options = options if isinstance(options, dict) else {}
            if options.get("include_usage") is not True:
                payload = {**payload, "stream_options": {**options, "include_usage": True}}
                drop = True
        attempt.meter = UsageMeter(stream=stream, drop_usage_chunk=drop)
        return payload

    async def deny(
        self,
        send: Send,
        surface: Surface,
        decision: Decision,
        index: int | None,
        headers: Headers,
    ) -> None:
        """The refusal (decisions.refusal); JSON even when a stream was asked for."""
        status, body, headers = self.decisions.refusal(surface, decision, index, headers)
        await send_bytes(send, status, body, headers)

    async def send_451(
        self, send: Send, surface: Surface, message: str, rule: str, headers: Headers
    ) -> None:
        body = error_body(surface, 451, message, rule)
        await send_bytes(send, 451, body, [*headers, (b"link", self.decisions.blocked_by())])

    async def forward(
        self,
        attempt: Attempt,
        served: Model,
        body: bytes,
        stream: bool,
        receive: Receive,
        send: Send,
        headers: dict[bytes, bytes],
    ) -> None:
        """Relay the upstream's answer. Three things may end the relay early, each through
        `Attempt.end`: the client going away, the kill switch, and a failed commit."""
        route = attempt.route
        upstream = self.state.catalog.upstreams[served.upstream]
        url = up.url_for(upstream, route.path)
        out_headers = up.request_headers(upstream, headers)
        if attempt.guard is not None:
            out_headers["accept-encoding"] = "identity"  # the guard reads the answer's text
        # The relay runs in this request's own task (no task of its own): `Attempt.end`
        # cancels this task while, and only while, it is relaying.
        task = asyncio.current_task()
        assert task is not None
        inflight = self.inflight.setdefault(served.id, set())
        inflight.add(attempt)
        # Whether the client hangs up is watched from WATCH_AFTER on: most answers are out by
        # then, and need no watcher task at all; a hang-up before it is noticed then.
        watch = _Watch(receive, attempt)
        timer = asyncio.get_running_loop().call_later(WATCH_AFTER, watch.start)
        attempt.relaying = task
        try:
            if attempt.ended is None:  # else the commit failed before the relay started
                await self._relay(attempt, url, body, out_headers, send, stream=stream)
        except asyncio.CancelledError:
            # Ours (ended) and nobody else's (the server stopping): carry on, uncancelled.
            if attempt.ended is None or task.uncancel() > 0:
                raise
        finally:
            if attempt.ticket is not None:  # tokens, or ended early: counted beside, not waited for
                settling = asyncio.get_running_loop().create_task(
                    self.decisions.settle_limits(attempt)
                )
                self._settling.add(settling)
                settling.add_done_callback(self._settling.discard)
            attempt.relaying = None
            inflight.discard(attempt)
            timer.cancel()
            watch.stop()
            if attempt.checking is not None and not attempt.checking.done():
                attempt.checking.cancel()
        if attempt.ended is None:
            return
        if attempt.ended == "usage_flagged":
            await self._cut(attempt, send, served)
            return
        if attempt.ended == "audit_unavailable":
            # The commit failed first: the upstream call is cancelled, the client gets 503.
            raise AuditUnavailable("the audit log could not record the decision")
        if attempt.ended == "client_disconnected":
            # Cancelling the relay closed the upstream request too.
            if await self.decisions.settle(attempt):
                await self.recorder.outcome(attempt, "disconnected", None, "client_disconnected")
            return
        if not await self.decisions.settle(attempt):
            raise AuditUnavailable("the audit log could not record the decision")
        # The status line already sent cannot change: then the entry has no status.
        status = None if attempt.responded else 451
        await self.recorder.outcome(attempt, "suspended", status, "model-suspended")
        if attempt.responded:
            raise ConnectionAbortedError("model suspended while streaming")
        message = f"Model {served.id} was suspended by the operator during your request."
        await self.send_451(
            send, attempt.route.surface, message, "model-suspended", attempt.index_header()
        )

    async def _cut(self, attempt: Attempt, send: Send, served: Model) -> None:
        """End a stream the guard's output check refused: its entry, then the SDK's terminal
        events (the status line is out: 200 stands, the stream ends cleanly but filtered)."""
        assert attempt.cut is not None and attempt.reader is not None
        check, ruled = attempt.cut
        if not await self.decisions.settle(attempt):
            raise AuditUnavailable("the audit log could not record the decision")
        await self.recorder.outcome(attempt, "cut", None, ruled.rules[0], guard=check.entry())
        attempt.finishing = True
        await send({"type": "http.response.body", "body": attempt.reader.cut(), "more_body": False})
        if check.verdict.flagged:
            await self.decisions.record_flag(attempt, check, served.id)

    def _spawn_output_check(self, attempt: Attempt, served: Model) -> None:
        """Check what the stream said since the last check, beside the stream; a refusal ends
        the relay through `Attempt.end`, as the kill switch does."""
        assert self.guard is not None and attempt.reader is not None
        start, text = attempt.reader.take()
        window = text[max(0, start - conversation.OVERLAP) :]
        task = asyncio.get_running_loop().create_task(
            self.guard.check_output(attempt.prompt_tail, window, served)
        )
        attempt.checking = task

        def judged(done: asyncio.Task[Check]) -> None:
            if done.cancelled() or attempt.cut is not None:
                return
            if done.exception() is not None:  # a fault of ours: the check failed, fail mode
                log.error("output check failed", exc_info=done.exception())
                check = self.guard.failed("output", "guard_fault", served)  # type: ignore[union-attr]
            else:
                check = done.result()
            self.decisions.observe(check)
            try:
                ruled = self.decisions.ruling(attempt, served, check)
            except ClearanceError:
                log.exception("policy failed on an output check: the stream is cut")
                ruled = attempt.decision
            if ruled is not None:
                attempt.cut = (check, ruled)
                attempt.end("usage_flagged")

        task.add_done_callback(judged)

    async def _relay_guarded(
        self, attempt: Attempt, resp: h1.Response, send: Send, served: Model
    ) -> None:
        """A guarded answer: a stream forwarded event by event while its text is checked, its
        ending held until the last check answers; a whole answer checked before release."""
        assert self.guard is not None
        path = attempt.route.path
        extra = list(attempt.headers)
        if not attempt.stream:
            body = await resp.read()
            if attempt.meter is not None:
                attempt.meter.feed(body)
            text = conversation.completion_text(path, body)
            if text is None:
                check = self.guard.failed("output", "unreadable_answer", served)
            else:
                check = await self.guard.check_output(attempt.prompt_tail, text, served)
            self.decisions.observe(check)
            ruled = self.decisions.ruling(attempt, served, check)
            if ruled is None:
                await send_bytes(send, resp.status, body, [*up.response_headers(resp), *extra])
                return
            # Withheld: the answer's shape with its content removed, or (when it could not even
            # be read) the rule's own refusal.
            status = 200 if text is not None else ruled.reasons[0].status
            await self.recorder.outcome(attempt, "cut", status, ruled.rules[0], check.entry())
            if text is None:
                await self.deny(send, attempt.route.surface, ruled, attempt.index, extra)
                return
            body = conversation.withheld(path, body)
            await send_bytes(send, 200, body, [*up.response_headers(resp), *extra])
            if check.verdict.flagged:
                await self.decisions.record_flag(attempt, check, served.id)
            return
        settings = self.guard.settings
        reader = attempt.reader = StreamReader(
            path, settings.stream_check_tokens, settings.stream_check_ms
        )
        await send(
            {
                "type": "http.response.start",
                "status": resp.status,
                "headers": [*up.response_headers(resp), *extra],
            }
        )
        attempt.responded = True
        async for chunk in resp.iter_any():
            if attempt.meter is not None:
                attempt.meter.feed(chunk)  # reads only: nothing is dropped from a guarded stream
            ready = reader.feed(chunk)
            if ready:
                await send({"type": "http.response.body", "body": ready, "more_body": True})
            if reader.due() and (attempt.checking is None or attempt.checking.done()):
                self._spawn_output_check(attempt, served)
        reader.held.append(reader.rest())
        # The ending waits for every check: the last window is checked before the stream ends.
        await _answered(attempt.checking)
        if reader.chars > reader.checked:
            self._spawn_output_check(attempt, served)
            await _answered(attempt.checking)
        await asyncio.sleep(0)  # let a refusal's callback end the relay before the ending goes
        await self.decisions.settle_slot(attempt)
        attempt.finishing = True
        await send(
            {"type": "http.response.body", "body": b"".join(reader.held), "more_body": False}
        )

    async def _relay(
        self,
        attempt: Attempt,
        url: str,
        body: bytes,
        headers: dict[str, str],
        send: Send,
        *,
        stream: bool,
    ) -> None:
        assert self.session is not None
        self.metrics.added.observe(time.perf_counter() - attempt.started)
        sent = time.perf_counter()
        try:
            async with self.session.post(url, body, headers.items()) as resp:
                self.metrics.upstream.observe(time.perf_counter() - sent)
                await self.decisions.release(attempt)  # not a byte before the entry is durable
                if resp.status >= 500:
                    raise UpstreamError(
                        f"the model provider failed (HTTP {resp.status}); try again"
                    )
                if (
                    attempt.guard is not None
                    and resp.status == 200
                    and self.decisions.checks_output()
                ):
                    assert attempt.decision is not None and attempt.decision.model_served
                    served = self.state.catalog.models[attempt.decision.model_served]
                    await self._relay_guarded(attempt, resp, send, served)
                    return
                extra = list(attempt.headers)
                if resp.status >= 400:
                    # The provider's own refusal, told apart from ours.
                    extra.append((b"clearance-upstream-status", str(resp.status).encode()))
                await send(
                    {
                        "type": "http.response.start",
                        "status": resp.status,
                        "headers": [*up.response_headers(resp), *extra],
                    }
                )
                attempt.responded = True
                meter = attempt.meter
                async for chunk in resp.iter_any():
                    if meter is not None:
                        chunk = meter.feed(chunk)
                        if not chunk:
                            continue
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                end = b"" if meter is None else meter.rest()
                # A slot is freed before the last byte (the client's next request finds it free);
                # tokens are counted after it, when the relay ends.
                await self.decisions.settle_slot(attempt)
                attempt.finishing = True  # from here uvicorn's receive() says "disconnect" too
                await send({"type": "http.response.body", "body": end, "more_body": False})
        except TimeoutError as exc:
            await self._fail(
                attempt,
                send,
                attempt.responded,
                stream,
                UpstreamTimeout("the model provider did not answer in time"),
                "upstream_timeout",
                exc,
            )
        except h1.H1Error as exc:
            await self._fail(
                attempt,
                send,
                attempt.responded,
                stream,
                UpstreamError("the model provider is unreachable or broke the connection"),
                "upstream_error",
                exc,
            )
        except UpstreamError as exc:
            await self._fail(attempt, send, attempt.responded, stream, exc, "upstream_5xx", exc)

    async def _fail(
        self,
        attempt: Attempt,
        send: Send,
        started: bool,
        stream: bool,
        error: UpstreamError,
        kind: str,
        cause: BaseException,
    ) -> None:
        await self.decisions.release(attempt)  # the failure is told once the decision is durable
        self.metrics.upstream_errors.labels(kind).inc()
        await self.recorder.outcome(attempt, "failed", None if started else error.status, kind)
        surface = attempt.route.surface
        if not started:
            await send_bytes(
                send,
                error.status,
                error_body(surface, error.status, error.detail, error.code),
                attempt.headers,
            )
            return
        if stream:
            # Mid-stream: an error event the SDK raises on, then abort: never a clean end.
            frame = error_body(surface, error.status, error.detail, error.code)
            prefix = b"event: error\n" if surface is Surface.ANTHROPIC else b""
            await send(
                {
                    "type": "http.response.body",
                    "body": prefix + b"data: " + frame + b"\n\n",
                    "more_body": True,
                }
            )
        raise ConnectionAbortedError(kind) from cause

    async def list_models(
        self,
        scope: Scope,
        headers: dict[bytes, bytes],
        caller: Caller,
        surface: Surface,
        send: Send,
    ) -> None:
        """Only the models this key may use right now, in the asking SDK's shape."""
        ctx = RequestContext(ip_country=self.locator.country(scope, headers))
        allowed = []
        for model_id in sorted(self.state.catalog.models):
            if self.state.decide(caller, model_id, ctx, allow_fallback=False).allowed:
                allowed.append(model_id)
        if surface is Surface.ANTHROPIC:
            data: object = {
                "data": [
                    {
                        "type": "model",
                        "id": m,
                        "display_name": m,
                        "created_at": "1970-01-01T00:00:00Z",
                    }
                    for m in allowed
                ],
                "has_more": False,
                "first_id": allowed[0] if allowed else None,
                "last_id": allowed[-1] if allowed else None,
            }
        else:
            data = {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": 0, "owned_by": "clearance"}
                    for m in allowed
                ],
            }
        await send_bytes(send, 200, orjson.dumps(data))


WATCH_AFTER = 0.05  # seconds into the relay before a hang-up is watched for


async def _answered(check: asyncio.Task[Check] | None) -> None:
    """Wait for an output check to answer; its callback acts on the answer (a refusal cancels
    the waiting relay). Shielded: the relay's own cancellation must not cancel the check."""
    if check is None:
        return
    try:
        await asyncio.shield(check)
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - the callback has turned it into a failed check
        return


class _Watch:
    """The task that waits for the client to hang up, and ends the attempt when it does."""

    def __init__(self, receive: Receive, attempt: Attempt) -> None:
        self._receive = receive
        self._attempt = attempt
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._wait())

    async def _wait(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self._attempt.end("client_disconnected")

    def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
