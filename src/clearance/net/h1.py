"""A lean HTTP/1.1 client for the gateway's upstream calls (issue 13: the request path at the
Python ceiling).

The relay needs little of a general client: POST a body, read the status and headers, relay the
body as it arrives, keep connections alive. aiohttp's ClientSession does that and much more
(cookie jar, tracing signals, redirects, multidict headers, payload registry, a timer task per
read), and was a third of a gateway worker's CPU per request. This client is one
`asyncio.Protocol` per connection with llhttp (`httptools`, the parser uvicorn serves with)
reading the answer, a LIFO pool of idle connections per origin, and no task of its own.

What it does and does not do:
- HTTP/1.1 over TCP, and TLS for `https` origins (the system's trust store, certificate and host
  name checked: `ssl.create_default_context`); no proxies, no redirects (an upstream's 3xx is its
  answer), no HTTP/2.
- Bodies framed by Content-Length, chunked transfer coding or the connection's end
  (RFC 9112 §6.3); 1xx interim answers skipped (RFC 9110 §15.2).
- `accept-encoding: identity` is sent unless the caller says otherwise: the relay reads usage
  from the answer and passes bytes through without a content-encoding header.
- A connection is reused only after its answer was read to the end and the server allows it
  (RFC 9112 §9.3); one idle longer than `keepalive` seconds is closed rather than reused (a
  server may have dropped it). A request is never retried: a POST to a model may have run.
- Timeouts: `connect` for the TCP (and TLS) set-up, `read` for each wait for bytes (the status
  line and headers, then every body chunk), as aiohttp's `sock_read`; checked by one sweep every
  `min(1 s, read / 4)`, so a cut comes up to that much late. A timeout raises
  `TimeoutError`; every other failure `UpstreamConnectionError` or `UpstreamProtocolError`
  (both `H1Error`).
- Back-pressure: reading pauses while more than `HIGH_WATER` bytes wait for the caller.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from urllib.parse import urlsplit

import httptools

HIGH_WATER = 256 * 1024  # buffered body bytes before reading pauses
LOW_WATER = 64 * 1024


class H1Error(Exception):
    """The upstream could not be reached or broke the exchange."""


class UpstreamConnectionError(H1Error):
    """Connecting failed, or the connection was lost before the answer ended."""


class UpstreamProtocolError(H1Error):
    """The upstream's bytes are not a valid HTTP/1.1 answer."""


class InvalidRequest(H1Error):
    """The request cannot be sent as asked (a header with CR or LF, e.g. a misconfigured key)."""


