"""The demo upstream: a small raw-ASGI app that answers the OpenAI and Anthropic APIs with
deterministic demo text. `clearance demo` serves it; tests and benchmarks use it as the fake
provider behind a real socket.

Base URLs follow each SDK's own convention: OpenAI `http://HOST:PORT/v1`, Anthropic
`http://HOST:PORT` (the SDK appends `/v1/messages`).

Two routes name the model in the path, as Azure OpenAI and Amazon Bedrock do, for edges that
route by path (docs/integrations.md): `/openai/deployments/{model}/chat/completions` (also
`/responses`, `/embeddings`) and `/model/{model}/invoke` (an Anthropic Messages body). There the
path's model is the one served and the body's `model`, if any, is ignored, as those APIs do.

Faults, for reliability tests, are asked for per request with the `x-demo-fault` header:

    status-NNN            answer HTTP NNN (e.g. status-500, status-429) with an error body in the
                          API's own shape
    stall-before-headers  read the request, then send nothing until the client disconnects
    stall-mid-stream      send the headers and the first half of the body (half the events of a
                          stream), then nothing until the client disconnects
    reset                 send the headers and the first half of the body, then close the
                          connection without finishing the response
    malformed-sse         a complete 200 whose body is broken: a stream's second event is not
                          JSON and the stream ends without its terminator; a JSON body is cut
                          in half

A stall ends when the client disconnects, or after `stall_limit` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import orjson
from starlette.types import Receive, Scope, Send

from clearance.demo.upstream import anthropic_api, openai_api
from clearance.demo.upstream.outcome import Events, Json, Outcome
from clearance.errors import ClearanceError, InvalidInput, NotFound
from clearance.net.asgi import read_body

DEMO_MODELS = ("fable-4", "fable-5", "mythos-5")
FAULT_HEADER = b"x-demo-fault"
JSON_TYPE = b"application/json"
SSE_TYPE = b"text/event-stream; charset=utf-8"
MALFORMED_EVENT = b'data: {"malformed\n\n'

Handler = Callable[[Mapping[str, object], str, int], Outcome]
POST_ROUTES: dict[str, Handler] = {
    "/v1/chat/completions": openai_api.chat,
    "/v1/responses": openai_api.responses,
    "/v1/embeddings": openai_api.embeddings,
    "/v1/messages": anthropic_api.messages,
    "/v1/messages/count_tokens": anthropic_api.count_tokens,
}

# The model named by the path (Azure OpenAI deployments, Bedrock invoke): the body's is ignored.
DEPLOYMENT = re.compile(r"^/openai/deployments/(?P<model>[^/]+)(?P<route>/[a-z/]+)$")
BEDROCK = re.compile(r"^/model/(?P<model>[^/]+)/invoke$")


class Fault(StrEnum):
    NONE = ""
    STATUS = "status-"  # followed by the code
    STALL_BEFORE_HEADERS = "stall-before-headers"
    STALL_MID_STREAM = "stall-mid-stream"
    RESET = "reset"
    MALFORMED_SSE = "malformed-sse"


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """A request as the upstream received it, for tests of what a proxy forwards."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class _Exchange:
    rid: str
    anthropic: bool  # answer errors and request ids in Anthropic's shape

    def error(self, status: int, message: str) -> Json:
        if self.anthropic:
            return Json(anthropic_api.error(status, message, self.rid), status)
        return Json(openai_api.error(status, message), status)


