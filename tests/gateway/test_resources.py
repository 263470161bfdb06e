"""A client that leaves costs nothing afterwards: 200 disconnects, half before the first byte (the
upstream has not even sent its headers) and half mid-stream, each close the upstream request
within a second, and the gateway's asyncio tasks and the process's file descriptors return to
their baseline."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from clearance.catalog import service as catalog
from clearance.catalog.classification import classify
from clearance.catalog.models import UpstreamKind
from clearance.config import Settings
from clearance.gateway.app import create_app
from clearance.gateway.demo import seed
from clearance.gateway.http import send_bytes
from clearance.gateway.protocol import DeadlineProtocol
from clearance.gateway.serving import serve_in_thread
from clearance.store import connect

DISCONNECTS = 200
BATCH = 10  # clients open at once; each batch is half before-first-byte, half mid-stream
CLOSE_WITHIN = 1.0
SETTLE = 5.0  # how long tasks and descriptors may take to return to baseline
CHUNK = (
    b'data: {"id":"1","object":"chat.completion.chunk","created":0,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
)


class RecordingUpstream:
    """An OpenAI-style upstream that records when each request (by its `tag`) opened and when it
    saw `http.disconnect`. Model `stall-headers` never answers; `stream-forever` streams a chunk
    every 20 ms until the gateway hangs up."""

    def __init__(self) -> None:
        self.opened: dict[str, float] = {}
        self.closed: dict[str, float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        payload = orjson.loads(body)
        tag: str = payload["tag"]
        self.opened[tag] = time.monotonic()
        gone = asyncio.ensure_future(self._until_disconnect(receive, tag))
        try:
            if payload["model"] == "stream-forever":
                start = {"type": "http.response.start", "status": 200}
                await send({**start, "headers": [(b"content-type", b"text/event-stream")]})
                while not gone.done():
                    await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
                    await asyncio.wait({gone}, timeout=0.02)
            await asyncio.wait_for(asyncio.shield(gone), timeout=30)
        finally:
            gone.cancel()

    async def _until_disconnect(self, receive: Receive, tag: str) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.closed[tag] = time.monotonic()


class TaskCounter:
    """A test-only debug hook: `GET /__tasks` answers how many asyncio tasks the gateway's event
    loop holds (the request asking is one of them, every time)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/__tasks":
            await send_bytes(send, 200, str(len(asyncio.all_tasks())).encode())
            return
        await self.app(scope, receive, send)


@pytest.fixture
def recording() -> Iterator[tuple[RecordingUpstream, str]]:
    upstream = RecordingUpstream()
    with serve_in_thread(upstream, lifespan="off") as url:
        yield upstream, url


@pytest.fixture
def served(
    instance: tuple[Settings, Path], recording: tuple[RecordingUpstream, str], upstream_url: str
) -> Iterator[tuple[str, str]]:
    settings, _ = instance
    engine = connect(settings.database_url)
    keys = seed(engine, settings, upstream_url)
    with engine.begin() as conn:
        catalog.add_upstream(conn, "recording", UpstreamKind.OPENAI, recording[1] + "/v1", None)
        for name in ("stall-headers", "stream-forever"):
            catalog.add_model(
                conn,
                name,
                upstream="recording",
                upstream_model=None,
                explicit=None,
                classification=classify(threshold=1e26, training_compute=1e20),
            )
    engine.dispose()
    with serve_in_thread(TaskCounter(create_app(settings)), http=DeadlineProtocol) as url:
        yield url, keys["alice@demo.test"]


def _open(url: str, key: str, model: str, tag: str) -> socket.socket:
    """A streaming request on a raw socket, so the test decides exactly when it hangs up."""
    host, port = url.removeprefix("http://").split(":")
    body = orjson.dumps({"model": model, "messages": [], "stream": True, "tag": tag})
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {key}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(head.encode() + body)
    return sock


def _first_event(sock: socket.socket) -> None:
    received = b""
    while b"data:" not in received:
        data = sock.recv(65536)
        assert data, f"closed before the first event: {received[:300]!r}"
        received += data
    assert received.startswith(b"HTTP/1.1 200"), received[:300]


def _wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def _all_in(tags: list[str], seen: dict[str, float]) -> Callable[[], bool]:
    return lambda: all(t in seen for t in tags)


def _disconnect_batch(
    url: str, key: str, upstream: RecordingUpstream, first: int, size: int
) -> dict[str, float]:
    """Open `size` streams, hang up on each (half before the upstream's headers, half after the
    first event) and return, per tag, when the client hung up."""
    socks: dict[str, socket.socket] = {}
    for n in range(first, first + size):
        model = "stall-headers" if n % 2 == 0 else "stream-forever"
        tag = f"{model}-{n}"
        socks[tag] = _open(url, key, model, tag)
    hung_up: dict[str, float] = {}
    for tag, sock in socks.items():
        if tag.startswith("stream-forever"):
            _first_event(sock)
        else:  # the gateway has forwarded it; the upstream sits on it, sending nothing
            assert _wait_until(_all_in([tag], upstream.opened), 10), tag
        sock.close()
        hung_up[tag] = time.monotonic()
    return hung_up


def _tasks(url: str) -> int:
    return int(httpx.get(url + "/__tasks", timeout=10).text)


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_disconnects_close_upstream_and_leak_nothing(
    served: tuple[str, str], recording: tuple[RecordingUpstream, str]
) -> None:
    url, key = served
    upstream, _ = recording
    # Warm up: pools (database, upstream connections, worker threads) reach their working size.
    warm = _disconnect_batch(url, key, upstream, -2 * BATCH, 2 * BATCH)
    assert _wait_until(_all_in(list(warm), upstream.closed), 5), "warm-up upstreams never closed"
    time.sleep(0.5)
    tasks_before, fds_before = _tasks(url), _fds()

    hung_up: dict[str, float] = {}
    for first in range(0, DISCONNECTS, BATCH):
        hung_up.update(_disconnect_batch(url, key, upstream, first, BATCH))
        batch = [t for t in hung_up if t not in upstream.closed]
        _wait_until(_all_in(batch, upstream.closed), 2.0)

    still_open = sorted(t for t in hung_up if t not in upstream.closed)
    assert not still_open, f"upstream requests never closed: {still_open[:10]}"
    slow = {t: upstream.closed[t] - hung_up[t] for t in hung_up}
    slow = {t: round(s, 3) for t, s in slow.items() if s > CLOSE_WITHIN}
    assert not slow, f"upstream closed more than {CLOSE_WITHIN} s after the client left: {slow}"
    assert len(hung_up) == DISCONNECTS

    # Afterwards: the same tasks and descriptors as before the 200 disconnects.
    assert _wait_until(lambda: _tasks(url) <= tasks_before, SETTLE), (
        f"asyncio tasks: {_tasks(url)} after, {tasks_before} before"
    )
    assert _wait_until(lambda: _fds() <= fds_before, SETTLE), (
        f"file descriptors: {_fds()} after, {fds_before} before"
    )
