"""What hostile or idle clients cost one gateway worker (issue 7, item 3).

    .venv/bin/python -m bench.gateway_resources [--streams 1000] [--rounds 2] [--prompt-kb 0]

prints the worker's RSS idle (the baseline), with the streams open, and after they closed, for
each round: growth that stays flat from round to round is the allocator keeping freed memory for
reuse, growth that adds up is a leak (docs/gateway.md#resources). Allocator settings in the
environment (MALLOC_ARENA_MAX, PYTHONMALLOC) reach the worker. bench/reliability.py --gateway runs
this figure beside the stalled-reader and slowloris ones, which use the same harness.

One `clearance serve --workers 1` process (uvloop, httptools, the header deadline) in front of
`upstream_app`, a fake provider in its own process whose behaviour the request's `bench_mode`
field chooses (the gateway forwards unknown fields untouched):

  flood   streams 64 KiB SSE events as fast as the gateway takes them, until it hangs up
  sse     one event at once, then a 20-byte event every second, until it hangs up
  (other) a small non-streaming chat completion: the probe

Memory is the worker's VmRSS from /proc/PID/status; clients are raw sockets, so the bench decides
exactly when a client stops reading or hangs up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
from bench.gateway import BIN, MODEL, clearance_instance, free_port, process
from starlette.types import Receive, Scope, Send

ROOT = Path(__file__).resolve().parents[1]
FLOOD_EVENT = b"data: " + b"x" * (64 * 1024 - 8) + b"\n\n"
SSE_EVENT = b'data: {"k":"alive"}\n\n'
MB = 1024 * 1024


# --- the fake provider (its own process) -----------------------------------------------------


class ResourceUpstream:
    def __init__(self) -> None:
        self.sent = 0  # body bytes handed to the transport, all streams
        self.open = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/stats":
            body = orjson.dumps({"sent": self.sent, "open": self.open})
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        mode = orjson.loads(raw).get("bench_mode")
        if mode not in ("flood", "sse"):
            await self._completion(send)
            return
        self.open += 1
        gone = asyncio.ensure_future(_until_disconnect(receive))
        try:
            start = {"type": "http.response.start", "status": 200}
            await send({**start, "headers": [(b"content-type", b"text/event-stream")]})
            event, pause = (FLOOD_EVENT, 0.0) if mode == "flood" else (SSE_EVENT, 1.0)
            while not gone.done():
                # uvicorn's send waits while the gateway is not reading: backpressure.
                await send({"type": "http.response.body", "body": event, "more_body": True})
                self.sent += len(event)
                await asyncio.wait({gone}, timeout=pause)
        finally:
            self.open -= 1
            gone.cancel()

    async def _completion(self, send: Send) -> None:
        body = orjson.dumps(
            {
                "id": "probe",
                "object": "chat.completion",
                "created": 0,
                "model": MODEL,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "ok"},
                        "finish_reason": "stop",
                    }
                ],
            }
        )
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


upstream_app = ResourceUpstream()


# --- processes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Worker:
    pid: int
    url: str
    key: str
    upstream: str

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def upstream_stats(self) -> dict[str, int]:
        with urllib.request.urlopen(self.upstream + "/stats", timeout=10) as resp:
            stats: dict[str, int] = orjson.loads(resp.read())
            return stats

    def settled_rss(self, seconds: float = 15.0) -> float:
        """The RSS once it stops changing by more than 1 MB a second."""
        last, deadline = self.rss_mb(), time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(1.0)
            now = self.rss_mb()
            if abs(now - last) < 1.0:
                return now
            last = now
        return last

    def upstream_idle(self, seconds: float = 30.0) -> int:
        """Wait until the upstream has no stream open (each client's hang-up reached it); returns
        how many still are."""
        deadline = time.monotonic() + seconds
        while (still := self.upstream_stats()["open"]) and time.monotonic() < deadline:
            time.sleep(0.2)
        return still


@contextmanager
def gateway_worker(workdir: Path) -> Iterator[Worker]:
    """The fake provider and one fresh gateway worker on a new instance (SQLite audit)."""
    up_port, gw_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    serve_up = [sys.executable, "-m", "uvicorn", "bench.gateway_resources:upstream_app"]
    serve_up += ["--app-dir", str(ROOT), "--port", str(up_port), "--lifespan", "off"]
    serve_up += ["--loop", "uvloop", "--http", "httptools", "--log-level", "warning"]
    with process(serve_up, upstream + "/stats"):
        directory = workdir / f"instance-{gw_port}"
        config, key = clearance_instance(directory, upstream)
        url = f"http://127.0.0.1:{gw_port}"
        serve = [str(BIN / "clearance"), "serve", "--config", str(config)]
        serve += ["--port", str(gw_port), "--workers", "1"]
        with process(serve, url + "/healthz") as proc:
            yield Worker(proc.pid, url, key, upstream)


# --- clients ---------------------------------------------------------------------------------


def request_bytes(worker: Worker, mode: str, stream: bool = True, prompt: str = "hi") -> bytes:
    body = orjson.dumps(
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": prompt}],
            "stream": stream,
            "bench_mode": mode,
        }
    )
    host = worker.url.removeprefix("http://")
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\n"
        f"authorization: Bearer {worker.key}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def open_streams(
    worker: Worker, mode: str, count: int, batch: int = 50, prompt: str = "hi"
) -> list[socket.socket]:
    """`count` streams, each read up to its first event and then left unread."""
    host, port = worker.url.removeprefix("http://").split(":")
    raw = request_bytes(worker, mode, prompt=prompt)
    socks: list[socket.socket] = []
    while len(socks) < count:
        fresh = [
            socket.create_connection((host, int(port)), timeout=30)
            for _ in range(min(batch, count - len(socks)))
        ]
        for sock in fresh:
            sock.sendall(raw)
        for sock in fresh:
            received = b""
            while b"data:" not in received:
                data = sock.recv(65536)
                if not data:
                    raise SystemExit(f"stream closed before its first event: {received[:200]!r}")
                received += data
        socks.extend(fresh)
    return socks


def probe_latencies(worker: Worker, seconds: float, pause: float = 0.02) -> list[float]:
    """Seconds per non-streaming request through the gateway, each on a new connection, for
    `seconds`."""
    host, port = worker.url.removeprefix("http://").split(":")
    raw = request_bytes(worker, "probe", stream=False)
    raw = raw.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n", 1)
    latencies = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(raw)
            reply = b""
            while data := sock.recv(65536):
                reply += data
        if not reply.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"probe failed: {reply[:300]!r}")
        latencies.append(time.perf_counter() - started)
        time.sleep(pause)
    return latencies


class Slowloris:
    """`count` connections that each trickle one more header line every `interval` seconds and
    never finish; a connection the server cuts is counted (with its age) and replaced."""

    def __init__(self, url: str, count: int, interval: float = 1.0) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.count, self.interval = count, interval
        self.cut_after: list[float] = []
        self._stop = threading.Event()
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Slowloris:
        self._thread.start()
        if not self.ready.wait(timeout=60):
            raise SystemExit("slowloris connections not opened within 60 s")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _connect(self) -> tuple[socket.socket, float]:
        sock = socket.create_connection(self.address, timeout=10)
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
        sock.setblocking(False)
        return sock, time.monotonic()

    def _run(self) -> None:
        conns = [self._connect() for _ in range(self.count)]
        self.ready.set()
        line = 0
        while not self._stop.wait(self.interval):
            line += 1
            for i, (sock, opened) in enumerate(conns):
                if _server_closed(sock):
                    self.cut_after.append(time.monotonic() - opened)
                    sock.close()
                    conns[i] = self._connect()
                    continue
                with contextlib.suppress(BlockingIOError, ConnectionError):
                    sock.send(f"x-trickle-{line}: a\r\n".encode())
        for sock, _ in conns:
            sock.close()


def _server_closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


# --- the open-streams figure -----------------------------------------------------------------


def open_stream_figures(workdir: Path, streams: int, rounds: int = 2, prompt_kb: int = 0) -> None:
    """`prompt_kb`: each request carries a prompt that long (a chat with its history), which the
    worker holds for as long as the stream is open."""
    prompt = "x" * (prompt_kb * 1024) if prompt_kb else "hi"
    print(
        f"\n== {streams:,} open SSE streams on one gateway worker, opened and closed {rounds}x, "
        f"{f'{prompt_kb} KiB' if prompt_kb else 'short'} prompts"
    )
    with gateway_worker(workdir) as worker:
        probe_latencies(worker, 1.0)  # warm-up: pools, caches, the first request's imports
        idle, idle_fds = worker.settled_rss(), worker.fds()
        print(f"baseline, idle worker: RSS {idle:.1f} MB, {idle_fds} file descriptors")
        closed: list[float] = []
        for n in range(1, rounds + 1):
            started = time.monotonic()
            socks = open_streams(worker, "sse", streams, prompt=prompt)
            opened = time.monotonic() - started
            peak, upstream_open = worker.settled_rss(), worker.upstream_stats()["open"]
            for sock in socks:
                sock.close()
            left = worker.upstream_idle()
            closed.append(worker.settled_rss())
            print(
                f"round {n}: open    RSS {peak:.1f} MB (+{peak - idle:.1f} MB, must be < +200; "
                f"{(peak - idle) * 1024 / streams:.0f} KB a stream; upstream streams open "
                f"{upstream_open}; opened in {opened:.1f} s)"
            )
            print(
                f"round {n}: closed  RSS {closed[-1]:.1f} MB ({closed[-1] - idle:+.1f} MB over "
                f"baseline), {worker.fds()} file descriptors, upstream streams still open {left}"
            )
        if rounds > 1:
            # Allocator retention is paid once, by the first burst; a leak adds up every round.
            print(
                f"closed after round {rounds} vs after round 1: "
                f"{closed[-1] - closed[0]:+.1f} MB (must stay within a few MB)"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=1000, help="open SSE streams per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--prompt-kb", type=int, default=0, help="prompt length (default: 'hi')")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        open_stream_figures(Path(tmp), args.streams, args.rounds, args.prompt_kb)


if __name__ == "__main__":
    main()
