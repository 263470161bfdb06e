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


class PatientDeadline(DeadlineProtocol):
    header_timeout = 3.0


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


@pytest.fixture
def patient_server() -> Iterator[tuple[str, int]]:
    with serve_in_thread(echo_body, lifespan="off", http=PatientDeadline) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def _open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""  # bytes: not expected, but open
    except BlockingIOError:
        return True  # nothing to read and not closed
    finally:
        sock.setblocking(True)


def _closed_after(sock: socket.socket, limit: float) -> float:
    sock.settimeout(limit)
    started = time.monotonic()
    assert sock.recv(1024) == b""  # closed by the server, without a response
    return time.monotonic() - started


def test_trickled_headers_are_cut_and_others_are_served(
    patient_server: tuple[str, int],
) -> None:
    """While 50 connections trickle their headers, another client is served; they are cut
    at their deadline. No wall-clock bound on the served request: it is served while all 50
    are still held open, i.e. before their deadline, which is what matters."""
    host, port = patient_server
    # Closed whatever happens: a failure here must not leak 50 sockets into the next test's
    # setup (CI once reported them there as an error of another test).
    with contextlib.ExitStack() as sockets:
        slow = [sockets.enter_context(socket.create_connection((host, port))) for _ in range(50)]
        for s in slow:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        r = httpx.post(f"http://{host}:{port}/", content=b"ping", timeout=5)
        assert r.status_code == 200 and r.content == b"ping"
        assert all(_open(s) for s in slow)  # served before any of them was cut
        for s in slow:
            assert _closed_after(s, 6.0) < 6.0


def test_idle_connection_without_a_request_is_cut(server: tuple[str, int]) -> None:
    with socket.create_connection(server) as s:
        assert _closed_after(s, 3.0) < 3.0


def test_trickled_body_gets_408(server: tuple[str, int]) -> None:
    with socket.create_connection(server) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        s.settimeout(3.0)
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 408") and b"request_timeout" in reply


def test_a_body_in_parts_within_its_deadline_is_read_whole(server: tuple[str, int]) -> None:
    """The read that has to wait (the body's deadline armed midway) returns the whole body, and
    the limit still holds across the parts."""
    with socket.create_connection(server) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc")
        time.sleep(0.1)  # the server's read is waiting for the rest
        s.sendall(b"def")
        s.settimeout(3.0)
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 200") and b"\r\n6\r\nabcdef\r\n" in reply  # chunked
