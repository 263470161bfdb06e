"""Slow clients are cut at a header deadline and a body deadline, and do not starve others."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from clearance.errors import ClearanceError
from clearance.net.asgi import read_body
from clearance.net.protocol import DeadlineProtocol
from clearance.net.serving import serve_in_thread


class QuickDeadline(DeadlineProtocol):
    header_timeout = 0.5


async def echo_body(scope: Scope, receive: Receive, send: Send) -> None:
    try:
        body = await read_body(receive, dict(scope["headers"]), limit=1 << 20, timeout=0.5)
        status = 200
    except ClearanceError as exc:
        body, status = exc.code.encode(), exc.status
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    with serve_in_thread(echo_body, lifespan="off", http=QuickDeadline) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def _closed_after(sock: socket.socket, limit: float) -> float:
    sock.settimeout(limit)
    started = time.monotonic()
    assert sock.recv(1024) == b""  # closed by the server, without a response
    return time.monotonic() - started


def test_trickled_headers_are_cut_and_others_are_served(server: tuple[str, int]) -> None:
    host, port = server
    # Closed whatever happens: a failure here must not leak 50 sockets into the next test's
    # setup (CI once reported them there as an error of another test).
    with contextlib.ExitStack() as sockets:
        slow = [sockets.enter_context(socket.create_connection((host, port))) for _ in range(50)]
        for s in slow:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        probe = time.monotonic()
        r = httpx.post(f"http://{host}:{port}/", content=b"ping", timeout=5)
        assert r.status_code == 200 and r.content == b"ping"
        assert time.monotonic() - probe < 0.5
        for s in slow:
            assert _closed_after(s, 3.0) < 3.0


def test_idle_connection_without_a_request_is_cut(server: tuple[str, int]) -> None:
    with socket.create_connection(server) as s:
        assert _closed_after(s, 3.0) < 3.0


def test_trickled_body_gets_408(server: tuple[str, int]) -> None:
    with socket.create_connection(server) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        s.settimeout(3.0)
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 408") and b"request_timeout" in reply