class DemoUpstream:
    """The ASGI application. `seen` keeps the most recent requests (bounded)."""

    def __init__(
        self,
        chunk_delay: float = 0.015,
        *,
        models: Sequence[str] = DEMO_MODELS,
        max_body: int = 8 * 1024 * 1024,
        stall_limit: float = 600.0,
    ) -> None:
        self.chunk_delay = chunk_delay
        self.models = tuple(models)
        self.max_body = max_body
        self.stall_limit = stall_limit
        self.seen: deque[SeenRequest] = deque(maxlen=256)
        self._ids = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        headers: dict[bytes, bytes] = dict(scope["headers"])
        anthropic = (
            path.startswith("/v1/messages")
            or BEDROCK.match(path) is not None
            or (path == "/v1/models" and b"anthropic-version" in headers)
        )
        ex = _Exchange(f"demo{next(self._ids):010d}", anthropic)
        fault = Fault.NONE
        try:
            body = await read_body(receive, headers, self.max_body)
            self.seen.append(SeenRequest(scope["method"], path, _text(headers), body))
            fault, status = _fault(headers.get(FAULT_HEADER, b""))
            if fault is Fault.STATUS:
                outcome: Outcome = ex.error(status, f"simulated upstream failure (HTTP {status})")
            elif fault is Fault.STALL_BEFORE_HEADERS:
                await self._stall(receive)
                return
            else:
                outcome = self._answer(scope["method"], path, body, ex)
        except ClearanceError as exc:
            outcome = ex.error(exc.status, exc.detail)
        id_header = b"request-id" if anthropic else b"x-request-id"
        await self._deliver(outcome, fault, [(id_header, ex.rid.encode())], receive, send)

    def _answer(self, method: str, path: str, raw: bytes, ex: _Exchange) -> Outcome:
        now = int(time.time())
        if path == "/v1/models":
            if method != "GET":
                return ex.error(405, f"{method} is not allowed on {path}")
            if ex.anthropic:
                return anthropic_api.models(self.models, now)
            return openai_api.models(self.models, now)
        path, named = _model_in_path(path)
        handler = POST_ROUTES.get(path)
        if handler is None:
            raise NotFound(f"unknown path {path} (this is the Clearance demo upstream)")
        if method != "POST":
            return ex.error(405, f"{method} is not allowed on {path}")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput("the request body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise InvalidInput("the request body must be a JSON object")
        if named:
            body["model"] = named
        return handler(body, ex.rid, now)

    async def _deliver(
        self,
        outcome: Outcome,
        fault: Fault,
        headers: list[tuple[bytes, bytes]],
        receive: Receive,
        send: Send,
    ) -> None:
        if isinstance(outcome, Json):
            payload = orjson.dumps(outcome.body)
            if fault is Fault.NONE or fault is Fault.STATUS:
                length = str(len(payload)).encode()
                headers += [(b"content-type", JSON_TYPE), (b"content-length", length)]
                await send(
                    {"type": "http.response.start", "status": outcome.status, "headers": headers}
                )
                await send({"type": "http.response.body", "body": payload})
                return
            half = len(payload) // 2
            status = outcome.status
            frames: tuple[bytes, ...] = (payload[:half], payload[half:])
            if fault is Fault.MALFORMED_SSE:
                frames = frames[:1]
            headers.append((b"content-type", JSON_TYPE))
        else:
            status, frames = 200, outcome.frames
            if fault is Fault.MALFORMED_SSE:
                frames = (frames[0], MALFORMED_EVENT)
            headers += [(b"content-type", SSE_TYPE), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await self._frames(frames, fault, isinstance(outcome, Events), receive, send)

    async def _frames(
        self, frames: Sequence[bytes], fault: Fault, paced: bool, receive: Receive, send: Send
    ) -> None:
        cut = max(1, len(frames) // 2)
        for i, frame in enumerate(frames):
            if i == cut and fault in (Fault.STALL_MID_STREAM, Fault.RESET):
                if fault is Fault.STALL_MID_STREAM:
                    await self._stall(receive)
                # Returning with the response unfinished makes the server drop the connection.
                return
            if i and paced and self.chunk_delay > 0:
                await asyncio.sleep(self.chunk_delay)
            last = i == len(frames) - 1
            await send({"type": "http.response.body", "body": frame, "more_body": not last})

    async def _stall(self, receive: Receive) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.stall_limit):
                while (await receive())["type"] != "http.disconnect":
                    pass


def demo_upstream_app(
    chunk_delay: float = 0.015, *, models: Sequence[str] = DEMO_MODELS, stall_limit: float = 600.0
) -> DemoUpstream:
    """The demo upstream as an ASGI callable; `chunk_delay` seconds between stream chunks."""
    return DemoUpstream(chunk_delay, models=models, stall_limit=stall_limit)


def _fault(value: bytes) -> tuple[Fault, int]:
    name = value.decode("latin-1").strip().lower()
    code = name.removeprefix(Fault.STATUS.value)
    if code.isdigit() and 400 <= int(code) <= 599 and code != name:
        return Fault.STATUS, int(code)
    if name != Fault.STATUS.value and name in {f.value for f in Fault}:
        return Fault(name), 200
    raise InvalidInput(f"unknown x-demo-fault {name!r}; see clearance.demo.upstream")


def _model_in_path(path: str) -> tuple[str, str]:
    """The API route a path-routed request stands for, and the model its path names."""
    found = DEPLOYMENT.match(path)
    if found is not None and "/v1" + found["route"] in POST_ROUTES:
        return "/v1" + found["route"], found["model"]
    found = BEDROCK.match(path)
    if found is not None:
        return "/v1/messages", found["model"]
    return path, ""


def _text(headers: Mapping[bytes, bytes]) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items()}


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
