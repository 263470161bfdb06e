"""A client that leaves costs nothing afterwards.

- 200 disconnects, half before the first byte (the upstream has not even sent its headers) and
  half mid-stream, each close the upstream request within a second, and the gateway's asyncio
  tasks and the process's file descriptors return to their baseline.
- Rounds of 200 streams open at once, then closed: what Python holds afterwards (objects by type,
  traced bytes, in-flight registry, tasks) does not grow from one round to the next. The worker's
  RSS does keep the first burst's high-water mark (allocator retention, measured in
  bench/gateway_resources.py and docs/gateway.md#resources); a leak is what adds up round on round.
- An open stream holds one copy of its prompt, not three, and not the JSON encoder's spare buffer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import resource
import socket
import time
import tracemalloc
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from clearance.app import Clearance, create_app
from clearance.catalog import service as catalog
from clearance.catalog.classification import classify
from clearance.catalog.models import UpstreamKind
from clearance.config import Settings
from clearance.demo.run import seed
from clearance.net.asgi import send_bytes
from clearance.net.protocol import DeadlineProtocol
from clearance.net.serving import serve_in_thread
from clearance.store import connect

DISCONNECTS = 200
BATCH = 10  # clients open at once; each batch is half before-first-byte, half mid-stream
CLOSE_WITHIN = 1.0
SETTLE = 5.0  # how long tasks and descriptors may take to return to baseline
STREAMS = 200  # open at once, per round
# One object of a type kept per stream adds STREAMS of it a round; two dozen is the noise of the
# database pool, the poller and the audit thread caught mid-work.
GROWN_OBJECTS = STREAMS // 2
# A stream's own objects weigh ~30 KB; keeping 2 KB of each (its request body, a buffer) adds
# 400 KB a round. Below that is noise: hash tables (the task registry, the in-flight set) that
# grow to a new size once (16-64 KB each) and uvloop's free lists.
GROWN_BYTES = 2048 * STREAMS
NOT_THE_GATEWAY = [
    # The test's own bookkeeping (the upstream's per-tag times, these counts and snapshots).
    tracemalloc.Filter(inclusive=False, filename_pattern=__file__),
    tracemalloc.Filter(inclusive=False, filename_pattern=tracemalloc.__file__),
    # The dead cursor weakrefs above, and the statements cached per pooled connection.
    tracemalloc.Filter(inclusive=False, filename_pattern="*/sqlalchemy/pool/*"),
]
CHUNK = (
    b'data: {"id":"1","object":"chat.completion.chunk","created":0,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
)


class RecordingUpstream:
    """An OpenAI-style upstream that records when each request (by its `tag`) opened and when it
    saw `http.disconnect`. Model `stall-headers` never answers; `stream-forever` streams a chunk
    every 20 ms until the gateway hangs up; `stream-idle` sends one chunk, then nothing until the
    gateway hangs up (a long generation, or an SSE stream between events)."""

    def __init__(self) -> None:
        self.opened: dict[str, float] = {}
        self.closed: dict[str, float] = {}
        self.active = 0  # requests whose handler has not returned yet

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        payload = await _request_fields(receive)
        tag = payload["tag"]
        self.opened[tag] = time.monotonic()
        gone = asyncio.ensure_future(self._until_disconnect(receive, tag))
        self.active += 1
        try:
            if payload["model"] in ("stream-forever", "stream-idle"):
                start = {"type": "http.response.start", "status": 200}
                await send({**start, "headers": [(b"content-type", b"text/event-stream")]})
                await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
            if payload["model"] == "stream-forever":
                while not gone.done():
                    await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
                    await asyncio.wait({gone}, timeout=0.02)
            await asyncio.wait_for(asyncio.shield(gone), timeout=30)
        finally:
            gone.cancel()
            self.active -= 1

    async def _until_disconnect(self, receive: Receive, tag: str) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.closed[tag] = time.monotonic()


async def _request_fields(receive: Receive) -> dict[str, str]:
    """The request's `model` and `tag`; the body itself (a long prompt) is not kept."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    payload = orjson.loads(body)
    return {"model": payload["model"], "tag": payload["tag"]}


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
def gateway_app(
    instance: tuple[Settings, Path], recording: tuple[RecordingUpstream, str], upstream_url: str
) -> tuple[Clearance, str]:
    """The gateway (not yet served) with the recording upstream's models, and Alice's key."""
    settings, _ = instance
    engine = connect(settings.database_url)
    keys = seed(engine, settings, upstream_url)
    with engine.begin() as conn:
        catalog.add_upstream(conn, "recording", UpstreamKind.OPENAI, recording[1] + "/v1", None)
        for name in ("stall-headers", "stream-forever", "stream-idle"):
            catalog.add_model(
                conn,
                name,
                upstream="recording",
                upstream_model=None,
                explicit=None,
                classification=classify(threshold=1e26, training_compute=1e20),
            )
    engine.dispose()
    # The integrator reads each round's entries (rows, tuples) within a checkpoint interval:
    # short, so the rounds can wait for it to finish before counting what is held.
    fast = dataclasses.replace(settings.audit, checkpoint_interval_seconds=0.02)
    return create_app(dataclasses.replace(settings, audit=fast)), keys["alice@demo.test"]