@functools.lru_cache(maxsize=256)
def _origin(url: str) -> tuple[tuple[str, str, int], bytes, bytes]:
    """(scheme, host, port), the request target, the Host header value."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"not an http(s) URL: {url!r}")
    default = 443 if scheme == "https" else 80
    port = parts.port or default
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    authority = shown if port == default else f"{shown}:{port}"
    return (scheme, host, port), target.encode("ascii"), authority.encode("ascii")


def _head(
    method: bytes,
    target: bytes,
    authority: bytes,
    headers: Iterable[tuple[str, str]],
    length: int,
) -> bytes:
    lines = [method, b" ", target, b" HTTP/1.1\r\nhost: ", authority, b"\r\n"]
    encoding = False
    for name, value in headers:
        # RFC 9110 §5.5: a field value never carries CR or LF (no header injection).
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            raise InvalidRequest(f"invalid header {name!r} for the upstream")
        lowered = name.lower()
        if lowered in ("host", "content-length", "transfer-encoding", "connection"):
            continue  # framing is ours
        encoding = encoding or lowered == "accept-encoding"
        lines += (name.encode("latin-1"), b": ", value.encode("latin-1"), b"\r\n")
    if not encoding:
        lines.append(b"accept-encoding: identity\r\n")
    if length or method not in (b"GET", b"DELETE"):  # RFC 9110 §8.6: none on an empty GET
        lines += (b"content-length: ", str(length).encode(), b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


class Response:
    """An answer being read: `status`, `headers` (lower-case names, bytes), the body by
    `iter_any()` or `read()`."""

    __slots__ = (
        "_chunks",
        "_conn",
        "_done",
        "_error",
        "_size",
        "headers",
        "status",
    )

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._done = False
        self._error: BaseException | None = None

    async def iter_any(self) -> AsyncIterator[bytes]:
        """Each chunk as it arrives (what has arrived since the last, joined)."""
        chunks = self._chunks
        while True:
            if chunks:
                chunk = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                self._size = 0
                self._conn.consumed()
                yield chunk
                continue
            if self._error is not None:
                raise self._error
            if self._done:
                return
            await self._conn.pool._wait_for(self._conn)

    async def read(self) -> bytes:
        parts = [chunk async for chunk in self.iter_any()]
        return b"".join(parts)


class _Connection(asyncio.Protocol):
    """One keep-alive connection; llhttp's callbacks fill the current `Response`."""

    def __init__(self, pool: Client, key: tuple[str, str, int]) -> None:
        self.pool = pool
        self.key = key
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.lost = False
        self.paused = False
        self.framed = True  # the current answer's end is known from its headers
        self.complete = False
        self.keep_alive = False
        self.idle_since = 0.0
        # What the caller waits for (the answer's head, then each body chunk), and until when
        # (the client's sweep enforces it).
        self.waiting: asyncio.Future[None] | None = None
        self.deadline = 0.0

    # -- asyncio.Protocol --
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.response is None:  # bytes nobody asked for: the connection is unusable
            self.lost = True
            if self.transport is not None:
                self.transport.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.lost = True  # never reused
            self._fail(UpstreamProtocolError(f"invalid HTTP answer from the upstream: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def eof_received(self) -> bool:
        self._ended()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended()

    def _ended(self) -> None:
        if self.lost:
            return
        self.lost = True
        resp = self.response
        if resp is None or self.complete:
            return
        if resp.status and not self.framed and not resp._done:
            # RFC 9112 §6.3 (8): no length, not chunked: the body ends with the connection.
            self.complete = True
            resp._done = True
            self.wake()
            return
        self._fail(UpstreamConnectionError("the upstream closed the connection mid-answer"))

    def _fail(self, error: BaseException) -> None:
        resp = self.response
        if resp is None:
            return
        if resp._error is None and not resp._done:
            resp._error = error  # raised by the next read, after what had arrived
            waiter = self.waiting
            if waiter is not None and not waiter.done():
                waiter.set_exception(error)

    # -- llhttp callbacks --
    def on_message_begin(self) -> None:
        resp = self.response
        assert resp is not None
        if self.complete:  # a second answer to one request: the connection is out of step
            raise UpstreamProtocolError("the upstream sent more than one answer")
        resp.headers = []
        self.framed = False

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in (b"content-length", b"transfer-encoding"):
            self.framed = True
        assert self.response is not None
        self.response.headers.append((name, value))

    def on_headers_complete(self) -> None:
        resp = self.response
        assert resp is not None
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            return  # an interim answer (RFC 9110 §15.2): the final one follows
        if status in (204, 304):
            self.framed = True
        # Asked now: llhttp answers for the message being parsed, not after its end.
        self.keep_alive = self.parser.should_keep_alive()
        resp.status = status
        self.wake()

    def on_body(self, body: bytes) -> None:
        resp = self.response
        assert resp is not None
        resp._chunks.append(body)
        resp._size += len(body)
        if resp._size > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self.wake()

    def on_message_complete(self) -> None:
        resp = self.response
        assert resp is not None
        if not resp.status:
            return  # the end of an interim answer
        self.complete = True
        resp._done = True
        self.wake()

    # -- the caller's side --
    def wake(self) -> None:
        waiter = self.waiting
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def consumed(self) -> None:
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def reusable(self) -> bool:
        return (
            self.complete
            and not self.lost
            and self.framed
            and self.keep_alive
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()


class _Exchange:
    """`async with client.post(...) as response`: the connection goes back to the pool when the
    answer was read to its end, and is closed otherwise."""

    __slots__ = ("_body", "_client", "_conn", "_headers", "_method", "_url")

    def __init__(
        self,
        client: Client,
        method: bytes,
        url: str,
        body: bytes,
        headers: Iterable[tuple[str, str]],
    ) -> None:
        self._client = client
        self._method = method
        self._url = url
        self._body = body
        self._headers = headers
        self._conn: _Connection | None = None

    async def __aenter__(self) -> Response:
        key, target, authority = _origin(self._url)
        head = _head(self._method, target, authority, self._headers, len(self._body))
        conn = self._conn = await self._client._acquire(key)
        resp = conn.response = Response(conn)
        conn.complete = False
        assert conn.transport is not None
        conn.transport.write(head + self._body if len(self._body) < 65536 else head)
        if len(self._body) >= 65536:
            conn.transport.write(self._body)
        self._body = b""
        try:
            await self._client._wait_for(conn)  # the head
        except BaseException:  # a timeout, a broken answer, or the caller cancelled
            self._conn = None
            conn.response = None
            conn.close()
            raise
        return resp

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self._conn
        if conn is None:
            return
        self._conn = None
        conn.response = None
        if exc_type is None and conn.reusable():
            self._client._release(conn)
        else:
            conn.close()


class Client:
    """A pool of keep-alive connections per origin; `post(url, body, headers)`."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        keepalive: float = 15.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.keepalive = keepalive
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._closed = False
        # Read deadlines: a float per waiting connection and one sweep for all of them (a timer
        # armed and cancelled per wait costs uvloop several µs), a cut up to 1 s late.
        self._waiting: set[_Connection] = set()
        self._sweep_timer: asyncio.TimerHandle | None = None

    async def _wait_for(self, conn: _Connection) -> None:
        """Wait for `conn`'s next bytes (its answer's head, or a body chunk), within the read
        timeout."""
        waiter = conn.waiting = conn.loop.create_future()
        conn.deadline = conn.loop.time() + self.read_timeout
        self._waiting.add(conn)
        if self._sweep_timer is None:
            interval = min(1.0, self.read_timeout / 4)
            self._sweep_timer = conn.loop.call_later(interval, self._sweep, conn.loop)
        try:
            await waiter
        finally:
            conn.waiting = None
            self._waiting.discard(conn)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweep_timer = None
        now = loop.time()
        for conn in list(self._waiting):
            waiter = conn.waiting
            if waiter is None or waiter.done():
                self._waiting.discard(conn)
            elif conn.deadline <= now:
                self._waiting.discard(conn)
                waiter.set_exception(TimeoutError("the upstream did not answer in time"))
        if self._waiting:
            interval = min(1.0, self.read_timeout / 4)
            self._sweep_timer = loop.call_later(interval, self._sweep, loop)

    def post(self, url: str, body: bytes, headers: Iterable[tuple[str, str]]) -> _Exchange:
        return _Exchange(self, b"POST", url, body, headers)

    def request(
        self, method: str, url: str, body: bytes, headers: Iterable[tuple[str, str]]
    ) -> _Exchange:
        if method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            raise InvalidRequest(f"method {method!r} is not supported")
        return _Exchange(self, method.encode("ascii"), url, body, headers)

    async def _acquire(self, key: tuple[str, str, int]) -> _Connection:
        if self._closed:
            raise UpstreamConnectionError("the upstream client is closed")
        idle = self._idle.get(key)
        if idle:
            stale = time.monotonic() - self.keepalive
            while idle:
                conn = idle.pop()
                if conn.lost or conn.idle_since < stale:
                    conn.close()
                    continue
                return conn
        return await self._connect(key)

    async def _connect(self, key: tuple[str, str, int]) -> _Connection:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        context: ssl.SSLContext | None = None
        if scheme == "https":
            context = self._ssl or _default_context()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self, key),
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                )
        except TimeoutError:
            raise TimeoutError(f"connecting to {host}:{port} timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamConnectionError(f"cannot connect to {host}:{port}: {exc}") from exc
        return conn

    def _release(self, conn: _Connection) -> None:
        if self._closed:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.key, []).append(conn)

    def idle_connections(self) -> int:
        return sum(len(conns) for conns in self._idle.values())

    async def close(self) -> None:
        self._closed = True
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
            self._sweep_timer = None
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports' close callbacks run


@functools.cache
def _default_context() -> ssl.SSLContext:
    return ssl.create_default_context()