@pytest.fixture
def served(gateway_app: tuple[Clearance, str]) -> Iterator[tuple[str, str]]:
    app, key = gateway_app
    with serve_in_thread(TaskCounter(app), http=DeadlineProtocol) as url:
        yield url, key


def _open(url: str, key: str, model: str, tag: str, prompt: str = "") -> socket.socket:
    """A streaming request on a raw socket, so the test decides exactly when it hangs up."""
    host, port = url.removeprefix("http://").split(":")
    messages = [{"role": "user", "content": prompt}] if prompt else []
    body = orjson.dumps({"model": model, "messages": messages, "stream": True, "tag": tag})
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
    """Open descriptors other than database files. The database pool opens a connection when
    reads overlap (the poller, the integrator, a key lookup) and keeps up to its bounded size:
    that is load, not a leak. Sockets, pipes and event fds are what a disconnect could leak."""
    held = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (or the directory's own descriptor)
            continue
        held += not target.endswith((".db", ".db-wal", ".db-shm", "-journal"))
    return held


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


# --- rounds of open streams ------------------------------------------------------------------


@pytest.fixture
def descriptors() -> Iterator[None]:
    """Room for a round's descriptors (client, gateway and upstream ends of each stream) where the
    soft limit is the common 1,024; restored afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 8 * STREAMS + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(
                f"{STREAMS} streams need {wanted} file descriptors; the hard limit is {hard}"
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@dataclass(frozen=True)
class Held:
    """What the process holds once a round's streams have closed."""

    objects: dict[type, int]  # gc-tracked objects by type
    traced: dict[str, int]  # while tracing, bytes by allocating line: also what gc does not see


def _held() -> Held:
    gc.collect()
    objects: dict[type, int] = {}  # filled on this file's lines: its memory is the test's own
    for o in gc.get_objects():
        # sqlite3 keeps a weak reference to every cursor and sweeps the dead ones only every 200
        # cursors (CPython Modules/_sqlite/connection.c): those come and go with the pool.
        if type(o) is not weakref.ref or o() is not None:
            objects[type(o)] = objects.get(type(o), 0) + 1
    traced: dict[str, int] = {}
    if tracemalloc.is_tracing():
        snapshot = tracemalloc.take_snapshot().filter_traces(NOT_THE_GATEWAY)
        for stat in snapshot.statistics("lineno"):
            frame = stat.traceback[0]
            traced[f"{frame.filename}:{frame.lineno}"] = stat.size
    return Held(objects, traced)


def _integrated(app: Clearance) -> bool:
    committed, integrated = app.audit.reader.sizes()
    return committed == integrated


def _inflight(app: Clearance) -> int:
    return sum(len(tasks) for tasks in app.proxy.inflight.values())


def _stream_round(
    served: tuple[str, str],
    upstream: RecordingUpstream,
    app: Clearance,
    first: int,
    idle: tuple[int, int] | None,
) -> Held:
    """Open STREAMS streams at once and read each one's first event; hang up on all of them; wait
    until every upstream handler, in-flight entry, task and descriptor has gone (`idle`: the
    gateway's tasks and the process's descriptors after the warm-up); report what is held."""
    url, key = served
    tags = [f"stream-idle-{n}" for n in range(first, first + STREAMS)]
    socks = [_open(url, key, "stream-idle", tag) for tag in tags]
    try:
        for sock in socks:
            _first_event(sock)
        assert _inflight(app) == STREAMS
    finally:
        for sock in socks:
            sock.close()
    assert _wait_until(_all_in(tags, upstream.closed), 10), "upstream requests never closed"
    assert _wait_until(lambda: _inflight(app) == 0, SETTLE), f"in flight: {_inflight(app)}"
    assert _wait_until(lambda: upstream.active == 0, SETTLE), f"upstream: {upstream.active}"
    if idle is not None:
        tasks, fds = idle
        assert _wait_until(lambda: _tasks(url) <= tasks, SETTLE), f"tasks: {_tasks(url)}>{tasks}"
        assert _wait_until(lambda: _fds() <= fds, SETTLE), f"descriptors: {_fds()} > {fds}"
    # The round's decision entries are in the tree: the integrator thread is not holding the rows
    # it read while it integrates them (it did in CI, under load: 240 tuples more in one round).
    assert _wait_until(lambda: _integrated(app), SETTLE), f"log: {app.audit.reader.sizes()}"
    return _held()


def test_rounds_of_streams_leave_nothing_that_adds_up(
    gateway_app: tuple[Clearance, str],
    served: tuple[str, str],
    recording: tuple[RecordingUpstream, str],
    descriptors: None,
) -> None:
    app, _ = gateway_app
    upstream, _ = recording
    # Warm-up: pools, caches and the allocator reach the size a burst of STREAMS needs, and
    # what is allocated once (imports, compiled statements) is not traced.
    _stream_round(served, upstream, app, -STREAMS, None)
    time.sleep(0.5)  # as in the disconnect test: the pools' last connections settle
    idle = _tasks(served[0]), _fds()
    tracemalloc.start(1)
    try:
        first = _stream_round(served, upstream, app, 0, idle)
        second = _stream_round(served, upstream, app, STREAMS, idle)
    finally:
        tracemalloc.stop()

    grown = {
        f"{kind.__module__}.{kind.__qualname__}": n - first.objects.get(kind, 0)
        for kind, n in second.objects.items()
        if n - first.objects.get(kind, 0) >= GROWN_OBJECTS
    }
    assert not grown, f"objects that grew by {STREAMS} streams' worth in one round: {grown}"
    added = sum(second.traced.values()) - sum(first.traced.values())
    top = sorted(second.traced, key=lambda line: first.traced.get(line, 0) - second.traced[line])
    assert added < GROWN_BYTES, f"{added} traced bytes more after the second round, at {top[:5]}"


PROMPT = 256 * 1024
PROMPT_STREAMS = 20


def test_an_open_stream_holds_one_copy_of_its_prompt(
    served: tuple[str, str], recording: tuple[RecordingUpstream, str]
) -> None:
    """Not also the client's raw body and its parsed copy, nor the JSON encoder's spare buffer
    (orjson's bytes for a 256 KiB body had 4 MiB allocated), for as long as the stream is open."""
    url, key = served
    upstream, _ = recording
    prompt = "x" * PROMPT
    warm = _open(url, key, "stream-idle", "prompt-warm", prompt)
    _first_event(warm)
    warm.close()
    assert _wait_until(lambda: upstream.active == 0, SETTLE)
    tracemalloc.start(1)
    try:
        before = _held().traced
        socks = [
            _open(url, key, "stream-idle", f"prompt-{n}", prompt) for n in range(PROMPT_STREAMS)
        ]
        try:
            for sock in socks:
                _first_event(sock)
            during = _held().traced
        finally:
            for sock in socks:
                sock.close()
    finally:
        tracemalloc.stop()
    per_stream = (sum(during.values()) - sum(before.values())) / PROMPT_STREAMS
    top = sorted(during, key=lambda line: before.get(line, 0) - during[line])
    assert per_stream < 2 * PROMPT, f"{per_stream:.0f} bytes a stream, at {top[:5]}"
